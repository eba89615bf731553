"""The embedded durable journal: one SQLite file in WAL mode.

Layout: ``meta(key, value)`` holds the format version (and, after a recovery
that dropped records, the sequence floor); ``events(sequence,
order_id, body, crc)`` holds one codec-encoded record per row with the CRC-32
of its body, indexed by order_id for the inspector.

Durability: each ``append`` is one transaction (group commit) committed with
``synchronous=FULL``, so it is fsynced before ``append`` returns. Writes run
on one dedicated thread that owns the write connection, fed by a queue:
commits stay in call order, the event loop never blocks, and each commit
costs one hand-off to the thread and one wake-up of the loop when it is
durable. ``read`` uses its own read-only connection on its own thread, which
WAL lets run beside the writer.

Damage: opening runs SQLite's ``PRAGMA quick_check`` (the b-trees and
their pages), checks every row's checksum and order, and catches SQLite's
own "malformed"/"not a database" errors; ``replay`` decodes each row (doing
that at open too would double the start-up time of a large journal). Damage
found is reported, never repaired on its own: the journal raises
``JournalDamaged`` and changes nothing, because dropping records is a
decision for an operator (an acknowledged order lost that way would turn up
at the broker as somebody else's). Opened with ``salvage=True`` (``gateway
journal salvage``), the damaged file is linked aside as
``<name>.corrupt-<UTC time>`` (with its -wal/-shm), never changed or
deleted, and a fresh file holding every good record before the first bad
one takes its place; ``recovery`` says what happened. A torn WAL tail is not
damage: SQLite drops the unfinished commit itself, and that commit was never
acknowledged.

Sequences are never reused. Records dropped by a recovery were durable, so
their updates may have reached subscribers, who resume by sequence. The
rebuilt file therefore stores a *sequence floor* above any number the damaged
file could have held (the highest sequence still readable, plus one for
every ``MIN_ROW_BYTES`` of the damaged files) and new records start above it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import shutil
import sqlite3
import threading
import zlib
from collections.abc import Collection, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gateway.domain import IllegalTransition, Order, apply_event
from gateway.domain.controls import ControlEvent, ControlState, control_update
from gateway.journal import checkpoint as checkpoints
from gateway.journal import records as formats
from gateway.journal.base import JournalRecord, StoredEvent
from gateway.journal.checkpoint import Checkpoint
from gateway.journal.codec import CorruptRecord, IncompatibleJournal, JournalError
from gateway.journal.order_index import AccountIndex
from gateway.journal.records import FORMAT_VERSION, encode_event, update_after

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    sequence INTEGER PRIMARY KEY,
    order_id TEXT NOT NULL,
    body BLOB NOT NULL,
    crc INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_order ON events (order_id, sequence);
"""
VERSION_KEY = "format_version"
FLOOR_KEY = "sequence_floor"
# No stored row (cell, body, checksum) is smaller than this, so a file of N
# bytes holds fewer than N / MIN_ROW_BYTES rows: the bound a floor rests on.
MIN_ROW_BYTES = 64
SELECT_ROWS = "SELECT sequence, order_id, body, crc FROM events"
INSERT_ROW = "INSERT INTO events (sequence, order_id, body, crc) VALUES (?, ?, ?, ?)"
# SQLite's primary result codes for a damaged file; anything else (locked,
# I/O error, permissions) is an environment problem, not damage.
_DAMAGE_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})
_SIDE_FILES = ("-wal", "-shm", "-journal")
Row = tuple[object, object, object, object]


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What was found damaged when the journal opened, and what was kept."""

    problem: str
    """The first problem found, e.g. "sequence 1500: checksum mismatch"."""
    kept: int
    """Records kept: every good one before the first bad one."""
    last_good_sequence: int
    """Sequence of the last kept record (0: none kept)."""
    sequence_floor: int
    """New records start after this: above any sequence the dropped records had."""
    moved_to: Path
    """Where the damaged file now is (its -wal/-shm beside it, same prefix)."""


class JournalDamaged(JournalError):
    """The journal file is damaged; nothing was changed. Salvaging is the operator's call."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"journal {path} is damaged ({problem})")
        self.path = path
        self.problem = problem


