"""The SDK's trading-controls calls and stream events, against an in-process fake gateway.

Amend, mass cancel, positions, the ControlService calls, and the new stream
members (position and trading-state updates, an update's kind): the requests
the SDK builds, the Decimals and enums it decodes, its retries (with one
replace_id), its typed errors, and its resumption across reconnects. A stream
member this SDK does not know (from a newer gateway) is skipped, not fatal.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar

import grpc
import pytest
from gateway_client import (
    AsyncClient,
    Backoff,
    Client,
    Event,
    Heartbeat,
    OrderStatus,
    OrderUpdate,
    PositionUpdate,
    ReconnectPolicy,
    RejectCode,
    RetryPolicy,
    Side,
    TradingMode,
    TradingStateUpdate,
    UpdateKind,
    errors,
)
from gateway_client._convert import event_from_proto, order_from_proto
from gateway_client._proto.execution.v1 import execution_pb2 as pb
from gateway_client._watch import WatchTable, event_json, event_line

from tests.clients.fake_gateway import Failure, FakeGateway, order, unknown_stream_member

FAST_RETRY = RetryPolicy(max_attempts=4, backoff=Backoff(initial=0.01, maximum=0.02))
FAST_RECONNECT = ReconnectPolicy(max_attempts=3, backoff=Backoff(initial=0.01, maximum=0.02))
STREAM_DEADLINE = 10.0
E = TypeVar("E", bound=Event)
UNAVAILABLE = Failure(grpc.StatusCode.UNAVAILABLE)
DEADLINE = Failure(grpc.StatusCode.DEADLINE_EXCEEDED)


@pytest.fixture
async def fake() -> AsyncIterator[FakeGateway]:
    async with FakeGateway() as gateway:
        yield gateway


@pytest.fixture
async def client(fake: FakeGateway) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(
        fake.address, token="t", retry=FAST_RETRY, reconnect=FAST_RECONNECT
    ) as sdk:
        yield sdk


def replaced(request: pb.ReplaceOrderRequest) -> pb.ReplaceOrderResponse:
    """The fake's answer: the order PENDING_REPLACE under the request's replace_id."""
    return pb.ReplaceOrderResponse(
        order=order(status=pb.ORDER_STATUS_PENDING_REPLACE, replace_id=request.replace_id)
    )


async def test_replace_sends_decimal_strings_and_retries_with_one_replace_id(
    fake: FakeGateway, client: AsyncClient
) -> None:
    fake.answers["ReplaceOrder"] = replaced
    fake.fail("ReplaceOrder", UNAVAILABLE, DEADLINE)
    amended = await client.replace_order(
        "acct-1", client_order_id="cid-1", quantity=Decimal("6"), limit_price="0.020"
    )
    sent: list[pb.ReplaceOrderRequest] = fake.requests["ReplaceOrder"]
    assert len(sent) == 3, "UNAVAILABLE and DEADLINE_EXCEEDED are both retried"
    assert {r.replace_id for r in sent} == {sent[0].replace_id}
    assert sent[0].replace_id.startswith("sdk-")
    first = sent[0]
    assert (first.account, first.WhichOneof("order_ref"), first.client_order_id) == (
        "acct-1",
        "client_order_id",
        "cid-1",
    )
    # Omitted numbers go out empty: "keep the current one".
    assert (first.quantity, first.limit_price, first.stop_price) == ("6", "0.020", "")
    assert amended.status is OrderStatus.PENDING_REPLACE
    assert amended.replace_id == first.replace_id
    assert amended.limit_price == Decimal("0.01")


async def test_replace_uses_the_callers_replace_id_and_order_id(
    fake: FakeGateway, client: AsyncClient
) -> None:
    fake.answers["ReplaceOrder"] = replaced
    amended = await client.replace_order("acct-1", order_id="ord-1", stop_price=1, replace_id="r-7")
    (sent,) = fake.requests["ReplaceOrder"]
    assert (sent.order_id, sent.replace_id, sent.stop_price, sent.quantity) == (
        "ord-1",
        "r-7",
        "1",
        "",
    )
    assert amended.replace_id == "r-7"
    # The account travels as metadata too, for a proxy that routes on it.
    (metadata,) = fake.metadata["ReplaceOrder"]
    assert (metadata["x-gateway-account"], metadata["authorization"]) == ("acct-1", "Bearer t")


async def test_replace_refuses_nothing_to_change_and_floats_before_any_call(
    fake: FakeGateway, client: AsyncClient
) -> None:
    with pytest.raises(ValueError, match="nothing to replace"):
        await client.replace_order("acct-1", order_id="ord-1")
    with pytest.raises(TypeError, match="float"):
        await client.replace_order("acct-1", order_id="ord-1", quantity=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="exactly one"):
        await client.replace_order("acct-1", quantity=2)
    assert "ReplaceOrder" not in fake.requests


async def test_replace_of_a_terminal_order_is_typed_and_not_retried(
    fake: FakeGateway, client: AsyncClient
) -> None:
    fake.answers["ReplaceOrder"] = replaced
    fake.fail(
        "ReplaceOrder", Failure(grpc.StatusCode.FAILED_PRECONDITION, "ORDER_ALREADY_TERMINAL")
    )
    with pytest.raises(errors.OrderAlreadyTerminal) as refused:
        await client.replace_order("acct-1", order_id="ord-1", quantity=3)
    assert refused.value.reason == "ORDER_ALREADY_TERMINAL"
    assert len(fake.requests["ReplaceOrder"]) == 1


async def test_cancel_all_sends_its_filters_and_returns_every_order(
    fake: FakeGateway, client: AsyncClient
) -> None:
    fake.answers["CancelAllOrders"] = pb.CancelAllOrdersResponse(
        orders=[
            order(order_id="ord-1", status=pb.ORDER_STATUS_PENDING_CANCEL),
            order(order_id="ord-2", status=pb.ORDER_STATUS_CANCELED),
        ]
    )
    orders = await client.cancel_all_orders("acct-1", symbol="MSFT", side=Side.SELL)
    everything = await client.cancel_all_orders("acct-1")
    narrow, broad = fake.requests["CancelAllOrders"]
    assert (narrow.account, narrow.symbol, narrow.side) == ("acct-1", "MSFT", pb.SIDE_SELL)
    assert (broad.symbol, broad.side) == ("", pb.SIDE_UNSPECIFIED)
    assert [(o.order_id, o.status) for o in orders] == [
        ("ord-1", OrderStatus.PENDING_CANCEL),
        ("ord-2", OrderStatus.CANCELED),
    ]
    assert everything == orders


async def test_cancel_all_is_retried_when_unavailable_but_not_after_a_deadline(
    fake: FakeGateway, client: AsyncClient
) -> None:
    fake.answers["CancelAllOrders"] = pb.CancelAllOrdersResponse()
    fake.fail("CancelAllOrders", UNAVAILABLE)
    assert await client.cancel_all_orders("acct-1") == []
    assert len(fake.requests["CancelAllOrders"]) == 2
    fake.fail("CancelAllOrders", DEADLINE)
    with pytest.raises(errors.DeadlineExceeded):
        await client.cancel_all_orders("acct-1")
    assert len(fake.requests["CancelAllOrders"]) == 3


async def test_positions_are_signed_decimals(fake: FakeGateway, client: AsyncClient) -> None:
    fake.answers["GetPositions"] = pb.GetPositionsResponse(
        positions=[
            pb.Position(account="acct-1", symbol="AAPL", quantity="-3.5", average_cost="101.25",
                        realized_pnl="-12.50"),
            pb.Position(account="acct-1", symbol="MSFT", quantity="0", realized_pnl="7"),
        ]
    )  # fmt: skip
    fake.fail("GetPositions", UNAVAILABLE)
    short, flat = await client.get_positions("acct-1", ["AAPL", "MSFT"])
    assert [list(r.symbols) for r in fake.requests["GetPositions"]] == [["AAPL", "MSFT"]] * 2
    assert (short.quantity, short.average_cost, short.realized_pnl) == (
        Decimal("-3.5"),
        Decimal("101.25"),
        Decimal("-12.50"),
    )
    assert (flat.quantity, flat.average_cost, flat.realized_pnl) == (Decimal(0), None, Decimal(7))


SINCE = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def trading_state(*halts: tuple[str, int]) -> pb.TradingState:
    state = pb.TradingState()
    for account, mode in halts:
        halt = state.halts.add(scope_account=account, mode=mode, reason="test", principal="ops")
        halt.since.FromDatetime(SINCE)
    return state


async def test_halt_sends_scope_mode_and_cancel_and_returns_the_state(
    fake: FakeGateway, client: AsyncClient
) -> None:
    fake.answers["HaltTrading"] = pb.HaltTradingResponse(
        state=trading_state(("", pb.TRADING_MODE_REDUCING), ("acct-1", pb.TRADING_MODE_HALTED)),
        canceled_orders=[order(status=pb.ORDER_STATUS_PENDING_CANCEL)],
    )
    result = await client.halt_trading(
        mode=TradingMode.REDUCING, cancel_open_orders=True, reason="fat finger"
    )
    (sent,) = fake.requests["HaltTrading"]
    assert (sent.scope_account, sent.mode, sent.cancel_open_orders, sent.reason) == (
        "",
        pb.TRADING_MODE_REDUCING,
        True,
        "fat finger",
    )
    gateway_wide, account_halt = result.state.halts
    assert (gateway_wide.scope_account, gateway_wide.mode) == ("", TradingMode.REDUCING)
    assert (account_halt.principal, account_halt.since) == ("ops", SINCE)
    assert [o.status for o in result.canceled_orders] == [OrderStatus.PENDING_CANCEL]
    # The stricter of an account's own halt and the gateway-wide one.
    assert result.state.mode_for("acct-1") is TradingMode.HALTED
    assert result.state.mode_for("acct-2") is TradingMode.REDUCING


async def test_halt_mode_must_be_halted_or_reducing(fake: FakeGateway, client: AsyncClient) -> None:
    with pytest.raises(ValueError, match="HALTED or REDUCING"):
        await client.halt_trading("acct-1", mode=TradingMode.ACTIVE)
    assert "HaltTrading" not in fake.requests


async def test_resume_state_and_limits(fake: FakeGateway, client: AsyncClient) -> None:
    fake.answers["ResumeTrading"] = pb.ResumeTradingResponse(state=pb.TradingState())
    fake.answers["GetTradingState"] = pb.GetTradingStateResponse(
        state=trading_state(("acct-9", pb.TRADING_MODE_HALTED))
    )
    limits = pb.GetRiskLimitsResponse(
        limits=[
            pb.RiskLimits(max_order_quantity="1000", max_open_orders=50, max_order_rate="2.5"),
            pb.RiskLimits(account="acct-1", max_order_notional="50000.00",
                          price_collar_percent="5", denied_symbols=["GME"]),
        ],
        source="/etc/gateway/risk.toml",
        last_error="line 3: max_order_quantity: not a decimal",
    )  # fmt: skip
    limits.loaded_at.FromDatetime(SINCE)
    fake.answers["GetRiskLimits"] = limits

    assert (await client.resume_trading("acct-1", reason="fixed")).halts == ()
    state = await client.get_trading_state()
    report = await client.get_risk_limits("acct-1")

    (resume,) = fake.requests["ResumeTrading"]
    assert (resume.scope_account, resume.reason) == ("acct-1", "fixed")
    assert state.mode_for("acct-9") is TradingMode.HALTED
    assert state.mode_for("acct-1") is TradingMode.ACTIVE
    assert fake.requests["GetRiskLimits"][0].account == "acct-1"
    defaults, override = report.limits
    assert (defaults.account, defaults.max_order_quantity, defaults.max_order_rate) == (
        "",
        Decimal(1000),
        Decimal("2.5"),
    )
    assert (defaults.max_open_orders, defaults.max_order_notional, defaults.order_rate_burst) == (
        50,
        None,
        None,
    )
    assert (override.max_order_notional, override.price_collar_percent) == (
        Decimal("50000.00"),
        Decimal(5),
    )
    assert (override.max_open_orders, override.denied_symbols) == (None, ("GME",))
    assert (report.source, report.loaded_at) == ("/etc/gateway/risk.toml", SINCE)
    assert report.last_error.startswith("line 3")


async def test_control_calls_without_the_admin_grant_are_permission_denied(
    fake: FakeGateway, client: AsyncClient
) -> None:
    fake.answers["GetTradingState"] = pb.GetTradingStateResponse()
    fake.fail("GetTradingState", Failure(grpc.StatusCode.PERMISSION_DENIED, "ADMIN_REQUIRED"))
    with pytest.raises(errors.AdminRequired) as denied:
        await client.get_trading_state()
    assert isinstance(denied.value, errors.PermissionDenied)
    assert len(fake.requests["GetTradingState"]) == 1


async def test_a_replace_id_reused_for_other_terms_is_typed(
    fake: FakeGateway, client: AsyncClient
) -> None:
    fake.answers["ReplaceOrder"] = replaced
    fake.fail("ReplaceOrder", Failure(grpc.StatusCode.ALREADY_EXISTS, "REPLACE_ID_REUSED"))
    with pytest.raises(errors.ReplaceIdReused) as reused:
        await client.replace_order("acct-1", order_id="ord-1", quantity=2, replace_id="r-1")
    assert isinstance(reused.value, errors.AlreadyExists)
    assert len(fake.requests["ReplaceOrder"]) == 1


def test_the_blocking_client_has_the_same_calls() -> None:
    async def scenario() -> None:
        async with FakeGateway() as fake:
            fake.answers["ReplaceOrder"] = replaced
            fake.answers["HaltTrading"] = pb.HaltTradingResponse(
                state=trading_state(("acct-1", pb.TRADING_MODE_HALTED))
            )
            fake.answers["GetPositions"] = pb.GetPositionsResponse(
                positions=[pb.Position(symbol="AAPL", quantity="2", average_cost="100")]
            )
            fake.fail("ReplaceOrder", UNAVAILABLE)

            def blocking() -> None:
                with Client(fake.address, retry=FAST_RETRY) as client:
                    amended = client.replace_order("acct-1", order_id="ord-1", quantity="6")
                    halted = client.halt_trading("acct-1")
                    (position,) = client.get_positions("acct-1")
                assert amended.status is OrderStatus.PENDING_REPLACE
                assert halted.state.mode_for("acct-1") is TradingMode.HALTED
                assert position.quantity == Decimal(2)

            # The blocking client must not run on the loop that serves the fake.
            await asyncio.to_thread(blocking)
            first, retry = fake.requests["ReplaceOrder"]
            assert first.replace_id == retry.replace_id
            assert fake.requests["HaltTrading"][0].mode == pb.TRADING_MODE_HALTED

    asyncio.run(scenario())


# --- The update stream's new members ---


def order_update(
    sequence: int, kind: pb.UpdateKind.ValueType = pb.UPDATE_KIND_UNSPECIFIED, **fields: object
) -> pb.SubscribeUpdatesResponse:
    return pb.SubscribeUpdatesResponse(
        update=pb.OrderUpdate(sequence=sequence, order=order(**fields), kind=kind)
    )


def position_update(sequence: int, quantity: str) -> pb.SubscribeUpdatesResponse:
    position = pb.Position(account="acct-1", symbol="AAPL", quantity=quantity, average_cost="100")
    return pb.SubscribeUpdatesResponse(
        position=pb.PositionUpdate(sequence=sequence, position=position, order_id="ord-1")
    )


def halt_update(sequence: int, mode: pb.TradingMode.ValueType) -> pb.SubscribeUpdatesResponse:
    change = pb.TradingHalt(scope_account="acct-1", mode=mode, reason="test", principal="ops")
    return pb.SubscribeUpdatesResponse(
        trading_state=pb.TradingStateUpdate(sequence=sequence, change=change)
    )


def heartbeat(sequence: int) -> pb.SubscribeUpdatesResponse:
    return pb.SubscribeUpdatesResponse(heartbeat=pb.Heartbeat(sequence=sequence))


async def collect(subscription: AsyncIterable[E], count: int) -> list[E]:
    seen: list[E] = []
    async with asyncio.timeout(STREAM_DEADLINE):
        async for event in subscription:
            seen.append(event)
            if len(seen) == count:
                break
    return seen


async def test_stream_decodes_kinds_positions_and_halts_and_resumes_after_the_newest(
    fake: FakeGateway, client: AsyncClient
) -> None:
    # First connection: an amend's updates, the fill's position change, a halt,
    # then it breaks. The resume must continue after the halt (sequence 5), the
    # newest change delivered, though it was no order update.
    fake.streams.append(
        (
            [
                order_update(2, pb.UPDATE_KIND_REPLACE_REQUESTED,
                             status=pb.ORDER_STATUS_PENDING_REPLACE, replace_id="r-1"),
                order_update(3, pb.UPDATE_KIND_REPLACED, quantity="6", limit_price="0.02",
                             replace_id="r-1"),
                position_update(4, "-2"),
                halt_update(5, pb.TRADING_MODE_REDUCING),
            ],
            UNAVAILABLE,
        )
    )  # fmt: skip
    # Second connection: the gateway replays what we had (dropped), then news.
    fake.streams.append(
        (
            [
                position_update(4, "-2"),
                halt_update(5, pb.TRADING_MODE_REDUCING),
                halt_update(6, pb.TRADING_MODE_ACTIVE),
                order_update(7, pb.UPDATE_KIND_REJECTED, status=pb.ORDER_STATUS_REJECTED,
                             reject_code=pb.REJECT_CODE_RISK_LIMIT,
                             reject_reason="max_order_quantity 10 < 11"),
            ],
            None,
        )
    )  # fmt: skip
    subscription = client.subscribe_events(["acct-1"], after_sequence=1)
    events = await collect(subscription, 6)
    subscription.close()

    first, second = fake.requests["SubscribeUpdates"]
    assert first.after_sequence == 1
    assert second.after_sequence == 5
    assert [type(e).__name__ for e in events] == [
        "OrderUpdate",
        "OrderUpdate",
        "PositionUpdate",
        "TradingStateUpdate",
        "TradingStateUpdate",
        "OrderUpdate",
    ]
    assert [getattr(e, "sequence", None) for e in events] == [2, 3, 4, 5, 6, 7]
    assert subscription.last_sequence == 7
    requested, done, moved, halted, resumed, rejected = events
    assert isinstance(requested, OrderUpdate)
    assert isinstance(done, OrderUpdate)
    assert (requested.kind, requested.order.status) == (
        UpdateKind.REPLACE_REQUESTED,
        OrderStatus.PENDING_REPLACE,
    )
    assert (done.kind, done.order.quantity, done.order.limit_price, done.order.replace_id) == (
        UpdateKind.REPLACED,
        Decimal(6),
        Decimal("0.02"),
        "r-1",
    )
    assert isinstance(moved, PositionUpdate)
    assert (moved.position.quantity, moved.order_id) == (Decimal(-2), "ord-1")
    assert isinstance(halted, TradingStateUpdate)
    assert isinstance(resumed, TradingStateUpdate)
    assert (halted.change.mode, resumed.change.mode) == (TradingMode.REDUCING, TradingMode.ACTIVE)
    assert isinstance(rejected, OrderUpdate)
    assert (rejected.order.reject_code, rejected.kind) == (
        RejectCode.RISK_LIMIT,
        UpdateKind.REJECTED,
    )


async def test_order_subscription_skips_other_members_but_resumes_after_them(
    fake: FakeGateway, client: AsyncClient
) -> None:
    fake.streams.append(([order_update(3), position_update(4, "1")], UNAVAILABLE))
    fake.streams.append(([position_update(4, "1"), order_update(5)], None))
    subscription = client.subscribe(["acct-1"], after_sequence=2)
    updates = await collect(subscription, 2)
    subscription.close()
    assert [u.sequence for u in updates] == [3, 5]
    assert all(isinstance(u, OrderUpdate) for u in updates)
    assert fake.requests["SubscribeUpdates"][1].after_sequence == 4


async def test_a_stream_member_this_sdk_predates_is_skipped_not_fatal(
    fake: FakeGateway, client: AsyncClient
) -> None:
    # A newer gateway sends a kind of event this SDK has no type for; its bytes
    # travel (as an unknown field), and nothing in this SDK's oneof is set.
    newer = unknown_stream_member(2)
    assert newer.SerializeToString()
    assert newer.WhichOneof("event") is None
    fake.streams.append(([heartbeat(1), newer, order_update(3), heartbeat(3)], None))
    subscription = client.subscribe_events(["acct-1"])
    events = await collect(subscription, 3)
    subscription.close()
    assert [type(e) for e in events] == [Heartbeat, OrderUpdate, Heartbeat]
    assert subscription.reconnects == 0
    assert len(fake.requests["SubscribeUpdates"]) == 1


def test_enum_values_this_sdk_predates_read_as_unspecified() -> None:
    newer = order(status=42, reject_code=42)
    decoded = order_from_proto(newer)
    assert (decoded.status, decoded.reject_code) == (
        OrderStatus.UNSPECIFIED,
        RejectCode.UNSPECIFIED,
    )
    update = event_from_proto(order_update(9, kind=pb.UpdateKind.ValueType(42)))
    assert isinstance(update, OrderUpdate)
    assert update.kind is UpdateKind.UNSPECIFIED
    halt = event_from_proto(halt_update(10, mode=pb.TradingMode.ValueType(42)))
    assert isinstance(halt, TradingStateUpdate)
    assert halt.change.mode is TradingMode.UNSPECIFIED


def test_watch_shows_positions_halts_and_replaces() -> None:
    table = WatchTable()
    events = [
        event_from_proto(order_update(3, pb.UPDATE_KIND_REPLACED, quantity="6")),
        event_from_proto(position_update(4, "-2")),
        event_from_proto(halt_update(5, pb.TRADING_MODE_HALTED)),
    ]
    lines = []
    for event in events:
        assert event is not None
        table.apply(event)
        lines.append(event_line(event))
    assert "(REPLACED)" in lines[0]
    assert lines[1].startswith("#4 position acct-1 AAPL -2 avg 100")
    assert lines[2] == "#5 trading acct-1 HALTED by ops (test)"
    screen = table.render()
    assert screen.startswith("trading acct-1 HALTED by ops (test)")
    assert "positions" in screen
    assert "-2" in screen
    assert table.last_sequence == 5
    assert '"event": "position"' in event_json(events[1])  # type: ignore[arg-type]
    table.apply(event_from_proto(halt_update(6, pb.TRADING_MODE_ACTIVE)))  # type: ignore[arg-type]
    assert not table.render().startswith("trading")
