"""Each pre-trade limit at its exact boundary and one tick past it; the trading modes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from gateway.domain import Order, OrderSpec, OrderStatus, OrderType, Side, TimeInForce
from gateway.domain.controls import TradingMode
from gateway.domain.enums import RejectCode
from gateway.risk import RiskChecker, parse_limits
from gateway.risk.exposure import OpenExposure

T0 = datetime(2026, 1, 2, 14, 30, tzinfo=UTC)
D = Decimal
TICK = D("0.01")


def spec(
    quantity: str = "10",
    *,
    side: Side = Side.BUY,
    limit_price: str | None = "100",
    order_type: OrderType | None = None,
    symbol: str = "AAPL",
    client_order_id: str = "c-1",
) -> OrderSpec:
    kind = order_type or (OrderType.LIMIT if limit_price is not None else OrderType.MARKET)
    return OrderSpec(
        "acct-1",
        client_order_id,
        symbol,
        side,
        kind,
        D(quantity),
        TimeInForce.DAY,
        None if limit_price is None else D(limit_price),
        D("99") if kind is OrderType.STOP else None,
    )


class Book:
    """The checker's view of the account: positions, open orders, a reference price."""

    def __init__(self) -> None:
        self.positions: dict[str, Decimal] = {}
        self.exposure = OpenExposure()
        self.prices: dict[str, Decimal] = {"AAPL": D(100)}
        self.now = 0.0

    def checker(self, limits: str) -> RiskChecker:
        checker = RiskChecker(
            self.exposure,
            lambda account, symbol: self.positions.get(symbol, D(0)),
            self.prices.get,
            monotonic=lambda: self.now,
        )
        checker.use(parse_limits(limits))
        return checker

    def open(self, order_spec: OrderSpec) -> None:
        order = Order(
            f"o-{order_spec.client_order_id}", order_spec, OrderStatus.ACCEPTED, T0, T0, 1
        )
        self.exposure.track(None, order)


def refused(checker: RiskChecker, order: OrderSpec) -> str | None:
    refusal = checker.check(order, TradingMode.ACTIVE)
    if refusal is None:
        return None
    assert refusal.code is RejectCode.RISK_LIMIT
    return refusal.reason


def test_max_order_quantity() -> None:
    checker = Book().checker("[defaults]\nmax_order_quantity = 10")
    assert refused(checker, spec("10")) is None
    reason = refused(checker, spec("10.01"))
    assert reason == "risk limit max_order_quantity is 10; the order's quantity is 10.01"
    assert checker.refusals == {"max_order_quantity": 1}


def test_max_order_notional_priced_at_the_limit_price() -> None:
    checker = Book().checker("[defaults]\nmax_order_notional = 1000")
    assert refused(checker, spec("10", limit_price="100")) is None
    reason = refused(checker, spec("10", limit_price=str(D(100) + TICK)))
    assert reason == "risk limit max_order_notional is 1000; the order's notional is 1000.1"


def test_max_order_notional_prices_market_and_stop_orders_at_the_reference() -> None:
    book = Book()
    checker = book.checker("[defaults]\nmax_order_notional = 1000")
    assert refused(checker, spec("10", limit_price=None)) is None
    assert refused(checker, spec("10", limit_price=None, order_type=OrderType.STOP)) is None
    book.prices["AAPL"] = D(100) + TICK
    assert "notional is 1000.1" in (refused(checker, spec("10", limit_price=None)) or "")


def test_without_a_reference_price_a_market_order_under_a_notional_limit_fails_closed() -> None:
    checker = Book().checker("[defaults]\nmax_order_notional = 1000000")
    reason = refused(checker, spec("1", limit_price=None, symbol="UNKNOWN"))
    assert reason is not None
    assert "no reference price" in reason
    # A limit order is priced at its own limit: no reference needed.
    assert refused(checker, spec("1", limit_price="5", symbol="UNKNOWN")) is None


def test_price_collar_percent() -> None:
    checker = Book().checker("[defaults]\nprice_collar_percent = 5")
    assert refused(checker, spec(limit_price="105")) is None
    assert refused(checker, spec(limit_price="95")) is None
    reason = refused(checker, spec(limit_price="105.01"))
    assert reason is not None
    assert reason.startswith("risk limit price_collar_percent is 5%")
    assert reason.endswith("is 5.01%")
    assert refused(checker, spec(limit_price="94.99")) is not None
    assert refused(checker, spec(limit_price=None)) is None  # nothing to collar
    reason = refused(checker, spec(limit_price="1", symbol="UNKNOWN"))
    assert reason is not None
    assert "no reference price" in reason  # fails closed


