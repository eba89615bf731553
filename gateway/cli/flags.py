"""The gateway's flags: each names the config field it sets (see ``settings``).

Tokens never come from a flag (a command line is visible to every user of the
machine): from a file, or ``GATEWAY_AUTH_TOKENS``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Mapping
from datetime import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from gateway.auth import TokenStore, TokenTableError
from gateway.auth.limits import PrincipalLimits
from gateway.brokers.alpaca import ALLOW_LIVE_ENV, AlpacaConfig
from gateway.brokers.faults import FaultConfig
from gateway.brokers.fix import FixConfig
from gateway.brokers.simulated import SimConfig, SymbolConfig
from gateway.cli.flag_values import (
    host_port,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    symbol_prices,
)
from gateway.cli.settings import ENV_PREFIX, Setting, add_settings, collect
from gateway.config import GatewayConfig
from gateway.engine import EngineConfig
from gateway.ha.config import PostgresConfig
from gateway.observability.logs import LogConfig
from gateway.risk import LimitsFileError, load_limits
from gateway.security import TlsConfig
from gateway.service.config import ServiceConfig
from gateway.shards import SHARD_NAME, ShardMap

TOKENS_ENV = "GATEWAY_AUTH_TOKENS"


def _session_end(text: str) -> time | None:
    if text.lower() in ("", "none", "off"):
        return None
    return time.fromisoformat(text)


def _broker_name(text: str) -> str:
    if text not in ("simulated", "alpaca", "fix"):
        raise argparse.ArgumentTypeError(f"unknown broker {text!r}: simulated, alpaca or fix")
    return text


def _fault_profile(text: str) -> FaultConfig:
    try:
        return FaultConfig.from_toml(Path(text))
    except ValueError as exc:
        # ArgumentTypeError's message reaches the user; a ValueError's does not.
        raise argparse.ArgumentTypeError(str(exc)) from None


def _risk_limits_file(text: str) -> Path:
    """A limits file that loads now (a bad one at start is an error, not "no limits")."""
    path = Path(text)
    try:
        load_limits(path)
    except LimitsFileError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return path


def _fix_config(text: str) -> FixConfig:
    try:
        return FixConfig.from_toml(Path(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _shard_name(text: str) -> str:
    if not SHARD_NAME.fullmatch(text):
        raise ValueError(text)
    return text


def _log_level(text: str) -> str:
    level = text.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError(text)
    return level


def _log_format(text: str) -> str:
    if text not in ("text", "json"):
        raise ValueError(text)
    return text


def _otlp_endpoint(text: str) -> str:
    if not text.startswith(("http://", "https://")):
        raise ValueError(text)
    return text


# Names argparse shows in "invalid <name> value" messages.
for _parser, _name in (
    (_session_end, "HH:MM time"),
    (_shard_name, "shard name (a-z 0-9 -)"),
    (_fault_profile, "fault profile"),
    (_fix_config, "FIX config file"),
    (_log_level, "level (DEBUG, INFO, WARNING or ERROR)"),
    (_log_format, "log format (text or json)"),
    (_otlp_endpoint, "URL (http:// or https://)"),
):
    _parser.__name__ = _name

_G, _S, _L, _E = GatewayConfig, SimConfig, PrincipalLimits, EngineConfig
S = Setting
SETTINGS: tuple[Setting, ...] = (
    S("listen", _G, "listen", host_port, "HOST:PORT"),
    S("data-dir", _G, "data_dir", Path, "DIR"),
    S("salvage-journal", _G, "salvage_journal", from_env=False),
    S("broker", _G, "broker", _broker_name, "NAME"),
    # The PostgreSQL journal and leadership (the lease is --shard's).
    S("journal", PostgresConfig, "url", str, "URL"),
    S("lease", PostgresConfig, "lease", positive_float, "SECONDS"),
    S("reflection", _G, "reflection"),
    S("shutdown-grace", _G, "shutdown_grace", non_negative_float, "SECONDS"),
    S("drain-delay", _G, "drain_delay", non_negative_float, "SECONDS"),
    S("metrics-listen", _G, "metrics_listen", host_port, "HOST:PORT"),
    S("otlp-endpoint", _G, "otlp_endpoint", _otlp_endpoint, "URL"),
    S("log-level", LogConfig, "level", _log_level, "LEVEL"),
    S("log-format", LogConfig, "format", _log_format, "FMT"),
    # Account shards.
    S("shard", _G, "shard", _shard_name, "NAME"),
    S(
        "shard-map",
        _G,
        "shard_map",
        Path,
        "FILE",
        help="TOML file: each shard's address and accounts, and an optional default_shard "
        "(docs/operations.md); with --shard, accounts of other shards are refused "
        "WRONG_SHARD. Default: every account is served here",
    ),
    # Authentication and limits.
    S("insecure", _G, "insecure"),
    S("reflection-auth", _G, "reflection_requires_auth"),
    S(
        "auth-tokens-file",
        _G,
        "tokens",
        Path,
        "FILE",
        help="principals and their account grants, one credential per line: NAME "
        "sha256:DIGEST|x509:KIND=VALUE ACCOUNTS [rw|ro] (a bearer token's digest, or an "
        "mTLS client certificate's uri/dns/email/ip/cn/subject; see docs/security.md; "
        f"reloaded on change, ending streams it no longer allows); {TOKENS_ENV} may hold "
        "the same lines, ';'-separated",
    ),
    S("max-streams-per-principal", _L, "max_streams", non_negative_int, "N"),
    S("order-rate-per-principal", _L, "order_rate", non_negative_float, "PER_SECOND"),
    S("order-burst-per-principal", _L, "order_burst", non_negative_int, "N"),
    # TLS.
    S("tls-cert", TlsConfig, "cert_file", Path, "FILE"),
    S("tls-key", TlsConfig, "key_file", Path, "FILE"),
    S("tls-client-ca", TlsConfig, "client_ca_file", Path, "FILE"),
    # Connections.
    S("keepalive-time", _G, "keepalive_time", positive_float, "SECONDS"),
    S("keepalive-timeout", _G, "keepalive_timeout", positive_float, "SECONDS"),
    S("min-client-ping-interval", _G, "min_client_ping_interval", non_negative_float, "SECONDS"),
    S("keepalive-without-calls", _G, "permit_keepalive_without_calls"),
    S("max-connection-idle", _G, "max_connection_idle", non_negative_float, "SECONDS"),
    S("max-connection-age", _G, "max_connection_age", non_negative_float, "SECONDS"),
    S("max-connection-age-grace", _G, "max_connection_age_grace", non_negative_float, "SECONDS"),
    S("max-concurrent-streams", _G, "max_concurrent_streams", non_negative_int, "N"),
    S("max-message-bytes", _G, "max_message_bytes", positive_int, "BYTES"),
    S("heartbeat-interval", ServiceConfig, "heartbeat_interval", positive_float, "SECONDS"),
    # The order actor.
    S("ack-wait", _E, "ack_wait", non_negative_float, "SECONDS"),
    S("subscriber-buffer", _E, "subscriber_buffer", positive_int, "N"),
    S("inbox-capacity", _E, "inbox_capacity", positive_int, "N"),
    S("broker-attempts", _E, "broker_attempts", positive_int, "N"),
    S("broker-call-timeout", _E, "broker_call_timeout", positive_float, "SECONDS"),
    S("broker-backoff", _E, "broker_backoff", positive_float, "SECONDS"),
    S("broker-backoff-max", _E, "broker_backoff_max", positive_float, "SECONDS"),
    S("broker-failure-threshold", _E, "broker_failure_threshold", positive_int, "N"),
    S("reconcile-interval", _E, "reconcile_interval", non_negative_float, "SECONDS"),
    S("absence-grace", _E, "absence_grace", non_negative_float, "SECONDS"),
    S("checkpoint-every", _E, "checkpoint_every", non_negative_int, "EVENTS"),
    S("retention", _E, "retention", non_negative_float, "SECONDS"),
    S("retention-cache", _E, "retention_cache", non_negative_int, "N"),
    # The simulated broker.
    S("sim-seed", _S, "seed", int, "N"),
    S(
        "sim-prices",
        _S,
        "symbols",
        symbol_prices,
        "LIST",
        help="starting prices, e.g. AAPL=187.25,MSFT=410 (others start at 100)",
    ),
    S("sim-partial-fills", _S, "partial_fills", positive_int, "N"),
    S("sim-ack-latency", _S, "ack_latency", non_negative_float, "SECONDS"),
    S("sim-tick-interval", _S, "tick_interval", positive_float, "SECONDS"),
    S("sim-session-end", _S, "session_end", _session_end, "HH:MM"),
    S("sim-faults", _G, "sim_faults", _fault_profile, "FILE"),
    # Alpaca.
    S("alpaca-account", AlpacaConfig, "account", str, "NAME"),
    S(
        "alpaca-base-url",
        AlpacaConfig,
        "base_url",
        str,
        "URL",
        help="Trading API URL (APCA_API_BASE_URL also works; a paper venue from "
        "`paper-venue` works too)",
    ),
    S(
        "alpaca-credentials-file",
        AlpacaConfig,
        "key_id",
        Path,
        "FILE",
        help="file with APCA_API_KEY_ID=... and APCA_API_SECRET_KEY=... lines "
        "(default: those environment variables)",
    ),
    S(
        "alpaca-allow-live",
        AlpacaConfig,
        "allow_live",
        from_env=False,
        help="allow a LIVE (real money) endpoint. Needs the environment variable "
        f"{ALLOW_LIVE_ENV}=yes as well; deliberately not settable from the environment alone",
    ),
    # Trading controls.
    S("risk-limits", _G, "risk_limits", _risk_limits_file, "FILE"),
    S(
        "risk-limits-reload-interval",
        _G,
        "risk_limits_reload_interval",
        positive_float,
        "SECONDS",
    ),
)
# FIX 4.4 (--broker fix).
SETTINGS += (
    S(
        "fix-config",
        _G,
        "fix",
        _fix_config,
        "FILE",
        help="TOML file of the FIX session: host, port, sender_comp_id, target_comp_id, "
        "heartbeat_interval, [accounts], [schedule], [tls] (docs/brokers.md)",
    ),
)
FLAGS = SETTINGS  # the name tests and older callers use

_TITLES: dict[type, str] = {
    GatewayConfig: "serving",
    LogConfig: "logs",
    PrincipalLimits: "limits per principal",
    TlsConfig: "TLS (--tls-cert and --tls-key together; --tls-client-ca for mTLS)",
    ServiceConfig: "update streams",
    EngineConfig: "the order actor",
    PostgresConfig: "PostgreSQL journal and high availability (--journal)",
    SimConfig: "simulated broker (--broker simulated)",
    AlpacaConfig: "Alpaca (--broker alpaca)",
}


def build_parser(environ: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    """Return the parser; defaults from ``environ`` (``GATEWAY_*``) where set."""
    env = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(
        prog="gateway",
        description="gRPC execution gateway: idempotent orders and sequenced fill streams "
        "over one order actor. Every flag may also be set as an environment "
        f"variable {ENV_PREFIX}<FLAG>, e.g. {ENV_PREFIX}LISTEN=0.0.0.0:50051; a flag wins. "
        "`gateway journal show --help` inspects the journal; `gateway journal salvage` "
        "repairs a damaged one.",
    )
    add_settings(parser, SETTINGS, env, _TITLES)
    # Not a flag: a token on a command line is visible to every user of the machine.
    parser.set_defaults(auth_tokens_env=env.get(TOKENS_ENV))
    return parser


def config_from_args(args: argparse.Namespace) -> GatewayConfig:
    """Turn parsed flags into a GatewayConfig; raise ValueError for a bad combination."""
    values = collect(args, SETTINGS)
    top = values.get(GatewayConfig, {})
    tokens_file: Path | None = top.pop("tokens", None)
    if tokens_file is not None or args.auth_tokens_env:
        try:
            top["tokens"] = TokenStore.load(tokens_file, args.auth_tokens_env)
        except TokenTableError as exc:
            raise ValueError(f"authentication: {exc}") from None
    _shards(top)
    sim = values.get(SimConfig, {})
    prices: dict[str, Decimal] = sim.pop("symbols", {})
    if prices:
        sim["symbols"] = {s: SymbolConfig(price=p) for s, p in prices.items()}
    if top.get("broker") == "alpaca":
        top["alpaca"] = _alpaca(values.get(AlpacaConfig, {}))
    top["postgres"] = _postgres(values.get(PostgresConfig, {}), top.get("shard"))
    if top.get("broker") == "fix" and top.get("fix") is None:
        raise ValueError("--broker fix needs --fix-config FILE")
    return GatewayConfig(
        **top,
        tls=_tls(values.get(TlsConfig, {})),
        limits=PrincipalLimits(**values.get(PrincipalLimits, {})),
        engine=EngineConfig(**values.get(EngineConfig, {})),
        service=ServiceConfig(**values.get(ServiceConfig, {})),
        sim=dataclasses.replace(SimConfig(), **sim),
        log=LogConfig(**values.get(LogConfig, {})),
    )


def _shards(top: dict[str, Any]) -> None:
    """Load ``--shard-map`` in place; it needs ``--shard``, which it must name."""
    path: Path | None = top.pop("shard_map", None)
    if path is None:
        return
    shard = top.get("shard")
    if shard is None:
        raise ValueError("argument --shard-map: needs --shard (this gateway's shard)")
    shard_map = ShardMap.load(path)  # a ShardMapError is a ValueError with the file's name
    if shard not in shard_map.shards:
        raise ValueError(
            f"argument --shard: {shard!r} is not a shard of {path} ({', '.join(shard_map.shards)})"
        )
    top["shard_map"] = shard_map


def _tls(given: dict[str, Any]) -> TlsConfig | None:
    cert, key = given.get("cert_file"), given.get("key_file")
    if (cert is None) != (key is None):
        raise ValueError("argument --tls-cert and --tls-key: give both, or neither")
    if cert is None or key is None:
        if given.get("client_ca_file") is not None:
            raise ValueError("argument --tls-client-ca: needs --tls-cert and --tls-key")
        return None
    return TlsConfig(cert, key, given.get("client_ca_file"))


def _alpaca(given: dict[str, Any]) -> AlpacaConfig:
    credentials: Path | None = given.pop("key_id", None)
    try:
        return AlpacaConfig.from_env(credentials_file=credentials, **given)
    except OSError as exc:
        raise ValueError(f"cannot read Alpaca credentials: {exc}") from None


def _postgres(given: dict[str, Any], shard: str | None) -> PostgresConfig | None:
    """The PostgreSQL settings if --journal names a database; None: the SQLite journal.

    The lease is that of ``--shard`` (the account shard this gateway serves),
    or of the shard "default" when there are no account shards.
    """
    if given.get("url") is None:
        if given:
            raise ValueError(f"argument --{'/--'.join(sorted(given))}: needs --journal")
        return None
    if shard is not None:
        given["shard"] = shard
    return PostgresConfig(**given)
