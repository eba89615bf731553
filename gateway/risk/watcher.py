"""The limits file, reloaded when it changes; a bad version keeps the last good limits.

Polls the file's identity (modification time, size, inode) on a timer: it
catches an edit in place, an atomic rename over the file, and a
ConfigMap's symlink swap alike, with no platform-specific watcher.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from gateway.risk.limits import NO_LIMITS, RiskLimits
from gateway.risk.loader import LimitsFileError, load_limits

log = logging.getLogger(__name__)

_Signature = tuple[int, int, int]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class LimitsFile:
    """The limits in force, from ``path``, and how the latest load went."""

    def __init__(
        self,
        path: Path,
        on_change: Callable[[RiskLimits], None],
        *,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.path = path
        self._on_change = on_change
        self._clock = clock
        self.limits: RiskLimits = NO_LIMITS
        self.loaded_at: datetime | None = None
        self.last_error = ""
        """Why the file's latest version was refused ("" once a version loads)."""
        self.reloads = 0
        self.failures = 0
        self._signature: _Signature | None = None

    @property
    def healthy(self) -> bool:
        """Whether the limits in force are the file's latest version."""
        return not self.last_error

    def load(self) -> RiskLimits:
        """Load the file at start: raise ``LimitsFileError`` if it is bad (no last good yet)."""
        self._signature = self._stat()
        limits = load_limits(self.path)
        self._use(limits)
        return limits

    def poll(self) -> bool:
        """Reload if the file changed; return whether new limits took effect."""
        try:
            signature = self._stat()
        except LimitsFileError as exc:
            # Gone (or unreadable): said once, not on every poll, until it is back.
            if self._signature is not None or not self.last_error:
                self._refuse(str(exc))
            self._signature = None
            return False
        if signature == self._signature:
            return False
        self._signature = signature
        try:
            limits = load_limits(self.path)
        except LimitsFileError as exc:
            self._refuse(str(exc))
            return False
        self.reloads += 1
        self._use(limits)
        log.info("risk limits reloaded from %s", self.path)
        return True

    async def watch(self, interval: float) -> None:
        """Poll every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                self.poll()
            except Exception:  # a bug here must not stop reloads for good
                log.exception("risk limits reload failed")

    def _use(self, limits: RiskLimits) -> None:
        self.limits = limits
        self.loaded_at = self._clock()
        self.last_error = ""
        self._on_change(limits)

    def _refuse(self, why: str) -> None:
        self.failures += 1
        self.last_error = why
        log.error("risk limits file refused, the last good limits stay in force: %s", why)

    def _stat(self) -> _Signature:
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise LimitsFileError(f"{self.path}: {exc.strerror or exc}") from None
        return (st.st_mtime_ns, st.st_size, st.st_ino)
