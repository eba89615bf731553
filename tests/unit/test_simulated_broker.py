"""The simulated broker: the Broker protocol, the report stream, latency and close."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from gateway.brokers import (
    Broker,
    BrokerOrderState,
    BrokerRejected,
    BrokerUnavailable,
    ExecutionReport,
    ReportKind,
)
from gateway.brokers.simulated import SimConfig, SimulatedBroker, SymbolConfig
from gateway.brokers.testing import each_report
from gateway.domain import OrderSpec, OrderStatus, OrderType, Side, TimeInForce

T0 = datetime(2024, 1, 2, 15, 0, tzinfo=UTC)
DEADLINE = 5.0


def order(
    client_order_id: str = "c1",
    *,
    order_type: OrderType = OrderType.MARKET,
    quantity: str = "100",
    limit: str | None = None,
    symbol: str = "AAPL",
) -> OrderSpec:
    return OrderSpec(
        account="acct",
        client_order_id=client_order_id,
        symbol=symbol,
        side=Side.BUY,
        order_type=order_type,
        quantity=Decimal(quantity),
        time_in_force=TimeInForce.GTC if limit else TimeInForce.DAY,
        limit_price=None if limit is None else Decimal(limit),
    )


def fixed_clock() -> datetime:
    return T0


@asynccontextmanager
async def connected(
    config: SimConfig, clock: Callable[[], datetime] = fixed_clock
) -> AsyncIterator[SimulatedBroker]:
    broker = SimulatedBroker(config, clock=clock)
    await broker.connect()
    try:
        yield broker
    finally:
        await broker.close()


async def take(stream: AsyncIterator[ExecutionReport], count: int) -> list[ExecutionReport]:
    """Return the next ``count`` reports, failing if they do not come within the deadline."""
    async with asyncio.timeout(DEADLINE):
        return [await anext(stream) for _ in range(count)]


def manual(**changes: Any) -> SimConfig:
    """Return a config whose market moves only on explicit ``tick()`` calls."""
    return SimConfig(**{"tick_interval": None, "ack_latency": 0, **changes})


async def test_is_a_broker() -> None:
    broker = SimulatedBroker(SimConfig())

    assert isinstance(broker, Broker)
    assert broker.name == "simulated"


async def test_market_order_streams_accepted_then_fills_until_filled() -> None:
    # Liquidity 30 fills 30 on submit; the background ticker must fill the rest.
    config = SimConfig(tick_interval=0.005, default_symbol=SymbolConfig(liquidity=Decimal(30)))
    async with connected(config, clock=lambda: datetime.now(UTC)) as broker:
        stream = each_report(broker.reports())
        ack = await broker.submit(order(quantity="100"))

        reports = await take(stream, 1)
        filled = Decimal(0)
        async with asyncio.timeout(DEADLINE):
            while filled < Decimal(100):
                report = await anext(stream)
                assert report.kind is ReportKind.FILL
                assert report.fill is not None
                filled += report.fill.quantity
                reports.append(report)

    assert reports[0].kind is ReportKind.ACCEPTED
    assert {report.broker_order_id for report in reports} == {ack.broker_order_id}
    assert filled == Decimal(100)
    exec_ids = [report.fill.exec_id for report in reports if report.fill]
    assert len(exec_ids) == len(set(exec_ids)) > 3
    state = await broker.order_status("acct", "c1")
    assert state is not None
    assert state.status is OrderStatus.FILLED


async def test_reports_carry_the_injected_clock() -> None:
    async with connected(manual()) as broker:
        stream = each_report(broker.reports())
        await broker.submit(order())

        reports = await take(stream, 4)

    assert {report.time for report in reports} == {T0}
    assert all(report.fill.time == T0 for report in reports if report.fill)


async def test_close_ends_report_iterators() -> None:
    broker = SimulatedBroker(SimConfig(tick_interval=0.005))
    await broker.connect()
    readers = [asyncio.create_task(drain(each_report(broker.reports()))) for _ in range(2)]
    await broker.submit(order("c1", order_type=OrderType.LIMIT, limit="0.01"))

    await broker.close()

    async with asyncio.timeout(DEADLINE):
        results = await asyncio.gather(*readers)
    assert any(kinds == [ReportKind.ACCEPTED] for kinds in results)
    assert await drain(each_report(broker.reports())) == []


async def drain(stream: AsyncIterator[ExecutionReport]) -> list[ReportKind]:
    return [report.kind async for report in stream]


async def test_commands_need_a_connected_broker() -> None:
    broker = SimulatedBroker(manual())
    with pytest.raises(BrokerUnavailable, match="not connected"):
        await broker.submit(order())

    await broker.connect()
    await broker.close()

    with pytest.raises(BrokerUnavailable, match="closed"):
        await broker.submit(order())
    with pytest.raises(BrokerUnavailable, match="closed"):
        await broker.cancel("acct", "c1", "")
    with pytest.raises(BrokerUnavailable, match="closed"):
        await broker.connect()


async def test_submit_reaches_the_venue_only_after_ack_latency() -> None:
    async with connected(manual(ack_latency=0.3)) as broker:
        submit = asyncio.create_task(broker.submit(order()))
        for _ in range(10):
            await asyncio.sleep(0)

        assert not submit.done()
        assert await broker.order_status("acct", "c1") is None

        ack = await submit
        state = await broker.order_status("acct", "c1")
        assert state is not None
        assert state.broker_order_id == ack.broker_order_id


async def test_close_during_ack_latency_means_the_order_never_arrived() -> None:
    broker = SimulatedBroker(manual(ack_latency=0.2))
    await broker.connect()
    submit = asyncio.create_task(broker.submit(order()))
    await asyncio.sleep(0)

    await broker.close()

    with pytest.raises(BrokerUnavailable, match="closed"):
        await submit
    assert await broker.order_status("acct", "c1") is None


async def test_rejected_order_raises_and_streams_nothing() -> None:
    config = manual(symbols={"AAPL": SymbolConfig()}, restrict_symbols=True)
    async with connected(config) as broker:
        stream = each_report(broker.reports())
        with pytest.raises(BrokerRejected, match="unknown symbol"):
            await broker.submit(order("bad", symbol="ZZZ"))
        await broker.submit(order("good", order_type=OrderType.LIMIT, limit="0.01"))

        (report,) = await take(stream, 1)

    assert (report.kind, report.client_order_id) == (ReportKind.ACCEPTED, "good")


async def test_retried_submit_returns_the_same_ack_and_no_second_order() -> None:
    async with connected(manual()) as broker:
        spec = order(order_type=OrderType.LIMIT, limit="0.01")
        first = await broker.submit(spec)
        again = await broker.submit(spec)

        assert again == first
        assert len(await broker.open_orders("acct")) == 1


async def test_cancel_streams_canceled_and_unknown_is_rejected() -> None:
    async with connected(manual()) as broker:
        stream = each_report(broker.reports())
        ack = await broker.submit(order(order_type=OrderType.LIMIT, limit="0.01"))

        await broker.cancel("acct", "c1", ack.broker_order_id)
        with pytest.raises(BrokerRejected, match="unknown order"):
            await broker.cancel("acct", "nope", "")
        with pytest.raises(BrokerRejected, match="already canceled"):
            await broker.cancel("acct", "c1", "")

        reports = await take(stream, 2)
        assert [r.kind for r in reports] == [ReportKind.ACCEPTED, ReportKind.CANCELED]
        assert await broker.open_orders() == []


async def test_manual_ticks_and_forced_prices_fill_resting_orders() -> None:
    async with connected(manual()) as broker:
        stream = each_report(broker.reports())
        await broker.submit(order(order_type=OrderType.LIMIT, limit="0.01"))
        await broker.tick()
        assert [s.status for s in await broker.open_orders()] == [OrderStatus.ACCEPTED]

        await broker.set_price("AAPL", Decimal("0.01"))

        reports = await take(stream, 4)
    assert [r.kind for r in reports] == [ReportKind.ACCEPTED, *[ReportKind.FILL] * 3]
    assert sum(r.fill.quantity for r in reports if r.fill) == Decimal(100)


async def test_full_report_queue_makes_producers_wait_and_drops_nothing() -> None:
    async with connected(manual(report_queue_size=2)) as broker:
        stream = each_report(broker.reports())
        # The queue holds two exchange calls' reports; the third call waits.
        for key in ("r1", "r2"):
            await broker.submit(order(key, order_type=OrderType.LIMIT, limit="0.01"))
        submit = asyncio.create_task(broker.submit(order()))
        for _ in range(10):
            await asyncio.sleep(0)
        assert not submit.done()

        reports = await take(stream, 6)
        async with asyncio.timeout(DEADLINE):
            await submit

    kinds = [ReportKind.ACCEPTED, ReportKind.ACCEPTED, ReportKind.ACCEPTED, *[ReportKind.FILL] * 3]
    assert [r.kind for r in reports] == kinds


async def test_same_seed_and_calls_give_the_same_fills() -> None:
    async def session() -> list[BrokerOrderState | None]:
        async with connected(manual(seed=9)) as broker:
            await broker.submit(order("m"))
            await broker.submit(order("l", order_type=OrderType.LIMIT, limit="99.97"))
            for _ in range(50):
                await broker.tick()
            await broker.submit(order("m2"))
            return [await broker.order_status("acct", c) for c in ("m", "l", "m2")]

    first = await session()
    assert all(state is not None and state.fills for state in first)
    assert first == await session()