def test_max_open_orders_counts_the_open_orders() -> None:
    book = Book()
    checker = book.checker("[defaults]\nmax_open_orders = 2")
    book.open(spec(client_order_id="a"))
    assert refused(checker, spec()) is None  # it would be the second
    book.open(spec(client_order_id="b"))
    reason = refused(checker, spec())
    assert reason == "risk limit max_open_orders is 2; the order's open orders with it is 3"


def test_max_position_is_projected_with_the_open_orders_on_the_same_side() -> None:
    book = Book()
    checker = book.checker("[defaults]\nmax_position = 100")
    book.positions["AAPL"] = D(60)
    book.open(spec("30", client_order_id="working-buy"))
    book.open(spec("500", side=Side.SELL, client_order_id="working-sell"))  # other side
    assert refused(checker, spec("10")) is None  # 60 + 30 + 10 = 100
    reason = refused(checker, spec("10.01"))
    assert reason == "risk limit max_position is 100; the order's projected position is 100.01"
    # Selling is projected with the working sells: 60 - 500 - 1 = -441.
    assert "projected position is -441" in (refused(checker, spec("1", side=Side.SELL)) or "")


def test_max_order_rate_is_a_token_bucket() -> None:
    book = Book()
    checker = book.checker("[defaults]\nmax_order_rate = 2\norder_rate_burst = 2")
    assert refused(checker, spec()) is None
    assert refused(checker, spec()) is None
    reason = refused(checker, spec())
    assert reason == "risk limit max_order_rate is 2/s (burst 2); the order's rate is over it"
    book.now = 0.5  # one token back at 2 per second
    assert refused(checker, spec()) is None
    assert refused(checker, spec()) is not None


def test_symbol_allow_and_deny_lists() -> None:
    checker = Book().checker(
        '[defaults]\nallowed_symbols = ["AAPL", "MSFT"]\ndenied_symbols = ["MSFT"]'
    )
    assert refused(checker, spec(symbol="AAPL")) is None
    assert refused(checker, spec(symbol="TSLA")) == (
        "risk limit allowed_symbols is AAPL,MSFT; the order's symbol is TSLA"
    )
    assert refused(checker, spec(symbol="MSFT")) == (
        "risk limit denied_symbols is MSFT; the order's symbol is MSFT"
    )


def test_an_account_override_replaces_the_default() -> None:
    checker = Book().checker(
        "[defaults]\nmax_order_quantity = 10\n[accounts.acct-1]\nmax_order_quantity = 20"
    )
    assert refused(checker, spec("20")) is None
    assert refused(checker, spec("20.01")) is not None


def test_halted_refuses_every_new_order_with_its_own_code() -> None:
    checker = Book().checker("")
    refusal = checker.check(spec(), TradingMode.HALTED)
    assert refusal is not None
    assert refusal.code is RejectCode.TRADING_HALTED
    assert "halted" in refusal.reason
    assert checker.refusals == {"trading_halted": 1}


@pytest.mark.parametrize(
    ("held", "side", "quantity", "allowed"),
    [
        ("10", Side.SELL, "10", True),  # to flat: reduces
        ("10", Side.SELL, "4", True),
        ("10", Side.SELL, "10.01", False),  # one tick past flat: a flip
        ("10", Side.BUY, "1", False),  # adds
        ("-5", Side.BUY, "5", True),
        ("-5", Side.BUY, "5.01", False),
        ("0", Side.SELL, "1", False),  # flat: nothing to reduce
    ],
)
def test_reducing_lets_through_only_what_reduces_without_flipping(
    held: str, side: Side, quantity: str, allowed: bool
) -> None:
    book = Book()
    book.positions["AAPL"] = D(held)
    checker = book.checker("")
    refusal = checker.check(spec(quantity, side=side), TradingMode.REDUCING)
    assert (refusal is None) == allowed
    if refusal is not None:
        assert refusal.code is RejectCode.TRADING_HALTED


def test_reducing_counts_the_orders_already_working_on_the_same_side() -> None:
    book = Book()
    book.positions["AAPL"] = D(10)
    book.open(spec("6", side=Side.SELL, client_order_id="working"))
    checker = book.checker("")
    assert checker.check(spec("4", side=Side.SELL), TradingMode.REDUCING) is None
    assert checker.check(spec("4.01", side=Side.SELL), TradingMode.REDUCING) is not None
