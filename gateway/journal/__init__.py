"""The order event log: a protocol and its stores."""

from gateway.journal.base import Journal, JournalRecord
from gateway.journal.codec import CorruptRecord, IncompatibleJournal, JournalError
from gateway.journal.memory import MemoryJournal
from gateway.journal.sqlite import RecoveryReport, SqliteJournal

__all__ = [
    "CorruptRecord",
    "IncompatibleJournal",
    "Journal",
    "JournalError",
    "JournalRecord",
    "MemoryJournal",
    "RecoveryReport",
    "SqliteJournal",
]
