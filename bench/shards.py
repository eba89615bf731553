"""Scaling with shards: CPU time per order of each shard process, 1 shard vs 2.

``python -m bench.shards`` offers the same total open-loop PlaceOrder rate
(ghz, ``--rate``) first to one gateway serving every account, then split
evenly over two gateways (shards ``a`` and ``b`` of one shard map), each
with its own SQLite journal. For every gateway process it reads the CPU
seconds the kernel charged it (all threads: gRPC, the actor, the journal's
writer) over the load, and divides by the orders it answered: CPU µs per
order. Both runs use ``--shard-map``, so the shard check is in both. The
comparison uses the net figure: the CPU a process burns idle (timers, the
simulated market's ticks), measured for a few seconds before the load, is a
cost per second, not per order, and would make a shard that takes half the
orders look dearer per order than it is. The raw figure is printed too.

Why per-order CPU and not throughput: this machine has 2 cores and the load
generator needs one, so two shards cannot show twice the throughput here.
What they can show is whether a shard costs more per order than the single
gateway did. If it does not (the goal: at most 10 % more), N shards on N
cores take N times the orders, since shards share nothing at run time: each
has its own process, journal and broker session. The projection printed is
``N * (single gateway's orders per core-second) / (1 + extra per order)``.

A third run, one gateway at one shard's share of the rate, separates the
cost of a lighter load per process (smaller group commits) from any cost of
sharding itself.

Prints one JSON object (and writes it to ``--out`` if given).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench import processes
from bench.loadgen import Ghz, GhzRun, order_request

SHARD_ACCOUNTS = {"a": "bench-a", "b": "bench-b"}
IDLE_SECONDS = 5.0


def shard_map(path: Path, shards: list[str]) -> Path:
    """Write a map of ``shards`` (each owning its bench account); the first is the default."""
    lines = [f'default_shard = "{shards[0]}"']
    for shard in shards:
        # Addresses are for clients and redirects; the bench sends to each shard directly.
        lines += [
            f"[shards.{shard}]",
            f'address = "127.0.0.1:{50060 + ord(shard)}"',
            f'accounts = ["{SHARD_ACCOUNTS[shard]}"]',
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def measure(
    work: Path, ghz_binary: Path, shards: list[str], total_rate: float, seconds: float, kind: str
) -> dict[str, Any]:
    """Offer ``total_rate`` orders/s split over ``shards``; return each shard's CPU per order."""
    map_file = shard_map(work / f"map-{len(shards)}.toml", shards)
    servers = [
        processes.gateway(
            work,
            f"shards{len(shards)}-{shard}",
            extra=("--shard", shard, "--shard-map", str(map_file)),
        )
        for shard in shards
    ]
    for server in servers:
        server.start()
    # One ghz per shard, each in its own directory (a Ghz numbers its reports).
    loads = {
        shard: Ghz(ghz_binary, _directory(work / f"ghz{len(shards)}-{shard}")) for shard in shards
    }
    try:
        rate = total_rate / len(shards)
        for shard, server in zip(shards, servers, strict=True):  # warm-up, not counted
            loads[shard].run(
                server.address,
                "PlaceOrder",
                _request(f"warm{len(shards)}{shard}", shard, kind),
                concurrency=16,
                seconds=2,
                rate=rate,
            )
        # What each process burns with no orders (timers, the simulated market's
        # ticks, keepalives): a cost per second, not per order, that a shard
        # taking half the orders would otherwise show as a dearer order.
        idle_start = [processes.cpu_seconds(server.pid) for server in servers]
        time.sleep(IDLE_SECONDS)
        idle_rate = [
            (processes.cpu_seconds(server.pid) - start) / IDLE_SECONDS
            for server, start in zip(servers, idle_start, strict=True)
        ]
        before = [processes.cpu_seconds(server.pid) for server in servers]
        started = time.perf_counter()
        runs: dict[str, GhzRun] = {}

        def drive(shard: str, address: str) -> None:
            runs[shard] = loads[shard].run(
                address,
                "PlaceOrder",
                _request(f"run{len(shards)}{shard}", shard, kind),
                concurrency=32,
                seconds=seconds,
                rate=rate,
            )

        threads = [
            threading.Thread(target=drive, args=(shard, server.address))
            for shard, server in zip(shards, servers, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(seconds + 120)
        after = [processes.cpu_seconds(server.pid) for server in servers]
        wall = time.perf_counter() - started
    finally:
        for server in servers:
            server.stop()
    out: dict[str, Any] = {}
    for shard, start, end, idle in zip(shards, before, after, idle_rate, strict=True):
        run = runs[shard]
        orders = max(run.ok, 1)
        out[shard] = {
            "offered_rate": rate,
            "ok": run.ok,
            "ok_rps": round(run.ok_rps, 1),
            "cpu_seconds": round(end - start, 3),
            "cpu_us_per_order": round((end - start) / orders * 1e6, 1),
            "idle_cpu_per_second": round(idle, 4),
            "net_cpu_us_per_order": round((end - start - idle * wall) / orders * 1e6, 1),
            "p50_ms": round(run.latency.p50, 2),
            "p99_ms": round(run.latency.p99, 2),
            "statuses": run.statuses,
        }
    return out


def _directory(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _request(prefix: str, shard: str, kind: str) -> dict[str, str]:
    return {**order_request(prefix, kind), "account": SHARD_ACCOUNTS[shard]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.shards", description=__doc__)
    parser.add_argument("--ghz", type=Path, default=Path(".tools/bin/ghz"), help="ghz binary")
    parser.add_argument("--rate", type=float, default=600.0, help="total PlaceOrder/s offered")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each run")
    parser.add_argument("--kind", choices=("limit", "market"), default="limit")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-shards-") as scratch:
        work = Path(scratch)
        one = measure(work, args.ghz, ["a"], args.rate, args.seconds, args.kind)
        two = measure(work, args.ghz, ["a", "b"], args.rate, args.seconds, args.kind)
        # Control: one gateway at one shard's share of the load. Fewer orders per
        # second make smaller batches (fewer orders per journal commit), so a
        # process taking half the orders pays more per order whether or not it
        # is a shard; this run tells that apart from a cost of sharding itself.
        half = measure(work, args.ghz, ["a"], args.rate / 2, args.seconds, args.kind)
    single = one["a"]["net_cpu_us_per_order"]
    worst = max(shard["net_cpu_us_per_order"] for shard in two.values())
    extra = worst / single - 1
    per_core = 1e6 / single  # orders one gateway takes per CPU-second
    result = {
        "kind": args.kind,
        "total_rate": args.rate,
        "seconds": args.seconds,
        "one_shard": one,
        "two_shards": two,
        "one_shard_at_half_rate": half,
        "extra_cpu_per_order_vs_same_rate": round(worst / half["a"]["net_cpu_us_per_order"] - 1, 3),
        "extra_cpu_per_order": round(extra, 3),
        "goal_met": extra <= 0.10,
        "projection_orders_per_core_second": round(per_core),
        "projection": {str(n): round(n * per_core / (1 + max(extra, 0.0))) for n in (1, 2, 4, 8)},
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