def is_damage(error: sqlite3.DatabaseError) -> bool:
    """Tell whether SQLite raised ``error`` because the file itself is damaged."""
    code = getattr(error, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in _DAMAGE_CODES


def connect_read_only(path: Path, *, same_thread: bool = True) -> sqlite3.Connection:
    """Open ``path`` read-only: never creates, checkpoints, recovers or changes it.

    ``same_thread=False``: the connection may move between threads (its
    user serialises the calls).
    """
    if not path.is_file():
        raise FileNotFoundError(f"no journal file at {path}")
    return sqlite3.connect(
        f"{path.resolve().as_uri()}?mode=ro",
        uri=True,
        isolation_level=None,
        check_same_thread=same_thread,
    )


def read_format_version(conn: sqlite3.Connection) -> int | None:
    """Return the journal's format version, or None if the file has no tables yet.

    Raise ``IncompatibleJournal`` for a newer version than this code reads
    and ``CorruptRecord`` if the schema or the version is not ours.
    """
    tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    if not tables:
        return None  # a new file, or a crash before the schema was committed
    if not {"meta", "events"} <= tables:
        raise CorruptRecord(f"not a journal: tables {sorted(tables)[:5]}")
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (VERSION_KEY,)).fetchone()
    text = row[0] if row else None
    if not isinstance(text, str) or not text.isdigit():
        raise CorruptRecord(f"no valid format version in meta: {text!r}")
    version = int(text)
    if version > FORMAT_VERSION:
        raise IncompatibleJournal(
            f"journal format version {version} was written by a newer gateway; this one "
            f"reads up to version {FORMAT_VERSION}. Run the newer version, or move the "
            "journal aside to start empty."
        )
    return version


def read_sequence_floor(conn: sqlite3.Connection) -> int:
    """Return the stored sequence floor (0: none); raise ``CorruptRecord`` if garbled."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (FLOOR_KEY,)).fetchone()
    if row is None:
        return 0
    if not isinstance(row[0], str) or not row[0].isdigit():
        raise CorruptRecord(f"invalid sequence floor in meta: {row[0]!r}")
    return int(row[0])


def check_row(row: Row, after: int) -> tuple[int, bytes]:
    """Return (sequence, body) of a stored row, or raise ``CorruptRecord``.

    ``after`` is the previous row's sequence: sequences strictly increase.
    """
    sequence, order_id, body, crc = row
    if type(sequence) is not int or sequence <= after:
        raise CorruptRecord(f"sequence {sequence!r} after {after}: out of order")
    if not isinstance(body, bytes) or not isinstance(order_id, str):
        raise CorruptRecord(f"sequence {sequence}: columns of the wrong type")
    if crc != zlib.crc32(body):
        raise CorruptRecord(f"sequence {sequence}: checksum mismatch")
    return sequence, body


def decode_row(row: Row, after: int) -> StoredEvent:
    """Check and decode one stored row (see ``check_row``)."""
    sequence, body = check_row(row, after)
    try:
        record = formats.decode(body)
    except CorruptRecord as exc:
        raise CorruptRecord(f"sequence {sequence}: {exc}") from None
    if record.sequence != sequence or record.event.order_id != row[1]:
        raise CorruptRecord(f"sequence {sequence}: row and record disagree")
    return record


class OrderFolder:
    """Each order's state after a record, re-derived from the order's events.

    Records store the event alone, so a reader of a range (a subscriber's
    replay, ``journal show``) folds, for each order it meets, the order's
    earlier events (found by the order_id index) and then the range's own,
    through the same state machine as the engine. Records of formats 1
    and 2 carry their state, which is taken as it is.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._orders: dict[str, Order] = {}

    def record(self, stored: StoredEvent) -> JournalRecord:
        """The record ``stored`` with the update it produced."""
        event = stored.event
        if isinstance(event, ControlEvent):
            return JournalRecord(event, control_update(stored.sequence, event))
        if stored.update is not None:
            self._orders.pop(event.order_id, None)  # read again if needed, from its records
            return JournalRecord(event, stored.update)
        before = self._orders.get(event.order_id)
        if before is None:
            before = self._before(event.order_id, stored.sequence)
        after = _apply(before, stored)
        if after.is_terminal:
            # Rarely changed again (a late fill reads its events anew): what
            # stays in memory is the orders still open, not the whole range's.
            self._orders.pop(event.order_id, None)
        else:
            self._orders[event.order_id] = after
        return JournalRecord(event, update_after(stored.sequence, event, after))

    def _before(self, order_id: str, sequence: int) -> Order | None:
        order: Order | None = None
        previous = 0
        where = "WHERE order_id = ? AND sequence < ?"
        for row in iter_rows(self._conn, where, (order_id, sequence)):
            stored = decode_row(row, previous)
            previous = stored.sequence
            if isinstance(stored.event, ControlEvent):
                continue  # a position it moved: not a change of the order
            order = stored.update.order if stored.update is not None else _apply(order, stored)
        return order


