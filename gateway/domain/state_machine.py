"""The order state machine: one declarative table, applied by one function.

``apply_event(order, event, sequence)`` returns the order after the event or
raises ``IllegalTransition``. It is pure: no I/O, no clock, no dedup (the
engine removes duplicate fills by exec_id before calling it).

Fill accounting holds two kinds of quantity: executions (``OrderFilled``),
and totals the broker stated before their executions reached us
(``FillsReconciled``, kept as the order's ``provisional`` part). An execution
that the broker's cumulative quantity places inside a provisional total
replaces its share of it; only one beyond it adds. Neither may take the order
past what the broker has said it filled. So an execution is counted once
whichever of the two arrives first, by construction rather than by timing.
"""

from __future__ import annotations

from decimal import Decimal
from enum import Enum, auto

from gateway.domain.enums import OrderStatus
from gateway.domain.events import (
    CancelRejected,
    CancelRequested,
    FillsReconciled,
    OrderAccepted,
    OrderCanceled,
    OrderCreated,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    ReplaceRejected,
    ReplaceRequested,
)
from gateway.domain.order import ZERO, Order, ProvisionalFill


class IllegalTransition(Exception):
    """An event that the order's current status does not allow."""

    def __init__(self, order: Order | None, event: OrderEvent, why: str) -> None:
        status = order.status.name if order else "(no order)"
        super().__init__(f"{type(event).__name__} refused in {status}: {why}")
        self.order = order
        self.event = event


class Rule(Enum):
    """What a status becomes, when it depends on more than the event."""

    KEEP = auto()  # status unchanged (the event still updates the order's fields)
    PROGRESS = auto()  # PARTIALLY_FILLED or FILLED, by the filled quantity
    PROGRESS_OR_KEEP = auto()  # FILLED if complete, else unchanged
    RESTORE = auto()  # back to the status before the cancel request
    WORKING = auto()  # ACCEPTED, PARTIALLY_FILLED or FILLED, by the filled quantity


S = OrderStatus
Target = OrderStatus | Rule

