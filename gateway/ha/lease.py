"""A shard's lease in PostgreSQL: one row with an epoch, a holder and an expiry.

Why a lease row rather than an advisory lock held by the writing session:
an advisory lock lives and dies with one connection, so a leader whose
connection drops for a moment (a PostgreSQL restart, a failover of a
managed database, a NAT timeout) loses leadership at once and nothing
tells it when; and it fences nothing by itself, since a write from another
connection of the same process passes. The row gives every leadership an
*epoch* that each journal write checks in the same statement (see
``gateway.journal.postgres``), an expiry that both sides measure on the
server's clock, and a holder name for operators (``SELECT * FROM
gateway_leases``).

- ``try_acquire``: take the lease if it is free or has expired, with the
  next epoch. The insert-or-update is one statement, so two standbys racing
  for it cannot both win.
- ``renew``: push the expiry out, only while the epoch is still ours.
- ``release``: expire it now (a clean stop hands over at once).

Every call is blocking (one short statement): run it off the event loop.
"""

from __future__ import annotations

import os
import secrets
import socket
from typing import Any

import psycopg

from gateway.journal.postgres import JournalUnavailable, connect

ACQUIRE = """
INSERT INTO gateway_leases AS lease (shard, epoch, holder, expires_at)
VALUES (%(shard)s, 1, %(holder)s, now() + %(seconds)s * interval '1 second')
ON CONFLICT (shard) DO UPDATE
    SET epoch = lease.epoch + 1, holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
    WHERE lease.expires_at < now()
RETURNING epoch
"""
RENEW = """
UPDATE gateway_leases SET expires_at = now() + %(seconds)s * interval '1 second'
WHERE shard = %(shard)s AND epoch = %(epoch)s
RETURNING epoch
"""
RELEASE = """
UPDATE gateway_leases SET expires_at = now() - interval '1 second'
WHERE shard = %(shard)s AND epoch = %(epoch)s
"""
SHOW = """
SELECT epoch, holder, extract(epoch FROM expires_at - now())::float8
FROM gateway_leases WHERE shard = %(shard)s
"""


def new_holder_name() -> str:
    """This process's name in the lease row: host, pid and a random tag (pids repeat)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Lease:
    """The lease of ``shard`` in the journal's database, as seen by ``holder``."""

    def __init__(self, dsn: str, shard: str, seconds: float, holder: str | None = None) -> None:
        self.dsn = dsn
        self.shard = shard
        self.seconds = seconds
        self.holder = holder or new_holder_name()
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None

    def try_acquire(self) -> int | None:
        """Take the lease if it is free or expired; return the new epoch, or None if held."""
        row = self._one(ACQUIRE, {"shard": self.shard, "holder": self.holder})
        return None if row is None else int(row[0])

    def renew(self, epoch: int) -> bool:
        """Extend the lease of ``epoch``; False if another epoch holds it now."""
        return self._one(RENEW, {"shard": self.shard, "epoch": epoch}) is not None

    def release(self, epoch: int) -> None:
        """Expire the lease of ``epoch`` now, so a standby need not wait it out."""
        self._one(RELEASE, {"shard": self.shard, "epoch": epoch}, returns=False)

    def current(self) -> tuple[int, str, float] | None:
        """(epoch, holder, seconds left) of the lease, or None if never taken; for logs."""
        row = self._one(SHOW, {"shard": self.shard})
        return None if row is None else (int(row[0]), str(row[1]), float(row[2]))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _one(
        self, statement: str, params: dict[str, object], *, returns: bool = True
    ) -> tuple[Any, ...] | None:
        """Run one statement; raise ``JournalUnavailable`` (and reconnect next time) on failure."""
        params["seconds"] = self.seconds
        try:
            if self._conn is None or self._conn.closed:
                # A statement that hangs longer than a renewal interval is as good as failed.
                timeout_ms = max(500, int(self.seconds * 1000 / 3))
                self._conn = connect(self.dsn, options=f"-c statement_timeout={timeout_ms}")
            cursor = self._conn.execute(statement, params)
            return cursor.fetchone() if returns else None
        except psycopg.Error as exc:
            self.close()
            raise JournalUnavailable(f"lease of shard {self.shard!r}: {exc}") from None
