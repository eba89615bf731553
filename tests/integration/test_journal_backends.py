"""The journal protocol, run against both durable backends: SQLite and PostgreSQL.

Each test gets a ``Backend``: a way to open (and reopen) one journal of
its kind, empty at first. PostgreSQL is a real server the session starts
(tests/pg_server.py), one new database per test. What only one backend
has (SQLite's damage handling, PostgreSQL's schema versions and fencing)
is tested in that backend's own module.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from array import array
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.domain.controls import (
    ControlState,
    Position,
    PositionChanged,
    TradingHalt,
    TradingMode,
    TradingStateChanged,
    control_update,
)
from gateway.engine.retention import load_orders
from gateway.journal import Journal, JournalRecord, MemoryJournal, SqliteJournal
from gateway.journal.order_index import AccountIndex
from gateway.journal.postgres import PostgresJournal
from tests.integration.test_sqlite_journal import (
    REPO,
    batches,
    make_record,
    make_records,
    stored,
)
from tests.support import eventually, update_of

BACKENDS = ("sqlite", "postgresql")


@dataclass
class Backend:
    """One journal's location, of one kind; ``open`` opens it (again)."""

    kind: str
    location: str
    block: Callable[[], Callable[[], None]]
    """Take the journal's write lock from outside; return what releases it."""

    def open(self) -> SqliteJournal | PostgresJournal:
        if self.kind == "sqlite":
            return SqliteJournal.open(Path(self.location))
        return PostgresJournal.open(self.location)


def _sqlite_blocker(path: str) -> Callable[[], Callable[[], None]]:
    def block() -> Callable[[], None]:
        import sqlite3

        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")

        def release() -> None:
            conn.execute("ROLLBACK")
            conn.close()

        return release

    return block


def _pg_blocker(dsn: str) -> Callable[[], Callable[[], None]]:
    def block() -> Callable[[], None]:
        conn = psycopg.connect(dsn)
        conn.execute("LOCK TABLE journal_events IN EXCLUSIVE MODE")

        def release() -> None:
            conn.rollback()
            conn.close()

        return release

    return block


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        path = str(tmp_path / "data" / "journal.db")
        return Backend("sqlite", path, _sqlite_blocker(path))
    dsn = request.getfixturevalue("pg_dsn")
    return Backend("postgresql", dsn, _pg_blocker(dsn))


@pytest.fixture
async def journal(backend: Backend) -> AsyncIterator[SqliteJournal | PostgresJournal]:
    opened = backend.open()
    yield opened
    await opened.close()


def conforms(journal: SqliteJournal | PostgresJournal) -> Journal:
    """Both are ``Journal``s (mypy checks this line)."""
    return journal


# ------------------------------------------------------------- behaviour


async def test_behaves_like_the_memory_journal(journal: SqliteJournal | PostgresJournal) -> None:
    conforms(journal)
    memory = MemoryJournal()
    records = make_records(1, 120)
    for part in batches(records, 17):
        await journal.append(part)
        await memory.append(part)
    assert list(journal.replay()) == stored(list(memory.replay())) == stored(records)
    assert list(journal.replay(100)) == stored(records[100:])
    windows = [(0, 120, 500), (0, 120, 10), (5, 9, 100), (30, 30, 5), (40, 35, 5), (0, 10, 0)]
    for after, up_to, limit in [*windows, (110, 200, 50), (120, 500, 5)]:
        assert await journal.read(after, up_to, limit) == await memory.read(after, up_to, limit)


async def test_out_of_order_appends_are_refused_whole(
    journal: SqliteJournal | PostgresJournal,
) -> None:
    await journal.append(make_records(1, 5))
    with pytest.raises(ValueError, match="sequence 5 is not after 5"):
        await journal.append(make_records(5, 6))
    with pytest.raises(ValueError, match="sequence 6 is not after 7"):
        await journal.append([make_record(6), make_record(7), make_record(6)])
    await journal.append(make_records(6, 8))
    assert [r.sequence for r in journal.replay()] == list(range(1, 9))
    assert journal.last_sequence == 8


