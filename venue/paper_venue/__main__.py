"""``paper-venue`` (or ``python -m paper_venue``): run the paper venue until SIGTERM or Ctrl-C.

Credentials: ``--key-id`` with ``--secret-file`` (repeat both for more
accounts), else ``APCA_API_KEY_ID`` / ``APCA_API_SECRET_KEY`` from the
environment, so one set of variables configures the venue and the gateway.
The secret itself is never a flag. Once serving it prints
``venue listening on http://HOST:PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from datetime import time as dt_time
from decimal import Decimal
from pathlib import Path

from gateway.brokers.simulated.config import SimConfig, SymbolConfig, parse_symbol_prices
from paper_venue.app import VenueServer
from paper_venue.config import Faults, VenueAccount, VenueConfig

log = logging.getLogger("paper_venue")

KEY_ID_ENV = "APCA_API_KEY_ID"
SECRET_KEY_ENV = "APCA_API_SECRET_KEY"  # noqa: S105 - the variable's name, not a secret


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paper-venue",
        description="A paper venue speaking Alpaca's Trading API v2 and trade_updates stream.",
    )
    add = parser.add_argument
    add("--listen", default="127.0.0.1:8700", metavar="HOST:PORT", help="default %(default)s")
    add("--key-id", action="append", default=[], help=f"API key id (default ${KEY_ID_ENV})")
    add(
        "--secret-file",
        action="append",
        type=Path,
        default=[],
        help=f"file holding the secret of the matching --key-id (default ${SECRET_KEY_ENV})",
    )
    add("--account", action="append", default=[], help="account number of each key")
    add("--seed", type=int, default=0, help="market random seed (default 0)")
    add("--tick-interval", type=float, default=0.05, help="seconds per market tick")
    add("--partial-fills", type=int, default=3, help="fills per match (default 3)")
    add(
        "--session-end",
        type=dt_time.fromisoformat,
        default=None,
        metavar="HH:MM",
        help="UTC time of day at which DAY orders expire (default: never)",
    )
    add("--prices", default="", help="starting prices, e.g. AAPL=187.25,MSFT=410")
    add("--liquidity", type=Decimal, default=None, help="most quantity one match fills")
    add(
        "--max-quantity",
        type=Decimal,
        default=None,
        help="largest order quantity accepted; larger orders are rejected (422)",
    )
    add("--latency", type=float, default=0.0, help="seconds added to every REST call")
    add(
        "--stream-delay",
        type=float,
        default=0.0,
        help="seconds each stream message is held back, so REST answers run ahead of it",
    )
    add("--error-rate", type=float, default=0.0, help="fraction of REST calls failing 500")
    add(
        "--lost-answer-rate",
        type=float,
        default=0.0,
        help="fraction of POST/DELETE calls that act, then fail 500",
    )
    add("--rate-limit-rate", type=float, default=0.0, help="fraction of REST calls failing 429")
    add(
        "--late-reject-rate",
        type=float,
        default=0.0,
        help="fraction of accepted orders rejected afterwards on the stream",
    )
    add("--fault-seed", type=int, default=0, help="seed of the fault dice")
    add("--calls-per-minute", type=int, default=None, help="REST calls per minute per account")
    add("--log-level", default="INFO", type=str.upper)
    return parser


def read_secret(path: Path) -> str:
    """Read a secret file: the bare secret, or ``APCA_API_SECRET_KEY=...`` among lines."""
    text = path.read_text(encoding="utf-8").strip()
    for line in text.splitlines():
        name, sep, value = line.strip().removeprefix("export ").partition("=")
        if sep and name.strip() == SECRET_KEY_ENV:
            return value.strip().strip("'\"")
    if text and "\n" not in text:
        return text
    raise ValueError(f"{path}: no secret found")


def accounts_from(args: argparse.Namespace) -> tuple[VenueAccount, ...]:
    keys: list[str] = args.key_id
    secrets = [read_secret(path) for path in args.secret_file]
    if not keys and os.environ.get(KEY_ID_ENV):
        keys = [os.environ[KEY_ID_ENV]]
    if not secrets and os.environ.get(SECRET_KEY_ENV):
        secrets = [os.environ[SECRET_KEY_ENV]]
    if not keys or len(keys) != len(secrets):
        raise ValueError(
            f"give one --secret-file per --key-id (or set {KEY_ID_ENV} and {SECRET_KEY_ENV})"
        )
    names: list[str] = args.account or [f"PA{i:010d}" for i in range(1, len(keys) + 1)]
    if len(names) != len(keys):
        raise ValueError("give one --account per --key-id, or none")
    return tuple(
        VenueAccount(key_id=k, secret_key=s, name=n)
        for k, s, n in zip(keys, secrets, names, strict=True)
    )


def config_from(args: argparse.Namespace) -> VenueConfig:
    default_symbol = SymbolConfig(liquidity=args.liquidity)
    symbols = {
        name: SymbolConfig(price=price, liquidity=args.liquidity)
        # The venue takes symbols in any case, as Alpaca does.
        for name, price in parse_symbol_prices(args.prices.upper()).items()
    }
    return VenueConfig(
        accounts=accounts_from(args),
        sim=SimConfig(
            seed=args.seed,
            symbols=symbols,
            default_symbol=default_symbol,
            partial_fills=args.partial_fills,
            session_end=args.session_end,
            tick_interval=args.tick_interval,
            max_quantity=args.max_quantity,
            order_id_prefix="VENUE",
        ),
        faults=Faults(
            latency=args.latency,
            stream_delay=args.stream_delay,
            error_rate=args.error_rate,
            lost_answer_rate=args.lost_answer_rate,
            rate_limit_rate=args.rate_limit_rate,
            late_reject_rate=args.late_reject_rate,
        ),
        fault_seed=args.fault_seed,
        calls_per_minute=args.calls_per_minute,
    )


async def serve(config: VenueConfig, host: str, port: int) -> None:
    """Run until SIGTERM or SIGINT, then close streams and stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    server = VenueServer(config)
    url = await server.start(host, port)
    names = ", ".join(a.name for a in config.accounts)
    log.info("venue listening on %s (accounts: %s)", url, names)
    print(f"venue listening on {url}", flush=True)
    await stop.wait()
    log.info("venue stopping")
    await server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    host, sep, port = args.listen.rpartition(":")
    if not sep or not port.isdigit():
        parser.error(f"--listen wants HOST:PORT, got {args.listen!r}")
    try:
        config = config_from(args)
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    asyncio.run(serve(config, host.strip("[]"), int(port)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
