"""Errors a broker adapter raises; the engine decides what each means.

They split by what the gateway knows afterwards: the venue said no
(``BrokerRejected``, permanent), the request never got there
(``BrokerUnavailable``, transient, safe to resend), or nobody knows
(``BrokerTimeout``, transient, ask before resending).
"""

from __future__ import annotations


class BrokerError(Exception):
    """Root of the errors raised below the broker boundary."""


class BrokerRejected(BrokerError):
    """The venue refused the request; retrying the same request will not help."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BrokerTransientError(BrokerError):
    """A failure that may pass; ``retry_after`` (seconds) if the venue said."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BrokerUnavailable(BrokerTransientError):
    """The request certainly did not reach the venue (connection refused, down)."""


class BrokerRateLimited(BrokerUnavailable):
    """The venue refused the request for its rate limit (HTTP 429): it is up,
    and did not act. Retried after ``retry_after``; never a sign of a broker down."""


class BrokerTimeout(BrokerTransientError):
    """The request may or may not have taken effect at the venue."""