async def test_survives_close_and_reopen(backend: Backend) -> None:
    journal = backend.open()
    records = make_records(1, 300)
    for part in batches(records, 50):
        await journal.append(part)
    await journal.close()
    journal = backend.open()
    assert list(journal.replay()) == stored(records)
    assert journal.last_sequence == 300
    await journal.append(make_records(301, 310))
    await journal.close()
    journal = backend.open()
    assert journal.last_sequence == 310
    assert len(list(journal.replay())) == 310
    await journal.close()


async def test_close_waits_for_pending_appends(backend: Backend) -> None:
    journal = backend.open()
    pending = [asyncio.ensure_future(journal.append(p)) for p in batches(make_records(1, 400), 20)]
    await asyncio.sleep(0)  # let every append hand its batch to the writer thread
    await journal.close()
    await asyncio.gather(*pending)
    reopened = backend.open()
    assert [r.sequence for r in reopened.replay()] == list(range(1, 401))
    await reopened.close()


async def test_append_does_not_block_the_event_loop(
    backend: Backend, journal: SqliteJournal | PostgresJournal
) -> None:
    # Another connection holds the write lock, so the commit cannot finish
    # until the test lets it: the loop must keep running meanwhile.
    await journal.append(make_records(1, 1))  # the schema exists, the writer runs
    release = backend.block()
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        for _ in range(10_000_000):  # bounded; cancelled long before
            ticks += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(tick())
    append = asyncio.create_task(journal.append(make_records(2, 2000)))
    try:
        await eventually(lambda: ticks, lambda n: n >= 200, interval=0.001, what="ticks")
        assert not append.done()
        release()
        await asyncio.wait_for(append, 30)
    finally:
        ticker.cancel()
    assert len(list(journal.replay())) == 2000


async def test_a_checkpoint_round_trips_and_only_moves_forward(
    journal: SqliteJournal | PostgresJournal,
) -> None:
    assert journal.load_checkpoint() is None
    records = make_records(1, 50)
    await journal.append(records)
    table = {u.order.order_id: u.order for u in map(update_of, records[:40])}
    # The index of evicted orders travels with the checkpoint (gateway.engine.retention).
    evicted = AccountIndex(
        "acct-1", array("q", [1, 6]).tobytes(), ["order-0", "order-1"], ["c-order-0", None],
        ["b-order-0", None],
    )  # fmt: skip
    size = journal.save_checkpoint(40, list(table.values()), {"order-0": ("x-3",)}, [evicted])
    assert size > 0
    loaded = journal.load_checkpoint()
    assert loaded is not None
    assert loaded.sequence == 40
    assert loaded.orders == list(table.values())
    assert loaded.exec_ids == {"order-0": ("x-3",)}
    assert loaded.accounts == [evicted]
    with pytest.raises(ValueError, match="no journal record at sequence 51"):
        journal.save_checkpoint(51, [], {}, [])
    journal.save_checkpoint(50, [], {}, [])
    found = journal.load_checkpoint()
    assert found is not None
    assert found.sequence == 50


async def test_each_orders_records_are_read_back_oldest_first(
    journal: SqliteJournal | PostgresJournal,
) -> None:
    records = make_records(1, 17)  # orders 0-2 whole, order-3 two records in
    await journal.append(records[:9])
    await journal.append(records[9:])
    found = journal.order_events(["order-1", "order-3", "nobody"])
    assert set(found) == {"order-1", "order-3"}  # no record: left out
    for order_id, mine in found.items():
        want = [r for r in records if r.event.order_id == order_id]
        assert [(r.sequence, r.event) for r in mine] == [(r.sequence, r.event) for r in want]
        # Folded back, each order is the state its last record left it in.
        assert load_orders(journal, [order_id])[order_id][0] == update_of(want[-1]).order
    assert journal.order_events([]) == {}


WRITER = """
import asyncio, sys
from pathlib import Path
from gateway.journal import SqliteJournal
from gateway.journal.postgres import PostgresJournal
from tests.integration.test_sqlite_journal import make_records

async def main() -> None:
    kind, where = sys.argv[1], sys.argv[2]
    journal = SqliteJournal(Path(where)) if kind == "sqlite" else PostgresJournal(where)
    sequence = journal.last_sequence
    for _ in range(100_000):  # until killed
        await journal.append(make_records(sequence + 1, sequence + 25))
        sequence += 25
        print(sequence, flush=True)

asyncio.run(main())
"""


