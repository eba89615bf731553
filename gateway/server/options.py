"""Command-line flags for serving concerns: drain, connections, TLS, auth, metrics, logs.

Owns these flags' names, parsing and help; ``gateway.cli`` adds them to its
table (so each is also a ``GATEWAY_*`` variable) and merges ``ops_overrides``
into the config. Tokens themselves never come from a flag (a command line is
visible to every user of the machine): from a file, or ``GATEWAY_AUTH_TOKENS``.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from gateway.auth import TokenStore, TokenTableError
from gateway.auth.limits import PrincipalLimits
from gateway.cli.flag_values import (
    host_port,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from gateway.config import GatewayConfig
from gateway.security import TlsConfig

TOKENS_ENV = "GATEWAY_AUTH_TOKENS"
_G = GatewayConfig()
_L = PrincipalLimits()


def _log_format(text: str) -> str:
    if text not in ("text", "json"):
        raise ValueError(text)
    return text


_log_format.__name__ = "log format (text or json)"

# (name, parse, help, metavar): each becomes --name and GATEWAY_NAME.
OPS_FLAGS: tuple[tuple[str, Callable[[str], Any], str, str], ...] = (
    (
        "drain-delay",
        non_negative_float,
        "on SIGTERM/SIGINT, seconds between health NOT_SERVING and refusing new calls "
        f"(default {_G.drain_delay}); the whole drain takes at most this plus --shutdown-grace",
        "SECONDS",
    ),
    ("log-format", _log_format, "text or json (one JSON object per line) (default text)", "FMT"),
    (
        "metrics-listen",
        host_port,
        "serve Prometheus metrics at http://HOST:PORT/metrics (default: off)",
        "HOST:PORT",
    ),
    (
        "auth-tokens-file",
        Path,
        "principals and their account grants, one credential per line: NAME "
        "sha256:DIGEST|x509:KIND=VALUE ACCOUNTS [rw|ro] (a bearer token's digest, or an "
        "mTLS client certificate's uri/dns/email/ip/cn/subject; see docs/security.md; "
        f"reloaded on change, ending streams it no longer allows); {TOKENS_ENV} may hold "
        "the same lines, ';'-separated",
        "FILE",
    ),
    (
        "max-streams-per-principal",
        non_negative_int,
        "open SubscribeUpdates streams each principal may hold; more are refused with "
        f"RESOURCE_EXHAUSTED, 0 = no limit (default {_L.max_streams})",
        "N",
    ),
    (
        "order-rate-per-principal",
        non_negative_float,
        "order-entry calls (PlaceOrder, CancelOrder) per second each principal may make, "
        "sustained; more are refused with RESOURCE_EXHAUSTED, 0 = no limit (default 0)",
        "PER_SECOND",
    ),
    (
        "order-burst-per-principal",
        non_negative_int,
        "order-entry calls a principal may make at once above its rate "
        "(default: one second's worth)",
        "N",
    ),
    ("tls-cert", Path, "serve TLS with this PEM certificate chain (reloaded on change)", "FILE"),
    ("tls-key", Path, "the PEM private key of --tls-cert", "FILE"),
    (
        "tls-client-ca",
        Path,
        "require client certificates signed by this PEM CA bundle (mTLS)",
        "FILE",
    ),
    (
        "keepalive-time",
        positive_float,
        f"seconds between the server's keepalive pings (default {_G.keepalive_time})",
        "SECONDS",
    ),
    (
        "keepalive-timeout",
        positive_float,
        f"seconds a keepalive ping may go unanswered (default {_G.keepalive_timeout})",
        "SECONDS",
    ),
    (
        "min-client-ping-interval",
        non_negative_float,
        "shortest interval between client pings the server accepts; clients' keepalive "
        f"time must not be shorter (default {_G.min_client_ping_interval})",
        "SECONDS",
    ),
    (
        "max-connection-idle",
        non_negative_float,
        "close connections with no call for this long, 0 = never (default 0)",
        "SECONDS",
    ),
    (
        "max-connection-age",
        non_negative_float,
        "send GOAWAY to connections this old so clients rebalance, 0 = never (default 0)",
        "SECONDS",
    ),
    (
        "max-connection-age-grace",
        non_negative_float,
        "after GOAWAY for age, seconds calls may still run, 0 = no limit (default 0)",
        "SECONDS",
    ),
    (
        "max-concurrent-streams",
        non_negative_int,
        f"calls per connection, 0 = no limit (default {_G.max_concurrent_streams})",
        "N",
    ),
    (
        "max-message-bytes",
        positive_int,
        f"largest message received or sent (default {_G.max_message_bytes})",
        "BYTES",
    ),
)

# (name, default, help): --name / --no-name, and GATEWAY_NAME=true|false.
SWITCHES: tuple[tuple[str, bool, str], ...] = (
    (
        "insecure",
        False,
        "allow a non-loopback --listen with no tokens (only behind something that "
        "authenticates callers)",
    ),
    ("reflection-auth", False, "require a valid token for server reflection"),
    (
        "keepalive-without-calls",
        _G.permit_keepalive_without_calls,
        "accept keepalive pings on connections with no call open",
    ),
)


def add_switches(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    """Add the boolean switches, and the token table from the environment."""
    for name, default, help_text in SWITCHES:
        env_name = "GATEWAY_" + name.upper().replace("-", "_")
        raw = env.get(env_name)
        value = default if raw is None else raw.lower() not in ("0", "false", "no", "off", "")
        parser.add_argument(
            f"--{name}",
            action=argparse.BooleanOptionalAction,
            default=value,
            help=f"{help_text} (default {'on' if default else 'off'}) [env {env_name}]",
        )
    # Not a flag: a token on a command line is visible to every user of the machine.
    parser.set_defaults(auth_tokens_env=env.get(TOKENS_ENV))


def ops_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Return the GatewayConfig fields these flags set; raise ValueError if inconsistent."""

    def given(name: str) -> Any:
        return getattr(args, name.replace("-", "_"))

    fields: dict[str, Any] = {
        "insecure": args.insecure,
        "reflection_requires_auth": args.reflection_auth,
        "permit_keepalive_without_calls": args.keepalive_without_calls,
    }
    for flag, field in (
        ("drain-delay", "drain_delay"),
        ("metrics-listen", "metrics_listen"),
        ("keepalive-time", "keepalive_time"),
        ("keepalive-timeout", "keepalive_timeout"),
        ("min-client-ping-interval", "min_client_ping_interval"),
        ("max-connection-idle", "max_connection_idle"),
        ("max-connection-age", "max_connection_age"),
        ("max-connection-age-grace", "max_connection_age_grace"),
        ("max-concurrent-streams", "max_concurrent_streams"),
        ("max-message-bytes", "max_message_bytes"),
    ):
        if given(flag) is not None:
            fields[field] = given(flag)
    limits = {
        field: given(flag)
        for flag, field in (
            ("max-streams-per-principal", "max_streams"),
            ("order-rate-per-principal", "order_rate"),
            ("order-burst-per-principal", "order_burst"),
        )
        if given(flag) is not None
    }
    if limits:
        fields["limits"] = dataclasses.replace(PrincipalLimits(), **limits)
    tokens_file, tokens_env = given("auth-tokens-file"), args.auth_tokens_env
    if tokens_file is not None or tokens_env:
        try:
            fields["tokens"] = TokenStore.load(tokens_file, tokens_env)
        except TokenTableError as exc:
            raise ValueError(f"authentication: {exc}") from None
    cert, key, client_ca = given("tls-cert"), given("tls-key"), given("tls-client-ca")
    if (cert is None) != (key is None):
        raise ValueError("argument --tls-cert and --tls-key: give both, or neither")
    if client_ca is not None and cert is None:
        raise ValueError("argument --tls-client-ca: needs --tls-cert and --tls-key")
    if cert is not None:
        fields["tls"] = TlsConfig(cert, key, client_ca)
    return fields
