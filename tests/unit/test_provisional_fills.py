"""Fill accounting by the broker's cumulative quantity: totals ahead of executions.

The state machine's side of invariant 3: a status answer's totals
(``FillsReconciled``) are provisional, the executions behind them replace
them, and nothing takes the order past what the broker said it filled.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from gateway.domain import (
    Fill,
    FillsReconciled,
    IllegalTransition,
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderCreated,
    OrderEvent,
    OrderFilled,
    OrderSpec,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    apply_event,
)

T0 = datetime(2026, 1, 2, 14, 30, tzinfo=UTC)
SPEC = OrderSpec("acct-1", "c-1", "AAPL", Side.BUY, OrderType.MARKET, Decimal(11), TimeInForce.DAY)
S = OrderStatus
_sequence = itertools.count(10)


def accepted() -> Order:
    order = apply_event(None, OrderCreated("o-1", SPEC, T0), 1)
    return apply_event(order, OrderAccepted("o-1", "B-1", T0), 2)


def execution(exec_id: str, quantity: str, price: str, cumulative: str | None) -> OrderFilled:
    fill = Fill(exec_id, Decimal(quantity), Decimal(price), T0)
    cum = None if cumulative is None else Decimal(cumulative)
    return OrderFilled("o-1", fill, T0, "B-1", cumulative_quantity=cum)


def totals(cumulative: str, average: str) -> FillsReconciled:
    return FillsReconciled("o-1", Decimal(cumulative), Decimal(average), T0, "B-1")


def run(order: Order, *events: OrderEvent) -> Order:
    for event in events:
        order = apply_event(order, event, next(_sequence))
    return order


def test_the_issues_race_books_each_execution_once() -> None:
    # REST says 4 filled at 101.86 before the stream's report of that execution.
    order = run(accepted(), totals("4", "101.86"))
    assert order.filled_quantity == Decimal(4)
    assert order.provisional is not None
    assert order.provisional.quantity == Decimal(4)

    order = run(order, execution("e-1", "4", "101.86", "4"))  # replaces, does not add
    assert order.filled_quantity == Decimal(4)
    assert order.provisional is None
    order = run(order, execution("e-2", "4", "101.88", "8"), execution("e-3", "3", "101.70", "11"))
    assert order.status is S.FILLED
    assert order.filled_quantity == Decimal(11)
    # (4 * 101.86 + 4 * 101.88 + 3 * 101.70) / 11: the executions' own average
    assert order.fill_notional == Decimal("1120.06")
    assert order.average_fill_price == Decimal("101.823636364")


def test_an_execution_beyond_the_provisional_total_adds_to_it() -> None:
    order = run(accepted(), totals("4", "100"), execution("e-2", "4", "102", "8"))
    assert order.filled_quantity == Decimal(8)
    assert order.provisional is not None  # e-1 still owed
    assert order.average_fill_price == Decimal(101)
    order = run(order, execution("e-1", "4", "100", "4"))
    assert order.filled_quantity == Decimal(8)
    assert order.provisional is None
    assert order.fill_notional == Decimal(808)


def test_filled_from_totals_then_each_execution_is_taken_and_no_more() -> None:
    order = run(accepted(), totals("11", "101"))
    assert order.status is S.FILLED
    order = run(order, execution("e-1", "5", "100", "5"), execution("e-2", "6", "101", "11"))
    assert order.status is S.FILLED
    assert order.filled_quantity == Decimal(11)
    assert order.provisional is None
    assert order.fill_notional == Decimal(1106)  # the executions' own, exactly
    with pytest.raises(IllegalTransition, match="overfill"):
        run(order, execution("e-9", "1", "100", "12"))


def test_executions_within_a_total_cannot_exceed_it() -> None:
    order = run(accepted(), totals("4", "100"), execution("e-1", "3", "100", "3"))
    with pytest.raises(IllegalTransition, match="within the broker's cumulative 4"):
        run(order, execution("e-1b", "3", "100", "4"))


def test_no_execution_takes_the_order_past_the_brokers_cumulative() -> None:
    order = run(accepted(), execution("e-1", "4", "100", "4"))
    # The same execution reported again under another id, placed after it:
    with pytest.raises(IllegalTransition, match="beyond the broker's cumulative 4"):
        run(order, execution("e-1-again", "4", "100", "4"))
    # A gap (e-2 lost) leaves room: e-3 lands beyond it, the cumulative allows it.
    order = run(order, execution("e-3", "3", "100", "11"))
    assert order.filled_quantity == Decimal(7)
    assert order.broker_filled == Decimal(11)


def test_totals_older_than_the_brokers_last_word_are_refused() -> None:
    order = run(accepted(), execution("e-3", "3", "100", "11"))
    with pytest.raises(IllegalTransition, match="stale"):
        run(order, totals("8", "100"))
    with pytest.raises(IllegalTransition, match="overfill"):
        run(order, totals("12", "100"))
    with pytest.raises(IllegalTransition, match="not positive"):
        run(order, totals("11", "0"))


def test_newer_totals_re_book_the_provisional_part_at_the_brokers_average() -> None:
    # 4 provisional at 100 (the broker's rounded average), then an execution
    # beyond it; the newer total re-books everything at the broker's average.
    order = run(accepted(), totals("4", "100.333333333"), execution("e-2", "7", "101", "11"))
    order = run(order, totals("11", "100.757575758"))
    assert order.filled_quantity == Decimal(11)
    assert order.average_fill_price == Decimal("100.757575758")
    assert order.provisional is not None
    assert order.provisional.quantity == Decimal(4)
    assert order.status is S.FILLED
    with pytest.raises(IllegalTransition, match="overfill"):
        run(order, totals("12", "100"))


def test_totals_on_a_cancelled_order_count_and_it_stays_cancelled() -> None:
    order = run(accepted(), OrderCanceled("o-1", T0), totals("4", "100"))
    assert order.status is S.CANCELED
    assert order.filled_quantity == Decimal(4)
    order = run(order, execution("e-1", "4", "100", "4"))
    assert order.status is S.CANCELED
    assert order.provisional is None


def test_executions_without_a_cumulative_add_as_before() -> None:
    order = run(accepted(), execution("e-1", "4", "100", None), execution("e-2", "4", "100", None))
    assert order.filled_quantity == Decimal(8)
    assert order.broker_filled == Decimal(0)