# (status, event type) -> target. A missing pair is an illegal transition.
TRANSITIONS: dict[tuple[OrderStatus, type], Target] = {
    (S.PENDING_NEW, OrderAccepted): S.ACCEPTED,
    (S.PENDING_NEW, OrderRejected): S.REJECTED,
    # Reports can overtake the submit's ack: a fill or a cancel before
    # ACCEPTED is the real world, not an error.
    (S.PENDING_NEW, OrderFilled): Rule.PROGRESS,
    (S.PENDING_NEW, FillsReconciled): Rule.PROGRESS,
    (S.PENDING_NEW, OrderCanceled): S.CANCELED,
    (S.PENDING_NEW, OrderExpired): S.EXPIRED,
    (S.PENDING_NEW, CancelRequested): S.PENDING_CANCEL,
    # A second ack (from the report stream and the submit reply) is harmless.
    (S.ACCEPTED, OrderAccepted): Rule.KEEP,
    (S.ACCEPTED, OrderFilled): Rule.PROGRESS,
    (S.ACCEPTED, FillsReconciled): Rule.PROGRESS,
    (S.ACCEPTED, CancelRequested): S.PENDING_CANCEL,
    # A venue may acknowledge receipt and reject afterwards (Alpaca's
    # pending_new, then rejected from its own checks): the rejection stands.
    (S.ACCEPTED, OrderRejected): S.REJECTED,
    (S.ACCEPTED, OrderCanceled): S.CANCELED,
    (S.ACCEPTED, OrderExpired): S.EXPIRED,
    (S.PARTIALLY_FILLED, OrderAccepted): Rule.KEEP,
    (S.PARTIALLY_FILLED, OrderFilled): Rule.PROGRESS,
    (S.PARTIALLY_FILLED, FillsReconciled): Rule.PROGRESS,
    (S.PARTIALLY_FILLED, CancelRequested): S.PENDING_CANCEL,
    (S.PARTIALLY_FILLED, OrderCanceled): S.CANCELED,
    (S.PARTIALLY_FILLED, OrderExpired): S.EXPIRED,
    # Late ack of an order cancelled before the broker answered.
    (S.PENDING_CANCEL, OrderAccepted): Rule.KEEP,
    # Fills race the cancel: apply them; the cancel may still win for the rest.
    (S.PENDING_CANCEL, OrderFilled): Rule.PROGRESS_OR_KEEP,
    (S.PENDING_CANCEL, FillsReconciled): Rule.PROGRESS_OR_KEEP,
    (S.PENDING_CANCEL, CancelRequested): Rule.KEEP,
    (S.PENDING_CANCEL, OrderCanceled): S.CANCELED,
    (S.PENDING_CANCEL, CancelRejected): Rule.RESTORE,
    (S.PENDING_CANCEL, OrderExpired): S.EXPIRED,
    # The broker rejected an order we had already asked to cancel.
    (S.PENDING_CANCEL, OrderRejected): S.REJECTED,
    # Late fill after cancel or expiry: real world. The fill happened at the
    # venue, so it is counted; the order stays terminal unless it completed.
    (S.CANCELED, OrderFilled): Rule.PROGRESS_OR_KEEP,
    (S.EXPIRED, OrderFilled): Rule.PROGRESS_OR_KEEP,
    (S.CANCELED, FillsReconciled): Rule.PROGRESS_OR_KEEP,
    (S.EXPIRED, FillsReconciled): Rule.PROGRESS_OR_KEEP,
    # FILLED from the broker's totals, then the executions behind them: each
    # replaces its share of the provisional quantity. One that would add to a
    # filled order is an overfill and refused in _fill_changes.
    (S.FILLED, OrderFilled): Rule.KEEP,
    # Newer totals with nothing to add re-book the provisional part at the
    # broker's latest average; anything that would add is an overfill.
    (S.FILLED, FillsReconciled): Rule.KEEP,
    # Replace: only an order the broker acknowledged and that still works.
    (S.ACCEPTED, ReplaceRequested): S.PENDING_REPLACE,
    (S.PARTIALLY_FILLED, ReplaceRequested): S.PENDING_REPLACE,
    # The order works on (under its old terms) while the replace is pending:
    # fills race the replace and are counted; one that completes it wins.
    (S.PENDING_REPLACE, OrderAccepted): Rule.KEEP,
    (S.PENDING_REPLACE, OrderFilled): Rule.PROGRESS_OR_KEEP,
    (S.PENDING_REPLACE, FillsReconciled): Rule.PROGRESS_OR_KEEP,
    # Accepted: new terms; refused: old terms. Either way the order works on
    # as its fills say (a replace starts only from ACCEPTED or PARTIALLY_FILLED).
    (S.PENDING_REPLACE, OrderReplaced): Rule.WORKING,
    (S.PENDING_REPLACE, ReplaceRejected): Rule.WORKING,
    # A cancel may overtake the replace's answer; the answer still lands
    # (it changes the terms, or not) while the cancel is pending.
    (S.PENDING_REPLACE, CancelRequested): S.PENDING_CANCEL,
    (S.PENDING_CANCEL, OrderReplaced): Rule.KEEP,
    (S.PENDING_CANCEL, ReplaceRejected): Rule.KEEP,
    (S.PENDING_REPLACE, OrderCanceled): S.CANCELED,
    (S.PENDING_REPLACE, OrderExpired): S.EXPIRED,
    (S.PENDING_REPLACE, OrderRejected): S.REJECTED,
    # The order ended (a fill completed it, a cancel or expiry won) before
    # the broker refused the replace: the refusal is the expected end of
    # that race, recorded, and the order stays as it is.
    (S.FILLED, ReplaceRejected): Rule.KEEP,
    (S.CANCELED, ReplaceRejected): Rule.KEEP,
    (S.EXPIRED, ReplaceRejected): Rule.KEEP,
}


def apply_event(order: Order | None, event: OrderEvent, sequence: int) -> Order:
    """Return ``order`` after ``event`` (sequence ``sequence``), or raise IllegalTransition."""
    if isinstance(event, OrderCreated):
        if order is not None:
            raise IllegalTransition(order, event, "order already exists")
        return Order(
            order_id=event.order_id,
            spec=event.spec,
            status=OrderStatus.PENDING_NEW,
            created_at=event.time,
            updated_at=event.time,
            created_sequence=sequence,
            last_sequence=sequence,
        )
    if order is None:
        raise IllegalTransition(None, event, "unknown order")
    target = TRANSITIONS.get((order.status, type(event)))
    if target is None:
        raise IllegalTransition(order, event, "no such transition")

    # Changes are collected and applied in one copy: this runs for every live
    # event and for every journal record replayed at start.
    changes: dict[str, object] = {"updated_at": event.time, "last_sequence": sequence}
    quantity = order.spec.quantity  # what the order's status is judged against
    if isinstance(event, OrderAccepted) and event.broker_order_id:
        changes["broker_order_id"] = event.broker_order_id
    elif isinstance(event, OrderRejected | CancelRejected):
        changes["reject_reason"] = event.reason
        if isinstance(event, OrderRejected) and event.code is not None:
            changes["reject_code"] = event.code
    elif isinstance(event, OrderFilled):
        _fill_changes(order, event, changes)
    elif isinstance(event, FillsReconciled):
        _totals_changes(order, event, changes)
    elif isinstance(event, CancelRequested) and order.status is not OrderStatus.PENDING_CANCEL:
        changes["status_before_cancel"] = order.status
    elif isinstance(event, ReplaceRequested | OrderReplaced | ReplaceRejected):
        quantity = _replace_changes(order, event, changes)
    filled = changes.get("filled_quantity", order.filled_quantity)
    assert isinstance(filled, Decimal)
    changes["status"] = _resolve(target, order, filled, quantity)
    return order.evolve(**changes)


