"""Micro-benchmarks of the journal path, for before/after comparisons of one change.

``python -m bench.micro JOURNAL`` prints per-record costs (best of several
rounds, in µs): encoding, decoding, applying events, and recovering the
order table from the SQLite journal at JOURNAL (see ``bench.journals``).
Run it with ``PYTHONPATH`` pointing at an older checkout of ``gateway`` to
measure that tree on the same journal and the same machine, minutes apart.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from gateway.brokers.simulated import SimulatedBroker
from gateway.engine import OrderActor
from gateway.journal import SqliteJournal
from gateway.journal.codec import decode_record, encode_record
from gateway.observability import GatewayMetrics, MeteredJournal


def best_of(rounds: int, run: Callable[[], float]) -> float:
    return min(run() for _ in range(rounds))


def per_item(items: int, work: Callable[[], object]) -> Callable[[], float]:
    def run() -> float:
        started = time.perf_counter()
        work()
        return (time.perf_counter() - started) / items * 1e6

    return run


def main() -> None:
    from bench.journals import order_records

    path = Path(sys.argv[1])
    records = []
    for index in range(2000):
        records += order_records(index, 2 * index + 1, datetime.now(UTC))
    encoded = [encode_record(r) for r in records]
    n = len(records)
    result = {
        "encode_us": best_of(5, per_item(n, lambda: [encode_record(r) for r in records])),
        "decode_us": best_of(5, per_item(n, lambda: [decode_record(b) for b in encoded])),
    }

    def recover() -> float:
        journal = SqliteJournal.open(path)
        actor = OrderActor(SimulatedBroker(), MeteredJournal(journal, GatewayMetrics()))
        started = time.perf_counter()
        actor.recover()
        return (time.perf_counter() - started) / journal.last_sequence * 1e6

    result["recover_us"] = best_of(3, recover)
    print(json.dumps({k: round(v, 2) for k, v in result.items()}))


if __name__ == "__main__":
    main()
