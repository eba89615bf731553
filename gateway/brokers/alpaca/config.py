"""Settings of the Alpaca adapter: endpoints, credentials and the live-trading gate.

Credentials come from the environment (``APCA_API_KEY_ID``,
``APCA_API_SECRET_KEY``, Alpaca's own names) or from a file, never from a
command-line flag: flags show up in ``ps`` and shell history. They never
appear in a ``repr`` either, so logging a config cannot leak them.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger(__name__)

PAPER_URL = "https://paper-api.alpaca.markets"
LIVE_URL = "https://api.alpaca.markets"
PAPER_HOST = "paper-api.alpaca.markets"
KEY_ID_ENV = "APCA_API_KEY_ID"
SECRET_KEY_ENV = "APCA_API_SECRET_KEY"  # noqa: S105 - the variable's name, not a secret
BASE_URL_ENV = "APCA_API_BASE_URL"
ALLOW_LIVE_ENV = "GATEWAY_ALLOW_LIVE_TRADING"


class LiveTradingRefused(ValueError):
    """A live endpoint was configured without both opt-ins."""


@dataclass(frozen=True, slots=True)
class AlpacaConfig:
    """Everything the Alpaca adapter needs; build it with ``from_env`` in programs."""

    key_id: str = field(repr=False)
    """API key id (``APCA-API-KEY-ID``)."""

    secret_key: str = field(repr=False)
    """API secret (``APCA-API-SECRET-KEY``)."""

    base_url: str = PAPER_URL
    """Trading API root, without ``/v2``; paper by default."""

    stream_url: str = ""
    """``trade_updates`` WebSocket URL; empty means ``base_url`` as ws(s) + ``/stream``."""

    account: str = "alpaca"
    """The gateway account this Alpaca account trades for; orders of others are refused."""

    allow_live: bool = False
    """The command-line half of the live opt-in; ``GATEWAY_ALLOW_LIVE_TRADING=yes`` is the other."""

    request_timeout: float = 10.0
    """Seconds one REST request may take before its outcome counts as unknown."""

    connect_timeout: float = 5.0
    """Seconds to open a TCP/TLS connection (REST or stream)."""

    stream_heartbeat: float = 15.0
    """Seconds between WebSocket pings; a missing pong drops and reconnects the stream."""

    reconnect_backoff: float = 0.2
    """First stream reconnect delay cap (seconds); it doubles per failed try, with jitter."""

    reconnect_backoff_max: float = 15.0
    """Largest stream reconnect delay (seconds)."""

    report_queue_size: int = 10_000
    """Reports buffered for ``reports()``; when full the stream reader waits (backpressure)."""

    calls_per_minute: int = 200
    """REST calls the account may make per minute (Alpaca's default); the client-side
    limit until Alpaca's ``X-RateLimit-*`` headers say otherwise."""

    order_call_reserve: float = 0.2
    """Share of the calls per minute that questions (reconciliation) leave to orders
    and cancels."""

    bulk_pages: int = 10
    """Most pages of 500 orders one bulk question reads (``GET /v2/orders``)."""

    def __post_init__(self) -> None:
        if not self.key_id or not self.secret_key:
            raise ValueError(f"Alpaca credentials missing: set {KEY_ID_ENV} and {SECRET_KEY_ENV}")
        for name in ("request_timeout", "connect_timeout", "stream_heartbeat"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        if not 0 < self.reconnect_backoff <= self.reconnect_backoff_max:
            raise ValueError("need 0 < reconnect_backoff <= reconnect_backoff_max")
        if self.report_queue_size < 1:
            raise ValueError("report_queue_size must be at least 1")
        if self.calls_per_minute < 1 or self.bulk_pages < 1:
            raise ValueError("calls_per_minute and bulk_pages must be at least 1")
        if not 0 <= self.order_call_reserve < 1:
            raise ValueError("order_call_reserve must be within [0, 1)")
        for url in (self.base_url, self.stream_url):
            if url and urlsplit(url).scheme not in ("http", "https", "ws", "wss"):
                raise ValueError(f"not an http(s) or ws(s) URL: {url!r}")

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        credentials_file: Path | None = None,
        **settings: object,
    ) -> AlpacaConfig:
        """Build a config with credentials from ``credentials_file`` or the environment.

        The file holds ``APCA_API_KEY_ID=...`` and ``APCA_API_SECRET_KEY=...``
        lines (a values-only ``.env``); what it lacks comes from the environment.
        ``APCA_API_BASE_URL`` sets ``base_url`` unless ``settings`` does.
        """
        env = os.environ if environ is None else environ
        values = {k: env[k] for k in (KEY_ID_ENV, SECRET_KEY_ENV, BASE_URL_ENV) if env.get(k)}
        if credentials_file is not None:
            values.update(read_credentials_file(credentials_file))
        if BASE_URL_ENV in values:
            settings.setdefault("base_url", values[BASE_URL_ENV])
        return cls(
            key_id=values.get(KEY_ID_ENV, ""),
            secret_key=values.get(SECRET_KEY_ENV, ""),
            **settings,  # type: ignore[arg-type]  # checked by the dataclass itself
        )

    @property
    def stream_endpoint(self) -> str:
        """The WebSocket URL of the ``trade_updates`` stream."""
        if self.stream_url:
            return self.stream_url
        parts = urlsplit(self.base_url)
        scheme = "wss" if parts.scheme in ("https", "wss") else "ws"
        return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/stream", "", ""))

    @property
    def is_live(self) -> bool:
        """Whether either endpoint is Alpaca's live (real money) service."""
        return any(_is_live_url(url) for url in (self.base_url, self.stream_endpoint))

    def auth_headers(self) -> dict[str, str]:
        """Return the REST authentication headers."""
        return {"APCA-API-KEY-ID": self.key_id, "APCA-API-SECRET-KEY": self.secret_key}


def check_live_gate(config: AlpacaConfig, environ: Mapping[str, str] | None = None) -> None:
    """Refuse a live endpoint unless both opt-ins are given; warn loudly when they are."""
    if not config.is_live:
        return
    env = os.environ if environ is None else environ
    env_ok = env.get(ALLOW_LIVE_ENV, "").strip().lower() == "yes"
    if not (config.allow_live and env_ok):
        missing = []
        if not config.allow_live:
            missing.append("the allow-live flag")
        if not env_ok:
            missing.append(f"{ALLOW_LIVE_ENV}=yes")
        raise LiveTradingRefused(
            f"{config.base_url} is a LIVE trading endpoint (real money); "
            f"refusing without {' and '.join(missing)}"
        )
    log.warning(
        "LIVE TRADING ENABLED: orders go to %s and trade REAL MONEY on account %r",
        config.base_url,
        config.account,
    )


def read_credentials_file(path: Path) -> dict[str, str]:
    """Read ``NAME=value`` lines (``#`` comments, optional ``export`` and quotes)."""
    values: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.removeprefix("export ").partition("=")
        if not sep:
            # Never echo the line: it may be a bare secret.
            raise ValueError(f"{path}: expected NAME=value lines")
        values[name.strip()] = value.strip().strip("'\"")
    return values


def _is_live_url(url: str) -> bool:
    # Live means an Alpaca host other than paper. Anything else (a paper venue
    # on localhost or in another container) cannot trade real money by itself.
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    if host == PAPER_HOST or _is_loopback(host):
        return False
    return host == "alpaca.markets" or host.endswith(".alpaca.markets")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
