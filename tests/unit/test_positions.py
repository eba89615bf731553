"""Positions from fills: average cost, realized P&L, flips, exact decimals."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from gateway.domain import Side
from gateway.domain.controls import Position, apply_fill, flat

T0 = datetime(2026, 1, 2, 14, 30, tzinfo=UTC)
D = Decimal


def fill(position: Position, side: Side, quantity: str, price: str) -> Position:
    q = D(quantity)
    return apply_fill(position, side, q, q * D(price), T0)


def test_partial_fills_add_to_the_cost_and_average_exactly() -> None:
    position = flat("acct-1", "AAPL", T0)
    position = fill(position, Side.BUY, "3", "100.10")
    position = fill(position, Side.BUY, "7", "100.20")
    assert position.quantity == D(10)
    assert position.cost == D("1001.70")  # 300.30 + 701.40, no rounding
    assert position.average_cost == D("100.17")
    assert position.realized_pnl == 0


def test_a_reduction_realizes_against_the_average_cost_and_keeps_it() -> None:
    position = fill(flat("acct-1", "AAPL", T0), Side.BUY, "10", "100")
    position = fill(position, Side.BUY, "10", "110")
    position = fill(position, Side.SELL, "5", "120")
    assert position.quantity == D(15)
    assert position.realized_pnl == D(75)  # 5 x (120 - 105)
    assert position.average_cost == D(105)


def test_a_flip_closes_at_the_average_then_opens_the_other_side_at_the_fill_price() -> None:
    position = fill(flat("acct-1", "AAPL", T0), Side.BUY, "15", "105")
    position = fill(position, Side.SELL, "25", "90")
    assert position.quantity == D(-10)
    assert position.realized_pnl == D(-225)  # 15 x (90 - 105)
    assert position.average_cost == D(90)
    assert position.cost == D(-900)


def test_covering_a_short_realizes_the_other_way_and_closing_resets_the_cost() -> None:
    position = fill(flat("acct-1", "AAPL", T0), Side.SELL, "4", "50")
    position = fill(position, Side.BUY, "1", "45")
    assert position.quantity == D(-3)
    assert position.realized_pnl == D(5)
    position = fill(position, Side.BUY, "3", "55")
    assert position.quantity == 0
    assert position.cost == 0
    assert position.average_cost is None
    assert position.realized_pnl == D(-10)  # 5 - 3 x 5


def test_a_reduction_by_a_third_stays_exact_when_the_position_closes() -> None:
    position = fill(flat("acct-1", "X", T0), Side.BUY, "1", "1")
    position = fill(position, Side.BUY, "2", "1.01")  # average 1.00666...
    for _ in range(3):
        position = fill(position, Side.SELL, "1", "2")
    assert position.quantity == 0
    assert position.realized_pnl == D("2.98")  # 6 - 3.02: the whole cost, exactly
