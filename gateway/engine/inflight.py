"""What the gateway is asking of the broker about each order, in one record.

An order has a record only while something about it is in flight (a submit,
a cancel, a question about its fills) or a caller waits for its ack; the
record goes once it is idle, so the map holds live work, never history.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

from gateway.domain import Order


@dataclass(slots=True)
class InFlight:
    """One order's outstanding broker work."""

    submitting: bool = False
    """A submit task runs: the broker may not know the order yet."""

    cancel_after_submit: bool = False
    """A cancel arrived during the submit: send it once the submit returns."""

    cancelling: bool = False
    """A cancel task runs."""

    replacing: bool = False
    """A replace task runs."""

    cancel_resends: int = 0
    """Unconfirmed cancels re-sent by reconciliation."""

    unverified: bool = False
    """Its fills may be incomplete: asked about until the broker answers."""

    reported_missing: bool = False
    """Logged once as open here but unknown at the broker."""

    waiters: list[asyncio.Future[Order | None]] | None = None
    """PlaceOrder calls waiting for the order to leave PENDING_NEW, one future each."""

    @property
    def idle(self) -> bool:
        return not (
            self.submitting
            or self.cancel_after_submit
            or self.cancelling
            or self.replacing
            or self.cancel_resends
            or self.unverified
            or self.reported_missing
            or self.waiters is not None
        )


class InFlightOrders:
    """The in-flight records by order id."""

    def __init__(self) -> None:
        self._records: dict[str, InFlight] = {}

    def __len__(self) -> int:
        return len(self._records)

    def get(self, order_id: str) -> InFlight | None:
        return self._records.get(order_id)

    def of(self, order_id: str) -> InFlight:
        """The record of ``order_id``, created if it has none."""
        record = self._records.get(order_id)
        if record is None:
            record = self._records[order_id] = InFlight()
        return record

    def tidy(self, order_id: str) -> None:
        """Drop ``order_id``'s record if nothing of it is in flight any more."""
        record = self._records.get(order_id)
        if record is not None and record.idle:
            del self._records[order_id]

    def submitting(self, order_id: str) -> bool:
        record = self._records.get(order_id)
        return record is not None and record.submitting

    def unverified(self) -> Iterator[str]:
        """Order ids whose fills are still to be verified, sorted."""
        return iter(sorted(i for i, r in self._records.items() if r.unverified))
