"""Micro-benchmark of the engine alone: what one PlaceOrder costs below gRPC.

``python -m bench.engine`` drives ``OrderActor.place_order`` directly, with 64
callers at a time, against the simulated broker (ack latency 0, no ticker)
and a durable SQLite journal in a temporary directory, for resting limit
orders (2 events) and market orders (5 events). It prints, per order type,
the event loop thread's CPU time per order (best of 5 rounds): the figure
that decides how many orders one gateway process can take, and one that a
busy shared machine disturbs far less than wall time. The journal's writer
thread is not counted (it mostly waits for fsync, without the GIL).

``--gateway-tree DIR`` measures the ``gateway`` package found in DIR
(e.g. an older commit from ``git archive``), for before/after figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench import tree

CALLERS = 64


async def _round(kind: str, orders: int, tag: str) -> float:
    # Imported here, after --gateway-tree has chosen which gateway to import.
    from gateway.brokers.simulated import SimConfig, SimulatedBroker
    from gateway.domain import OrderSpec, OrderType, Side, TimeInForce
    from gateway.engine import EngineConfig, OrderActor
    from gateway.journal.sqlite import SqliteJournal

    with tempfile.TemporaryDirectory() as scratch:
        broker = SimulatedBroker(SimConfig(seed=1, ack_latency=0, tick_interval=None))
        await broker.connect()
        journal = SqliteJournal.open(Path(scratch) / "journal.db")
        actor = OrderActor(broker, journal, EngineConfig())
        await actor.start()
        limit = kind == "limit"
        callers = asyncio.Semaphore(CALLERS)

        async def place(n: int) -> None:
            spec = OrderSpec(
                "acct-1",
                f"{tag}-{n}",
                "AAPL",
                Side.BUY,
                OrderType.LIMIT if limit else OrderType.MARKET,
                Decimal(10),
                TimeInForce.GTC if limit else TimeInForce.DAY,
                limit_price=Decimal("0.01") if limit else None,
            )
            async with callers:
                await actor.place_order(spec)

        started = time.thread_time()
        await asyncio.gather(*(place(n) for n in range(orders)))
        cpu = time.thread_time() - started
        await actor.stop()
        await broker.close()
    return cpu / orders * 1e6


def measure(kind: str, orders: int, rounds: int) -> float:
    """Best of ``rounds``: event-loop CPU µs per order of ``kind``."""
    return min(asyncio.run(_round(kind, orders, f"r{r}")) for r in range(rounds))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.engine", description=__doc__)
    parser.add_argument("--gateway-tree", help="measure the gateway package in this directory")
    parser.add_argument("--orders", type=int, default=5_000, help="orders per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.gateway_tree:
        tree.use(args.gateway_tree)
    result: dict[str, Any] = {
        f"{kind}_cpu_us_per_order": round(measure(kind, args.orders, args.rounds), 1)
        for kind in ("limit", "market")
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
