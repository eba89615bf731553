"""The journal on PostgreSQL: ``--journal postgresql://...``.

Layout (``pg_schema``): ``journal_events(sequence, order_id, body, crc)``
holds the same records as SQLite's ``events`` (the event alone, encoded by
``gateway.journal.records``, with its CRC-32), and ``journal_checkpoint``
the newest checkpoint of the table, in the same format as the checkpoint
file (``gateway.journal.checkpoint``), so it commits in the same database
as the records it is anchored to.

Group commit: each ``append`` is ONE statement, so one transaction and one
round trip: the batch goes as arrays (``unnest``), and the same statement
checks the writer's fence (below) and notifies followers
(``pg_notify``). It returns once PostgreSQL has flushed the commit
(``synchronous_commit`` as the server has it: ``on`` by default; with a
synchronous replica configured, once the replica has it too).

Why psycopg 3, used synchronously on a writer thread: the commit path is
then the SQLite journal's (one hand-off to the thread, one wake-up of the
loop when durable), the event loop never parses a reply or waits on a
socket, and libpq releases the GIL while it waits for the server. The
same library serves the standby's LISTEN and the lease, with the server's
own error codes.

Fencing: a journal opened with an ``epoch`` writes only while the shard's
lease row (``gateway_leases``) still holds that epoch. The statement takes
a share lock on the row, so a standby bumping the epoch waits for a commit
in flight, and a commit after the bump finds no row and inserts nothing:
``append`` then raises ``Fenced`` and the caller steps down. The primary
key on ``sequence`` refuses a second writer's overlapping records in any
case.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import queue
import threading
import zlib
from collections.abc import Collection, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
from psycopg import conninfo

from gateway.domain import Order
from gateway.domain.controls import ControlState
from gateway.journal import checkpoint as checkpoints
from gateway.journal import pg_schema
from gateway.journal.base import JournalRecord, StoredEvent
from gateway.journal.checkpoint import Checkpoint
from gateway.journal.codec import JournalError
from gateway.journal.order_index import AccountIndex
from gateway.journal.records import encode_event

# The SQLite journal's row checks, order folding and writer hand-off, shared as they are.
from gateway.journal.sqlite import OrderFolder, Row, _apply, _settle, _Write, decode_row

log = logging.getLogger(__name__)

# Bounds a dead server or a partition: libpq notices within about
# idle + interval * count seconds instead of the kernel's two hours. A DSN
# that sets any of these keeps its own value.
CONNECT_DEFAULTS: dict[str, Any] = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
    "application_name": "execution-gateway",
}
SELECT_ROWS = "SELECT sequence, order_id, body, crc FROM journal_events"
INSERT = """
WITH ins AS (
    INSERT INTO journal_events (sequence, order_id, body, crc)
    SELECT * FROM
        unnest(%(seq)s::bigint[], %(oid)s::text[], %(body)s::bytea[], %(crc)s::bigint[])
    RETURNING sequence
)
SELECT max(sequence), pg_notify(%(channel)s, max(sequence)::text) FROM ins HAVING count(*) > 0
"""
INSERT_FENCED = """
WITH fence AS (
    SELECT 1 FROM gateway_leases WHERE shard = %(shard)s AND epoch = %(epoch)s FOR SHARE
), ins AS (
    INSERT INTO journal_events (sequence, order_id, body, crc)
    SELECT r.* FROM
        unnest(%(seq)s::bigint[], %(oid)s::text[], %(body)s::bytea[], %(crc)s::bigint[])
        AS r, fence
    RETURNING sequence
)
SELECT max(sequence), pg_notify(%(channel)s, max(sequence)::text) FROM ins HAVING count(*) > 0
"""
SAVE_CHECKPOINT = """
INSERT INTO journal_checkpoint (slot, sequence, body) VALUES (1, %s, %s)
ON CONFLICT (slot) DO UPDATE SET sequence = EXCLUDED.sequence, body = EXCLUDED.body,
    saved_at = now()
