"""``gateway`` / ``python -m gateway``: flags and environment to a running gateway.

Every flag ``--some-name`` can also be set as ``GATEWAY_SOME_NAME``; a flag
on the command line wins over the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from gateway.brokers.alpaca import ALLOW_LIVE_ENV, AlpacaConfig
from gateway.brokers.faults import FaultConfig
from gateway.brokers.simulated import SimConfig, SymbolConfig
from gateway.cli.flag_values import (
    host_port,
    non_negative_float,
    positive_float,
    positive_int,
    symbol_prices,
)
from gateway.config import GatewayConfig
from gateway.engine import EngineConfig
from gateway.observability import logs
from gateway.server.options import OPS_FLAGS, add_switches, ops_overrides
from gateway.service.servicer import ServiceConfig

log = logging.getLogger("gateway")

ENV_PREFIX = "GATEWAY_"
EXIT_JOURNAL_DAMAGED = 65  # EX_DATAERR (sysexits.h): the journal, not the setup, is at fault


def _session_end(text: str) -> time | None:
    if text.lower() in ("", "none", "off"):
        return None
    return time.fromisoformat(text)


def _broker_name(text: str) -> str:
    if text not in ("simulated", "alpaca"):
        raise argparse.ArgumentTypeError(f"unknown broker {text!r}: simulated or alpaca")
    return text


def _fault_profile(text: str) -> FaultConfig:
    try:
        return FaultConfig.from_toml(Path(text))
    except ValueError as exc:
        # ArgumentTypeError's message reaches the user; a ValueError's does not.
        raise argparse.ArgumentTypeError(str(exc)) from None


# Names argparse shows in "invalid <name> value" messages.
for _parser, _name in (
    (_session_end, "HH:MM time"),
    (_fault_profile, "fault profile"),
):
    _parser.__name__ = _name


@dataclasses.dataclass(frozen=True)
class _Flag:
    name: str
    parse: Callable[[str], Any]
    help: str
    metavar: str | None = None


# Defaults come from the config dataclasses so they are stated once.
_E, _S, _G, _SIM = EngineConfig(), ServiceConfig(), GatewayConfig(), SimConfig()
FLAGS: tuple[_Flag, ...] = (
    _Flag("listen", host_port, f"serve on HOST:PORT (default {_G.listen})", "HOST:PORT"),
    _Flag(
        "broker",
        _broker_name,
        "simulated (in-process, the default) or alpaca (Alpaca's Trading API, paper by "
        "default; keys from APCA_API_KEY_ID / APCA_API_SECRET_KEY or --alpaca-credentials-file)",
        "NAME",
    ),
    _Flag(
        "alpaca-account",
        str,
        "alpaca: the gateway account name orders use (default alpaca)",
        "NAME",
    ),
    _Flag(
        "alpaca-base-url",
        str,
        "alpaca: Trading API URL (default paper; APCA_API_BASE_URL also works; a paper venue "
        "from `python -m gateway.venue` works too)",
        "URL",
    ),
    _Flag(
        "alpaca-credentials-file",
        Path,
        "alpaca: file with APCA_API_KEY_ID=... and APCA_API_SECRET_KEY=... lines",
        "FILE",
    ),
    _Flag("data-dir", Path, f"journal directory (default ./{_G.data_dir})", "DIR"),
    _Flag("log-level", str.upper, "DEBUG, INFO, WARNING or ERROR (default INFO)", "LEVEL"),
    _Flag(
        "ack-wait",
        non_negative_float,
        f"seconds PlaceOrder waits for the broker's answer before replying "
        f"PENDING_NEW (default {_E.ack_wait})",
        "SECONDS",
    ),
    _Flag(
        "heartbeat-interval",
        positive_float,
        f"seconds of stream silence before a heartbeat (default {_S.heartbeat_interval})",
        "SECONDS",
    ),
    _Flag(
        "subscriber-buffer",
        positive_int,
        f"updates buffered per subscriber before it is cut off as too slow "
        f"(default {_E.subscriber_buffer})",
        "N",
    ),
    _Flag(
        "inbox-capacity",
        positive_int,
        f"requests queued for the order actor before RESOURCE_EXHAUSTED "
        f"(default {_E.inbox_capacity})",
        "N",
    ),
    _Flag(
        "broker-attempts",
        positive_int,
        f"tries per broker call on transient errors (default {_E.broker_attempts})",
        "N",
    ),
    _Flag(
        "broker-call-timeout",
        positive_float,
        f"seconds before a broker call's outcome counts as unknown "
        f"(default {_E.broker_call_timeout})",
        "SECONDS",
    ),
    _Flag(
        "broker-backoff",
        positive_float,
        f"first retry delay for a broker call, doubling per try, with full jitter "
        f"(default {_E.broker_backoff})",
        "SECONDS",
    ),
    _Flag(
        "broker-backoff-max",
        positive_float,
        f"longest delay between two tries of a broker call (default {_E.broker_backoff_max})",
        "SECONDS",
    ),
    _Flag(
        "broker-failure-threshold",
        positive_int,
        f"consecutive transient broker failures that open the circuit: new orders fail fast "
        f"with UNAVAILABLE until the broker answers again (default "
        f"{_E.broker_failure_threshold})",
        "N",
    ),
    _Flag(
        "reconcile-interval",
        non_negative_float,
        f"seconds between reconciliation passes with the broker (also run at start and after "
        f"every reconnect; 0: only then) (default {_E.reconcile_interval})",
        "SECONDS",
    ),
    _Flag(
        "absence-grace",
        non_negative_float,
        f"seconds after submission before an order the broker has no record of is rejected "
        f"as never arrived (default {_E.absence_grace})",
        "SECONDS",
    ),
    _Flag(
        "shutdown-grace",
        non_negative_float,
        f"seconds in-flight calls get on shutdown (default {_G.shutdown_grace})",
        "SECONDS",
    ),
    _Flag("sim-seed", int, f"simulated broker: random seed (default {_SIM.seed})", "N"),
    _Flag(
        "sim-prices",
        symbol_prices,
        "simulated broker: starting prices, e.g. AAPL=187.25,MSFT=410 (others start at 100)",
        "LIST",
    ),
    _Flag(
        "sim-partial-fills",
        positive_int,
        f"simulated broker: fills per match (default {_SIM.partial_fills})",
        "N",
    ),
    _Flag(
        "sim-ack-latency",
        non_negative_float,
        f"simulated broker: seconds before a submit is acknowledged (default {_SIM.ack_latency})",
        "SECONDS",
    ),
    _Flag(
        "sim-tick-interval",
        positive_float,
        f"simulated broker: seconds between price moves (default {_SIM.tick_interval})",
        "SECONDS",
    ),
    _Flag(
        "sim-faults",
        _fault_profile,
        "simulated broker: TOML file of faults to inject (errors, lost acks, rate limits, "
        "latency, duplicate and reordered reports, disconnects); see docs/faults.md",
        "FILE",
    ),
    _Flag(
        "sim-session-end",
        _session_end,
        "simulated broker: UTC time (HH:MM) at which DAY orders expire (default: never)",
        "HH:MM",
    ),
    # Serving: drain, connections, TLS, tokens, metrics, logs (gateway.server.options).
    *(_Flag(*spec) for spec in OPS_FLAGS),
)


def _env_name(flag: str) -> str:
    return ENV_PREFIX + flag.upper().replace("-", "_")


def build_parser(environ: dict[str, str] | None = None) -> argparse.ArgumentParser:
    """Return the parser; defaults from ``environ`` (``GATEWAY_*``) where set."""
    env = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(
        prog="gateway",
        description="gRPC execution gateway: idempotent orders and sequenced fill streams "
        "over one order actor. Every flag may also be set as an environment "
        f"variable {ENV_PREFIX}<FLAG>, e.g. {ENV_PREFIX}LISTEN=0.0.0.0:50051. "
        "`gateway journal show --help` inspects the journal.",
    )
    for flag in FLAGS:
        env_name = _env_name(flag.name)
        # argparse runs string defaults through ``type``, so a bad environment
        # value gets the same one-line error as a bad flag.
        parser.add_argument(
            f"--{flag.name}",
            type=flag.parse,
            default=env.get(env_name),
            metavar=flag.metavar,
            help=f"{flag.help} [env {env_name}]",
        )
    parser.add_argument(
        "--alpaca-allow-live",
        action="store_true",
        help="alpaca: allow a LIVE (real money) endpoint. Needs the environment variable "
        f"{ALLOW_LIVE_ENV}=yes as well; deliberately not settable from the environment alone",
    )
    reflection_env = _env_name("reflection")
    parser.add_argument(
        "--reflection",
        action=argparse.BooleanOptionalAction,
        default=env.get(reflection_env, "true").lower() not in ("0", "false", "no", "off"),
        help=f"serve gRPC server reflection for grpcurl and friends (default on) "
        f"[env {reflection_env}]",
    )
    add_switches(parser, env)
    return parser


def config_from_args(args: argparse.Namespace) -> GatewayConfig:
    """Turn parsed flags into a GatewayConfig; unset flags keep the defaults."""

    def given(name: str) -> Any:
        return getattr(args, name.replace("-", "_"))

    def pick(**fields: Any) -> dict[str, Any]:
        return {key: value for key, value in fields.items() if value is not None}

    engine = dataclasses.replace(
        EngineConfig(),
        **pick(
            ack_wait=given("ack-wait"),
            subscriber_buffer=given("subscriber-buffer"),
            inbox_capacity=given("inbox-capacity"),
            broker_attempts=given("broker-attempts"),
            broker_call_timeout=given("broker-call-timeout"),
            broker_backoff=given("broker-backoff"),
            broker_backoff_max=given("broker-backoff-max"),
            broker_failure_threshold=given("broker-failure-threshold"),
            reconcile_interval=given("reconcile-interval"),
            absence_grace=given("absence-grace"),
        ),
    )
    service = dataclasses.replace(
        ServiceConfig(), **pick(heartbeat_interval=given("heartbeat-interval"))
    )
    prices: dict[str, Decimal] = given("sim-prices") or {}
    sim = dataclasses.replace(
        SimConfig(),
        symbols={s: SymbolConfig(price=p) for s, p in prices.items()},
        session_end=given("sim-session-end"),
        **pick(
            seed=given("sim-seed"),
            partial_fills=given("sim-partial-fills"),
            ack_latency=given("sim-ack-latency"),
            tick_interval=given("sim-tick-interval"),
        ),
    )
    broker = given("broker") or "simulated"
    alpaca = None
    if broker == "alpaca":
        try:
            alpaca = AlpacaConfig.from_env(
                credentials_file=given("alpaca-credentials-file"),
                allow_live=args.alpaca_allow_live,
                **pick(account=given("alpaca-account"), base_url=given("alpaca-base-url")),
            )
        except OSError as exc:
            raise ValueError(f"cannot read Alpaca credentials: {exc}") from None
    return dataclasses.replace(
        GatewayConfig(),
        broker=broker,
        alpaca=alpaca,
        reflection=args.reflection,
        sim_faults=given("sim-faults"),
        engine=engine,
        service=service,
        sim=sim,
        **pick(
            listen=given("listen"),
            data_dir=given("data-dir"),
            shutdown_grace=given("shutdown-grace"),
        ),
        **ops_overrides(args),
    )


async def serve(config: GatewayConfig) -> int:
    """Run the gateway until SIGTERM or SIGINT (exit 0) or a fatal failure (exit 1)."""
    from gateway.app import Gateway

    gateway = Gateway(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    exit_code = 0
    try:
        await gateway.start()
        signalled = asyncio.ensure_future(stop.wait())
        failed = asyncio.ensure_future(gateway.actor.wait_failed())
        await asyncio.wait((signalled, failed), return_when=asyncio.FIRST_COMPLETED)
        for waiter in (signalled, failed):
            waiter.cancel()
        if gateway.actor.failure is not None:
            log.critical("stopping after a fatal error: %r", gateway.actor.failure)
            exit_code = 1
        else:
            log.info("signal received: draining")
            await gateway.drain()
    finally:
        await gateway.stop()
    log.info("stopped")
    return exit_code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gateway`` command (``gateway journal ...`` inspects)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["journal"]:
        from gateway.cli import journal as journal_command

        return journal_command.main(arguments[1:])
    parser = build_parser()
    args = parser.parse_args(arguments)
    if args.log_level and args.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        parser.error(f"argument --log-level: invalid level {args.log_level!r}")
    logs.configure(args.log_level or "INFO", args.log_format or "text")
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    from gateway.app import JournalNeedsSalvage, StartupError

    try:
        with contextlib.suppress(KeyboardInterrupt):
            return asyncio.run(serve(config))
    except StartupError as exc:
        print(f"gateway: error: {exc}", file=sys.stderr)
        return EXIT_JOURNAL_DAMAGED if isinstance(exc, JournalNeedsSalvage) else 1
    return 0
