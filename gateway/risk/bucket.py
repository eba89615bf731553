"""A token bucket: at most ``burst`` at once, refilled at ``rate`` per second."""

from __future__ import annotations

import math
from decimal import Decimal


class TokenBucket:
    """Tokens refill continuously; each order takes one."""

    __slots__ = ("_last", "_tokens", "burst", "rate")

    def __init__(self, rate: Decimal, burst: int | None, now: float) -> None:
        self.rate = float(rate)  # seconds are floats (monotonic clock); money never is
        self.burst = burst if burst is not None else max(1, math.ceil(rate))
        self._tokens = float(self.burst)
        self._last = now

    def take(self, now: float) -> bool:
        """Take one token if there is one; return whether there was."""
        elapsed = max(0.0, now - self._last)
        self._last = now
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