def _apply(order: Order | None, stored: StoredEvent) -> Order:
    """Apply a stored event as ``Ledger.replay`` does (an illegal one changes nothing)."""
    event = stored.event
    if isinstance(event, ControlEvent):
        raise CorruptRecord(f"sequence {stored.sequence}: not an order's event")
    try:
        return apply_event(order, event, stored.sequence)
    except IllegalTransition:
        if order is None:
            raise CorruptRecord(f"sequence {stored.sequence}: an event of no order") from None
        return order


def iter_rows(
    conn: sqlite3.Connection, where: str = "", args: Sequence[object] = ()
) -> Iterator[Row]:
    """Yield event rows in sequence order, streaming: one row in memory at a time.

    Row by row rather than ``fetchmany``: when SQLite fails mid-file, a
    batch in progress would be lost, and with it the exact point of damage.
    """
    yield from conn.execute(f"{SELECT_ROWS} {where} ORDER BY sequence", args)


class SqliteJournal:
    """The ``Journal`` protocol on one SQLite file; see the module docstring."""

    def __init__(self, path: Path, *, salvage: bool = False) -> None:
        self.path = path
        self.recovery: RecoveryReport | None = None
        self._salvage = salvage
        path.parent.mkdir(parents=True, exist_ok=True)
        _tidy_leftovers(path)
        self._last_sequence = 0
        self.checkpoint_path = checkpoints.checkpoint_path(path)
        self._verify()
        self._conn = _initialize(path)
        self._closed = False
        self._appended = False
        # One thread each: the writer's FIFO queue is what orders commits. The
        # queues stay short because every caller awaits its own call: the
        # actor has one append in flight, each subscriber one read.
        self._writes: queue.SimpleQueue[_Write | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-reader")
        self._read_conn: sqlite3.Connection | None = None
        # ``order_events``: called from worker threads, one at a time.
        self._history_lock = threading.Lock()
        self._history_conn: sqlite3.Connection | None = None

    @classmethod
    def open(cls, path: Path, *, salvage: bool = False) -> SqliteJournal:
        """Open (creating or verifying) the journal at ``path``.

        Raise ``JournalDamaged`` if it is damaged, unless ``salvage``: then keep
        its good records before the damage (see the module docstring).
        """
        return cls(path, salvage=salvage)

    @property
    def last_sequence(self) -> int:
        """The newest durable sequence (0 when empty)."""
        return self._last_sequence

    # ------------------------------------------------------------ protocol

    def replay(self, after_sequence: int = 0) -> Iterator[StoredEvent]:
        """Yield every record after ``after_sequence`` in order, streaming (never all in memory).

        Checksums were verified at open; a row that still fails to decode (a
        defect, not disk damage) ends the replay there with ``JournalDamaged``,
        or, when salvaging and nothing was appended yet, is recovered from like
        damage found at open.
        """
        conn = connect_read_only(self.path)
        previous = after_sequence
        try:
            for row in iter_rows(conn, "WHERE sequence > ?", (after_sequence,)):
                try:
                    record = decode_row(row, previous)
                except CorruptRecord as exc:
                    if self._appended:
                        raise
                    if not self._salvage:
                        raise JournalDamaged(self.path, str(exc)) from None
                    problem = str(exc)
                    break
                previous = record.sequence
                yield record
            else:
                return
        finally:
            conn.close()
        self._conn.close()
        with self._history_lock:  # it would still read the damaged file
            if self._history_conn is not None:
                self._history_conn.close()
                self._history_conn = None
        self._recover(problem, previous)
        self._conn = _initialize(self.path)

    def load_checkpoint(self) -> Checkpoint | None:
        """The newest usable checkpoint of this journal's table, or None (replay it all).

        Blocking (it reads and decodes a file): call it off the event loop.
        """
        found = checkpoints.read(self.checkpoint_path)
        if found is None:
            return None
        if found.sequence > self._last_sequence or found.anchor_crc != self._crc_at(found.sequence):
            log.warning(
                "checkpoint %s (sequence %d) is not of this journal: replaying it all",
                self.checkpoint_path,
                found.sequence,
            )
            return None
        return found

    def save_checkpoint(
        self,
        sequence: int,
        orders: list[Order],
        exec_ids: dict[str, tuple[str, ...]],
        accounts: Iterable[AccountIndex],
        controls: ControlState | None = None,
    ) -> int:
        """Write the table as of ``sequence`` (durable already) as the checkpoint; return bytes.

        Blocking (it encodes the table and fsyncs): run it on a worker thread.
        """
        anchor = self._crc_at(sequence)
        if anchor is None:
            raise ValueError(f"no journal record at sequence {sequence} to anchor a checkpoint")
        checkpoint = Checkpoint(
            sequence, anchor, orders, exec_ids, list(accounts), controls or ControlState()
        )
        return checkpoints.write(self.checkpoint_path, checkpoint)

    def order_events(
        self, order_ids: Collection[str]
    ) -> dict[str, list[StoredEvent | JournalRecord]]:
        """Every record of each of ``order_ids``, oldest first (the order_id index).

        Blocking; any thread. One read-only connection serves these reads,
        one at a time; WAL lets them run beside the writer.
        """
        found: dict[str, list[StoredEvent | JournalRecord]] = {}
        with self._history_lock:
            if self._history_conn is None:
                self._history_conn = connect_read_only(self.path, same_thread=False)
            try:
                for order_id in order_ids:
                    records: list[StoredEvent | JournalRecord] = []
                    previous = 0
                    for row in iter_rows(self._history_conn, "WHERE order_id = ?", (order_id,)):
                        stored = decode_row(row, previous)
                        previous = stored.sequence
                        records.append(stored)
                    if records:
                        found[order_id] = records
            except sqlite3.DatabaseError as exc:
                if not is_damage(exc):
                    raise
                raise JournalDamaged(self.path, f"SQLite: {exc}") from None
        return found

    def _crc_at(self, sequence: int) -> int | None:
        conn = connect_read_only(self.path)
        try:
            row = conn.execute("SELECT crc FROM events WHERE sequence = ?", (sequence,)).fetchone()
        finally:
            conn.close()
        return row[0] if row is not None and type(row[0]) is int else None

    async def append(self, records: Sequence[JournalRecord]) -> None:
        """Store ``records`` in one fsynced transaction; raise ValueError if out of order."""
        if self._closed:
            raise RuntimeError(f"journal {self.path} is closed")
        if not records:
            return
        self._appended = True
        if self._writer is None:
            # Started on first use: replay may still swap the connection before.
            self._writer = threading.Thread(
                target=self._write_loop, name="journal-writer", daemon=True
            )
            self._writer.start()
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._writes.put(_Write(records, done, loop))
        await done

    async def read(self, after_sequence: int, up_to: int, limit: int) -> list[JournalRecord]:
        """Return up to ``limit`` records with after_sequence < sequence <= up_to."""
        if self._closed:
            raise RuntimeError(f"journal {self.path} is closed")
        if limit <= 0 or up_to <= after_sequence:
            return []
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reader, self._read, after_sequence, up_to, limit)

    async def close(self) -> None:
        """Wait for pending writes, then release both connections and threads."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._reader, self._close_reader)
        self._reader.shutdown(wait=False)
        writer = self._writer
        if writer is None:
            self._conn.close()
            return
        # Queued behind every pending append: they commit first.
        self._writes.put(None)
        await asyncio.to_thread(writer.join)

    def _write_loop(self) -> None:
        """The writer thread: commit each queued batch, then wake its caller."""
        while (write := self._writes.get()) is not None:
            try:
                self._write(write.records)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                write.loop.call_soon_threadsafe(_settle, write.done, exc)
            else:
                write.loop.call_soon_threadsafe(_settle, write.done, None)
        self._conn.close()

    # --------------------------------------------------- the worker threads

    def _write(self, records: Sequence[JournalRecord]) -> None:
        last = self._last_sequence
        rows = []
        for record in records:
            if record.sequence <= last:
                raise ValueError(f"sequence {record.sequence} is not after {last}")
            body = encode_event(record.sequence, record.event)
            rows.append((record.sequence, record.event.order_id, body, zlib.crc32(body)))
            last = record.sequence
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(INSERT_ROW, rows)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._last_sequence = last

    def _read(self, after: int, up_to: int, limit: int) -> list[JournalRecord]:
        if self._read_conn is None:
            self._read_conn = connect_read_only(self.path)
        cursor = self._read_conn.execute(
            f"{SELECT_ROWS} WHERE sequence > ? AND sequence <= ? ORDER BY sequence LIMIT ?",
            (after, up_to, limit),
        )
        folder = OrderFolder(self._read_conn)
        records = []
        for row in cursor.fetchall():
            stored = decode_row(row, after)
            after = stored.sequence
            records.append(folder.record(stored))
        return records

    def _close_reader(self) -> None:
        if self._read_conn is not None:
            self._read_conn.close()
            self._read_conn = None
        with self._history_lock:
            if self._history_conn is not None:
                self._history_conn.close()
                self._history_conn = None

    # -------------------------------------------------- opening, recovery

    def _verify(self) -> None:
        """Check the existing file; set ``last_sequence``.

        Raise ``JournalDamaged`` if it is damaged, or salvage it if asked to.
        """
        if not self.path.exists():
            checkpoints.discard(self.checkpoint_path)  # of a journal no longer here
            return
        # Salvaging is the operator's full check: the whole file, whatever the checkpoint.
        after = 0 if self._salvage else checkpoints.read_sequence(self.checkpoint_path)
        scan = _scan(self.path, after)
        problem = scan.problem
        if problem is None:
            log.info(
                "journal %s: %d records checked (after the checkpoint at %d), last sequence %d",
                self.path,
                scan.count,
                scan.after,
                scan.last_sequence,
            )
            self._last_sequence = max(scan.last_sequence, scan.floor)
            return
        if not self._salvage:
            raise JournalDamaged(self.path, problem)
        salvage = _salvage_copy(self.path)
        try:
            source = self.path
            if salvage is not None:
                # The header-patched copy may read further than the original.
                deeper = _scan(salvage)
                if deeper.count > scan.count:
                    scan, source = deeper, salvage
                    problem = deeper.problem or problem
            self._recover(problem, scan.last_sequence, source=source, floor=scan.floor)
        finally:
            if salvage is not None:
                remove_with_side_files(salvage)

    def _recover(
        self, problem: str, last_good: int, *, source: Path | None = None, floor: int = 0
    ) -> None:
        """Replace the damaged file by one holding its records up to ``last_good``.

        Sets ``recovery`` and ``last_sequence`` from what was actually kept and
        the new sequence floor. ``source`` is where to read the records (a
        salvage copy; the damaged file by default); ``floor`` is the damaged
        file's own floor, if it could be read.
        """
        rebuilt = self.path.with_name(f"{self.path.name}.rebuild")
        # Anything after ``last_good`` may be lost, and its numbers were
        # possibly seen: reserve as many as the damaged files could hold.
        highest = max(last_good, floor, _readable_max_sequence(source or self.path))
        new_floor = highest + _row_capacity(self.path)
        kept, last_good = _rebuild(source or self.path, rebuilt, last_good, new_floor)
        # Derived from the damaged history: the rebuilt one replays from scratch.
        checkpoints.discard(self.checkpoint_path)
        moved_to = _move_aside(self.path)
        os.replace(rebuilt, self.path)
        fsync_dir(self.path.parent)
        self._last_sequence = new_floor
        self.recovery = RecoveryReport(problem, kept, last_good, new_floor, moved_to)
        log.error(
            "journal %s was damaged (%s): kept %d records up to sequence %d; new records "
            "start after sequence %d; the damaged file is preserved as %s",
            self.path,
            problem,
            kept,
            last_good,
            new_floor,
            moved_to,
        )


@dataclass(frozen=True, slots=True)
class _Scan:
    count: int
    last_sequence: int
    problem: str | None
    floor: int = 0
    after: int = 0


def _scan(path: Path, after: int = 0) -> _Scan:
    """Check the rows of ``path`` after sequence ``after`` read-only; stop at the first bad one.

    ``after`` is a checkpoint's sequence: start-up reads nothing before it,
    so only the tail is checked, and SQLite's whole-file ``quick_check``
    (linear in the history) is left to ``gateway journal salvage``. Damage
    in older pages still surfaces, as ``JournalDamaged``, wherever they are
    read (a subscriber's replay, ``journal show``, a full replay).
    """
    count = last = floor = 0
    try:
        conn = connect_read_only(path)
        try:
            if read_format_version(conn) is None:
                return _Scan(0, 0, None)
            floor = read_sequence_floor(conn)
            if after and not _has_row(conn, after):
                after = 0  # a checkpoint of another history: it will be refused
            structure = None if after else _quick_check(conn)
            # From the checkpoint's own record on: its checksum anchors the checkpoint.
            last = max(after - 1, 0)
            for row in iter_rows(conn, "WHERE sequence > ?", (last,)):
                last, _ = check_row(row, last)
                count += 1
        finally:
            conn.close()
    except CorruptRecord as exc:
        return _Scan(count, last, str(exc), floor, after)
    except sqlite3.DatabaseError as exc:
        if not is_damage(exc):
            raise  # locked, I/O error, permissions: not ours to "repair"
        return _Scan(count, last, f"after sequence {last}: SQLite: {exc}", floor, after)
    return _Scan(count, last, structure, floor, after)


def _has_row(conn: sqlite3.Connection, sequence: int) -> bool:
    found = conn.execute("SELECT 1 FROM events WHERE sequence = ?", (sequence,)).fetchone()
    return found is not None


def _quick_check(conn: sqlite3.Connection) -> str | None:
    """Run SQLite's ``PRAGMA quick_check``; return its first findings, or None if clean.

    It walks every page of every b-tree (linear in the file's size), so it
    finds damage the row scan cannot see, such as a broken index page.
    """
    findings = [str(row[0]) for row in conn.execute("PRAGMA quick_check(5)")]
    if findings == ["ok"]:
        return None
    return "SQLite quick_check: " + "; ".join(findings)


def _readable_max_sequence(path: Path) -> int:
    """The highest sequence SQLite can still find in a damaged file (0 if none)."""
    try:
        conn = connect_read_only(path)
        try:
            value = conn.execute("SELECT max(sequence) FROM events").fetchone()[0]
        finally:
            conn.close()
    except (sqlite3.Error, FileNotFoundError):
        return 0
    return value if type(value) is int and value > 0 else 0


def _row_capacity(path: Path) -> int:
    """An upper bound on the rows ``path`` and its side files could hold."""
    size = sum(
        Path(f"{path}{suffix}").stat().st_size
        for suffix in ("", *_SIDE_FILES)
        if Path(f"{path}{suffix}").exists()
    )
    return size // MIN_ROW_BYTES + 1


@dataclass(frozen=True, slots=True)
class _Write:
    """One append on its way to the writer thread."""

    records: Sequence[JournalRecord]
    done: asyncio.Future[None]
    loop: asyncio.AbstractEventLoop


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.done():  # the appender was cancelled: nobody waits
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)


def _initialize(path: Path) -> sqlite3.Connection:
    """Open the write connection: WAL, fsync per commit, schema and version in place."""
    # Used only by the writer thread after this, one call at a time.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise RuntimeError(f"journal {path}: SQLite refused WAL mode ({mode})")
        conn.execute("PRAGMA synchronous=FULL")
        create_schema(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def create_schema(conn: sqlite3.Connection, floor: int = 0) -> None:
    conn.execute("BEGIN IMMEDIATE")
    for statement in SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (VERSION_KEY, str(FORMAT_VERSION))
    )
    # A journal of an older format takes records of this one from now on (its
    # old records are still read as they are): an older gateway must refuse it.
    conn.execute("UPDATE meta SET value = ? WHERE key = ?", (str(FORMAT_VERSION), VERSION_KEY))
    if floor:
        conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (FLOOR_KEY, str(floor)))
    conn.execute("COMMIT")


def _rebuild(source: Path, target: Path, last_good: int, floor: int) -> tuple[int, int]:
    """Write a fresh journal at ``target`` with the good rows of ``source`` up to ``last_good``.

    ``target`` records ``floor``: its next record must be after it.

    Every copied row is checked again on the way: a damaged file may read
    differently the second time. Return (rows kept, last kept sequence).
    """
    remove_with_side_files(target)
    kept = last = 0
    dst = sqlite3.connect(target, isolation_level=None)
    try:
        dst.execute("PRAGMA synchronous=FULL")  # rollback journal: one self-contained file
        create_schema(dst, floor)
        if last_good > 0:
            src = connect_read_only(source)
            try:
                dst.execute("BEGIN IMMEDIATE")
                with contextlib.suppress(CorruptRecord, sqlite3.DatabaseError):
                    for row in iter_rows(src, "WHERE sequence <= ?", (last_good,)):
                        last, _ = check_row(row, last)
                        dst.execute(INSERT_ROW, row)
                        kept += 1
                dst.execute("COMMIT")
            finally:
                src.close()
    finally:
        dst.close()
    return kept, last


def _move_aside(path: Path) -> Path:
    """Preserve ``path`` and its side files under a ``.corrupt-<time>`` name; return it.

    The main file is hard-linked (copied where links are unsupported), so
    ``path`` always names a whole journal; the side files are renamed, so a
    stale WAL can never be applied to the rebuilt file.
    """
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    for attempt in range(2, 1000):  # bounded: a thousand recoveries in one second is absurd
        if not any(Path(f"{aside}{suffix}").exists() for suffix in ("", *_SIDE_FILES)):
            break
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{attempt}")
    try:
        os.link(path, aside)
    except OSError:
        shutil.copy2(path, aside)
    for suffix in _SIDE_FILES:
        side = Path(f"{path}{suffix}")
        if side.exists():
            os.replace(side, Path(f"{aside}{suffix}"))
    return aside


def _salvage_copy(path: Path) -> Path | None:
    """Return a copy of a damaged ``path`` whose header lets SQLite read up to the damage.

    A truncated file's header still claims its old size, and SQLite then
    refuses every page; zeroing that field (bytes 28-31, "in-header database
    size") makes SQLite size the file by its length instead.
    """
    copy = path.with_name(f"{path.name}.salvage")
    try:
        remove_with_side_files(copy)
        shutil.copyfile(path, copy)
        wal = Path(f"{path}-wal")
        if wal.exists():
            shutil.copyfile(wal, Path(f"{copy}-wal"))
        with copy.open("r+b") as file:
            if len(file.read(100)) == 100:
                file.seek(28)
                file.write(bytes(4))
    except OSError:
        log.warning("journal %s: no salvage copy (disk full?); keeping what reads", path)
        remove_with_side_files(copy)
        return None
    return copy


def _tidy_leftovers(path: Path) -> None:
    """Undo what an interrupted recovery or a lost main file left behind.

    A ``.rebuild``/``.salvage`` file is a derived copy (the original is still
    in place until the final rename), so it is removed. Side files without a
    main file would be applied to a new, empty journal: they are moved aside.
    """
    for derived in (".rebuild", ".salvage", ".migrate"):
        remove_with_side_files(path.with_name(f"{path.name}{derived}"))
    if path.exists():
        return
    orphans = [Path(f"{path}{suffix}") for suffix in _SIDE_FILES]
    if any(orphan.exists() for orphan in orphans):
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        for orphan in orphans:
            if orphan.exists():
                os.replace(orphan, orphan.with_name(f"{orphan.name}.orphan-{stamp}"))
        log.error("journal %s: side files without a journal file were moved aside", path)


def remove_with_side_files(path: Path) -> None:
    for suffix in ("", *_SIDE_FILES):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def fsync_dir(directory: Path) -> None:
    """Make renames in ``directory`` durable (POSIX needs the directory fsynced)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