def _replace_changes(
    order: Order,
    event: ReplaceRequested | OrderReplaced | ReplaceRejected,
    changes: dict[str, object],
) -> Decimal:
    """A replace's request and outcome: the pending terms, then the new or the old ones.

    Return the order's quantity after the event.
    """
    if isinstance(event, ReplaceRequested):
        if order.pending_replace is not None:
            raise IllegalTransition(order, event, "a replace is already pending")
        quantity = event.terms.quantity
        if quantity is not None and quantity < order.filled_quantity:
            raise IllegalTransition(
                order, event, f"quantity {quantity} below {order.filled_quantity} filled"
            )
        changes["pending_replace"] = event.terms
        changes["replaces"] = (*order.replaces, event.terms)
        return order.spec.quantity
    pending = order.pending_replace
    if pending is None:
        raise IllegalTransition(order, event, "no replace is pending")
    changes["pending_replace"] = None
    if order.status is OrderStatus.PENDING_CANCEL and (
        order.status_before_cancel is OrderStatus.PENDING_REPLACE
    ):
        # The replace is settled: a refused cancel returns to a working order.
        changes["status_before_cancel"] = OrderStatus.ACCEPTED
    if isinstance(event, ReplaceRejected):
        changes["reject_reason"] = event.reason
        return order.spec.quantity
    if event.terms != pending:
        raise IllegalTransition(order, event, f"terms {event.terms} are not the pending {pending}")
    spec = event.terms.applied_to(order.spec)
    if spec.quantity < order.filled_quantity:
        # Fills during the pending replace went past the new quantity: the
        # broker and we disagree about the order; refused and reported.
        raise IllegalTransition(
            order, event, f"new quantity {spec.quantity} below {order.filled_quantity} filled"
        )
    changes["spec"] = spec
    if order.placed_spec is None:
        changes["placed_spec"] = order.spec
    if event.broker_order_id:
        changes["broker_order_id"] = event.broker_order_id
    return spec.quantity


def _fill_changes(order: Order, event: OrderFilled, changes: dict[str, object]) -> None:
    fill = event.fill
    if fill.quantity <= 0:
        raise IllegalTransition(order, event, f"fill quantity {fill.quantity} is not positive")
    cumulative = event.cumulative_quantity
    provisional = order.provisional
    if provisional is not None and cumulative is not None and cumulative <= provisional.cumulative:
        _confirm(order, event, provisional, changes)
    else:
        filled = order.filled_quantity + fill.quantity
        if filled > order.spec.quantity:
            # An overfill means the broker and we disagree about the order; absorbing
            # it would corrupt the position, so it is refused and reported loudly.
            raise IllegalTransition(
                order, event, f"overfill: {filled} filled of {order.spec.quantity} ordered"
            )
        if cumulative is not None and filled > max(cumulative, order.broker_filled):
            # The same execution under a second id, or a report out of step
            # with the broker's own count: more than the broker says it filled.
            raise IllegalTransition(
                order,
                event,
                f"{filled} filled, beyond the broker's cumulative "
                f"{max(cumulative, order.broker_filled)}",
            )
        # Every order ever seen stays in memory: where the sum is the same number,
        # written the same way, as the order's quantity (filled in full) or the fill
        # (the first one), keep that object rather than a copy of it.
        changes["filled_quantity"] = _same_or(filled, order.spec.quantity, fill.quantity)
        changes["fill_notional"] = order.fill_notional + fill.quantity * fill.price
    if cumulative is not None and cumulative > order.broker_filled:
        changes["broker_filled"] = cumulative
    if event.broker_order_id and not order.broker_order_id:
        changes["broker_order_id"] = event.broker_order_id


