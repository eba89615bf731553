"""Trading controls through the public API: positions, pre-trade risk, the kill switch."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway._proto.execution.v1 import execution_pb2_grpc as pb_grpc
from gateway.app import Gateway
from gateway.auth import TokenStore, hash_token, parse_table
from gateway.brokers import ExecutionReport, ReportKind
from gateway.brokers.simulated import SimConfig, SimulatedBroker
from gateway.brokers.testing import RecordingBroker
from gateway.domain import Fill
from gateway.journal import MemoryJournal
from tests.conftest import gateway_test_config
from tests.support import change_sequence, error_reason, eventually, place_request, resting_buy

ACCOUNT = "acct-1"


def resting_sell(
    client_order_id: str, quantity: str = "10", **overrides: Any
) -> pb.PlaceOrderRequest:
    """A sell limit far above the simulated price (~100): it rests until filled by hand."""
    return resting_buy(
        client_order_id, side=pb.SIDE_SELL, limit_price="100000", quantity=quantity, **overrides
    )


def fill_report(order: pb.Order, exec_id: str, quantity: str, price: str) -> ExecutionReport:
    now = datetime.now(UTC)
    return ExecutionReport(
        ReportKind.FILL,
        order.account,
        order.client_order_id,
        now,
        order.broker_order_id,
        Fill(exec_id, Decimal(quantity), Decimal(price), now),
    )


async def filled_to(stub: Any, order: pb.Order, quantity: str) -> None:
    await eventually(
        functools.partial(status_of, stub, order),
        lambda o: o.filled_quantity == quantity,
        what=f"filled {quantity}",
    )


async def status_of(stub: Any, order: pb.Order) -> pb.Order:
    request = pb.GetOrderStatusRequest(account=order.account, order_id=order.order_id)
    found: pb.Order = (await stub.GetOrderStatus(request)).order
    return found


async def position_of(stub: Any, symbol: str = "AAPL") -> pb.Position:
    request = pb.GetPositionsRequest(account=ACCOUNT, symbols=[symbol])
    positions: list[pb.Position] = list((await stub.GetPositions(request)).positions)
    assert len(positions) == 1
    return positions[0]


async def rejected_with(call: Any) -> grpc.aio.AioRpcError:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error
    raise AssertionError("the call succeeded")


@pytest.fixture
def control(channel: grpc.aio.Channel) -> pb_grpc.ControlServiceStub:
    return pb_grpc.ControlServiceStub(channel)


# ------------------------------------------------------------------ positions


async def test_positions_follow_partial_fills_and_a_flip_and_stream_after_each_fill(
    stub: Any, broker: RecordingBroker, gateway: Gateway
) -> None:
    buy = (await stub.PlaceOrder(resting_buy("buy-1"))).order
    broker.send(fill_report(buy, "x-1", "4", "100"))
    broker.send(fill_report(buy, "x-2", "6", "110"))
    await filled_to(stub, buy, "10")
    long = await position_of(stub)
    assert (long.quantity, long.average_cost, long.realized_pnl) == ("10", "106", "0")

    sell = (await stub.PlaceOrder(resting_sell("sell-1", quantity="15"))).order
    broker.send(fill_report(sell, "x-3", "15", "120"))
    await filled_to(stub, sell, "15")
    short = await position_of(stub)
    # 10 closed at 120 against 106, then 5 short opened at 120.
    assert (short.quantity, short.average_cost, short.realized_pnl) == ("-5", "120", "140")

    everything = (await stub.GetPositions(pb.GetPositionsRequest(account=ACCOUNT))).positions
    assert [p.symbol for p in everything] == ["AAPL"]
    flat = await position_of(stub, "MSFT")  # asked for, never traded
    assert (flat.quantity, flat.average_cost, flat.realized_pnl) == ("0", "", "0")

    # Replayed from the journal: each fill is followed by its position change, next in sequence.
    last = gateway.actor.last_sequence
    messages = []
    async with asyncio.timeout(10):
        async for message in stub.SubscribeUpdates(pb.SubscribeUpdatesRequest(after_sequence=0)):
            messages.append(message)
            kind = message.WhichOneof("event")
            if kind != "heartbeat" and getattr(message, kind).sequence == last:
                break
    fills = [
        m.update for m in messages if m.WhichOneof("event") == "update" and m.update.fill.exec_id
    ]
    positions = [m.position for m in messages if m.WhichOneof("event") == "position"]
    assert [f.fill.exec_id for f in fills] == ["x-1", "x-2", "x-3"]
    assert [p.sequence for p in positions] == [f.sequence + 1 for f in fills]
    assert [p.position.quantity for p in positions] == ["4", "10", "-5"]
    assert [p.order_id for p in positions] == [buy.order_id, buy.order_id, sell.order_id]


async def test_a_read_only_principal_may_read_positions_of_its_accounts_only(
    tmp_path: Path, broker: RecordingBroker
) -> None:
    async with controlled_gateway(tmp_path, broker) as (_, channel):
        stub = pb_grpc.ExecutionServiceStub(channel)
        own = pb.GetPositionsRequest(account=ACCOUNT)
        assert list((await stub.GetPositions(own, metadata=bearer("viewer"))).positions) == []
        other = pb.GetPositionsRequest(account="acct-2")
        error = await rejected_with(stub.GetPositions(other, metadata=bearer("viewer")))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED


# --------------------------------------------------------------- pre-trade risk


async def test_a_refused_order_is_rejected_journaled_and_its_retry_returns_it(
    tmp_path: Path, broker: RecordingBroker
) -> None:
    limits = tmp_path / "limits.toml"
    limits.write_text("[defaults]\nmax_order_quantity = 10\n")
    async with controlled_gateway(tmp_path, broker, risk_limits=limits) as (gw, channel):
        stub = pb_grpc.ExecutionServiceStub(channel)
        too_big = resting_buy("big-1", quantity="10.01")
        first = (await stub.PlaceOrder(too_big, metadata=bearer("trader"))).order
        assert first.status == pb.ORDER_STATUS_REJECTED
        assert first.reject_reason == (
            "risk limit max_order_quantity is 10; the order's quantity is 10.01"
        )
        again = (await stub.PlaceOrder(too_big, metadata=bearer("trader"))).order
        assert again.order_id == first.order_id
        assert broker.submit_count(ACCOUNT, "big-1") == 0
        at_limit = (await stub.PlaceOrder(resting_buy("ok-1"), metadata=bearer("trader"))).order
        assert at_limit.status == pb.ORDER_STATUS_ACCEPTED
        assert gw.actor.risk_refusals["max_order_quantity"] == 1
        scraped = scrape(gw)
        assert 'gateway_risk_refusals_total{limit="max_order_quantity"} 1.0' in scraped
        assert "gateway_risk_limits_file_ok 1.0" in scraped


async def test_the_limits_file_hot_reloads_and_a_bad_reload_keeps_the_last_good(
    tmp_path: Path, broker: RecordingBroker
) -> None:
    limits = tmp_path / "limits.toml"
    limits.write_text("[defaults]\nmax_order_quantity = 10\n")
    async with controlled_gateway(tmp_path, broker, risk_limits=limits) as (gw, channel):
        stub = pb_grpc.ExecutionServiceStub(channel)
        control = pb_grpc.ControlServiceStub(channel)
        admin = bearer("admin")

        async def limits_in_force() -> pb.GetRiskLimitsResponse:
            return await control.GetRiskLimits(pb.GetRiskLimitsRequest(), metadata=admin)

        limits.write_text(
            "[defaults]\nmax_order_quantity = 20\n[accounts.acct-1]\nmax_open_orders = 3\n"
        )
        reloaded = await eventually(
            limits_in_force,
            lambda r: r.limits[0].max_order_quantity == "20",
            what="the new limits in force",
        )
        assert reloaded.source == str(limits)
        assert reloaded.last_error == ""
        assert [(e.account, e.max_open_orders) for e in reloaded.limits] == [("", 0), (ACCOUNT, 3)]
        order = (
            await stub.PlaceOrder(resting_buy("c-15", quantity="15"), metadata=bearer("trader"))
        ).order
        assert order.status == pb.ORDER_STATUS_ACCEPTED

        limits.write_text("[defaults]\nmax_order_quantity = 'twenty'\n")
        refused = await eventually(
            limits_in_force, lambda r: r.last_error != "", what="the bad file refused"
        )
        assert "max_order_quantity" in refused.last_error
        assert refused.limits[0].max_order_quantity == "20"  # the last good limits stay
        assert "gateway_risk_limits_file_ok 0.0" in scrape(gw)
        over = (
            await stub.PlaceOrder(resting_buy("c-21", quantity="21"), metadata=bearer("trader"))
        ).order
        assert over.status == pb.ORDER_STATUS_REJECTED


# ------------------------------------------------------------------ kill switch


async def test_a_halt_with_orders_in_flight_sends_nothing_new_and_cancels_the_open_ones(
    stub: Any, control: Any, broker: RecordingBroker, gateway: Gateway, channel: grpc.aio.Channel
) -> None:
    resting = [(await stub.PlaceOrder(resting_buy(f"rest-{i}"))).order for i in range(3)]
    other = (await stub.PlaceOrder(resting_buy("other-1", account="acct-2"))).order
    broker.hold_submits()
    in_flight = asyncio.ensure_future(stub.PlaceOrder(resting_buy("flight-1")))
    await eventually(lambda: len(broker.submitted) == 5, what="the submit at the broker")
    updates = stub.SubscribeUpdates(pb.SubscribeUpdatesRequest(accounts=[ACCOUNT]))
    stream = aiter(updates)
    first = await anext(stream)  # the stream's first heartbeat: it is registered
    assert first.WhichOneof("event") == "heartbeat"

    halt = pb.HaltTradingRequest(
        scope_account=ACCOUNT,
        mode=pb.TRADING_MODE_HALTED,
        cancel_open_orders=True,
        reason="runaway",
    )
    halted = await control.HaltTrading(halt)
    sent_at_halt = len(broker.submitted)
    (state,) = halted.state.halts
    assert (state.scope_account, state.mode, state.reason, state.principal) == (
        ACCOUNT,
        pb.TRADING_MODE_HALTED,
        "runaway",
        "anonymous",
    )
    canceled = {o.client_order_id for o in halted.canceled_orders}
    assert canceled == {"rest-0", "rest-1", "rest-2", "flight-1"}
    assert all(o.status == pb.ORDER_STATUS_PENDING_CANCEL for o in halted.canceled_orders)

    refused = (await stub.PlaceOrder(resting_buy("after-1"))).order
    assert refused.status == pb.ORDER_STATUS_REJECTED
    assert "halted" in refused.reject_reason
    broker.release_submits()
    await in_flight
    await gateway.actor.idle()
    assert len(broker.submitted) == sent_at_halt  # nothing new reached the broker
    for order in [*resting, (await in_flight).order]:
        await eventually(
            functools.partial(status_of, stub, order),
            lambda o: o.status == pb.ORDER_STATUS_CANCELED,
            what=f"{order.client_order_id} cancelled",
        )
    # Another account trades on; the halt is on its stream only if it concerns it.
    status = await stub.GetOrderStatus(
        pb.GetOrderStatusRequest(account="acct-2", order_id=other.order_id)
    )
    assert status.order.status == pb.ORDER_STATUS_ACCEPTED
    accepted = (await stub.PlaceOrder(resting_buy("other-2", account="acct-2"))).order
    assert accepted.status == pb.ORDER_STATUS_ACCEPTED

    async with asyncio.timeout(10):
        async for message in stream:
            if message.WhichOneof("event") == "trading_state":
                change = message.trading_state.change
                assert (change.scope_account, change.mode) == (ACCOUNT, pb.TRADING_MODE_HALTED)
                break
    updates.cancel()

    # Halted, the gateway still answers: health stays SERVING.
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "execution.v1.ExecutionService", "execution.v1.ControlService"):
        answer = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    assert 'gateway_trading_mode{scope="acct-1"} 2.0' in scrape(gateway)

    resumed = await control.ResumeTrading(pb.ResumeTradingRequest(scope_account=ACCOUNT))
    assert list(resumed.state.halts) == []
    again = (await stub.PlaceOrder(resting_buy("after-resume"))).order
    assert again.status == pb.ORDER_STATUS_ACCEPTED


async def test_reducing_lets_a_reducing_order_through_and_refuses_a_flip(
    stub: Any, control: Any, broker: RecordingBroker
) -> None:
    buy = (await stub.PlaceOrder(resting_buy("long-1"))).order
    broker.send(fill_report(buy, "x-1", "10", "100"))
    await filled_to(stub, buy, "10")
    await control.HaltTrading(
        pb.HaltTradingRequest(scope_account="", mode=pb.TRADING_MODE_REDUCING, reason="wind down")
    )
    reducing = (await stub.PlaceOrder(resting_sell("sell-4", quantity="4"))).order
    assert reducing.status == pb.ORDER_STATUS_ACCEPTED
    flip = (await stub.PlaceOrder(resting_sell("sell-7", quantity="7"))).order  # 4 + 7 > 10
    assert flip.status == pb.ORDER_STATUS_REJECTED
    assert "reducing-only" in flip.reject_reason
    adds = (await stub.PlaceOrder(resting_buy("buy-more", quantity="1"))).order
    assert adds.status == pb.ORDER_STATUS_REJECTED
    state = await control.GetTradingState(pb.GetTradingStateRequest())
    assert [(h.scope_account, h.mode) for h in state.state.halts] == [
        ("", pb.TRADING_MODE_REDUCING)
    ]


async def test_replaces_obey_the_halt_and_the_limits(
    tmp_path: Path, broker: RecordingBroker
) -> None:
    limits = tmp_path / "limits.toml"
    limits.write_text("[defaults]\nmax_order_quantity = 10\n")
    async with controlled_gateway(tmp_path, broker, risk_limits=limits) as (gw, channel):
        stub = pb_grpc.ExecutionServiceStub(channel)
        control = pb_grpc.ControlServiceStub(channel)
        order = (
            await stub.PlaceOrder(resting_buy("rp-1", quantity="5"), metadata=bearer("trader"))
        ).order

        def replace(replace_id: str, quantity: str) -> Any:
            request = pb.ReplaceOrderRequest(
                account=ACCOUNT, order_id=order.order_id, replace_id=replace_id, quantity=quantity
            )
            return stub.ReplaceOrder(request, metadata=bearer("trader"))

        async def current() -> pb.Order:
            request = pb.GetOrderStatusRequest(account=ACCOUNT, order_id=order.order_id)
            found: pb.Order = (await stub.GetOrderStatus(request, metadata=bearer("trader"))).order
            return found

        error = await rejected_with(replace("r-big", "10.01"))  # one tick past the limit
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error_reason(error) == "RISK_LIMIT"
        assert "max_order_quantity is 10" in (error.details() or "")
        assert (await replace("r-10", "10")).order.status == pb.ORDER_STATUS_PENDING_REPLACE
        await eventually(current, lambda o: o.quantity == "10", what="replaced to 10")
        halt = pb.HaltTradingRequest(mode=pb.TRADING_MODE_REDUCING, reason="wind down")
        await control.HaltTrading(halt, metadata=bearer("admin"))
        assert (await replace("r-down", "6")).order.status == pb.ORDER_STATUS_PENDING_REPLACE
        await eventually(current, lambda o: o.quantity == "6", what="replaced to 6")
        error = await rejected_with(replace("r-up", "7"))  # adds quantity: refused
        assert error_reason(error) == "TRADING_HALTED"
        halt = pb.HaltTradingRequest(mode=pb.TRADING_MODE_HALTED, reason="stop")
        await control.HaltTrading(halt, metadata=bearer("admin"))
        error = await rejected_with(replace("r-halted", "5"))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error_reason(error) == "TRADING_HALTED"
        assert [r for r, _ in broker.replaced] == ["r-10", "r-down"]
        assert (await current()).quantity == "6"
        assert gw.actor.risk_refusals["max_order_quantity"] == 1


async def test_bad_halt_requests_are_invalid_arguments(control: Any) -> None:
    for request, field in [
        (pb.HaltTradingRequest(mode=pb.TRADING_MODE_ACTIVE), "mode"),
        (
            pb.HaltTradingRequest(mode=pb.TRADING_MODE_HALTED, scope_account="no spaces"),
            "scope_account",
        ),
        (pb.HaltTradingRequest(mode=pb.TRADING_MODE_HALTED, reason="x" * 600), "reason"),
    ]:
        error = await rejected_with(control.HaltTrading(request))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, field
    state = await control.GetTradingState(pb.GetTradingStateRequest())
    assert list(state.state.halts) == []  # nothing changed


async def test_a_trading_token_cannot_halt_and_an_admin_can(
    tmp_path: Path, broker: RecordingBroker, caplog: pytest.LogCaptureFixture
) -> None:
    async with controlled_gateway(tmp_path, broker) as (_, channel):
        control = pb_grpc.ControlServiceStub(channel)
        halt_all = pb.HaltTradingRequest(mode=pb.TRADING_MODE_HALTED, reason="drill")
        halt_one = pb.HaltTradingRequest(scope_account=ACCOUNT, mode=pb.TRADING_MODE_HALTED)
        for name in ("trader", "viewer"):
            error = await rejected_with(control.HaltTrading(halt_one, metadata=bearer(name)))
            assert error.code() == grpc.StatusCode.PERMISSION_DENIED
            assert error_reason(error) == "ADMIN_REQUIRED"
            error = await rejected_with(
                control.GetTradingState(pb.GetTradingStateRequest(), metadata=bearer(name))
            )
            assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        # An admin of one account halts that account, not every account.
        error = await rejected_with(control.HaltTrading(halt_all, metadata=bearer("desk-admin")))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        await control.HaltTrading(halt_one, metadata=bearer("desk-admin"))
        with caplog.at_level(logging.INFO, logger="gateway.audit"):
            answer = await control.HaltTrading(halt_all, metadata=bearer("admin"))
        assert [(h.scope_account, h.principal) for h in answer.state.halts] == [
            ("", "admin"),
            (ACCOUNT, "desk-admin"),
        ]
        lines = [r.getMessage() for r in caplog.records if "trading_control" in r.getMessage()]
        assert any("outcome=halted" in line and "principal=admin" in line for line in lines)
        error = await rejected_with(control.HaltTrading(halt_one, metadata=bearer("nobody-at-all")))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_halts_and_positions_survive_a_restart(tmp_path: Path) -> None:
    config = dataclasses.replace(gateway_test_config(tmp_path), shutdown_grace=0.5)

    async def started() -> tuple[Gateway, RecordingBroker]:
        broker = RecordingBroker(SimulatedBroker(SimConfig(seed=7, tick_interval=0.01)))
        gw = Gateway(config, broker=broker)
        await gw.start()
        return gw, broker

    gw, broker = await started()
    try:
        async with grpc.aio.insecure_channel(gw.address) as channel:
            stub = pb_grpc.ExecutionServiceStub(channel)
            buy = (await stub.PlaceOrder(resting_buy("buy-1"))).order
            broker.send(fill_report(buy, "x-1", "3", "101.5"))
            await filled_to(stub, buy, "3")
            control = pb_grpc.ControlServiceStub(channel)
            await control.HaltTrading(
                pb.HaltTradingRequest(scope_account=ACCOUNT, mode=pb.TRADING_MODE_HALTED)
            )
            before = await position_of(stub)
    finally:
        await gw.stop(grace=0.5)

    gw, broker = await started()
    try:
        async with grpc.aio.insecure_channel(gw.address) as channel:
            stub = pb_grpc.ExecutionServiceStub(channel)
            assert await position_of(stub) == before
            assert (before.quantity, before.average_cost) == ("3", "101.5")
            control = pb_grpc.ControlServiceStub(channel)
            state = await control.GetTradingState(pb.GetTradingStateRequest())
            assert [(h.scope_account, h.mode) for h in state.state.halts] == [
                (ACCOUNT, pb.TRADING_MODE_HALTED)
            ]
            refused = (await stub.PlaceOrder(place_request("after-restart"))).order
            assert refused.status == pb.ORDER_STATUS_REJECTED
            assert broker.submit_count(ACCOUNT, "after-restart") == 0
            # Replayed from the SQLite journal: the position and the halt, in sequence.
            last = gw.actor.last_sequence
            kinds: list[str] = []
            async with asyncio.timeout(10):
                request = pb.SubscribeUpdatesRequest(after_sequence=0)
                async for message in stub.SubscribeUpdates(request):
                    sequence = change_sequence(message)
                    if sequence is None:
                        continue
                    kinds.append(str(message.WhichOneof("event")))
                    if message.HasField("position"):
                        assert message.position.position == before
                    if sequence >= last:
                        break
            assert kinds.count("position") == 1
            assert kinds.count("trading_state") == 1
            assert kinds.index("position") < kinds.index("trading_state")
    finally:
        await gw.stop(grace=0.5)


# ------------------------------------------------------------------ helpers

TOKENS = {
    "admin": "admin-token-0123456789abcdef",
    "desk-admin": "desk-admin-token-0123456789abcdef",
    "trader": "trader-token-0123456789abcdef",
    "viewer": "viewer-token-0123456789abcdef",
}
TABLE = f"""
admin       {hash_token(TOKENS["admin"])}       *       admin
desk-admin  {hash_token(TOKENS["desk-admin"])}  acct-1  admin
trader      {hash_token(TOKENS["trader"])}      acct-1  rw
viewer      {hash_token(TOKENS["viewer"])}      acct-1  ro
"""


def bearer(name: str) -> tuple[tuple[str, str], ...]:
    token = TOKENS.get(name, "unknown-token-0123456789abcdef")
    return (("authorization", f"Bearer {token}"),)


def scrape(gw: Gateway) -> str:
    from prometheus_client import generate_latest

    return generate_latest(gw.metrics.registry).decode()


class controlled_gateway:  # noqa: N801  (used as a context manager, like a function)
    """A gateway with the test principals (and a limits file, if given)."""

    def __init__(self, tmp_path: Path, broker: RecordingBroker, **config: Any) -> None:
        base = gateway_test_config(tmp_path)
        self._config = dataclasses.replace(
            base,
            tokens=TokenStore(parse_table(TABLE, source="test")),
            risk_limits_reload_interval=0.05,
            **config,
        )
        self._broker = broker

    async def __aenter__(self) -> tuple[Gateway, grpc.aio.Channel]:
        self._gw = Gateway(self._config, broker=self._broker, journal=MemoryJournal())
        await self._gw.start()
        self._channel = grpc.aio.insecure_channel(self._gw.address)
        return self._gw, self._channel

    async def __aexit__(self, *exc: object) -> None:
        await self._channel.close(None)
        await self._gw.stop(grace=0.5)
