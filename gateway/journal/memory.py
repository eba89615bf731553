"""An in-memory journal: for tests, and for users who want no persistence."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

from gateway.journal.base import JournalRecord


class MemoryJournal:
    """Keeps every record in a list; "durable" for the life of the process."""

    def __init__(self, records: Iterable[JournalRecord] = ()) -> None:
        self._records: list[JournalRecord] = list(records)
        self._sequences: list[int] = [r.sequence for r in self._records]

    def replay(self) -> Iterable[JournalRecord]:
        return list(self._records)

    async def append(self, records: Sequence[JournalRecord]) -> None:
        for record in records:
            if self._sequences and record.sequence <= self._sequences[-1]:
                raise ValueError(f"sequence {record.sequence} is not after {self._sequences[-1]}")
            self._records.append(record)
            self._sequences.append(record.sequence)

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
