"""The order event log: a protocol and its stores."""

from gateway.journal.base import Journal, JournalRecord
from gateway.journal.memory import MemoryJournal

__all__ = ["Journal", "JournalRecord", "MemoryJournal"]
