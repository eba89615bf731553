"""What a broker's word means for one order: reports and states in, events out.

Pure functions, no I/O and no table: each takes the order as the gateway
knows it (and whether an execution was already booked) and returns the event
to apply, or None when the report only repeats what is known. The actor
applies what they return; property and unit tests call them directly.

Fills come two ways, in any order: executions on the report stream, and
totals in a status answer that may run ahead of the stream (Alpaca's REST
does). An execution is known by its exec_id and, where the broker gives its
cumulative quantity, by that too (``execution_key``), so a repeat under
another id is still a repeat. Totals ahead of the executions are booked as
``FillsReconciled``, which the state machine keeps provisional: the
executions, when they come, replace it rather than add to it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from gateway.brokers import BrokerOrderState, ExecutionReport, ReportKind
from gateway.domain import (
    CancelRejected,
    FillsReconciled,
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    OrderStatus,
    RejectCode,
    ReplaceRejected,
    decimal_to_str,
)

# Whether ``exec_id`` (or an ``execution_key``) was already booked for ``order_id``.
Booked = Callable[[str, str], bool]


def execution_key(cumulative: Decimal) -> str:
    """The name of the execution after which the order's cumulative fill is ``cumulative``.

    A broker's cumulative quantity only grows, so within one order it names
    one execution whatever id the report gave it: booked beside the exec_id.
    """
    return f"@{decimal_to_str(cumulative)}"


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
            return OrderRejected(
                order_id, report.reason or "rejected by broker", time, RejectCode.BROKER
            )
        case ReportKind.FILL:
            return fill_event(order, report, booked)
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
        case ReportKind.REPLACED:
            if order.pending_replace is not None:
                return OrderReplaced(order_id, order.pending_replace, time, report.broker_order_id)
            if order.is_terminal or report.broker_order_id in ("", order.broker_order_id):
                return None  # the echo of a replace already applied
            # Replaced at the venue by someone else (its own UI): the order
            # lives on there under an id and terms the gateway never asked
            # for. For the gateway's order that is the end, like a cancel.
            return OrderCanceled(
                order_id, time, f"replaced at the broker by order {report.broker_order_id}"
            )
        case ReportKind.REPLACE_REJECTED:
            if order.pending_replace is None:
                return None
            return ReplaceRejected(order_id, report.reason or "replace rejected", time)
    return None


def replace_outcome(order: Order, state: BrokerOrderState, now: datetime) -> OrderEvent | None:
    """The outcome of ``order``'s pending replace as the broker's terms tell it.

    For a replace whose answer was lost (a timeout): the broker's order has
    the new terms (replaced) or still the old ones (it did not take). None
    when there is nothing pending, or the venue does not give its terms, or
    they are neither (missing evidence is not an outcome: asked again later).
    """
    pending, terms = order.pending_replace, state.spec
    if pending is None or terms is None:
        return None
    if terms == pending.applied_to(order.spec):
        return OrderReplaced(order.order_id, pending, now, state.broker_order_id)
    if terms == order.spec:
        return ReplaceRejected(
            order.order_id, "replace not confirmed: the broker still has the old terms", now
        )
    return None


def fill_event(order: Order, report: ExecutionReport, booked: Booked) -> OrderFilled | None:
    """The execution ``report`` brings, or None if it is booked already (a repeat)."""
    fill = report.fill
    if fill is None or booked(order.order_id, fill.exec_id):
        return None  # a duplicate report: each exec_id is applied once
    cumulative = report.filled_quantity
    if cumulative is not None and cumulative < fill.quantity:
        cumulative = None  # not this execution's count: no evidence, so none used
    if cumulative is not None and booked(order.order_id, execution_key(cumulative)):
        return None  # the same execution under another id
    return OrderFilled(
        order.order_id, fill, report.time, report.broker_order_id, cumulative_quantity=cumulative
    )


def may_have_missed_fills(order: Order, report: ExecutionReport) -> bool:
    """Whether ``report`` suggests fills of ``order`` never reached us.

    Reconciliation covers open orders; this covers the order a lost fill
    report and then a cancel or expiry ended: the end says nothing about the
    fills before it, unless the venue sends its cumulative total.
    """
    if report.filled_quantity is not None:
        return report.filled_quantity > order.filled_quantity
    return report.kind in (ReportKind.CANCELED, ReportKind.EXPIRED)


def ended_on_old_totals(order: Order) -> bool:
    """Whether ``order`` ended with a provisional part booked from a smaller total.

    Executions beyond it were added exactly, the provisional part at the
    broker's (rounded) average of that older total: the mix can miss the
    broker's own average in its last digit. One more answer from the broker
    re-books the part from its final totals (``catch_up``), so the order's
    average is the broker's.
    """
    provisional = order.provisional
    return (
        order.is_terminal
        and provisional is not None
        and provisional.cumulative < order.filled_quantity
    )


def itemised_fills(order: Order, state: BrokerOrderState, booked: Booked) -> list[OrderFilled]:
    """The fills ``state`` lists that are not booked yet, in the broker's order."""
    return [
        OrderFilled(order.order_id, fill, fill.time, state.broker_order_id)
        for fill in state.fills
        if not booked(order.order_id, fill.exec_id)
    ]


def catch_up(order: Order, state: BrokerOrderState, now: datetime) -> FillsReconciled | None:
    """The broker's totals to book when they count fills not itemised to us.

    Call after the state's itemised fills are applied. None when nothing is
    missing, when the broker gave no price, or when the answer is older than
    what the broker already told us (missing evidence is not an outcome: a
    later answer settles it). Also when the totals match ours but a
    provisional part rests on an older, smaller total: re-booked from the
    newer one, the average is the broker's again.
    """
    cumulative, average = state.filled_quantity, state.average_fill_price
    if average is None or average <= 0 or cumulative < order.broker_filled:
        return None
    provisional = order.provisional
    ahead = cumulative > order.filled_quantity
    newer = (
        provisional is not None
        and cumulative == order.filled_quantity
        and cumulative > provisional.cumulative
    )
    if not (ahead or newer) or cumulative > order.spec.quantity:
        return None
    return FillsReconciled(order.order_id, cumulative, average, now, state.broker_order_id)


def terminal_event(order: Order, state: BrokerOrderState, now: datetime) -> OrderEvent | None:
    """The event that ends ``order`` as the broker says it ended, if it did."""
    if order.is_terminal:
        return None
    if state.status is OrderStatus.CANCELED:
        return OrderCanceled(order.order_id, now, state.reason)
    if state.status is OrderStatus.EXPIRED:
        return OrderExpired(order.order_id, now)
    if state.status is OrderStatus.REJECTED:
        return OrderRejected(
            order.order_id, state.reason or "rejected by broker", now, RejectCode.BROKER
        )
    return None
