"""The SQLite journal: same behaviour as MemoryJournal, durable, and never lost to damage."""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import sqlite3
import sys
import time
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.cli import journal as journal_cli
from gateway.domain import (
    CancelRequested,
    Fill,
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderCreated,
    OrderEvent,
    OrderFilled,
    OrderSpec,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
    apply_event,
)
from gateway.journal import (
    CorruptRecord,
    IncompatibleJournal,
    JournalDamaged,
    JournalRecord,
    MemoryJournal,
    SqliteJournal,
    StoredEvent,
)
from gateway.journal.codec import decode_record, encode_record
from gateway.journal.inspect import format_jsonl, format_table, iter_records
from gateway.journal.records import FORMAT_VERSION
from tests.support import eventually

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2024, 5, 1, 13, 30, tzinfo=UTC)
ORDERS_PER_STREAM = 7  # records cycle through this many orders


def make_record(sequence: int) -> JournalRecord:
    """Return record ``sequence`` of a deterministic, consistent stream.

    Every five sequences are one order's life (created, accepted, a partial
    fill, a cancel request, canceled), and each record's update is the state
    its order's events lead to: the journal stores the events alone and
    derives the states when read, so they must agree.
    """
    index, step = divmod(sequence - 1, len(STEPS))
    first = sequence - step
    order: Order | None = None
    for offset in range(step + 1):
        event = _event(index, STEPS[offset], first + offset)
        order = apply_event(order, event, first + offset)
    assert order is not None
    fill = event.fill if isinstance(event, OrderFilled) else None
    return JournalRecord(event, OrderUpdate(sequence, order, event.time, fill, kind=event.kind))


STEPS = ("created", "accepted", "filled", "cancel_requested", "canceled")


def _event(index: int, step: str, sequence: int) -> OrderEvent:
    order_id = f"order-{index}"
    time = T0 + timedelta(milliseconds=sequence)
    if step == "created":
        spec = OrderSpec(
            "acct-1", f"c-{order_id}", "AAPL", Side.BUY, OrderType.LIMIT, Decimal(10),
            TimeInForce.DAY, limit_price=Decimal("101.25"),
        )  # fmt: skip
        return OrderCreated(order_id, spec, time)
    if step == "accepted":
        return OrderAccepted(order_id, f"b-{order_id}", time)
    if step == "filled":
        fill = Fill(f"x-{sequence}", Decimal("0.5"), Decimal("101.25"), time)
        return OrderFilled(order_id, fill, time, f"b-{order_id}")
    if step == "cancel_requested":
        return CancelRequested(order_id, time)
    return OrderCanceled(order_id, time, "client asked")


def stored(records: list[JournalRecord]) -> list[StoredEvent]:
    """What replay yields for ``records``: the journal stores the events alone."""
    return [StoredEvent(r.sequence, r.event) for r in records]


def make_records(first: int, last: int) -> list[JournalRecord]:
    return [make_record(sequence) for sequence in range(first, last + 1)]


def batches(records: list[JournalRecord], size: int) -> list[list[JournalRecord]]:
    return [records[i : i + size] for i in range(0, len(records), size)]


async def write(path: Path, records: list[JournalRecord], batch: int = 50) -> None:
    """Append ``records`` in batches to the journal at ``path``, then close it."""
    journal = SqliteJournal(path)
    for part in batches(records, batch):
        await journal.append(part)
    await journal.close()


async def reopen(path: Path) -> tuple[SqliteJournal, list[StoredEvent]]:
    journal = SqliteJournal.open(path)
    return journal, list(journal.replay())


def files_of(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.parent.iterdir()) if p.is_file()}


async def open_and_replay(path: Path) -> None:
    journal = SqliteJournal.open(path)
    try:
        list(journal.replay())  # a record that only fails to decode is found here
    finally:
        await journal.close()


async def salvage(path: Path) -> tuple[SqliteJournal, list[StoredEvent]]:
    """Check that a plain open refuses ``path`` and changes nothing; then salvage it."""
    before = files_of(path)
    with pytest.raises(JournalDamaged) as refused:
        await open_and_replay(path)
    assert str(path) in str(refused.value)
    assert refused.value.problem
    if before:  # opening read-only may add a -shm; it never changes or moves a file
        after = files_of(path)
        assert {k: v for k, v in after.items() if k in before} == before
    journal = SqliteJournal.open(path, salvage=True)
    return journal, list(journal.replay())


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[SqliteJournal]:
    opened = SqliteJournal(tmp_path / "data" / "journal.db")
    yield opened
    await opened.close()


