"""Broker health: a circuit breaker over every broker call.

Closed (healthy) until ``threshold`` consecutive calls fail with transient
errors (a rate-limit refusal is not one: the broker answered); then open:
new orders fail fast with UNAVAILABLE instead of piling up behind a dead
broker, while status reads, lists and streams go on from
the order table. Any successful call (a reconciliation probe, a report from
the stream) closes it again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from gateway.brokers import BrokerRateLimited, BrokerTransientError

log = logging.getLogger(__name__)


class BrokerHealth:
    """Counts consecutive transient failures; tells listeners when health flips."""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.healthy = True
        self.consecutive_failures = 0
        self.last_error = ""
        self._listeners: list[Callable[[bool], None]] = []

    def subscribe(self, listener: Callable[[bool], None]) -> None:
        """Call ``listener(healthy)`` whenever health flips."""
        self._listeners.append(listener)

    def record(self, error: BaseException | None) -> None:
        """Record one broker call's outcome (None: it succeeded)."""
        if error is None or isinstance(error, BrokerRateLimited):
            # A 429 is the broker answering "not so fast": up, not down. Counted
            # as a failure it would open the breaker, whose probes add calls.
            self.consecutive_failures = 0
            self._set(True)
        elif isinstance(error, BrokerTransientError):
            self.consecutive_failures += 1
            self.last_error = str(error) or type(error).__name__
            if self.consecutive_failures >= self.threshold:
                self._set(False)
        # A permanent error (a rejection) means the broker is up and answering.
        else:
            self.consecutive_failures = 0
            self._set(True)

    def _set(self, healthy: bool) -> None:
        if healthy == self.healthy:
            return
        self.healthy = healthy
        if healthy:
            log.warning("broker healthy again")
        else:
            log.error(
                "broker unhealthy after %d consecutive failures (%s): new orders refused",
                self.consecutive_failures,
                self.last_error,
            )
        for listener in self._listeners:
            listener(healthy)
