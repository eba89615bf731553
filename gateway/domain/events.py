"""Events: what happened to an order, in the past tense.

Every change to the order table is one of these, stamped with the next
gateway-wide sequence number. They are what the journal stores, what replay
re-applies, and what subscribers are told about.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from gateway.domain.order import Fill, Order, OrderSpec


@dataclass(frozen=True, slots=True)
class OrderCreated:
    """The gateway took the order and is about to send it (PENDING_NEW).

    Durable before the broker sees the order: this is the write-ahead intent.
    """

    order_id: str
    spec: OrderSpec
    time: datetime


@dataclass(frozen=True, slots=True)
class OrderAccepted:
    """The broker acknowledged the order."""

    order_id: str
    broker_order_id: str
    time: datetime


@dataclass(frozen=True, slots=True)
class OrderRejected:
    """The broker (or the gateway, on the broker's behalf) refused the order."""

    order_id: str
    reason: str
    time: datetime


@dataclass(frozen=True, slots=True)
class OrderFilled:
    """The broker executed (part of) the order: one of its executions, itemised."""

    order_id: str
    fill: Fill
    time: datetime
    broker_order_id: str = ""
    # The order's cumulative filled quantity at the broker right after this
    # execution, when the broker says (Alpaca does). It places the execution
    # within the order: inside a provisional total it replaces its share.
    cumulative_quantity: Decimal | None = None


@dataclass(frozen=True, slots=True)
class FillsReconciled:
    """The broker's totals show fills whose executions have not reached us.

    Its cumulative quantity and average price are booked as the order's
    totals; the difference to the itemised executions is provisional (see
    ``ProvisionalFill``) until they arrive. Never an execution of its own:
    subscribers see the order's totals move, with no ``fill``.
    """

    order_id: str
    cumulative_quantity: Decimal
    average_price: Decimal
    time: datetime
    broker_order_id: str = ""


@dataclass(frozen=True, slots=True)
class CancelRequested:
    """A client asked to cancel; the request is on its way to the broker."""

    order_id: str
    time: datetime


@dataclass(frozen=True, slots=True)
class OrderCanceled:
    """The broker cancelled the order (on request, or IOC/FOK leftovers)."""

    order_id: str
    time: datetime
    reason: str = ""


@dataclass(frozen=True, slots=True)
class CancelRejected:
    """The broker refused a cancel; the order goes back to where it was."""

    order_id: str
    reason: str
    time: datetime


@dataclass(frozen=True, slots=True)
class OrderExpired:
    """The order's time in force ran out."""

    order_id: str
    time: datetime


OrderEvent = (
    OrderCreated
    | OrderAccepted
    | OrderRejected
    | OrderFilled
    | FillsReconciled
    | CancelRequested
    | OrderCanceled
    | CancelRejected
    | OrderExpired
)


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """What a subscriber is told: an order's state after one sequenced event."""

    sequence: int
    order: Order
    time: datetime
    fill: Fill | None = None
    # True when sent as part of a subscriber's snapshot, not as a change.
    snapshot: bool = False
