"""An in-memory journal: for tests, and for users who want no persistence."""

from __future__ import annotations

import bisect
from collections.abc import Collection, Iterable, Sequence

from gateway.domain import Order
from gateway.domain.controls import ControlState
from gateway.journal import checkpoint as checkpoints
from gateway.journal.base import JournalRecord, StoredEvent
from gateway.journal.checkpoint import Checkpoint
from gateway.journal.order_index import AccountIndex


class MemoryJournal:
    """Keeps every record in a list; "durable" for the life of the process."""

    def __init__(self, records: Iterable[JournalRecord] = ()) -> None:
        self._records: list[JournalRecord] = list(records)
        self._sequences: list[int] = [r.sequence for r in self._records]
        self._by_order: dict[str, list[JournalRecord]] = {}
        for record in self._records:
            self._by_order.setdefault(record.event.order_id, []).append(record)
        # Encoded as a file would be, so tests exercise the real format.
        self.checkpoint: bytes | None = None

    def replay(self, after_sequence: int = 0) -> Iterable[JournalRecord]:
        return self._records[bisect.bisect_right(self._sequences, after_sequence) :]

    def load_checkpoint(self) -> Checkpoint | None:
        if self.checkpoint is None:
            return None
        try:
            found = checkpoints.decode(self.checkpoint)
        except ValueError:
            return None
        at = bisect.bisect_left(self._sequences, found.sequence)
        if at == len(self._sequences) or self._sequences[at] != found.sequence:
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
        self.checkpoint = checkpoints.encode(
            Checkpoint(sequence, 0, orders, exec_ids, list(accounts), controls or ControlState())
        )
        return len(self.checkpoint)

    def order_events(
        self, order_ids: Collection[str]
    ) -> dict[str, list[StoredEvent | JournalRecord]]:
        by_order = self._by_order
        return {i: list(by_order[i]) for i in order_ids if i in by_order}

    async def append(self, records: Sequence[JournalRecord]) -> None:
        for record in records:
            if self._sequences and record.sequence <= self._sequences[-1]:
                raise ValueError(f"sequence {record.sequence} is not after {self._sequences[-1]}")
            self._records.append(record)
            self._sequences.append(record.sequence)
            self._by_order.setdefault(record.event.order_id, []).append(record)

    async def read(self, after_sequence: int, up_to: int, limit: int) -> list[JournalRecord]:
        start = bisect.bisect_right(self._sequences, after_sequence)
        stop = bisect.bisect_right(self._sequences, up_to, lo=start)
        return self._records[start : min(stop, start + limit)]

    async def close(self) -> None:
        return None

    @property
    def last_sequence(self) -> int:
        return self._sequences[-1] if self._sequences else 0

    @property
    def records(self) -> list[JournalRecord]:
        """Every record so far (a copy), for tests and inspection."""
        return list(self._records)
