"""The PostgreSQL scenarios: PlaceOrder throughput on each journal, and standby takeover.

``journals``: closed-loop PlaceOrder (market orders) at the sweep's
concurrencies against the echo ceiling, a gateway on SQLite (the default)
and a gateway on PostgreSQL (``--journal``), in that order, each in a fresh
process. The PostgreSQL server is started for the run (tests/pg_server.py:
initdb in a temporary directory, loopback, ``fsync`` and
``synchronous_commit`` on, as in production) on the same disk and cores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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


def _journal_flags(server: PgServer, shard: str = "default") -> tuple[str, ...]:
    return ("--journal", server.new_database("bench"), "--shard", shard)