async def test_every_acknowledged_record_survives_sigkill(backend: Backend) -> None:
    rng = random.Random(9)
    for _ in range(3):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WRITER,
            backend.kind,
            backend.location,
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        acknowledged, wanted = 0, rng.randrange(5, 40)
        deadline = time.monotonic() + 30
        try:
            for _ in range(wanted):
                line = await asyncio.wait_for(
                    process.stdout.readline(), deadline - time.monotonic()
                )
                acknowledged = int(line)
        finally:
            process.kill()  # SIGKILL: no cleanup, no close, mid-commit as likely as not
            rest = await process.stdout.read()
            await process.wait()
        acknowledged = max([acknowledged, *(int(line) for line in rest.split())])
        journal = backend.open()
        replayed = list(journal.replay())
        await journal.close()
        sequences = [r.sequence for r in replayed]
        assert sequences == list(range(1, len(sequences) + 1))  # contiguous
        assert len(sequences) >= acknowledged
        assert len(sequences) % 25 == 0  # each append is all-or-nothing
        assert replayed[-1] == stored([make_record(len(sequences))])[0]


@pytest.mark.parametrize("kind", BACKENDS)
def test_random_batches_replay_as_written(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Property: whatever the batch sizes, replay and ranged reads give back the records."""
    dsn = request.getfixturevalue("pg_dsn") if kind == "postgresql" else ""
    examples = iter(range(10_000))

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.integers(1, 30), min_size=1, max_size=12), st.integers(0, 60))
    def check(sizes: list[int], after: int) -> None:
        if kind == "sqlite":
            where = str(tmp_path / f"j{next(examples)}.db")
        else:
            where = dsn
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("DROP TABLE IF EXISTS journal_events, journal_checkpoint, "
                             "gateway_leases, gateway_schema")  # fmt: skip
        backend = Backend(kind, where, lambda: lambda: None)
        asyncio.run(_write_and_check(backend, sizes, after))

    check()


async def _write_and_check(backend: Backend, sizes: list[int], after: int) -> None:
    journal = backend.open()
    try:
        first = 1
        for size in sizes:
            await journal.append(make_records(first, first + size - 1))
            first += size
        written = make_records(1, first - 1)
        assert list(journal.replay(after)) == stored(written[after:])
        assert await journal.read(after, first, 1000) == written[after:]
    finally:
        await journal.close()


async def test_position_and_trading_state_records_read_back_like_order_records(
    journal: SqliteJournal | PostgresJournal,
) -> None:
    # The trading controls' records (issue 14) share the order records' sequence
    # space: every backend stores, replays, reads and checkpoints them alike.
    orders = make_records(1, 5)
    at = update_of(orders[2]).time
    position = Position("acct-1", "AAPL", Decimal(3), Decimal("301.5"), Decimal(0), at)
    halt = TradingHalt("acct-1", TradingMode.HALTED, "fat finger", "ops", at)
    moved, halted = PositionChanged("order-0", position, at), TradingStateChanged(halt, at)
    controls = [
        JournalRecord(moved, control_update(6, moved)),
        JournalRecord(halted, control_update(7, halted)),
    ]
    records = [*orders, *controls]
    memory = MemoryJournal()
    await journal.append(records)
    await memory.append(records)
    assert list(journal.replay()) == stored(list(memory.replay()))
    assert await journal.read(0, 7, 10) == await memory.read(0, 7, 10)
    kept = ControlState([position], [halt])
    journal.save_checkpoint(7, [update_of(orders[-1]).order], {}, [], kept)
    loaded = journal.load_checkpoint()
    assert loaded is not None
    assert loaded.controls == kept
    # An order read back by id is the order alone: its position record is skipped.
    read_back = load_orders(journal, ["order-0"])["order-0"][0]
    assert read_back == update_of(orders[-1]).order
