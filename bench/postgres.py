"""The PostgreSQL scenarios: PlaceOrder throughput on each journal, and standby takeover.

``journals``: closed-loop PlaceOrder (market orders) at the sweep's
concurrencies against the echo ceiling, a gateway on SQLite (the default)
and a gateway on PostgreSQL (``--journal``), in that order, each in a fresh
process. The PostgreSQL server is started for the run (tests/pg_server.py:
initdb in a temporary directory, loopback, ``fsync`` and
``synchronous_commit`` on, as in production) on the same disk and cores.

``takeover``: a leader and a hot standby (default 5 s lease) on one
PostgreSQL journal, with some orders placed; the leader is killed with
SIGKILL and the clock runs until the standby's health check for
execution.v1.ExecutionService says SERVING (polled every 20 ms). The
lease is renewed every third of its length, so the standby waits between
two thirds of the lease and all of it for the lease to run out; then it
fences, replays the tail, connects the broker and reconciles.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.pg_server import PgServer, PostgresMissing, running_server

if TYPE_CHECKING:
    from bench.scenarios import Bench


def journals(bench: Bench) -> None:
    from bench.scenarios import log

    log("PlaceOrder throughput by journal: echo, SQLite, PostgreSQL (market orders)")
    out: dict[str, Any] = {}
    try:
        with running_server() as server:
            with bench.echo("pgj-echo") as echo:
                out["echo"] = bench._sweep(echo, "pgje", "market")
            with bench.gateway("pgj-sqlite") as gateway:
                out["sqlite"] = bench._sweep(gateway, "pgjs", "market")
            with bench.gateway("pgj-postgresql", *_journal_flags(server)) as gateway:
                out["postgresql"] = bench._sweep(gateway, "pgjp", "market")
    except PostgresMissing as exc:
        log(f"  skipped: {exc}")
        return
    bench.results["journals"] = out


LEASE = 5.0
"""The default --lease: what the takeover goal is stated against."""
SERVING = health_pb2.HealthCheckResponse.SERVING
SERVICE = "execution.v1.ExecutionService"


def takeover(bench: Bench) -> None:
    from bench.loadgen import order_request
    from bench.scenarios import log

    repeats = 2 if bench.s.sweep_seconds < 4 else 3
    log(f"standby takeover: kill -9 of the leader to the standby's SERVING, {repeats} times")
    seconds: list[float] = []
    try:
        with running_server() as server:
            flags = _journal_flags(server)
            for attempt in range(repeats):
                with (
                    bench.gateway(f"to-{attempt}-a", *flags) as leader,
                    bench.gateway(f"to-{attempt}-b", *flags) as standby,
                ):
                    _wait_serving(leader.address, 30)
                    # Some history for the standby to have followed.
                    bench.ghz.run(
                        leader.address,
                        "PlaceOrder",
                        order_request(f"to{attempt}", "market"),
                        concurrency=16,
                        seconds=bench.s.warmup_seconds,
                    )
                    leader.kill()
                    killed = time.perf_counter()
                    _wait_serving(standby.address, LEASE + 30)
                    seconds.append(time.perf_counter() - killed)
                    log(f"  attempt {attempt + 1}: SERVING {seconds[-1]:.2f}s after the kill")
                flags = _journal_flags(server)  # a fresh database each time
    except PostgresMissing as exc:
        log(f"  skipped: {exc}")
        return
    bench.results["takeover"] = {"lease": LEASE, "seconds": seconds}


def _wait_serving(address: str, within: float) -> None:
    """Poll the health check until SERVING (bounded by ``within`` seconds)."""
    deadline = time.perf_counter() + within
    with grpc.insecure_channel(address) as channel:
        check = health_pb2_grpc.HealthStub(channel).Check
        while time.perf_counter() < deadline:
            try:
                reply = check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=1)
                if reply.status == SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.02)
    raise TimeoutError(f"{address} not SERVING within {within:.0f}s")


def _journal_flags(server: PgServer, shard: str = "default") -> tuple[str, ...]:
    return ("--journal", server.new_database("bench"), "--shard", shard)
