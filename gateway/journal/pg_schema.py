"""The PostgreSQL journal's schema: versioned migrations, applied at start.

``gateway_schema`` holds one row, the schema version. Starting a gateway
applies, in one transaction, every migration after the stored version,
under a transaction-scoped advisory lock so that two gateways starting at
once do not both migrate. A database whose version is newer than this
code knows was written by a newer gateway and is refused, unchanged, with
``IncompatibleJournal`` (as SQLite's format version is).

A migration is only ever appended to ``MIGRATIONS``; one that shipped is
never edited, because databases already at its version never run it again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.journal.codec import CorruptRecord, IncompatibleJournal

if TYPE_CHECKING:
    import psycopg

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE journal_events (
            sequence bigint PRIMARY KEY,
            order_id text NOT NULL,
            body bytea NOT NULL,
            crc bigint NOT NULL
        );
        CREATE INDEX journal_events_by_order ON journal_events (order_id, sequence);
        -- One row: the newest checkpoint of the order table (see checkpoint.py).
        CREATE TABLE journal_checkpoint (
            slot smallint PRIMARY KEY CHECK (slot = 1),
            sequence bigint NOT NULL,
            body bytea NOT NULL,
            saved_at timestamptz NOT NULL DEFAULT now()
        );
        -- A shard's leadership: whoever holds the newest epoch may write.
        CREATE TABLE gateway_leases (
            shard text PRIMARY KEY,
            epoch bigint NOT NULL,
            holder text NOT NULL,
            expires_at timestamptz NOT NULL
        );
        """,
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]
# Any constant both gateways agree on: it serializes migrations, nothing else.
_MIGRATION_LOCK = 0x67_77_6A_6F_75_72  # "gwjour"


def migrate(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    """Bring the schema to ``SCHEMA_VERSION``; return the version found before (0: empty).

    Raise ``IncompatibleJournal`` (changing nothing) for a newer schema.
    ``conn`` must be in autocommit mode; this opens its own transaction.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS gateway_schema (version integer NOT NULL)")
        rows = conn.execute("SELECT version FROM gateway_schema").fetchall()
        if len(rows) > 1:
            raise CorruptRecord(f"gateway_schema holds {len(rows)} rows; expected one")
        found = int(str(rows[0][0])) if rows else 0
        check_version(found)
        for version, statements in MIGRATIONS:
            if version > found:
                conn.execute(statements.encode())
        if not rows:
            conn.execute("INSERT INTO gateway_schema (version) VALUES (%s)", (SCHEMA_VERSION,))
        elif found < SCHEMA_VERSION:
            conn.execute("UPDATE gateway_schema SET version = %s", (SCHEMA_VERSION,))
    return found


def check_version(found: int) -> None:
    """Raise ``IncompatibleJournal`` if ``found`` is newer than this code knows."""
    if found > SCHEMA_VERSION:
        raise IncompatibleJournal(
            f"the journal database's schema is version {found}, written by a newer "
            f"gateway; this one knows up to version {SCHEMA_VERSION}. Run the newer "
            "version, or point --journal at another database."
        )
