"""Settings of the FIX 4.4 adapter, read from a small TOML file (``--fix-config``).

Example (docs/brokers.md has the full list)::

    host = "127.0.0.1"
    port = 9878
    sender_comp_id = "GATEWAY"
    target_comp_id = "BROKER"
    heartbeat_interval = 30

    [accounts]            # gateway account -> FIX Account (tag 1)
    main = "ACC-001"

    [schedule]            # optional: the session's trading hours, in UTC
    start = "08:00"
    end = "21:00"

    [tls]                 # optional
    ca_file = "broker-ca.pem"

A bad file is refused with a message that names the key, before anything
connects: the gateway never starts half-configured.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

BEGIN_STRING = "FIX.4.4"


@dataclass(frozen=True, slots=True)
class FixTls:
    """TLS towards the counterparty (FIX over TLS, as most brokers' UAT sessions)."""

    ca_file: Path | None = None
    """CA bundle to verify the counterparty with; None uses the system's."""

    cert_file: Path | None = None
    """Our client certificate, where the broker asks for one."""

    key_file: Path | None = None
    """The client certificate's key."""

    server_hostname: str = ""
    """Name to verify in the counterparty's certificate; empty means ``host``."""


@dataclass(frozen=True, slots=True)
class SessionSchedule:
    """The daily window in which the session is logged on (UTC).

    Outside it the adapter logs out and stays away; at the next start it
    logs on with ``ResetSeqNumFlag``, so each trading day starts at sequence 1,
    as a FIX session's day does. ``start > end`` spans midnight.
    """

    start: time
    end: time

    def is_open(self, now: datetime) -> bool:
        """Return whether ``now`` (aware, UTC) falls in the window."""
        moment = now.time().replace(tzinfo=None)
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def session_start(self, now: datetime) -> datetime:
        """Return the start of the window ``now`` is in (or the last one that began)."""
        today = datetime.combine(now.date(), self.start, tzinfo=now.tzinfo)
        return today if today <= now else today - timedelta(days=1)

    def seconds_until_open(self, now: datetime) -> float:
        """Seconds from ``now`` until the window next opens (0 when open)."""
        if self.is_open(now):
            return 0.0
        start = datetime.combine(now.date(), self.start, tzinfo=now.tzinfo)
        if start <= now:
            start += timedelta(days=1)
        return (start - now).total_seconds()


@dataclass(frozen=True, slots=True)
class FixConfig:
    """Everything the FIX adapter needs; ``from_toml`` reads the file form."""

    host: str
    """The counterparty's (acceptor's) host."""

    port: int
    """The counterparty's port."""

    sender_comp_id: str
    """Our SenderCompID (tag 49), as agreed with the broker."""

    target_comp_id: str
    """The broker's CompID (tag 56)."""

    accounts: dict[str, str] = field(default_factory=dict)
    """Gateway account -> FIX ``Account`` (tag 1). Orders of accounts not listed
    are refused; an empty table maps ``default_account`` to no tag 1 at all."""

    default_account: str = "fix"
    """The gateway account of an adapter without an account table."""

    heartbeat_interval: int = 30
    """HeartBtInt (tag 108), seconds; a TestRequest follows silence past it."""

    schedule: SessionSchedule | None = None
    """The session window; None means always on."""

    tls: FixTls | None = None
    """TLS settings; None is plain TCP (a UAT link through a VPN or stunnel)."""

    store_path: Path | None = None
    """SQLite file for sequence numbers and sent messages; None puts
    ``fix-<sender>-<target>.sqlite`` in the gateway's data directory."""

    reset_on_logon: bool = False
    """Send ``ResetSeqNumFlag=Y`` on every logon (some UAT sessions want it)."""

    logon_timeout: float = 10.0
    """Seconds to wait for the Logon answer before the attempt counts as failed."""

    reconnect_backoff: float = 0.5
    """First reconnect delay (seconds); doubles per failed attempt, with jitter."""

    reconnect_backoff_max: float = 30.0
    """Largest reconnect delay (seconds)."""

    request_timeout: float = 5.0
    """Seconds to wait for the answer to a NewOrderSingle or a status request
    before its outcome counts as unknown (below --broker-call-timeout, so the
    adapter's own, clearer, timeout comes first)."""

    mass_status: bool = False
    """The counterparty answers ``OrderMassStatusRequest`` (AF); when false,
    reconciliation asks ``OrderStatusRequest`` (H) order by order."""

    status_requests: bool = True
    """The counterparty answers ``OrderStatusRequest`` (H). QuickFIX's example
    acceptors do not; without it an order whose fate is unknown stays in doubt
    until a report settles it."""

    report_queue_size: int = 10_000
    """Reports buffered for ``reports()``; when full the reader stops reading the
    socket (TCP pushes back on the venue). Never a dropped report."""

    def fix_account(self, account: str) -> str | None:
        """Return the tag 1 value for a gateway account; raise KeyError for an unknown one."""
        if not self.accounts:
            if account != self.default_account:
                raise KeyError(account)
            return None
        return self.accounts[account]

    def gateway_account(self, fix_account: str | None) -> str | None:
        """Return the gateway account for a tag 1 value (None if not ours)."""
        if not self.accounts:
            return self.default_account
        for ours, theirs in self.accounts.items():
            if theirs == fix_account:
                return ours
        return None

    @classmethod
    def from_toml(cls, path: Path) -> FixConfig:
        """Read a config file; raise ValueError naming the file and the bad key."""
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"FIX config {path}: {exc}") from None
        try:
            return _parse(raw, path.parent)
        except (KeyError, TypeError, ValueError) as exc:
            message = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
            raise ValueError(f"FIX config {path}: {message}") from None