WHERE journal_checkpoint.sequence < EXCLUDED.sequence
"""
REPLAY_BATCH = 2000


class JournalUnavailable(JournalError):
    """The journal database cannot be reached (or answered with an error)."""


class ShardMismatch(JournalError):
    """The database holds another shard's journal."""


class Fenced(JournalError):
    """The shard's lease moved on: this writer is deposed and committed nothing."""


def notify_channel(shard: str) -> str:
    """The LISTEN channel on which a shard's commits are announced.

    Channels are identifiers, cut at 63 bytes: a long shard name is hashed.
    """
    channel = f"gateway_journal_{shard}"
    if len(channel) > 63:
        channel = f"gateway_journal_{hashlib.sha256(shard.encode()).hexdigest()[:40]}"
    return channel


def redact(dsn: str) -> str:
    """``dsn`` without its password, for logs and error messages."""
    try:
        parts = conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "(unparsable journal URL)"
    parts.pop("password", None)
    host, port, db = parts.get("host", ""), parts.get("port", ""), parts.get("dbname", "")
    return f"postgresql://{parts.get('user', '')}@{host}{':' if port else ''}{port}/{db}"


def connect(dsn: str, **overrides: Any) -> psycopg.Connection[tuple[Any, ...]]:
    """Open an autocommit connection with the journal's timeouts (the DSN's own win)."""
    try:
        given = conninfo.conninfo_to_dict(dsn)
        options = {k: v for k, v in CONNECT_DEFAULTS.items() if k not in given}
        options.update(overrides)
        return psycopg.connect(dsn, autocommit=True, **options)
    except psycopg.Error as exc:
        raise JournalUnavailable(f"cannot connect to {redact(dsn)}: {exc}") from None


