"""Micro-benchmark of the simulated exchange: what one market tick costs.

``python -m bench.ticks`` prints the cost of one ``SimulatedExchange.tick``
(best of 5 rounds of 20 ticks, in µs) with 0 to 100,000 orders resting far
from the price, as a resting-limit-order load leaves them. Run it with
``PYTHONPATH`` pointing at an older checkout of ``gateway`` to measure that
tree on the same machine, minutes apart.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bench import tree

T0 = datetime(2024, 1, 2, 15, 0, tzinfo=UTC)
RESTING = (0, 1_000, 10_000, 100_000)


def tick_us(resting: int, rounds: int = 5, ticks: int = 20) -> float:
    # Imported here, after --gateway-tree has chosen which gateway to import.
    from gateway.brokers.simulated import SimConfig, SimulatedExchange
    from gateway.domain import OrderSpec, OrderType, Side, TimeInForce

    exchange = SimulatedExchange(SimConfig(seed=1))
    for n in range(resting):
        spec = OrderSpec(
            "acct",
            f"c{n}",
            "AAPL",
            Side.BUY,
            OrderType.LIMIT,
            Decimal(10),
            TimeInForce.GTC,
            limit_price=Decimal("0.01"),
        )
        exchange.submit(spec, T0)
    best = float("inf")
    for r in range(rounds):
        started = time.perf_counter()
        for k in range(ticks):
            exchange.tick(T0 + timedelta(seconds=r * ticks + k + 1))
        best = min(best, (time.perf_counter() - started) / ticks)
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ticks", description=__doc__)
    parser.add_argument("--gateway-tree", help="measure the gateway package in this directory")
    args = parser.parse_args()
    if args.gateway_tree:
        tree.use(args.gateway_tree)
    print(json.dumps({f"tick_us_{n}_resting": round(tick_us(n), 1) for n in RESTING}))


if __name__ == "__main__":
    main()