def aside_files(path: Path) -> list[Path]:
    return sorted(p for p in path.parent.iterdir() if ".corrupt-" in p.name)


def cut(path: Path, *, to: int | None = None, by: int = 0) -> None:
    """Truncate ``path`` to ``to`` bytes, or by ``by`` bytes: a torn or lost tail."""
    with path.open("r+b") as file:
        file.truncate(to if to is not None else path.stat().st_size - by)


# ------------------------------------------------------------- behaviour


async def test_behaves_like_the_memory_journal(journal: SqliteJournal) -> None:
    memory = MemoryJournal()
    records = make_records(1, 120)
    for part in batches(records, 17):
        await journal.append(part)
        await memory.append(part)
    assert list(journal.replay()) == stored(list(memory.replay())) == stored(records)
    windows = [(0, 120, 500), (0, 120, 10), (5, 9, 100), (30, 30, 5), (40, 35, 5), (0, 10, 0)]
    for after, up_to, limit in [*windows, (110, 200, 50), (120, 500, 5)]:
        assert await journal.read(after, up_to, limit) == await memory.read(after, up_to, limit)


async def test_out_of_order_appends_are_refused_whole(journal: SqliteJournal) -> None:
    await journal.append(make_records(1, 5))
    with pytest.raises(ValueError, match="sequence 5 is not after 5"):
        await journal.append(make_records(5, 6))
    with pytest.raises(ValueError, match="sequence 6 is not after 7"):
        await journal.append([make_record(6), make_record(7), make_record(6)])
    await journal.append(make_records(6, 8))
    assert [r.sequence for r in journal.replay()] == list(range(1, 9))
    assert journal.last_sequence == 8


async def test_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dirs" / "journal.db"
    records = make_records(1, 300)
    await write(path, records)
    journal, replayed = await reopen(path)
    assert replayed == stored(records)
    assert journal.recovery is None
    assert journal.last_sequence == 300
    await journal.append(make_records(301, 310))
    await journal.close()
    assert len((await reopen(path))[1]) == 310


