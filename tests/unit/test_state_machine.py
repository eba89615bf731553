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
    OrderSpec,
    OrderStatus,
    OrderType,
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


def test_terminal_statuses_accept_nothing_but_late_fills() -> None:
    for status, event_type in TRANSITIONS:
        if status.is_terminal:
            assert event_type in (OrderFilled, FillsReconciled), (status, event_type)
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
