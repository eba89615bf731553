"""``gateway journal migrate``: rewrite a journal's older records in the current format.

A gateway reads records of formats 1 and 2 as they are, so migrating is never
required; it shrinks a journal written before format 3 (about 880 bytes a
record) to event-only records (about 100) and makes its reads uniform. Offline
and one-shot: it needs the data directory's lock (the gateway stopped), writes
a new file beside the old one, checks it, then swaps them; the old file is
kept as ``journal.db.format-<N>-<UTC time>``. Every record keeps its sequence,
and the sequence floor is carried over. A crash at any point leaves the old
journal in place (an unfinished new file is removed on the next start).
"""

from __future__ import annotations

import os
import sqlite3
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gateway.journal import checkpoint as checkpoints
from gateway.journal.codec import CorruptRecord
from gateway.journal.records import FORMAT_VERSION, encode_event
from gateway.journal.sqlite import (
    INSERT_ROW,
    JournalDamaged,
    connect_read_only,
    create_schema,
    decode_row,
    fsync_dir,
    iter_rows,
    read_format_version,
    read_sequence_floor,
    remove_with_side_files,
)


@dataclass(frozen=True, slots=True)
class Migration:
    """What ``migrate`` did."""

    from_version: int
    records: int
    bytes_before: int
    bytes_after: int
    kept_as: Path | None


def migrate(path: Path) -> Migration:
    """Rewrite the journal at ``path`` in the current format (see the module docstring).

    Raise ``JournalDamaged`` if a record does not read (salvage it first).
    The caller holds the data directory's lock.
    """
    # Fold the WAL into the file first: the old file is kept as it is, whole.
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        writer.close()
    conn = connect_read_only(path)
    try:
        version = read_format_version(conn) or FORMAT_VERSION
        floor = read_sequence_floor(conn)
    finally:
        conn.close()
    size = path.stat().st_size
    if version == FORMAT_VERSION and not _has_old_records(path):
        return Migration(version, 0, size, size, None)
    target = path.with_name(f"{path.name}.migrate")
    remove_with_side_files(target)
    count = _rewrite(path, target, floor)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    kept = path.with_name(f"{path.name}.format-{version}-{stamp}")
    os.link(path, kept)
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)  # folded into the file: it was closed
    os.replace(target, path)
    # Its anchor's checksum changed with the record's encoding: the next start replays.
    checkpoints.discard(checkpoints.checkpoint_path(path))
    fsync_dir(path.parent)
    return Migration(version, count, size, path.stat().st_size, kept)


def _has_old_records(path: Path) -> bool:
    conn = connect_read_only(path)
    try:
        row = conn.execute("SELECT 1 FROM events WHERE substr(body, 1, 1) = '{' LIMIT 1")
        return row.fetchone() is not None
    finally:
        conn.close()


def _rewrite(source: Path, target: Path, floor: int) -> int:
    src = connect_read_only(source)
    dst = sqlite3.connect(target, isolation_level=None)
    count = previous = 0
    try:
        dst.execute("PRAGMA synchronous=FULL")
        create_schema(dst, floor)
        dst.execute("BEGIN IMMEDIATE")
        try:
            for row in iter_rows(src):
                stored = decode_row(row, previous)
                previous = stored.sequence
                body = encode_event(stored.sequence, stored.event)
                dst.execute(
                    INSERT_ROW,
                    (stored.sequence, stored.event.order_id, body, zlib.crc32(body)),
                )
                count += 1
        except CorruptRecord as exc:
            raise JournalDamaged(source, str(exc)) from None
        dst.execute("COMMIT")
    except BaseException:
        dst.close()
        remove_with_side_files(target)
        raise
    finally:
        src.close()
    dst.close()
    return count
