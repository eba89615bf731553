"""What a broker's word means for one order: reports and states in, events out.

Pure functions, no I/O and no table: each takes the order as the gateway
knows it (and whether an execution was already booked) and returns the event
to apply, or None when the report only repeats what is known. The actor
applies what they return; property and unit tests call them directly.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from gateway.brokers import BrokerOrderState, ExecutionReport, ReportKind
from gateway.domain import (
    CancelRejected,
    Fill,
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderStatus,
)
from gateway.domain.order import AVERAGE_PRICE_QUANTUM

# Whether ``exec_id`` was already booked for ``order_id``.
Booked = Callable[[str, str], bool]


def ack_event(order: Order, broker_order_id: str, time: datetime) -> OrderAccepted | None:
    """Return the ack to apply, or None when it only echoes what is known.

    Acks arrive twice (submit reply and report stream) and may trail the
    fills; only the first one matters, or one that brings the broker id.
    """
    if order.status is OrderStatus.PENDING_NEW:
        return OrderAccepted(order.order_id, broker_order_id, time)
    if order.is_terminal or order.broker_order_id or not broker_order_id:
        return None
    return OrderAccepted(order.order_id, broker_order_id, time)


def report_event(order: Order, report: ExecutionReport, booked: Booked) -> OrderEvent | None:
    """Return the event ``report`` means for ``order``, or None for an echo."""
    order_id, time = order.order_id, report.time
    match report.kind:
        case ReportKind.ACCEPTED:
            return ack_event(order, report.broker_order_id, time)
        case ReportKind.REJECTED:
            if order.status is OrderStatus.REJECTED:
                return None
            return OrderRejected(order_id, report.reason or "rejected by broker", time)
        case ReportKind.FILL:
            if report.fill is None or booked(order_id, report.fill.exec_id):
                return None  # a duplicate report: each exec_id is applied once
            return OrderFilled(order_id, report.fill, time, report.broker_order_id)
        case ReportKind.CANCELED:
            if order.status is OrderStatus.CANCELED:
                return None  # the echo of a cancel already applied
            return OrderCanceled(order_id, time, report.reason)
        case ReportKind.CANCEL_REJECTED:
            if order.status is not OrderStatus.PENDING_CANCEL:
                return None
            return CancelRejected(order_id, report.reason or "cancel rejected", time)
        case ReportKind.EXPIRED:
            if order.status is OrderStatus.EXPIRED:
                return None
            return OrderExpired(order_id, time)
    return None


def may_have_missed_fills(order: Order, report: ExecutionReport) -> bool:
    """Whether ``report`` suggests fills of ``order`` never reached us.

    Reconciliation covers open orders; this covers the order a lost fill
    report and then a cancel or expiry ended: the end says nothing about the
    fills before it, unless the venue sends its cumulative total.
    """
    if report.filled_quantity is not None:
        return report.filled_quantity > order.filled_quantity
    return report.kind in (ReportKind.CANCELED, ReportKind.EXPIRED)


def itemised_fills(order: Order, state: BrokerOrderState, booked: Booked) -> list[OrderFilled]:
    """The fills ``state`` lists that are not booked yet, in the broker's order."""
    return [
        OrderFilled(order.order_id, fill, fill.time, state.broker_order_id)
        for fill in state.fills
        if not booked(order.order_id, fill.exec_id)
    ]


def catch_up_fill(
    order: Order, state: BrokerOrderState, booked: Booked, now: datetime
) -> OrderFilled | None:
    """Book fills the broker counts but never itemised to us, as one fill.

    Its exec_id names the broker's total, so the same catch-up is never
    booked twice; its price is what makes our average match the broker's.
    None when nothing is missing, or when the broker gave no price.
    """
    if state.filled_quantity <= order.filled_quantity or state.average_fill_price is None:
        return None
    missing = state.filled_quantity - order.filled_quantity
    notional = state.average_fill_price * state.filled_quantity - order.fill_notional
    price = (notional / missing).quantize(AVERAGE_PRICE_QUANTUM)
    if price <= 0:
        price = state.average_fill_price
    exec_id = f"reconciled:{state.broker_order_id}:{state.filled_quantity}"
    if booked(order.order_id, exec_id):
        return None
    return OrderFilled(
        order.order_id, Fill(exec_id, missing, price, now), now, state.broker_order_id
    )


def terminal_event(order: Order, state: BrokerOrderState, now: datetime) -> OrderEvent | None:
    """The event that ends ``order`` as the broker says it ended, if it did."""
    if order.is_terminal:
        return None
    if state.status is OrderStatus.CANCELED:
        return OrderCanceled(order.order_id, now, state.reason)
    if state.status is OrderStatus.EXPIRED:
        return OrderExpired(order.order_id, now)
    if state.status is OrderStatus.REJECTED:
        return OrderRejected(order.order_id, state.reason or "rejected by broker", now)
    return None