def _confirm(
    order: Order, event: OrderFilled, provisional: ProvisionalFill, changes: dict[str, object]
) -> None:
    """Replace the share of ``provisional`` that ``event``'s execution stands behind.

    The broker's total already counted this execution, so the order's
    filled quantity stays; once every execution inside the total is in, the
    notional becomes theirs exactly (no rounding of the broker's average left).
    """
    fill = event.fill
    confirmed = provisional.confirmed_quantity + fill.quantity
    if confirmed > provisional.cumulative:
        raise IllegalTransition(
            order,
            event,
            f"executions of {confirmed} within the broker's cumulative {provisional.cumulative}",
        )
    notional = fill.quantity * fill.price
    if confirmed == provisional.cumulative:
        itemised = order.fill_notional - provisional.open_notional
        changes["fill_notional"] = itemised + notional
        changes["provisional"] = None
    else:
        changes["provisional"] = ProvisionalFill(
            provisional.cumulative,
            provisional.notional,
            confirmed,
            provisional.confirmed_notional + notional,
        )


def _totals_changes(order: Order, event: FillsReconciled, changes: dict[str, object]) -> None:
    """Book the broker's stated totals; the executions not yet itemised are provisional."""
    cumulative, average = event.cumulative_quantity, event.average_price
    if cumulative <= 0 or average <= 0:
        raise IllegalTransition(order, event, f"totals {cumulative} at {average} are not positive")
    if cumulative > order.spec.quantity:
        raise IllegalTransition(
            order, event, f"overfill: {cumulative} filled of {order.spec.quantity} ordered"
        )
    if cumulative < order.broker_filled:
        # Missing evidence is not an outcome: an answer older than what the
        # broker already told us says nothing about the fills since.
        raise IllegalTransition(
            order, event, f"stale: the broker already stated {order.broker_filled} filled"
        )
    provisional = order.provisional
    open_quantity = provisional.quantity if provisional else ZERO
    open_notional = provisional.open_notional if provisional else ZERO
    # Every execution booked so far lies within ``cumulative`` (it is at least
    # each one's cumulative quantity), so all of them are confirmed parts of it.
    itemised = order.filled_quantity - open_quantity
    itemised_notional = order.fill_notional - open_notional
    if cumulative < itemised:
        raise IllegalTransition(
            order, event, f"the broker's {cumulative} is less than the {itemised} executed"
        )
    if cumulative == itemised:
        changes["provisional"] = None
        changes["fill_notional"] = itemised_notional
    else:
        notional = cumulative * average
        changes["provisional"] = ProvisionalFill(cumulative, notional, itemised, itemised_notional)
        changes["fill_notional"] = notional
    changes["filled_quantity"] = _same_or(cumulative, order.spec.quantity)
    changes["broker_filled"] = cumulative
    if event.broker_order_id and not order.broker_order_id:
        changes["broker_order_id"] = event.broker_order_id


def _same_or(value: Decimal, *candidates: Decimal) -> Decimal:
    """The first candidate identical to ``value`` (digits and exponent), else ``value``."""
    for candidate in candidates:
        if candidate == value and candidate.as_tuple() == value.as_tuple():
            return candidate
    return value


def _resolve(
    target: Target, before: Order, filled_quantity: Decimal, quantity: Decimal
) -> OrderStatus:
    """Return the status after an event, given the filled and ordered quantity after it."""
    if isinstance(target, OrderStatus):
        return target
    complete = filled_quantity == quantity
    if target is Rule.KEEP:
        return before.status
    if target is Rule.WORKING:
        if complete:
            return OrderStatus.FILLED
        return OrderStatus.PARTIALLY_FILLED if filled_quantity > 0 else OrderStatus.ACCEPTED
    if target is Rule.PROGRESS:
        return OrderStatus.FILLED if complete else OrderStatus.PARTIALLY_FILLED
    if target is Rule.PROGRESS_OR_KEEP:
        return OrderStatus.FILLED if complete else before.status
    # Rule.RESTORE: a fill may have arrived while the cancel was pending.
    previous = before.status_before_cancel or OrderStatus.ACCEPTED
    if filled_quantity > 0 and previous in (OrderStatus.ACCEPTED, OrderStatus.PENDING_NEW):
        return OrderStatus.PARTIALLY_FILLED
    return previous
