"""A client-side limit on one Alpaca account's REST calls, orders ahead of questions.

Alpaca allows a number of calls per minute per account (200 by default) and
answers 429 beyond it. Asking for a few hundred orders one by one used to
run into that, and the 429s counted as broker trouble. This limiter spends
calls from a token bucket that refills at the allowed rate, and corrects
itself from what Alpaca says on every answer (``X-RateLimit-Limit``,
``-Remaining``, ``-Reset``): the account's budget is shared with anything
else using the keys, so the venue's count wins over ours.

Two classes of call: ``ORDER`` (submits and cancels) and ``QUERY``
(reconciliation, lookups). Questions leave a reserve of the bucket to
orders and wait while an order waits, so a reconciliation pass never delays
order entry. Nothing is ever refused: a caller waits for its turn (bounded
by its own timeout, as every broker call is).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping
from enum import Enum


class Priority(Enum):
    ORDER = "order"
    QUERY = "query"


# Alpaca's documented default, used until an answer says otherwise.
DEFAULT_PER_MINUTE = 200
_RECHECK = 0.25


class RateLimiter:
    """A token bucket of ``per_minute`` calls with a share held back for orders."""

    def __init__(
        self,
        per_minute: int = DEFAULT_PER_MINUTE,
        *,
        order_reserve: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if per_minute < 1 or not 0 <= order_reserve < 1:
            raise ValueError("need per_minute >= 1 and 0 <= order_reserve < 1")
        self._clock = clock
        self._wall = wall
        self._reserve_share = order_reserve
        self._limit = float(per_minute)
        self._tokens = float(per_minute)
        self._refilled_at = clock()
        self._blocked_until = 0.0
        self._orders_waiting = 0
        self.waits = 0  # calls that had to wait: a gauge for tests and metrics

    @property
    def limit(self) -> int:
        return int(self._limit)

    @property
    def tokens(self) -> float:
        self._refill()
        return self._tokens

    async def acquire(self, priority: Priority) -> None:
        """Wait until a call of ``priority`` may go out, and count it."""
        waited = False
        if priority is Priority.ORDER:
            self._orders_waiting += 1
        try:
            while True:
                delay = self._try_take(priority)
                if delay <= 0:
                    return
                if not waited:
                    waited = True
                    self.waits += 1
                # Look again at least this often: an answer may have moved
                # the window meanwhile (a reset, a new limit).
                await asyncio.sleep(min(delay, _RECHECK))
        finally:
            if priority is Priority.ORDER:
                self._orders_waiting -= 1

    def observe(self, status: int, headers: Mapping[str, str]) -> None:
        """Learn from an answer: Alpaca's count of the window, and a 429's wait."""
        lowered = {k.lower(): v for k, v in headers.items()}
        limit = _number(lowered.get("x-ratelimit-limit"))
        remaining = _number(lowered.get("x-ratelimit-remaining"))
        reset = _number(lowered.get("x-ratelimit-reset"))
        self._refill()
        if limit is not None and limit >= 1:
            self._limit = limit
            self._tokens = min(self._tokens, limit)
        if remaining is not None:
            self._tokens = min(self._tokens, remaining)
        if status == 429 or remaining == 0:
            # Out of calls until the window resets (epoch seconds); without a
            # usable reset, a second, as Alpaca's windows are short.
            wait = 1.0 if reset is None else reset - self._wall()
            self._blocked_until = max(self._blocked_until, self._clock() + min(max(wait, 0.0), 60))
            self._tokens = 0.0

    # ------------------------------------------------------------ internals

    def _refill(self) -> None:
        now = self._clock()
        rate = self._limit / 60.0
        self._tokens = min(self._limit, self._tokens + (now - self._refilled_at) * rate)
        self._refilled_at = now

    def _try_take(self, priority: Priority) -> float:
        """Take a token and return 0, or return how long to wait before trying again."""
        self._refill()
        now = self._clock()
        if now < self._blocked_until:
            return self._blocked_until - now
        floor = 0.0
        if priority is Priority.QUERY:
            if self._orders_waiting:
                return 0.01  # an order goes first
            floor = math.floor(self._limit * self._reserve_share)
        if self._tokens >= 1 + floor:
            self._tokens -= 1
            return 0.0
        return (1 + floor - self._tokens) / (self._limit / 60.0)


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
