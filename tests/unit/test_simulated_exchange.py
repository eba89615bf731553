"""The simulated exchange core: matching, time in force, cancels, idempotency, determinism."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest
from msgspec.structs import replace

from gateway.brokers import BrokerRejected, ExecutionReport, ReportKind
from gateway.brokers.simulated import SimConfig, SimulatedExchange, SymbolConfig
from gateway.domain import Fill, OrderSpec, OrderStatus, OrderType, Side, TimeInForce

T0 = datetime(2024, 1, 2, 15, 0, tzinfo=UTC)
CENT = Decimal("0.01")


def order(
    client_order_id: str = "c1",
    *,
    account: str = "acct",
    symbol: str = "AAPL",
    side: Side = Side.BUY,
    order_type: OrderType = OrderType.MARKET,
    quantity: str = "100",
    tif: TimeInForce = TimeInForce.DAY,
    limit: str | None = None,
    stop: str | None = None,
) -> OrderSpec:
    return OrderSpec(
        account=account,
        client_order_id=client_order_id,
        symbol=symbol,
        side=side,
        order_type=order_type,
        quantity=Decimal(quantity),
        time_in_force=tif,
        limit_price=None if limit is None else Decimal(limit),
        stop_price=None if stop is None else Decimal(stop),
    )


def kinds(reports: list[ExecutionReport]) -> list[ReportKind]:
    return [report.kind for report in reports]


def fills(reports: list[ExecutionReport]) -> list[Fill]:
    return [report.fill for report in reports if report.fill is not None]


def total(reports: list[ExecutionReport]) -> Decimal:
    return sum((fill.quantity for fill in fills(reports)), Decimal(0))


def limited(liquidity: str) -> SimulatedExchange:
    """Return an exchange where one match fills at most ``liquidity``."""
    return SimulatedExchange(SimConfig(default_symbol=SymbolConfig(liquidity=Decimal(liquidity))))


# Market orders


def test_market_order_fills_at_once_in_partial_fills_summing_exactly() -> None:
    exchange = SimulatedExchange(SimConfig(partial_fills=3))
    ack, reports = exchange.submit(order(quantity="100"), T0)

    assert kinds(reports) == [ReportKind.ACCEPTED, *[ReportKind.FILL] * 3]
    assert [fill.quantity for fill in fills(reports)] == [Decimal(34), Decimal(33), Decimal(33)]
    assert total(reports) == Decimal(100)
    exec_ids = [fill.exec_id for fill in fills(reports)]
    assert len(set(exec_ids)) == 3
    assert all(report.broker_order_id == ack.broker_order_id for report in reports)
    state = exchange.order_status("acct", "c1")
    assert state is not None
    assert state.status is OrderStatus.FILLED
    assert state.filled_quantity == Decimal(100)
    assert state.fills == tuple(fills(reports))
    assert exchange.open_orders() == []


def test_fill_prices_are_decimals_on_the_tick_grid_near_the_reference() -> None:
    exchange = SimulatedExchange(SimConfig(default_symbol=SymbolConfig(slippage_ticks=2)))
    _, buys = exchange.submit(order("b"), T0)
    _, sells = exchange.submit(order("s", side=Side.SELL), T0)

    for fill in fills(buys) + fills(sells):
        assert type(fill.quantity) is Decimal
        assert type(fill.price) is Decimal
        assert fill.price % CENT == 0
    assert all(Decimal(100) <= f.price <= Decimal("100.02") for f in fills(buys))
    assert all(Decimal("99.98") <= f.price <= Decimal(100) for f in fills(sells))


def test_fractional_quantity_splits_exactly() -> None:
    exchange = SimulatedExchange(SimConfig(partial_fills=3))
    _, reports = exchange.submit(order(quantity="0.5"), T0)

    assert [f.quantity for f in fills(reports)] == [Decimal("0.2"), Decimal("0.2"), Decimal("0.1")]
    assert total(reports) == Decimal("0.5")


def test_quantity_of_fewer_units_than_partial_fills_gives_fewer_fills() -> None:
    _, reports = SimulatedExchange(SimConfig(partial_fills=3)).submit(order(quantity="2"), T0)

    assert [f.quantity for f in fills(reports)] == [Decimal(1), Decimal(1)]


def test_limited_liquidity_leaves_a_market_day_order_filling_over_ticks() -> None:
    exchange = limited("30")
    _, reports = exchange.submit(order(quantity="100"), T0)
    assert total(reports) == Decimal(30)
    state = exchange.order_status("acct", "c1")
    assert state is not None
    assert state.status is OrderStatus.PARTIALLY_FILLED
    assert [s.client_order_id for s in exchange.open_orders("acct")] == ["c1"]

    for n in range(1, 4):
        reports += exchange.tick(T0 + timedelta(seconds=n))

    assert total(reports) == Decimal(100)
    assert len({f.exec_id for f in fills(reports)}) == len(fills(reports))
    state = exchange.order_status("acct", "c1")
    assert state is not None
    assert state.status is OrderStatus.FILLED
    assert exchange.open_orders() == []


# Limit orders


def test_limit_far_below_price_rests_then_fills_when_price_crosses() -> None:
    exchange = SimulatedExchange()
    _, reports = exchange.submit(
        order(order_type=OrderType.LIMIT, limit="0.01", tif=TimeInForce.GTC), T0
    )
    assert kinds(reports) == [ReportKind.ACCEPTED]
    for n in range(1, 6):
        assert exchange.tick(T0 + timedelta(seconds=n)) == []
    assert [s.status for s in exchange.open_orders()] == [OrderStatus.ACCEPTED]

    reports = exchange.set_price("AAPL", Decimal("0.01"), T0 + timedelta(seconds=10))

    assert kinds(reports) == [ReportKind.FILL] * 3
    assert total(reports) == Decimal(100)
    assert all(fill.price <= Decimal("0.01") for fill in fills(reports))
    assert exchange.open_orders() == []


def test_resting_limit_fills_on_the_first_tick_that_crosses() -> None:
    exchange = SimulatedExchange(SimConfig(seed=7))
    limit = Decimal("99.90")
    exchange.submit(order(order_type=OrderType.LIMIT, limit=str(limit), tif=TimeInForce.GTC), T0)

    for n in range(1, 5000):
        reports = exchange.tick(T0 + timedelta(seconds=n))
        if exchange.price("AAPL") > limit:
            assert reports == []
            continue
        assert total(reports) == Decimal(100)
        assert all(fill.price <= limit for fill in fills(reports))
        return
    pytest.fail("the random walk never crossed the limit")


def test_marketable_sell_limit_fills_at_once_never_below_the_limit() -> None:
    exchange = SimulatedExchange(SimConfig(default_symbol=SymbolConfig(slippage_ticks=50)))
    _, reports = exchange.submit(
        order(side=Side.SELL, order_type=OrderType.LIMIT, limit="99.99"), T0
    )

    assert total(reports) == Decimal(100)
    assert all(fill.price >= Decimal("99.99") for fill in fills(reports))


# Stops


def test_buy_stop_triggers_when_price_reaches_the_stop() -> None:
    exchange = SimulatedExchange()
    _, reports = exchange.submit(order(order_type=OrderType.STOP, stop="100.50"), T0)
    assert kinds(reports) == [ReportKind.ACCEPTED]

    assert exchange.set_price("AAPL", Decimal("100.49"), T0) == []
    reports = exchange.set_price("AAPL", Decimal("100.50"), T0)

    assert total(reports) == Decimal(100)
    assert all(fill.price >= Decimal("100.50") for fill in fills(reports))


def test_sell_stop_triggers_when_price_falls_to_the_stop() -> None:
    exchange = SimulatedExchange()
    exchange.submit(order(side=Side.SELL, order_type=OrderType.STOP, stop="99"), T0)

    assert exchange.set_price("AAPL", Decimal("99.01"), T0) == []
    assert total(exchange.set_price("AAPL", Decimal("98.50"), T0)) == Decimal(100)


def test_triggered_stop_limit_works_as_a_limit_even_after_the_price_recovers() -> None:
    exchange = SimulatedExchange()
    exchange.submit(
        order(side=Side.SELL, order_type=OrderType.STOP_LIMIT, stop="99", limit="98.50"), T0
    )

    # Triggered (98 <= 99) but the sell limit 98.50 is above the price: rests.
    assert exchange.set_price("AAPL", Decimal(98), T0) == []
    # Back above the stop: an untriggered stop would wait, a limit sells.
    reports = exchange.set_price("AAPL", Decimal("99.50"), T0)

    assert total(reports) == Decimal(100)
    assert all(fill.price >= Decimal("98.50") for fill in fills(reports))


# IOC and FOK


def test_ioc_fills_what_is_available_and_cancels_the_rest() -> None:
    exchange = limited("30")
    _, reports = exchange.submit(order(quantity="100", tif=TimeInForce.IOC), T0)

    assert kinds(reports) == [ReportKind.ACCEPTED, *[ReportKind.FILL] * 3, ReportKind.CANCELED]
    assert total(reports) == Decimal(30)
    state = exchange.order_status("acct", "c1")
    assert state is not None
    assert state.status is OrderStatus.CANCELED
    assert state.filled_quantity == Decimal(30)
    assert exchange.open_orders() == []
    assert total(exchange.tick(T0 + timedelta(seconds=1))) == 0


def test_ioc_limit_that_is_not_marketable_is_canceled_unfilled() -> None:
    exchange = SimulatedExchange()
    _, reports = exchange.submit(
        order(order_type=OrderType.LIMIT, limit="50", tif=TimeInForce.IOC), T0
    )

    assert kinds(reports) == [ReportKind.ACCEPTED, ReportKind.CANCELED]


def test_fok_that_cannot_fill_completely_is_canceled_with_no_fill() -> None:
    exchange = limited("30")
    _, reports = exchange.submit(order(quantity="100", tif=TimeInForce.FOK), T0)

    assert kinds(reports) == [ReportKind.ACCEPTED, ReportKind.CANCELED]
    state = exchange.order_status("acct", "c1")
    assert state is not None
    assert (state.status, state.filled_quantity) == (OrderStatus.CANCELED, Decimal(0))


def test_fok_that_can_fill_completely_fills() -> None:
    exchange = limited("30")
    _, reports = exchange.submit(order(quantity="30", tif=TimeInForce.FOK), T0)

    assert kinds(reports) == [ReportKind.ACCEPTED, *[ReportKind.FILL] * 3]
    assert total(reports) == Decimal(30)


def test_fok_limit_that_is_not_marketable_is_canceled() -> None:
    exchange = SimulatedExchange()
    _, reports = exchange.submit(
        order(order_type=OrderType.LIMIT, limit="50", tif=TimeInForce.FOK), T0
    )

    assert kinds(reports) == [ReportKind.ACCEPTED, ReportKind.CANCELED]


# DAY and GTC


def resting(client_order_id: str, tif: TimeInForce) -> OrderSpec:
    return order(client_order_id, order_type=OrderType.LIMIT, limit="0.01", tif=tif)


def test_day_order_expires_at_session_end_and_gtc_survives() -> None:
    exchange = SimulatedExchange(SimConfig(session_end=time(20, 0)))
    exchange.submit(resting("day", TimeInForce.DAY), T0)
    exchange.submit(resting("gtc", TimeInForce.GTC), T0)
    session_end = T0.replace(hour=20)

    assert exchange.tick(session_end - timedelta(seconds=1)) == []
    reports = exchange.tick(session_end)

    assert kinds(reports) == [ReportKind.EXPIRED]
    assert reports[0].client_order_id == "day"
    day = exchange.order_status("acct", "day")
    assert day is not None
    assert day.status is OrderStatus.EXPIRED
    assert exchange.tick(session_end + timedelta(days=3)) == []
    assert [s.client_order_id for s in exchange.open_orders()] == ["gtc"]


def test_day_order_submitted_after_session_end_expires_next_session() -> None:
    exchange = SimulatedExchange(SimConfig(session_end=time(20, 0)))
    exchange.submit(resting("day", TimeInForce.DAY), T0.replace(hour=21))

    assert exchange.tick(T0.replace(hour=23)) == []
    assert kinds(exchange.tick(T0.replace(hour=20) + timedelta(days=1))) == [ReportKind.EXPIRED]


def test_expiry_comes_before_a_fill_at_the_same_moment() -> None:
    exchange = SimulatedExchange(SimConfig(session_end=time(20, 0)))
    exchange.submit(resting("day", TimeInForce.DAY), T0)

    reports = exchange.set_price("AAPL", CENT, T0.replace(hour=20))

    assert kinds(reports) == [ReportKind.EXPIRED]


def test_without_session_end_day_orders_never_expire() -> None:
    exchange = SimulatedExchange(SimConfig(session_end=None))
    exchange.submit(resting("day", TimeInForce.DAY), T0)

    assert exchange.tick(T0 + timedelta(days=30)) == []
    assert len(exchange.open_orders()) == 1


# Cancels


def test_cancel_resting_order_reports_canceled() -> None:
    exchange = SimulatedExchange()
    ack, _ = exchange.submit(resting("c1", TimeInForce.GTC), T0)

    reports = exchange.cancel("acct", "c1", T0)

    assert kinds(reports) == [ReportKind.CANCELED]
    assert reports[0].broker_order_id == ack.broker_order_id
    state = exchange.order_status("acct", "c1")
    assert state is not None
    assert state.status is OrderStatus.CANCELED
    assert exchange.open_orders() == []
    assert exchange.set_price("AAPL", CENT, T0) == []


def test_cancel_by_broker_order_id_alone() -> None:
    exchange = SimulatedExchange()
    ack, _ = exchange.submit(resting("c1", TimeInForce.GTC), T0)

    assert kinds(exchange.cancel("acct", "", T0, broker_order_id=ack.broker_order_id)) == [
        ReportKind.CANCELED
    ]


def test_cancel_unknown_order_is_rejected() -> None:
    exchange = SimulatedExchange()
    ack, _ = exchange.submit(resting("c1", TimeInForce.GTC), T0)

    with pytest.raises(BrokerRejected, match="unknown order"):
        exchange.cancel("acct", "nope", T0)
    with pytest.raises(BrokerRejected, match="unknown order"):
        exchange.cancel("other", "c1", T0)
    with pytest.raises(BrokerRejected, match="unknown order"):
        exchange.cancel("other", "", T0, broker_order_id=ack.broker_order_id)
    with pytest.raises(BrokerRejected, match="unknown order"):
        exchange.cancel("acct", "c1", T0, broker_order_id="SIM-999")
    assert len(exchange.open_orders()) == 1


def test_cancel_terminal_order_is_rejected() -> None:
    exchange = SimulatedExchange()
    exchange.submit(order("filled"), T0)
    exchange.submit(resting("canceled", TimeInForce.GTC), T0)
    exchange.cancel("acct", "canceled", T0)

    with pytest.raises(BrokerRejected, match="already filled"):
        exchange.cancel("acct", "filled", T0)
    with pytest.raises(BrokerRejected, match="already canceled"):
        exchange.cancel("acct", "canceled", T0)


# Idempotency and validation


def test_duplicate_client_order_id_returns_the_existing_order() -> None:
    exchange = SimulatedExchange()
    first, _ = exchange.submit(resting("c1", TimeInForce.GTC), T0)

    again, reports = exchange.submit(resting("c1", TimeInForce.GTC), T0)

    assert again == first
    assert reports == []
    assert len(exchange.open_orders()) == 1


def test_duplicate_of_a_filled_order_creates_no_second_fill() -> None:
    exchange = SimulatedExchange()
    first, _ = exchange.submit(order("c1"), T0)

    again, reports = exchange.submit(order("c1"), T0)

    assert (again, reports) == (first, [])
    state = exchange.order_status("acct", "c1")
    assert state is not None
    assert state.filled_quantity == Decimal(100)


def test_same_client_order_id_in_another_account_is_another_order() -> None:
    exchange = SimulatedExchange()
    first, _ = exchange.submit(resting("c1", TimeInForce.GTC), T0)
    other, _ = exchange.submit(replace(resting("c1", TimeInForce.GTC), account="b"), T0)

    assert other != first
    assert len(exchange.open_orders()) == 2
    assert len(exchange.open_orders("b")) == 1


def test_reused_client_order_id_with_another_spec_is_rejected() -> None:
    exchange = SimulatedExchange()
    exchange.submit(resting("c1", TimeInForce.GTC), T0)

    with pytest.raises(BrokerRejected, match="different order"):
        exchange.submit(replace(resting("c1", TimeInForce.GTC), quantity=Decimal(5)), T0)


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        (order(symbol="ZZZ"), "unknown symbol"),
        (order(quantity="0"), "quantity must be positive"),
        (order(quantity="-1"), "quantity must be positive"),
        (order(quantity="1001"), "exceeds"),
        (order(tif=TimeInForce.GTC), "not allowed"),
        (order(order_type=OrderType.LIMIT), "positive limit price"),
        (order(order_type=OrderType.STOP_LIMIT, stop="1"), "positive limit price"),
        (order(order_type=OrderType.STOP), "positive stop price"),
        (order(limit="1"), "takes no limit price"),
        (order(client_order_id=""), "required"),
    ],
)
def test_orders_the_venue_refuses_are_rejected(spec: OrderSpec, reason: str) -> None:
    config = SimConfig(
        symbols={"AAPL": SymbolConfig()}, restrict_symbols=True, max_quantity=Decimal(1000)
    )
    exchange = SimulatedExchange(config)

    with pytest.raises(BrokerRejected, match=reason):
        exchange.submit(spec, T0)
    assert exchange.order_status(spec.account, spec.client_order_id) is None


# Prices and determinism


def test_configured_symbol_price_is_the_starting_reference() -> None:
    config = SimConfig(symbols={"BTC": SymbolConfig(price=Decimal(60000), slippage_ticks=0)})
    exchange = SimulatedExchange(config)
    _, reports = exchange.submit(order(symbol="BTC"), T0)

    assert {fill.price for fill in fills(reports)} == {Decimal(60000)}
    assert exchange.price("AAPL") == Decimal(100)


def test_random_walk_stays_positive_and_on_the_grid() -> None:
    config = SimConfig(symbols={"PENNY": SymbolConfig(price=Decimal("0.02"), max_step_ticks=5)})
    exchange = SimulatedExchange(config)
    seen = set()
    for n in range(500):
        exchange.tick(T0 + timedelta(seconds=n))
        price = exchange.price("PENNY")
        assert price >= CENT
        assert price % CENT == 0
        seen.add(price)
    assert len(seen) > 1


def run_session(seed: int) -> tuple[list[ExecutionReport], list[Decimal]]:
    exchange = SimulatedExchange(SimConfig(seed=seed))
    reports: list[ExecutionReport] = []
    prices = []
    reports += exchange.submit(order("m"), T0)[1]
    limit = order("l", order_type=OrderType.LIMIT, limit="99.95", tif=TimeInForce.GTC)
    reports += exchange.submit(limit, T0)[1]
    stop = order("s", side=Side.SELL, order_type=OrderType.STOP, stop="99.90")
    reports += exchange.submit(stop, T0)[1]
    for n in range(1, 300):
        reports += exchange.tick(T0 + timedelta(seconds=n))
        prices.append(exchange.price("AAPL"))
    return reports, prices


def test_same_seed_same_calls_give_identical_reports() -> None:
    first_reports, first_prices = run_session(seed=42)
    second_reports, second_prices = run_session(seed=42)

    assert len(fills(first_reports)) > 3
    assert first_reports == second_reports
    assert first_prices == second_prices


def test_another_seed_walks_another_path() -> None:
    assert run_session(seed=1)[1] != run_session(seed=2)[1]


def test_exec_ids_and_broker_order_ids_are_unique_across_orders() -> None:
    exchange = limited("7")
    reports: list[ExecutionReport] = []
    acks = set()
    for n in range(10):
        ack, new = exchange.submit(order(f"c{n}", quantity="20"), T0)
        acks.add(ack.broker_order_id)
        reports += new
    for n in range(1, 4):
        reports += exchange.tick(T0 + timedelta(seconds=n))

    exec_ids = [fill.exec_id for fill in fills(reports)]
    assert len(acks) == 10
    assert len(exec_ids) == len(set(exec_ids))
    assert total(reports) == Decimal(200)


# Order books: a time step looks only at orders that can expire, trigger or trade


def rest_away_from_the_market(exchange: SimulatedExchange, per_kind: int) -> None:
    """Rest ``per_kind`` orders of each kind that can trade only if a price halves or doubles."""
    far: list[tuple[OrderType, Side, str | None, str | None]] = [
        (OrderType.LIMIT, Side.BUY, "50", None),
        (OrderType.LIMIT, Side.SELL, "200", None),
        (OrderType.STOP, Side.BUY, None, "200"),
        (OrderType.STOP, Side.SELL, None, "50"),
        (OrderType.STOP_LIMIT, Side.BUY, "199", "200"),
        (OrderType.STOP_LIMIT, Side.SELL, "51", "50"),
    ]
    for n in range(per_kind):
        for k, (order_type, side, limit, stop) in enumerate(far):
            symbol = ("AAPL", "MSFT")[n % 2]
            spec = order(
                f"far-{n}-{k}",
                symbol=symbol,
                side=side,
                order_type=order_type,
                limit=limit,
                stop=stop,
                tif=TimeInForce.GTC,
            )
            assert kinds(exchange.submit(spec, T0)[1]) == [ReportKind.ACCEPTED]


def test_a_tick_does_not_look_at_orders_resting_away_from_the_price() -> None:
    exchange = SimulatedExchange(SimConfig(seed=3))
    rest_away_from_the_market(exchange, per_kind=500)

    for n in range(1, 201):
        assert exchange.tick(T0 + timedelta(seconds=n)) == []

    assert len(exchange.open_orders()) == 3000
    assert exchange.orders_examined == 0


def test_a_step_looks_only_at_the_orders_the_price_reaches() -> None:
    exchange = SimulatedExchange()
    rest_away_from_the_market(exchange, per_kind=500)
    near = order("near", order_type=OrderType.LIMIT, limit="99", tif=TimeInForce.GTC)
    exchange.submit(near, T0)

    reports = exchange.set_price("AAPL", Decimal("98.99"), T0)

    assert {report.client_order_id for report in reports} == {"near"}
    assert exchange.orders_examined == 1
    # Halving AAPL's price fills its 250 buy limits at 50, triggers and fills
    # its 250 sell stops at 50, and triggers its 250 sell stop-limits (which
    # then rest as limits at 51): 1,000 visits for 750 of the 3,000 orders,
    # and none to MSFT's.
    reports = exchange.set_price("AAPL", Decimal(50), T0)

    assert len({report.client_order_id for report in reports}) == 500
    assert exchange.orders_examined == 1 + 1000
    assert len(exchange.open_orders()) == 2500


def test_orders_filling_in_one_step_report_in_arrival_order_across_prices_and_symbols() -> None:
    config = SimConfig(symbols={"MSFT": SymbolConfig(liquidity=Decimal(10), max_step_ticks=0)})
    exchange = SimulatedExchange(config)
    gtc = TimeInForce.GTC
    exchange.submit(order("b1", order_type=OrderType.LIMIT, limit="99.50", tif=gtc), T0)
    # MSFT fills 10 of 100 at once; the rest trades on every later step.
    exchange.submit(order("m2", symbol="MSFT"), T0)
    exchange.submit(order("b3", order_type=OrderType.LIMIT, limit="99.00", tif=gtc), T0)
    exchange.submit(order("s4", side=Side.SELL, order_type=OrderType.STOP, stop="98"), T0)
    exchange.submit(order("b5", order_type=OrderType.LIMIT, limit="99.80", tif=gtc), T0)

    reports = exchange.set_price("AAPL", Decimal(98), T0)

    # One at a time, in the order they arrived: not by price, not by symbol.
    by_order = [r.client_order_id for r in reports if r.kind is ReportKind.FILL]
    assert by_order == [c for c in ("b1", "m2", "b3", "s4", "b5") for _ in range(3)]


def test_limits_and_stops_trade_at_exactly_their_price() -> None:
    exchange = SimulatedExchange()
    gtc = TimeInForce.GTC
    exchange.submit(order("sell", side=Side.SELL, order_type=OrderType.LIMIT, limit="101"), T0)
    exchange.submit(order("stop", side=Side.SELL, order_type=OrderType.STOP, stop="99"), T0)
    exchange.submit(order("buy", order_type=OrderType.LIMIT, limit="98", tif=gtc), T0)

    assert {r.client_order_id for r in exchange.set_price("AAPL", Decimal(101), T0)} == {"sell"}
    assert {r.client_order_id for r in exchange.set_price("AAPL", Decimal(99), T0)} == {"stop"}
    assert {r.client_order_id for r in exchange.set_price("AAPL", Decimal(98), T0)} == {"buy"}


def test_an_order_left_unfilled_by_liquidity_is_looked_at_on_every_step_until_filled() -> None:
    exchange = limited("30")
    exchange.submit(order(quantity="100"), T0)

    for n in range(1, 6):
        exchange.tick(T0 + timedelta(seconds=n))

    # Three more steps fill it (30 + 30 + 30 + 10); the last two find nothing.
    assert exchange.orders_examined == 3
    assert exchange.open_orders() == []


def test_cancelled_day_orders_cost_nothing_at_session_end() -> None:
    exchange = SimulatedExchange(SimConfig(session_end=time(20, 0)))
    for n in range(1000):
        exchange.submit(resting(f"d{n}", TimeInForce.DAY), T0)
    for n in range(1000):
        if n % 100:
            exchange.cancel("acct", f"d{n}", T0)

    reports = exchange.tick(T0.replace(hour=20))

    assert [r.client_order_id for r in reports] == [f"d{n}" for n in range(0, 1000, 100)]
    assert kinds(reports) == [ReportKind.EXPIRED] * 10
    assert exchange.orders_examined == 10
    assert exchange.open_orders() == []
