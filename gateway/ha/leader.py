"""Leadership of a shard: stand by until the lease is ours, then keep it or step down.

A gateway on the PostgreSQL journal starts as a standby: it recovers its
table from the journal, then alternates between trying to take the lease and
following the journal (``LISTEN`` on the shard's channel, then reading the
records after its last sequence), so its table stays warm. Once it holds
the lease, every journal write it makes is fenced by its epoch, and
``keep`` renews the lease every third of its length. A leader that has not
renewed for ``step_down_after`` (0.8 of the lease, counted from the start of
its last successful renewal, so before the server can let the lease go)
steps down: it stops taking orders, and its process exits to be restarted
as a standby. One whose renewal finds another epoch steps down at once.

The checks run after every sleep, so a process paused past its lease
(SIGSTOP, a long GC or VM pause) steps down as soon as it runs again; any
commit it attempts meanwhile is refused by the fence.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from gateway.ha.config import PostgresConfig
from gateway.ha.lease import Lease
from gateway.journal.postgres import JournalUnavailable, connect, notify_channel

log = logging.getLogger(__name__)

POLL_MAX = 0.5
"""Most seconds between tries for the lease: a standby takes over within this of its expiry."""


class Leadership:
    """One gateway's side of its shard's lease."""

    def __init__(
        self,
        settings: PostgresConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        holder: str | None = None,
    ) -> None:
        assert settings.url is not None
        self.settings = settings
        self.lease = Lease(settings.url, settings.shard, settings.lease, holder)
        self.epoch: int | None = None
        self.deposed = False
        self._clock = clock
        self._renewed_at = 0.0
        self._poll = min(POLL_MAX, settings.lease / 10)
        self._listener: psycopg.Connection[tuple[Any, ...]] | None = None

    @property
    def holder(self) -> str:
        return self.lease.holder

    async def acquire(self, catch_up: Callable[[], Awaitable[None]]) -> int:
        """Stand by until the lease is ours; return its epoch.

        Between tries, waits for a commit notification (or ``_poll``
        seconds) and calls ``catch_up`` to follow the journal. A database
        that is away is waited for, never fatal.
        """
        seen: object = None  # what was last logged: the holder, or the outage
        while True:
            started = self._clock()
            try:
                epoch = await asyncio.to_thread(self.lease.try_acquire)
                current = None if epoch is not None else await asyncio.to_thread(self.lease.current)
            except JournalUnavailable as exc:
                epoch = current = None
                if seen != "away":
                    log.warning("standing by: the journal database is away (%s)", exc)
                    seen = "away"
            if epoch is not None:
                self.epoch = epoch
                self._renewed_at = started
                self._close_listener()
                log.info(
                    "leader of shard %r with epoch %d (holder %s)",
                    self.settings.shard,
                    epoch,
                    self.holder,
                )
                return epoch
            if current is not None and current[:2] != seen:
                seen = current[:2]
                log.info(
                    "standing by for shard %r: held by %s (epoch %d, %.1fs left)",
                    self.settings.shard,
                    current[1],
                    current[0],
                    max(current[2], 0.0),
                )
            await asyncio.to_thread(self._wait_for_commit, self._poll)
            try:
                await catch_up()
            except JournalUnavailable as exc:
                log.debug("standby: cannot follow the journal yet: %s", exc)

    async def keep(self, step_down: Callable[[str], None]) -> None:
        """Renew the lease until it is lost; then call ``step_down(reason)`` once and return.

        The deadline (``step_down_after`` past the start of the last good
        renewal) is watched on its own: a renewal still waiting for the
        server is abandoned at the deadline, so the leader never runs past
        it unrenewed, however slow the database.
        """
        epoch = self.epoch
        assert epoch is not None
        interval = self.settings.renew_interval
        limit = self.settings.step_down_after
        next_try = self._renewed_at + interval
        while True:
            now = self._clock()
            deadline = self._renewed_at + limit
            if now >= deadline:
                self._lose(step_down, f"lease not renewed for {limit:.1f}s")
                return
            if now < next_try:
                await asyncio.sleep(min(next_try, deadline) - now)
                continue
            next_try = now + interval
            try:
                renewal = asyncio.to_thread(self.lease.renew, epoch)
                kept = await asyncio.wait_for(renewal, deadline - now)
            except (JournalUnavailable, TimeoutError) as exc:
                shard = self.settings.shard
                log.warning("lease of shard %r not renewed: %s", shard, exc or "timeout")
                continue
            if not kept:
                self._lose(step_down, f"the lease moved past epoch {epoch}")
                return
            # The server extended the lease from its commit, after ``now``.
            self._renewed_at = now

    def release(self) -> None:
        """Hand the lease over now (a clean stop); blocking. Nothing if not held."""
        if self.epoch is not None and not self.deposed:
            try:
                self.lease.release(self.epoch)
                log.info("lease of shard %r released", self.settings.shard)
            except JournalUnavailable as exc:
                log.warning("lease not released (a standby waits for it to expire): %s", exc)
        self.lease.close()
        self._close_listener()

    def _lose(self, step_down: Callable[[str], None], reason: str) -> None:
        self.deposed = True
        log.critical("stepping down as leader of shard %r: %s", self.settings.shard, reason)
        step_down(reason)

    def _wait_for_commit(self, timeout: float) -> None:
        """Block until the leader announces a commit, or ``timeout`` seconds."""
        try:
            if self._listener is None or self._listener.closed:
                assert self.settings.url is not None
                self._listener = connect(self.settings.url)
                self._listener.execute(f'LISTEN "{notify_channel(self.settings.shard)}"')
            for _ in self._listener.notifies(timeout=timeout, stop_after=1):
                pass
        except (psycopg.Error, JournalUnavailable):
            self._close_listener()
            time.sleep(timeout)  # the database is away: do not spin

    def _close_listener(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
