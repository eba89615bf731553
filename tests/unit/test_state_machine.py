"""Every (status, event) pair of the order state machine, legal and illegal."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from gateway.domain import (
    TRANSITIONS,
    CancelRejected,
    CancelRequested,
    Fill,
    FillsReconciled,
    IllegalTransition,
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderCreated,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    OrderSpec,
    OrderStatus,
    OrderType,
    RejectCode,
    ReplaceRejected,
    ReplaceRequested,
    ReplaceTerms,
    Side,
    TimeInForce,
    apply_event,
)

T0 = datetime(2026, 1, 2, 14, 30, tzinfo=UTC)
LATER = T0 + timedelta(seconds=1)
SPEC = OrderSpec(
    account="acct-1",
    client_order_id="c-1",
    symbol="AAPL",
    side=Side.BUY,
    order_type=OrderType.LIMIT,
    quantity=Decimal(10),
    time_in_force=TimeInForce.GTC,
    limit_price=Decimal("100.5"),
)
S = OrderStatus
TERMS = ReplaceTerms("r-1", quantity=Decimal(12), limit_price=Decimal("100.25"))
_exec_ids = itertools.count(1)


def fill(quantity: str, price: str = "100") -> OrderFilled:
    return OrderFilled(
        "o-1", Fill(f"x-{next(_exec_ids)}", Decimal(quantity), Decimal(price), LATER), LATER
    )


def created() -> Order:
    return apply_event(None, OrderCreated("o-1", SPEC, T0), 1)


def order_in(status: OrderStatus) -> Order:
    """Build an order in ``status`` by legal events only."""
    order = created()
    steps: dict[OrderStatus, list[OrderEvent]] = {
        S.PENDING_NEW: [],
        S.ACCEPTED: [OrderAccepted("o-1", "B-1", T0)],
        S.PARTIALLY_FILLED: [OrderAccepted("o-1", "B-1", T0), fill("4")],
        S.FILLED: [OrderAccepted("o-1", "B-1", T0), fill("10")],
        S.PENDING_CANCEL: [OrderAccepted("o-1", "B-1", T0), CancelRequested("o-1", T0)],
        S.CANCELED: [OrderAccepted("o-1", "B-1", T0), OrderCanceled("o-1", T0)],
        S.REJECTED: [OrderRejected("o-1", "no", T0)],
        S.EXPIRED: [OrderAccepted("o-1", "B-1", T0), OrderExpired("o-1", T0)],
        S.PENDING_REPLACE: [OrderAccepted("o-1", "B-1", T0), ReplaceRequested("o-1", TERMS, T0)],
    }
    for sequence, event in enumerate(steps[status], start=2):
        order = apply_event(order, event, sequence)
    assert order.status is status
    return order


def sample_events() -> list[OrderEvent]:
    return [
        OrderAccepted("o-1", "B-1", LATER),
        OrderRejected("o-1", "venue said no", LATER),
        fill("1"),
        CancelRequested("o-1", LATER),
        OrderCanceled("o-1", LATER),
        CancelRejected("o-1", "too late", LATER),
        OrderExpired("o-1", LATER),
        FillsReconciled("o-1", Decimal(5), Decimal(100), LATER),
        ReplaceRequested("o-1", TERMS, LATER),
        OrderReplaced("o-1", TERMS, LATER, "B-2"),
        ReplaceRejected("o-1", "too late to amend", LATER),
    ]


PAIRS = [(status, event) for status in OrderStatus for event in sample_events()]


@pytest.mark.parametrize(
    ("status", "event"), PAIRS, ids=[f"{s.name}-{type(e).__name__}" for s, e in PAIRS]
)
def test_every_pair_is_either_in_the_table_or_refused(
    status: OrderStatus, event: OrderEvent
) -> None:
    order = order_in(status)
    if (status, type(event)) not in TRANSITIONS:
        with pytest.raises(IllegalTransition):
            apply_event(order, event, 99)
        return
    if isinstance(event, OrderReplaced | ReplaceRejected) and order.pending_replace is None:
        # A replace's outcome needs a replace pending (the rows cover the
        # races where the order moved on meanwhile; see the replace tests).
        with pytest.raises(IllegalTransition, match="no replace is pending"):
            apply_event(order, event, 99)
        return
    if status is S.FILLED:
        # A filled order takes only executions its provisional total stands
        # for, and newer totals of it (test_provisional_fills); nothing that adds.
        with pytest.raises(IllegalTransition, match=r"overfill|less than the 10 executed"):
            apply_event(order, event, 99)
        return
    after = apply_event(order, event, 99)
    assert after.updated_at == LATER
    assert after.filled_quantity >= order.filled_quantity
    if not after.is_terminal:
        assert after.filled_quantity + after.leaves_quantity == after.spec.quantity
    if order.is_terminal:
        # Only late fills touch a terminal order, and it stays terminal.
        assert isinstance(event, OrderFilled | FillsReconciled)
        assert after.is_terminal


def test_terminal_statuses_accept_nothing_but_late_fills_and_replace_refusals() -> None:
    for status, event_type in TRANSITIONS:
        if status.is_terminal:
            late = (OrderFilled, FillsReconciled, ReplaceRejected)
            assert event_type in late, (status, event_type)
            assert status in (S.CANCELED, S.EXPIRED, S.FILLED)


def test_create_makes_pending_new_and_refuses_a_second_create() -> None:
    order = created()
    assert order.status is S.PENDING_NEW
    assert order.created_sequence == 1
    assert order.leaves_quantity == Decimal(10)
    assert order.average_fill_price is None
    with pytest.raises(IllegalTransition, match="already exists"):
        apply_event(order, OrderCreated("o-1", SPEC, T0), 2)


def test_events_for_an_unknown_order_are_refused() -> None:
    with pytest.raises(IllegalTransition, match="unknown order"):
        apply_event(None, OrderAccepted("o-1", "B-1", T0), 1)


def test_fills_accumulate_exactly_and_average_by_volume() -> None:
    order = order_in(S.ACCEPTED)
    order = apply_event(order, fill("3", "100.10"), 3)
    assert order.status is S.PARTIALLY_FILLED
    order = apply_event(order, fill("7", "100.20"), 4)
    assert order.status is S.FILLED
    assert order.filled_quantity == Decimal(10)
    assert order.leaves_quantity == 0
    # (3 * 100.10 + 7 * 100.20) / 10 = 100.17 exactly
    assert order.average_fill_price == Decimal("100.17")


def test_fill_before_ack_is_applied() -> None:
    order = apply_event(created(), fill("4"), 2)
    assert order.status is S.PARTIALLY_FILLED
    order = apply_event(order, OrderAccepted("o-1", "B-1", LATER), 3)
    assert order.status is S.PARTIALLY_FILLED  # the late ack changes nothing
    assert order.broker_order_id == "B-1"


def test_overfill_is_refused_and_changes_nothing() -> None:
    order = order_in(S.PARTIALLY_FILLED)
    with pytest.raises(IllegalTransition, match="overfill"):
        apply_event(order, fill("7"), 9)
    assert order.filled_quantity == Decimal(4)


@pytest.mark.parametrize("quantity", ["0", "-1"])
def test_non_positive_fill_is_refused(quantity: str) -> None:
    with pytest.raises(IllegalTransition, match="not positive"):
        apply_event(order_in(S.ACCEPTED), fill(quantity), 9)


def test_fill_during_pending_cancel_keeps_pending_cancel_until_complete() -> None:
    order = apply_event(order_in(S.PENDING_CANCEL), fill("4"), 5)
    assert order.status is S.PENDING_CANCEL
    assert order.filled_quantity == Decimal(4)
    order = apply_event(order, fill("6"), 6)
    assert order.status is S.FILLED


@pytest.mark.parametrize("status", [S.CANCELED, S.EXPIRED])
def test_late_fill_after_cancel_or_expiry_counts_and_stays_terminal(status: OrderStatus) -> None:
    order = apply_event(order_in(status), fill("2"), 7)
    assert order.status is status
    assert order.filled_quantity == Decimal(2)
    assert order.leaves_quantity == 0
    order = apply_event(order, fill("8"), 8)
    assert order.status is S.FILLED


@pytest.mark.parametrize(
    ("before", "expected"),
    [
        (S.ACCEPTED, S.ACCEPTED),
        (S.PARTIALLY_FILLED, S.PARTIALLY_FILLED),
        (S.PENDING_NEW, S.PENDING_NEW),
    ],
)
def test_cancel_reject_restores_the_previous_status(
    before: OrderStatus, expected: OrderStatus
) -> None:
    order = apply_event(order_in(before), CancelRequested("o-1", LATER), 10)
    assert order.status is S.PENDING_CANCEL
    order = apply_event(order, CancelRejected("o-1", "too late", LATER), 11)
    assert order.status is expected
    assert order.reject_reason == "too late"


def test_cancel_reject_after_a_fill_while_pending_restores_partially_filled() -> None:
    order = apply_event(order_in(S.PENDING_CANCEL), fill("4"), 5)
    order = apply_event(order, CancelRejected("o-1", "too late", LATER), 6)
    assert order.status is S.PARTIALLY_FILLED


def test_reject_keeps_its_reason() -> None:
    order = apply_event(created(), OrderRejected("o-1", "insufficient buying power", LATER), 2)
    assert order.status is S.REJECTED
    assert order.reject_reason == "insufficient buying power"
    assert order.leaves_quantity == 0


def test_a_rejection_after_the_venue_acknowledged_receipt_stands() -> None:
    order = apply_event(order_in(S.ACCEPTED), OrderRejected("o-1", "risk check", LATER), 3)
    assert order.status is S.REJECTED
    assert order.reject_reason == "risk check"
    # Once it traded, a rejection is a disagreement with the broker, not an outcome.
    with pytest.raises(IllegalTransition):
        apply_event(order_in(S.PARTIALLY_FILLED), OrderRejected("o-1", "late", LATER), 4)


# ----------------------------------------------------------------- replace


def test_replace_goes_pending_then_takes_the_new_terms() -> None:
    order = apply_event(order_in(S.ACCEPTED), ReplaceRequested("o-1", TERMS, LATER), 3)
    assert order.status is S.PENDING_REPLACE
    assert order.spec == SPEC  # the old terms work until the broker accepts
    assert order.pending_replace == TERMS
    assert order.replace_id == "r-1"
    order = apply_event(order, OrderReplaced("o-1", TERMS, LATER, "B-2"), 4)
    assert order.status is S.ACCEPTED
    assert order.spec.quantity == Decimal(12)
    assert order.spec.limit_price == Decimal("100.25")
    assert order.leaves_quantity == Decimal(12)
    assert order.broker_order_id == "B-2"
    assert order.pending_replace is None
    # The terms it was placed with still identify it.
    assert order.placed == SPEC
    assert order.replaces == (TERMS,)


def test_fill_during_pending_replace_counts_and_the_replace_keeps_it() -> None:
    order = apply_event(order_in(S.PENDING_REPLACE), fill("4"), 4)
    assert order.status is S.PENDING_REPLACE
    assert order.filled_quantity == Decimal(4)
    assert order.leaves_quantity == Decimal(6)  # of the old quantity, still in force
    replaced = apply_event(order, OrderReplaced("o-1", TERMS, LATER), 5)
    assert replaced.status is S.PARTIALLY_FILLED
    assert replaced.filled_quantity == Decimal(4)
    assert replaced.leaves_quantity == Decimal(8)
    refused = apply_event(order, ReplaceRejected("o-1", "no", LATER), 5)
    assert refused.status is S.PARTIALLY_FILLED
    assert refused.spec == SPEC
    assert refused.reject_reason == "no"


def test_a_fill_that_completes_the_order_during_a_pending_replace_wins() -> None:
    order = apply_event(order_in(S.PENDING_REPLACE), fill("10"), 4)
    assert order.status is S.FILLED
    # The broker then refuses the replace: recorded, and the order stays filled.
    order = apply_event(order, ReplaceRejected("o-1", "order is filled", LATER), 5)
    assert order.status is S.FILLED
    assert order.pending_replace is None
    assert order.spec == SPEC


def test_replace_rejected_restores_the_old_status_and_terms() -> None:
    for before in (S.ACCEPTED, S.PARTIALLY_FILLED):
        start = order_in(before)
        order = apply_event(start, ReplaceRequested("o-1", TERMS, LATER), 9)
        order = apply_event(order, ReplaceRejected("o-1", "price out of band", LATER), 10)
        assert order.status is before
        assert order.spec == start.spec
        assert order.placed_spec is None
        assert order.replace_id == "r-1"  # the request stays known


def test_replace_of_a_filled_or_new_order_is_refused() -> None:
    for status in (S.PENDING_NEW, S.FILLED, S.CANCELED, S.PENDING_CANCEL):
        with pytest.raises(IllegalTransition):
            apply_event(order_in(status), ReplaceRequested("o-1", TERMS, LATER), 9)


def test_a_second_replace_while_one_is_pending_is_refused() -> None:
    with pytest.raises(IllegalTransition):
        apply_event(order_in(S.PENDING_REPLACE), ReplaceRequested("o-1", TERMS, LATER), 9)


def test_a_replace_below_the_filled_quantity_is_refused() -> None:
    below = ReplaceTerms("r-2", quantity=Decimal(3))
    with pytest.raises(IllegalTransition, match="below 4 filled"):
        apply_event(order_in(S.PARTIALLY_FILLED), ReplaceRequested("o-1", below, LATER), 9)
    # ...and a replace accepted after fills went past its quantity is refused too.
    order = apply_event(order_in(S.ACCEPTED), ReplaceRequested("o-1", below, LATER), 3)
    order = apply_event(order, fill("4"), 4)
    with pytest.raises(IllegalTransition, match="below 4 filled"):
        apply_event(order, OrderReplaced("o-1", below, LATER), 5)


def test_replaced_terms_must_be_the_pending_ones() -> None:
    other = ReplaceTerms("r-9", quantity=Decimal(20))
    with pytest.raises(IllegalTransition, match="not the pending"):
        apply_event(order_in(S.PENDING_REPLACE), OrderReplaced("o-1", other, LATER), 9)


def test_cancel_during_pending_replace_then_the_replace_lands() -> None:
    order = apply_event(order_in(S.PENDING_REPLACE), CancelRequested("o-1", LATER), 4)
    assert order.status is S.PENDING_CANCEL
    assert order.status_before_cancel is S.PENDING_REPLACE
    # The cancel is refused while the replace is still pending: back to it.
    assert apply_event(order, CancelRejected("o-1", "no", LATER), 5).status is S.PENDING_REPLACE
    replaced = apply_event(order, OrderReplaced("o-1", TERMS, LATER), 5)
    assert replaced.status is S.PENDING_CANCEL
    assert replaced.spec.quantity == Decimal(12)
    # Settled, a refused cancel returns to a working order, not to the replace.
    assert apply_event(replaced, CancelRejected("o-1", "no", LATER), 6).status is S.ACCEPTED
    assert apply_event(replaced, OrderCanceled("o-1", LATER), 6).status is S.CANCELED


def test_rejection_code_is_kept() -> None:
    event = OrderRejected("o-1", "venue down", LATER, RejectCode.NOT_DELIVERED)
    order = apply_event(created(), event, 2)
    assert order.reject_code is RejectCode.NOT_DELIVERED
    assert apply_event(created(), OrderRejected("o-1", "x", LATER), 2).reject_code is None