async def test_close_waits_for_pending_appends(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    journal = SqliteJournal(path)
    pending = [asyncio.ensure_future(journal.append(p)) for p in batches(make_records(1, 400), 20)]
    await asyncio.sleep(0)  # let every append hand its batch to the writer thread
    await journal.close()
    await asyncio.gather(*pending)
    assert [r.sequence for r in (await reopen(path))[1]] == list(range(1, 401))


async def test_append_does_not_block_the_event_loop(journal: SqliteJournal) -> None:
    # Another connection holds the write lock, so the commit cannot finish
    # until the test lets it: the loop must keep running meanwhile.
    blocker = sqlite3.connect(journal.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        for _ in range(10_000_000):  # bounded; cancelled long before
            ticks += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(tick())
    append = asyncio.create_task(journal.append(make_records(1, 2000)))
    try:
        await eventually(lambda: ticks, lambda n: n >= 200, interval=0.001, what="ticks")
        assert not append.done()
        blocker.execute("ROLLBACK")
        await append
    finally:
        ticker.cancel()
        blocker.close()
    assert len(list(journal.replay())) == 2000


# ------------------------------------------------------------- kill -9

WRITER = """
import asyncio, sys
from pathlib import Path
from gateway.journal import SqliteJournal
from tests.integration.test_sqlite_journal import make_records

async def main() -> None:
    journal = SqliteJournal(Path(sys.argv[1]))
    sequence = journal.last_sequence
    for _ in range(100_000):  # until killed
        await journal.append(make_records(sequence + 1, sequence + 25))
        sequence += 25
        print(sequence, flush=True)

asyncio.run(main())
"""


async def test_every_acknowledged_record_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    rng = random.Random(9)
    for _ in range(3):
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", WRITER, str(path), cwd=REPO, stdout=asyncio.subprocess.PIPE
        )
        assert process.stdout is not None
        acknowledged, wanted = 0, rng.randrange(5, 40)
        deadline = time.monotonic() + 20
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

        journal, replayed = await reopen(path)
        await journal.close()
        assert journal.recovery is None, "a killed writer is not damage"
        sequences = [r.sequence for r in replayed]
        assert sequences == list(range(1, len(sequences) + 1))  # contiguous
        assert len(sequences) >= acknowledged
        assert len(sequences) % 25 == 0  # each append is all-or-nothing
        assert replayed[-1] == stored([make_record(len(sequences))])[0]


# -------------------------------------------------------------- damage


async def test_a_truncated_file_is_refused_and_salvage_keeps_the_good_prefix(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.db"
    records = make_records(1, 2000)
    await write(path, records)  # close checkpoints: everything is in the main file
    size = path.stat().st_size
    cut(path, to=size // 2)

    journal, replayed = await salvage(path)
    report = journal.recovery
    assert report is not None
    assert 0 < report.kept < 2000
    assert replayed == stored(records[: report.kept])
    assert report.last_good_sequence == report.kept
    assert report.moved_to.stat().st_size == size // 2  # the damaged file, untouched
    assert aside_files(path)[0] == report.moved_to
    # The lost rows' numbers stay reserved: new records start above all 2000.
    assert journal.last_sequence == report.sequence_floor >= 2000
    floor = report.sequence_floor
    await journal.append(make_records(floor + 1, floor + 10))
    await journal.close()
    again, replayed = await reopen(path)
    await again.close()
    assert again.recovery is None
    assert again.last_sequence == floor + 10
    assert replayed == stored(records[: report.kept] + make_records(floor + 1, floor + 10))


async def test_a_torn_wal_tail_loses_only_the_unfinished_commit(tmp_path: Path) -> None:
    live, crashed = tmp_path / "live" / "journal.db", tmp_path / "crashed" / "journal.db"
    journal = SqliteJournal(live)
    records = make_records(1, 200)
    for part in batches(records, 20):
        await journal.append(part)
    # A copy of the files while the writer is open: the state a crash leaves.
    crashed.parent.mkdir()
    for suffix in ("", "-wal"):
        shutil.copyfile(f"{live}{suffix}", f"{crashed}{suffix}")
    await journal.close()
    cut(Path(f"{crashed}-wal"), by=100)  # the last commit's last frame, half written

    journal, replayed = await reopen(crashed)
    await journal.close()
    # SQLite's own WAL recovery drops the commit whose frames are incomplete;
    # it was never acknowledged (its fsync never returned), so nothing is damaged.
    assert replayed == stored(records[:180])
    assert journal.recovery is None


async def test_a_file_of_garbage_is_refused_and_salvage_keeps_it_aside(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    garbage = random.Random(1).randbytes(50_000)
    path.write_bytes(garbage)
    journal, replayed = await salvage(path)
    assert replayed == []
    assert journal.recovery is not None
    assert journal.recovery.kept == 0
    assert "not a database" in journal.recovery.problem
    assert journal.recovery.moved_to.read_bytes() == garbage
    floor = journal.recovery.sequence_floor
    assert floor > len(garbage) // 64  # the garbage could have held that many rows
    await journal.append(make_records(floor + 1, floor + 3))
    await journal.close()
    assert len((await reopen(path))[1]) == 3


async def test_an_empty_file_is_a_new_journal(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    path.touch()
    journal, replayed = await reopen(path)
    await journal.close()
    assert replayed == []
    assert journal.recovery is None
    assert aside_files(path) == []


def corrupt_row(path: Path, sequence: int, body: bytes | None = None) -> None:
    """Damage one stored row: a wrong checksum, or ``body`` with a matching one."""
    with sqlite3.connect(path) as conn:
        if body is None:
            conn.execute("UPDATE events SET crc = crc + 1 WHERE sequence = ?", (sequence,))
        else:
            conn.execute(
                "UPDATE events SET body = ?, crc = ? WHERE sequence = ?",
                (body, zlib.crc32(body), sequence),
            )
    conn.close()


async def test_a_bad_checksum_in_the_middle_keeps_the_prefix(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    records = make_records(1, 100)
    await write(path, records)
    corrupt_row(path, 61)
    journal, replayed = await salvage(path)
    await journal.close()
    assert replayed == stored(records[:60])
    assert journal.recovery is not None
    assert journal.recovery.last_good_sequence == 60
    assert "sequence 61: checksum mismatch" in journal.recovery.problem
    # The damaged copy still holds every row, for forensics.
    with sqlite3.connect(journal.recovery.moved_to) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (100,)
    conn.close()


async def test_an_undecodable_row_is_refused_at_replay_and_salvaged(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    records = make_records(1, 100)
    await write(path, records)
    corrupt_row(path, 31, b'{"v": 1, "event": "nonsense"}')
    journal, replayed = await salvage(path)
    assert replayed == stored(records[:30])
    assert journal.recovery is not None
    assert journal.recovery.last_good_sequence == 30
    floor = journal.last_sequence
    assert floor == journal.recovery.sequence_floor > 100
    await journal.append(make_records(floor + 1, floor + 2))
    await journal.close()
    assert (await reopen(path))[1] == stored(records[:30] + make_records(floor + 1, floor + 2))


async def test_dropped_sequences_are_never_handed_out_again(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    await write(path, make_records(1, 100))
    corrupt_row(path, 61)
    journal, _ = await salvage(path)
    assert journal.recovery is not None
    floor = journal.recovery.sequence_floor
    # Readable rows reach 100, and the file's size bounds what else it held.
    assert floor > 100
    assert floor == journal.last_sequence
    for reused in (61, 100, floor):
        with pytest.raises(ValueError, match="is not after"):
            await journal.append([make_record(reused)])
    await journal.append([make_record(floor + 1)])
    await journal.close()

    again, replayed = await reopen(path)
    assert again.recovery is None
    assert [r.sequence for r in replayed] == [*range(1, 61), floor + 1]
    # A second recovery keeps the floor it found, so it only ever rises.
    await again.close()
    corrupt_row(path, floor + 1)
    third, replayed = await salvage(path)
    await third.close()
    assert third.recovery is not None
    assert third.recovery.sequence_floor > floor + 1
    assert [r.sequence for r in replayed] == list(range(1, 61))


def break_index_page(path: Path) -> None:
    """Zero the order_id index's root page: every row still reads, the file is damaged."""
    with sqlite3.connect(path) as conn:
        (root,) = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'events_by_order'"
        ).fetchone()
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    conn.close()
    data = bytearray(path.read_bytes())
    start = (root - 1) * page_size
    data[start + 1 : start + page_size] = bytes(page_size - 1)  # keep the page type byte
    path.write_bytes(bytes(data))


async def test_quick_check_finds_damage_the_row_scan_cannot_see(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    records = make_records(1, 300)
    await write(path, records)
    break_index_page(path)
    journal, replayed = await salvage(path)
    await journal.close()
    assert journal.recovery is not None
    assert "quick_check" in journal.recovery.problem
    assert replayed == stored(records)  # the table itself was sound: every record kept
    again, replayed = await reopen(path)
    await again.close()
    assert again.recovery is None
    assert replayed == stored(records)


async def test_a_garbled_sequence_floor_is_damage_and_a_new_one_is_set(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    await write(path, make_records(1, 20))
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO meta (key, value) VALUES ('sequence_floor', 'lots')")
    conn.close()
    journal, replayed = await salvage(path)
    await journal.close()
    assert journal.recovery is not None
    assert "invalid sequence floor" in journal.recovery.problem
    assert journal.recovery.sequence_floor > 20
    assert replayed == []  # the problem is found before any row is read


async def test_side_files_without_a_journal_are_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    garbage = b"x" * 5000
    (tmp_path / "journal.db-wal").write_bytes(garbage)
    journal, replayed = await reopen(path)
    await journal.close()
    assert replayed == []
    (orphan,) = (p for p in os.listdir(tmp_path) if ".orphan-" in p)
    assert orphan.startswith("journal.db-wal.orphan-")
    assert (tmp_path / orphan).read_bytes() == garbage


async def test_a_newer_format_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    await write(path, make_records(1, 10))
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'format_version'", (FORMAT_VERSION + 1,)
        )
    conn.close()
    before = path.read_bytes()
    with pytest.raises(IncompatibleJournal) as caught:
        SqliteJournal(path)
    assert f"version {FORMAT_VERSION + 1}" in str(caught.value)
    assert f"up to version {FORMAT_VERSION}" in str(caught.value)
    assert path.read_bytes() == before
    assert aside_files(path) == []


# ------------------------------------------------------------ inspector


async def test_the_inspector_filters_and_formats_while_the_journal_is_open(
    journal: SqliteJournal,
) -> None:
    records = make_records(1, 60)
    await journal.append(records)
    path = journal.path

    assert list(iter_records(path)) == records
    assert list(iter_records(path, order_id="order-3")) == [
        r for r in records if r.event.order_id == "order-3"
    ]
    assert list(iter_records(path, from_sequence=10, to_sequence=12)) == records[9:12]
    assert list(iter_records(path, order_id="order-3", from_sequence=20)) == [
        r for r in records[19:] if r.event.order_id == "order-3"
    ]
    assert list(iter_records(path, order_id="nobody")) == []

    lines = list(format_jsonl(iter_records(path, from_sequence=58)))
    assert [decode_record(line.encode()) for line in lines] == records[57:]
    assert json.loads(lines[0])["update"]["sequence"] == 58

    header, *rows = format_table(iter_records(path, to_sequence=3))
    assert header.split()[:3] == ["SEQUENCE", "TIME", "(UTC)"]
    assert len(rows) == 3
    assert rows[2].split()[:6] == [
        "3", "2024-05-01T13:30:00.003000", "order-0", "filled", "PARTIALLY_FILLED", "0.5/10",
    ]  # fmt: skip
    assert rows[2].endswith("exec_id=x-3 0.5 @ 101.25")
    # Fixed width: each column starts at the same place on every line.
    event_column = header.index("EVENT")
    assert [row[event_column:].split()[0] for row in rows] == [
        "created",
        "accepted",
        "filled",
    ]
    await journal.append(make_records(61, 62))  # still writable: nothing was locked
    assert len(list(iter_records(path))) == 62


async def test_the_inspector_reports_damage_and_never_repairs(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    records = make_records(1, 40)
    await write(path, records)
    corrupt_row(path, 21)
    before = path.read_bytes()
    seen: list[JournalRecord] = []
    with pytest.raises(CorruptRecord, match="sequence 21"):
        seen.extend(iter_records(path))
    assert seen == records[:20]
    assert path.read_bytes() == before
    assert aside_files(path) == []
    with pytest.raises(FileNotFoundError):
        list(iter_records(tmp_path / "missing.db"))


def test_encoding_is_what_the_inspector_exports() -> None:
    record = make_record(4)
    assert next(format_jsonl([record])).encode() == encode_record(record)


# ------------------------------------------------------------ old formats


def write_format_2(path: Path, records: list[JournalRecord]) -> None:
    """A journal as gateways before format 3 wrote it: JSON records with the order."""
    with sqlite3.connect(path) as conn:
        conn.executescript(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "CREATE TABLE events (sequence INTEGER PRIMARY KEY, order_id TEXT NOT NULL,"
            " body BLOB NOT NULL, crc INTEGER NOT NULL);"
            "CREATE INDEX events_by_order ON events (order_id, sequence);"
            "INSERT INTO meta VALUES ('format_version', '2');"
        )
        for record in records:
            body = encode_record(record)
            conn.execute(
                "INSERT INTO events VALUES (?, ?, ?, ?)",
                (record.sequence, record.event.order_id, body, zlib.crc32(body)),
            )
    conn.close()


async def test_a_format_2_journal_is_read_and_continued_in_format_3(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    records = make_records(1, 103)  # ends inside an order's life: it continues in format 3
    write_format_2(path, records[:100])
    journal = SqliteJournal.open(path)
    assert journal.last_sequence == 100
    old = list(journal.replay())
    assert [(r.sequence, r.event) for r in old] == [(r.sequence, r.event) for r in records[:100]]
    assert [r.update for r in old] == [r.update for r in records[:100]]  # stored, so given
    await journal.append(records[100:])
    # Updates of format 3 records are derived, also from an order's format 2 records.
    assert await journal.read(95, 103, 500) == records[95:]
    await journal.close()
    with sqlite3.connect(path) as conn:
        version = conn.execute("SELECT value FROM meta WHERE key = 'format_version'").fetchone()
        bodies = [row[0][:1] for row in conn.execute("SELECT body FROM events ORDER BY sequence")]
    conn.close()
    assert version == (str(FORMAT_VERSION),)  # an older gateway now refuses it, never misreads
    assert set(bodies[:100]) == {b"{"}
    assert b"{" not in bodies[100:]
    assert list(iter_records(path)) == records


async def test_format_3_records_are_small(tmp_path: Path) -> None:
    records = make_records(1, 500)
    path = tmp_path / "journal.db"
    await write(path, records)
    with sqlite3.connect(path) as conn:
        body_bytes = conn.execute("SELECT sum(length(body)) FROM events").fetchone()[0]
    conn.close()
    assert body_bytes / len(records) < 100  # format 2 stored about 880 bytes per event


async def test_migrate_rewrites_a_format_2_journal_keeping_every_sequence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    path = data_dir / "journal.db"
    records = make_records(1, 200)
    write_format_2(path, records)
    before = path.read_bytes()

    assert journal_cli.main(["migrate", "--data-dir", str(data_dir)]) == 0
    assert "migrated from format 2: 200 records" in capsys.readouterr().out
    (kept,) = data_dir.glob("journal.db.format-2-*")
    assert kept.read_bytes() == before  # the old file, untouched
    assert path.stat().st_size < len(before)
    journal = SqliteJournal.open(path)
    assert list(journal.replay()) == stored(records)
    assert await journal.read(0, 200, 500) == records
    await journal.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute(
            "SELECT count(*) FROM events WHERE substr(body, 1, 1) = '{'"
        ).fetchone() == (0,)
    conn.close()
    # Once is enough.
    assert journal_cli.main(["migrate", "--data-dir", str(data_dir)]) == 0
    assert "nothing to do" in capsys.readouterr().out
