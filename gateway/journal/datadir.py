"""The data directory: where the journal lives, owned by one gateway at a time.

Two gateways appending to one journal would interleave sequences and
corrupt both order tables, so a gateway holds an exclusive lock on the
directory for as long as it runs (an advisory ``flock``, released by the
kernel even on ``kill -9``).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

JOURNAL_FILE = "journal.db"
LOCK_FILE = "gateway.lock"


class DataDirBusy(Exception):
    """Another process holds the data directory."""


class DataDir:
    """A data directory, locked while this object holds it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_fd: int | None = None

    @property
    def journal_path(self) -> Path:
        return self.path / JOURNAL_FILE

    def acquire(self) -> None:
        """Create the directory if needed and lock it; raise DataDirBusy if taken."""
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DataDirBusy(
                f"data dir {self.path} is in use by another gateway (pid {holder})"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def release(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None
