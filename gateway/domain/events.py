"""Events: what happened to an order, in the past tense.

Every change to the order table is one of these, stamped with the next
gateway-wide sequence number. They are what the journal stores (just the
event: the order's state is re-derived from its events), what replay
re-applies, and what subscribers are told about.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import ClassVar

import msgspec

from gateway.domain.enums import RejectCode, UpdateKind
from gateway.domain.order import Fill, Order, OrderSpec, ReplaceTerms


class _Event(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """Every event: immutable, and encoded by the journal as a tagged msgpack array.

    The tag (``"filled"``...) is the journal's name for the event, not the class
    name, so classes can be renamed without orphaning stored records. Fields
    are stored by position: append new ones at the end, with a default.
    ``gc=False``: events hold no cycles, and millions of them stay alive in a
    replay's reach; the cyclic collector need not track them.

    ``kind`` (a class attribute, not a field) is what subscribers are told
    changed: read from the class, it costs the hot path no lookup.
    """

    kind: ClassVar[UpdateKind]


class OrderCreated(_Event, tag="created", frozen=True):
    """The gateway took the order and is about to send it (PENDING_NEW).

    Durable before the broker sees the order: this is the write-ahead intent.
    """

    kind = UpdateKind.CREATED

    order_id: str
    spec: OrderSpec
    time: datetime


class OrderAccepted(_Event, tag="accepted", frozen=True):
    """The broker acknowledged the order."""

    kind = UpdateKind.ACCEPTED

    order_id: str
    broker_order_id: str
    time: datetime


class OrderRejected(_Event, tag="rejected", frozen=True):
    """The broker (or the gateway, on the broker's behalf) refused the order."""

    kind = UpdateKind.REJECTED

    order_id: str
    reason: str
    time: datetime
    # Who refused it (None in records written before codes were recorded).
    code: RejectCode | None = None


class OrderFilled(_Event, tag="filled", frozen=True):
    """The broker executed (part of) the order: one of its executions, itemised."""

    kind = UpdateKind.FILL

    order_id: str
    fill: Fill
    time: datetime
    broker_order_id: str = ""
    # The order's cumulative filled quantity at the broker right after this
    # execution, when the broker says (Alpaca does). It places the execution
    # within the order: inside a provisional total it replaces its share.
    cumulative_quantity: Decimal | None = None


class FillsReconciled(_Event, tag="fills_reconciled", frozen=True):
    """The broker's totals show fills whose executions have not reached us.

    Its cumulative quantity and average price are booked as the order's
    totals; the difference to the itemised executions is provisional (see
    ``ProvisionalFill``) until they arrive. Never an execution of its own:
    subscribers see the order's totals move, with no ``fill``.
    """

    kind = UpdateKind.FILLS_RECONCILED

    order_id: str
    cumulative_quantity: Decimal
    average_price: Decimal
    time: datetime
    broker_order_id: str = ""


class CancelRequested(_Event, tag="cancel_requested", frozen=True):
    """A client asked to cancel; the request is on its way to the broker."""

    kind = UpdateKind.CANCEL_REQUESTED

    order_id: str
    time: datetime


class OrderCanceled(_Event, tag="canceled", frozen=True):
    """The broker cancelled the order (on request, or IOC/FOK leftovers)."""

    kind = UpdateKind.CANCELED

    order_id: str
    time: datetime
    reason: str = ""


class CancelRejected(_Event, tag="cancel_rejected", frozen=True):
    """The broker refused a cancel; the order goes back to where it was."""

    kind = UpdateKind.CANCEL_REJECTED

    order_id: str
    reason: str
    time: datetime


class OrderExpired(_Event, tag="expired", frozen=True):
    """The order's time in force ran out."""

    kind = UpdateKind.EXPIRED

    order_id: str
    time: datetime


class ReplaceRequested(_Event, tag="replace_requested", frozen=True):
    """A client asked to change the order's terms; the request is on its way.

    The order goes PENDING_REPLACE and keeps its current terms (and counts
    its fills) until the broker answers. Journaled, the replace_id stays
    known for good: a retry returns the order.
    """

    kind = UpdateKind.REPLACE_REQUESTED

    order_id: str
    terms: ReplaceTerms
    time: datetime


class OrderReplaced(_Event, tag="replaced", frozen=True):
    """The broker accepted the replace: the order goes on with ``terms``.

    ``broker_order_id`` is the broker's id for the order from now on (a
    venue like Alpaca gives the replacement a new one; "" keeps the old).
    """

    kind = UpdateKind.REPLACED

    order_id: str
    terms: ReplaceTerms
    time: datetime
    broker_order_id: str = ""


class ReplaceRejected(_Event, tag="replace_rejected", frozen=True):
    """The broker refused the replace (or it never arrived): the old terms stand."""

    kind = UpdateKind.REPLACE_REJECTED

    order_id: str
    reason: str
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
    | ReplaceRequested
    | OrderReplaced
    | ReplaceRejected
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
    # What changed: the kind of the event (None in snapshots).
    kind: UpdateKind | None = None
