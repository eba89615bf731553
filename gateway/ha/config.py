"""Settings of the PostgreSQL journal and of leadership (``--journal``, ``--shard``, ``--lease``).

Plain values: loads without psycopg (tests/unit/test_config_imports.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.shards import SHARD_NAME


@dataclass(frozen=True, slots=True)
class PostgresConfig:
    """Where the journal lives when it is not SQLite, and how leadership is held."""

    url: str | None = None
    """Keep the journal in PostgreSQL at this URL (postgresql://USER@HOST:PORT/DB) instead
    of SQLite under --data-dir, with a lease per shard: gateways started on the same
    database and shard elect one leader, the others stand by (docs/operations.md). Put
    the password in PGPASSWORD or a PGPASSFILE, not in the URL: a command line is
    visible to every user of the machine."""

    shard: str = "default"
    """The shard whose lease this gateway holds or waits for: ``--shard``'s, else "default"."""

    lease: float = 5.0
    """Seconds a leader's lease lasts unless renewed (a third of it between renewals).

    A standby takes over within about this long after the leader dies; a leader
    that cannot renew stops taking orders before it can run out."""

    def __post_init__(self) -> None:
        if self.url is not None and not self.url.startswith(("postgresql://", "postgres://")):
            raise ValueError("--journal: a postgresql:// URL")
        if not SHARD_NAME.fullmatch(self.shard):
            raise ValueError(f"--shard: a-z, 0-9 and - (at most 63), not {self.shard!r}")
        if not self.lease >= 1.0:
            raise ValueError(f"--lease: at least 1 second, not {self.lease}")

    @property
    def renew_interval(self) -> float:
        """Seconds between renewals: three tries before the lease can run out."""
        return self.lease / 3

    @property
    def step_down_after(self) -> float:
        """Seconds after the last renewal's start at which an unrenewed leader stops.

        Before the lease ends on the server (which counts from a later
        instant, the renewal's commit), with a margin for clock rate drift.
        """
        return self.lease * 0.8