class _PgFolder(OrderFolder):
    """``OrderFolder`` reading an order's earlier events from PostgreSQL."""

    def __init__(self, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        # Not OrderFolder's: its connection is SQLite's.
        self._pg = conn
        self._orders: dict[str, Order] = {}

    def _before(self, order_id: str, sequence: int) -> Order | None:
        order: Order | None = None
        previous = 0
        rows = self._pg.execute(
            f"{SELECT_ROWS} WHERE order_id = %s AND sequence < %s ORDER BY sequence",
            (order_id, sequence),
        ).fetchall()
        for row in rows:
            stored = decode_row(_row(row), previous)
            previous = stored.sequence
            order = stored.update.order if stored.update is not None else _apply(order, stored)
        return order


def _row(row: Sequence[Any]) -> Row:
    """A fetched row as ``decode_row`` checks it (bytea may come back as a memoryview)."""
    sequence, order_id, body, crc = row
    return (sequence, order_id, bytes(body) if isinstance(body, memoryview) else body, crc)


class PostgresJournal:
    """The ``Journal`` protocol on a PostgreSQL database; see the module docstring."""

    def __init__(self, dsn: str, *, shard: str = "default", epoch: int | None = None) -> None:
        self.dsn = dsn
        self.shard = shard
        self.epoch = epoch
        self.name = redact(dsn)
        self._channel = notify_channel(shard)
        self._conn = connect(dsn)
        try:
            pg_schema.migrate(self._conn)
            # One journal per shard: two shards' sequences in one table would collide.
            other = self._conn.execute(
                "SELECT shard FROM gateway_leases WHERE shard <> %s LIMIT 1", (shard,)
            ).fetchone()
            if other is not None:
                raise ShardMismatch(
                    f"journal {self.name} holds the journal of shard {other[0]!r}, not "
                    f"{shard!r}: each shard needs a database (or a schema, with "
                    "?options=-csearch_path%3D<schema> in the URL) of its own"
                )
            found = self._conn.execute("SELECT coalesce(max(sequence), 0) FROM journal_events")
            self._last_sequence = int(found.fetchone()[0])  # type: ignore[index]
        except psycopg.Error as exc:
            self._conn.close()
            raise JournalUnavailable(f"journal {self.name}: {exc}") from None
        except BaseException:
            self._conn.close()
            raise
        self._closed = False
        self._writes: queue.SimpleQueue[_Write | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-reader")
        self._read_conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._follow_conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._history_conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._history_lock = threading.Lock()
        self._deposed = False

    @classmethod
    def open(cls, dsn: str, *, shard: str = "default", epoch: int | None = None) -> PostgresJournal:
        """Connect, apply migrations, and learn the last sequence.

        Raise ``JournalUnavailable`` if the database cannot be reached and
        ``IncompatibleJournal`` if its schema is newer than this code.
        """
        return cls(dsn, shard=shard, epoch=epoch)

    @property
    def last_sequence(self) -> int:
        return self._last_sequence

    # ------------------------------------------------------------ protocol

    def replay(self, after_sequence: int = 0) -> Iterator[StoredEvent]:
        """Yield the records after ``after_sequence`` in order, streaming through a cursor."""
        with connect(self.dsn) as conn, conn.transaction():
            cursor = conn.cursor(name="journal_replay")
            cursor.itersize = REPLAY_BATCH
            where = "WHERE sequence > %s ORDER BY sequence"
            cursor.execute(f"{SELECT_ROWS} {where}", (after_sequence,))
            previous = after_sequence
            for row in cursor:
                record = decode_row(_row(row), previous)
                previous = record.sequence
                yield record

    def load_checkpoint(self) -> Checkpoint | None:
        """The stored checkpoint if it is of this journal's history, else None. Blocking."""
        with connect(self.dsn) as conn:
            row = conn.execute("SELECT sequence, body FROM journal_checkpoint").fetchone()
            if row is None:
                return None
            try:
                found = checkpoints.decode(bytes(row[1]))
            except ValueError as exc:
                log.warning("checkpoint in %s unusable (%s): replaying it all", self.name, exc)
                return None
            anchor = _crc_at(conn, found.sequence)
        if found.sequence > self._last_sequence or anchor != found.anchor_crc:
            log.warning(
                "checkpoint in %s (sequence %d) is not of this journal: replaying it all",
                self.name,
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
        """Store the table as of durable ``sequence``; return its size. Blocking.

        An older checkpoint never replaces a newer one: the row only moves
        forward. Not fenced: a deposed leader's checkpoint is still the true
        table as of a sequence it committed, the same for every gateway.
        """
        with connect(self.dsn) as conn:
            anchor = _crc_at(conn, sequence)
            if anchor is None:
                raise ValueError(f"no journal record at sequence {sequence} to anchor a checkpoint")
            checkpoint = Checkpoint(
                sequence, anchor, orders, exec_ids, list(accounts), controls or ControlState()
            )
            data = checkpoints.encode(checkpoint)
            conn.execute(SAVE_CHECKPOINT, (sequence, data))
        return len(data)

    def order_events(
        self, order_ids: Collection[str]
    ) -> dict[str, list[StoredEvent | JournalRecord]]:
        """Every record of each of ``order_ids``, oldest first, in one query (the order_id index).

        Blocking; any thread: a connection of its own, one read at a time.
        """
        if not order_ids:
            return {}
        found: dict[str, list[StoredEvent | JournalRecord]] = {}
        with self._history_lock:
            try:
                if self._history_conn is None or self._history_conn.closed:
                    self._history_conn = connect(self.dsn)
                rows = self._history_conn.execute(
                    f"{SELECT_ROWS} WHERE order_id = ANY(%s) ORDER BY order_id, sequence",
                    (list(order_ids),),
                ).fetchall()
            except psycopg.Error as exc:
                if self._history_conn is not None:
                    self._history_conn.close()
                raise JournalUnavailable(f"journal {self.name}: read failed: {exc}") from None
        previous: dict[str, int] = {}
        for row in rows:
            order_id = row[1]
            stored = decode_row(_row(row), previous.get(order_id, 0))
            previous[order_id] = stored.sequence
            found.setdefault(order_id, []).append(stored)
        return found

    async def append(self, records: Sequence[JournalRecord]) -> None:
        """Commit ``records`` in one transaction; raise ValueError if out of order.

        Raises ``Fenced`` if the lease moved on, ``JournalUnavailable`` if the
        database failed (the commit may or may not have happened: the caller
        must not acknowledge, and recovers from the journal).
        """
        if self._closed:
            raise RuntimeError(f"journal {self.name} is closed")
        if not records:
            return
        if self._writer is None:
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
            raise RuntimeError(f"journal {self.name} is closed")
        if limit <= 0 or up_to <= after_sequence:
            return []
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reader, self._read, after_sequence, up_to, limit)

    async def close(self) -> None:
        """Wait for pending writes, then close the connections."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._reader, self._close_reader)
        self._reader.shutdown(wait=False)
        if self._follow_conn is not None:
            self._follow_conn.close()
        with self._history_lock:
            if self._history_conn is not None:
                self._history_conn.close()
        writer = self._writer
        if writer is None:
            self._conn.close()
            return
        self._writes.put(None)  # behind every pending append: they commit first
        await asyncio.to_thread(writer.join)

    # ------------------------------------------------------ leadership

    def follow(self, after: int, limit: int = REPLAY_BATCH) -> list[StoredEvent]:
        """The records another gateway committed after ``after`` (up to ``limit``). Blocking.

        A standby's read: it advances ``last_sequence`` to the newest record
        read, so that, once leader, this journal numbers on from there.
        """
        try:
            if self._follow_conn is None or self._follow_conn.closed:
                self._follow_conn = connect(self.dsn)
            rows = self._follow_conn.execute(
                f"{SELECT_ROWS} WHERE sequence > %s ORDER BY sequence LIMIT %s", (after, limit)
            ).fetchall()
        except psycopg.Error as exc:
            if self._follow_conn is not None:
                self._follow_conn.close()
            raise JournalUnavailable(f"journal {self.name}: follow failed: {exc}") from None
        records = []
        for row in rows:
            record = decode_row(_row(row), after)
            after = record.sequence
            records.append(record)
        self._last_sequence = max(self._last_sequence, after)
        return records

    def lead(self, epoch: int) -> None:
        """Write from now on only while the shard's lease holds ``epoch``. Blocking.

        The write connection is opened anew: the one opened at start has sat
        idle while standing by, and may have died with a database restart.
        """
        if self._writer is not None:
            raise RuntimeError("lead() is for a journal that has not written yet")
        self.epoch = epoch
        if self._follow_conn is not None:
            self._follow_conn.close()
            self._follow_conn = None
        self._conn.close()
        self._conn = connect(self.dsn)

    def depose(self) -> None:
        """Refuse every later append (leadership is lost): nothing more may commit."""
        self._deposed = True

    # --------------------------------------------------- the worker threads

    def _write_loop(self) -> None:
        while (write := self._writes.get()) is not None:
            try:
                self._write(write.records)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                write.loop.call_soon_threadsafe(_settle, write.done, exc)
            else:
                write.loop.call_soon_threadsafe(_settle, write.done, None)
        self._conn.close()

    def _write(self, records: Sequence[JournalRecord]) -> None:
        if self._deposed:
            raise Fenced(f"journal {self.name}: this gateway stepped down; nothing was committed")
        last = self._last_sequence
        sequences: list[int] = []
        order_ids: list[str] = []
        bodies: list[bytes] = []
        crcs: list[int] = []
        for record in records:
            sequence = record.sequence
            if sequence <= last:
                raise ValueError(f"sequence {sequence} is not after {last}")
            body = encode_event(sequence, record.event)
            sequences.append(sequence)
            order_ids.append(record.event.order_id)
            bodies.append(body)
            crcs.append(zlib.crc32(body))
            last = sequence
        params: dict[str, object] = {
            "seq": sequences,
            "oid": order_ids,
            "body": bodies,
            "crc": crcs,
            "channel": self._channel,
        }
        statement = INSERT
        if self.epoch is not None:
            statement = INSERT_FENCED
            params["shard"] = self.shard
            params["epoch"] = self.epoch
        try:
            if self._conn.closed or self._conn.broken:
                self._conn = connect(self.dsn)
            row = self._conn.execute(statement, params, prepare=True).fetchone()
        except psycopg.errors.UniqueViolation:
            raise Fenced(
                f"journal {self.name}: sequences up to {last} were already written by "
                "another gateway"
            ) from None
        except psycopg.Error as exc:
            raise JournalUnavailable(f"journal {self.name}: commit failed: {exc}") from None
        if row is None:
            raise Fenced(
                f"journal {self.name}: the lease of shard {self.shard!r} moved past epoch "
                f"{self.epoch}; nothing was committed"
            )
        self._last_sequence = last

    def _read(self, after: int, up_to: int, limit: int) -> list[JournalRecord]:
        try:
            if self._read_conn is None or self._read_conn.closed:
                self._read_conn = connect(self.dsn)
            conn = self._read_conn
            rows = conn.execute(
                f"{SELECT_ROWS} WHERE sequence > %s AND sequence <= %s ORDER BY sequence LIMIT %s",
                (after, up_to, limit),
            ).fetchall()
            folder = _PgFolder(conn)
            records = []
            for row in rows:
                stored = decode_row(_row(row), after)
                after = stored.sequence
                records.append(folder.record(stored))
        except psycopg.Error as exc:
            self._close_reader()  # reconnect on the next read
            raise JournalUnavailable(f"journal {self.name}: read failed: {exc}") from None
        return records

    def _close_reader(self) -> None:
        if self._read_conn is not None:
            self._read_conn.close()
            self._read_conn = None


def _crc_at(conn: psycopg.Connection[tuple[Any, ...]], sequence: int) -> int | None:
    row = conn.execute("SELECT crc FROM journal_events WHERE sequence = %s", (sequence,)).fetchone()
    return int(row[0]) if row is not None else None


def iter_records(
    dsn: str,
    *,
    order_id: str | None = None,
    from_sequence: int | None = None,
    to_sequence: int | None = None,
) -> Iterator[JournalRecord]:
    """Yield a PostgreSQL journal's records for ``order_id`` and/or in [from, to], in order.

    ``gateway journal show --journal URL``: a read-only transaction, safe
    while the gateway runs; nothing is migrated or changed. Raise
    ``IncompatibleJournal`` for a newer schema, ``JournalUnavailable`` if
    the database cannot be read.
    """
    conditions: list[str] = ["TRUE"]
    args: list[object] = []
    if order_id is not None:
        conditions.append("order_id = %s")
        args.append(order_id)
    if from_sequence is not None:
        conditions.append("sequence >= %s")
        args.append(from_sequence)
    if to_sequence is not None:
        conditions.append("sequence <= %s")
        args.append(to_sequence)
    where = " AND ".join(conditions)
    name = redact(dsn)
    try:
        with connect(dsn) as conn, connect(dsn) as folding, conn.transaction():
            conn.execute("SET TRANSACTION READ ONLY")
            version = conn.execute("SELECT to_regclass('gateway_schema') IS NOT NULL").fetchone()
            if not version or not version[0]:
                return  # never written
            found = conn.execute("SELECT max(version) FROM gateway_schema").fetchone()
            if found is not None and found[0] is not None:
                pg_schema.check_version(int(found[0]))
            cursor = conn.cursor(name="journal_show")
            cursor.execute(f"{SELECT_ROWS} WHERE {where} ORDER BY sequence", args)
            folder = _PgFolder(folding)
            previous = 0
            for row in cursor:
                stored = decode_row(_row(row), previous)
                previous = stored.sequence
                yield folder.record(stored)
    except psycopg.Error as exc:
        raise JournalUnavailable(f"journal {name}: {exc}") from None
