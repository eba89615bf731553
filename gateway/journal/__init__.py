"""The order event log: a protocol and its stores."""

from gateway.journal.base import Journal, JournalRecord, StoredEvent
from gateway.journal.codec import CorruptRecord, IncompatibleJournal, JournalError
from gateway.journal.memory import MemoryJournal
from gateway.journal.sqlite import JournalDamaged, RecoveryReport, SqliteJournal

__all__ = [
    "CorruptRecord",
    "IncompatibleJournal",
    "Journal",
    "JournalDamaged",
    "JournalError",
    "JournalRecord",
    "MemoryJournal",
    "RecoveryReport",
    "SqliteJournal",
    "StoredEvent",
]