_TOP_KEYS = {
    "host",
    "port",
    "sender_comp_id",
    "target_comp_id",
    "heartbeat_interval",
    "accounts",
    "default_account",
    "schedule",
    "tls",
    "store_path",
    "reset_on_logon",
    "logon_timeout",
    "reconnect_backoff",
    "reconnect_backoff_max",
    "request_timeout",
    "mass_status",
    "status_requests",
}


def _parse(raw: dict[str, Any], base: Path) -> FixConfig:
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise ValueError(f"unknown keys {unknown}")
    port = _typed(raw, "port", int)
    if not 0 < port < 65536:
        raise ValueError(f"port {port} is not a TCP port")
    heartbeat = _typed(raw, "heartbeat_interval", int, 30)
    if heartbeat <= 0:
        raise ValueError("heartbeat_interval must be positive")
    accounts = raw.get("accounts", {})
    if not isinstance(accounts, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in accounts.items()
    ):
        raise ValueError("accounts must map gateway accounts to non-empty FIX accounts")
    if len(set(accounts.values())) != len(accounts):
        raise ValueError("accounts: two gateway accounts map to one FIX account")
    numbers = {
        name: float(_typed(raw, name, (int, float), default))
        for name, default in (
            ("logon_timeout", 10.0),
            ("reconnect_backoff", 0.5),
            ("reconnect_backoff_max", 30.0),
            ("request_timeout", 5.0),
        )
    }
    for name, value in numbers.items():
        if value <= 0:
            raise ValueError(f"{name} must be positive")
    store = raw.get("store_path")
    return FixConfig(
        host=_typed(raw, "host", str),
        port=port,
        sender_comp_id=_comp_id(raw, "sender_comp_id"),
        target_comp_id=_comp_id(raw, "target_comp_id"),
        accounts=dict(accounts),
        default_account=_typed(raw, "default_account", str, "fix"),
        heartbeat_interval=heartbeat,
        schedule=_schedule(raw.get("schedule")),
        tls=_tls(raw.get("tls"), base),
        store_path=None if store is None else base / _typed(raw, "store_path", str),
        reset_on_logon=_typed(raw, "reset_on_logon", bool, False),
        mass_status=_typed(raw, "mass_status", bool, False),
        status_requests=_typed(raw, "status_requests", bool, True),
        logon_timeout=numbers["logon_timeout"],
        reconnect_backoff=numbers["reconnect_backoff"],
        reconnect_backoff_max=numbers["reconnect_backoff_max"],
        request_timeout=numbers["request_timeout"],
    )


def _typed(raw: dict[str, Any], key: str, kind: Any, default: Any = ...) -> Any:
    if key not in raw:
        if default is ...:
            raise KeyError(key)
        return default
    value = raw[key]
    # bool is an int in Python; a port of `true` is still a mistake.
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        raise TypeError(f"{key} has the wrong type ({type(value).__name__})")
    return value


def _comp_id(raw: dict[str, Any], key: str) -> str:
    value: str = _typed(raw, key, str)
    if not value or "\x01" in value or "=" in value:
        raise ValueError(f"{key} must be a non-empty FIX string")
    return value


def _schedule(raw: Any) -> SessionSchedule | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) != {"start", "end"}:
        raise ValueError("schedule needs exactly start and end (HH:MM, UTC)")
    start, end = (time.fromisoformat(_typed(raw, k, str)) for k in ("start", "end"))
    if start == end:
        raise ValueError("schedule start and end are the same time")
    return SessionSchedule(start, end)


def _tls(raw: Any, base: Path) -> FixTls | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) - {
        "ca_file",
        "cert_file",
        "key_file",
        "server_hostname",
    }:
        raise ValueError("tls takes ca_file, cert_file, key_file and server_hostname")
    paths = {
        k: base / _typed(raw, k, str) for k in ("ca_file", "cert_file", "key_file") if k in raw
    }
    if ("cert_file" in paths) != ("key_file" in paths):
        raise ValueError("tls: give cert_file and key_file together")
    return FixTls(server_hostname=_typed(raw, "server_hostname", str, ""), **paths)
