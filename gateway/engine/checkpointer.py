"""Checkpoints of the order table, written in the background.

After a commit, once ``checkpoint_every`` events have been journaled since
the last checkpoint, the actor hands the committed table to a worker thread
that encodes it and replaces the checkpoint file atomically (see
``gateway.journal.checkpoint``). The table's orders are immutable, so the
hand-over is two shallow copies on the event loop; the encoding and the
fsyncs run on the thread. One checkpoint at a time; a failed one is logged
and retried later, never fatal: the journal alone is the truth.

A checkpoint costs time in proportion to the whole table, so they are also
spaced by at least ten times the last one's duration: checkpointing takes at
most a tenth of a core however busy the gateway is.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

from gateway.domain import Order
from gateway.domain.controls import ControlState
from gateway.engine.ledger import Ledger
from gateway.journal import Journal
from gateway.journal.order_index import AccountIndex

log = logging.getLogger(__name__)

# Spacing: at least this many times the last checkpoint's duration between two.
_DUTY = 10.0


class Checkpointer:
    """Decides when to checkpoint and runs one write at a time, off the loop."""

    def __init__(self, journal: Journal, ledger: Ledger, every: int) -> None:
        self._journal = journal
        self._ledger = ledger
        self._every = every
        self._last = 0  # sequence of the newest checkpoint (or what start-up loaded)
        self._not_before = 0.0  # monotonic time
        self._task: asyncio.Task[None] | None = None
        self.written = 0

    def loaded(self, sequence: int) -> None:
        """Start-up restored the table from a checkpoint at ``sequence``."""
        self._last = sequence

    def after_commit(self) -> None:
        """Called after each commit: start a checkpoint if one is due."""
        if not self._every or self._ledger.committed - self._last < self._every:
            return
        if (self._task is not None and not self._task.done()) or (
            time.monotonic() < self._not_before
        ):
            return
        self._start()

    async def close(self, *, final: bool) -> None:
        """Wait for a checkpoint in progress; with ``final``, write one of what is newer."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        if final and self._every and self._ledger.committed > self._last:
            self._start()
            if self._task is not None:
                await asyncio.gather(self._task, return_exceptions=True)

    def _start(self) -> None:
        snapshot = self._ledger.snapshot()
        if snapshot is None:
            return  # changes in flight: the next commit tries again
        sequence, orders, exec_ids, accounts = snapshot
        controls = self._ledger.controls.snapshot()
        self._task = asyncio.create_task(
            self._write(sequence, orders, exec_ids, accounts, controls), name="journal-checkpoint"
        )

    async def _write(
        self,
        sequence: int,
        orders: list[Order],
        exec_ids: dict[str, tuple[str, ...]],
        accounts: Iterable[AccountIndex],
        controls: ControlState,
    ) -> None:
        started = time.monotonic()
        try:
            size = await asyncio.to_thread(
                self._journal.save_checkpoint, sequence, orders, exec_ids, accounts, controls
            )
        except Exception:
            log.exception("checkpoint at sequence %d failed; start-up replays more", sequence)
            self._not_before = time.monotonic() + 60.0
            return
        took = time.monotonic() - started
        self._last = sequence
        self._not_before = started + _DUTY * took
        self.written += 1
        log.info(
            "checkpoint at sequence %d: %d orders, %d bytes in %.2fs",
            sequence,
            len(orders),
            size,
            took,
        )
