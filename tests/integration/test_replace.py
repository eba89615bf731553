"""ReplaceOrder and CancelAllOrders through real stubs, against the simulated broker."""

from __future__ import annotations

import asyncio
import functools
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway._proto.execution.v1 import execution_pb2_grpc as pb_grpc
from gateway.app import Gateway
from gateway.brokers import ExecutionReport, ReportKind
from gateway.brokers.simulated import SimConfig, SimulatedBroker
from gateway.brokers.testing import RecordingBroker
from gateway.domain import Fill, OrderSpec, OrderType, Side, TimeInForce
from gateway.engine import actor as actor_module
from tests.conftest import gateway_test_config
from tests.support import error_reason, eventually, place_request, resting_buy, violated_fields

if TYPE_CHECKING:
    from gateway._proto.execution.v1.execution_pb2_grpc import (
        ExecutionServiceAsyncStub as Stub,
    )


async def status_of(stub: Stub, order_id: str) -> pb.Order:
    return (
        await stub.GetOrderStatus(pb.GetOrderStatusRequest(account="acct-1", order_id=order_id))
    ).order


def replace(order_id: str, replace_id: str, **terms: str) -> pb.ReplaceOrderRequest:
    return pb.ReplaceOrderRequest(
        account="acct-1", order_id=order_id, replace_id=replace_id, **terms
    )


async def settled(stub: Stub, order_id: str) -> pb.Order:
    """The order once no replace is pending any more."""
    return await eventually(
        lambda: status_of(stub, order_id),
        lambda o: o.status != pb.ORDER_STATUS_PENDING_REPLACE,
        what="replace settled",
    )


def venue_fill(order: pb.Order, exec_id: str, quantity: str) -> ExecutionReport:
    """A fill report as if the venue executed part of ``order``."""
    now = datetime.now(UTC)
    return ExecutionReport(
        ReportKind.FILL,
        order.account,
        order.client_order_id,
        now,
        order.broker_order_id,
        Fill(exec_id, Decimal(quantity), Decimal("0.01"), now),
    )


async def test_replace_goes_pending_then_works_on_with_the_new_terms(
    stub: Stub, broker: RecordingBroker, gateway: Gateway
) -> None:
    placed = (await stub.PlaceOrder(resting_buy("amend-1"))).order
    answer = (
        await stub.ReplaceOrder(replace(placed.order_id, "r-1", quantity="20", limit_price="0.02"))
    ).order
    assert answer.status == pb.ORDER_STATUS_PENDING_REPLACE
    assert answer.quantity == "10"  # the old terms work until the broker accepts
    assert answer.replace_id == "r-1"
    done = await settled(stub, placed.order_id)
    assert done.status == pb.ORDER_STATUS_ACCEPTED
    assert (done.quantity, done.limit_price, done.leaves_quantity) == ("20", "0.02", "20")
    assert done.replace_id == "r-1"
    assert done.order_id == placed.order_id
    assert [spec.quantity for _, spec in broker.replaced] == [Decimal(20)]
    venue = broker.inner
    assert isinstance(venue, SimulatedBroker)
    state = venue.exchange.order_status("acct-1", "amend-1")
    assert state is not None
    assert state.spec is not None
    assert state.spec.limit_price == Decimal("0.02")
    assert gateway.actor.illegal_transitions == 0
    # Timed and counted like the other broker calls, and the outcome by event.
    sample = gateway.metrics.registry.get_sample_value
    assert sample("gateway_broker_calls_total", {"operation": "replace", "outcome": "ok"}) == 1
    assert sample("gateway_order_events_total", {"event": "OrderReplaced"}) == 1


async def test_updates_say_what_changed(stub: Stub) -> None:
    # From the start of the journal: every update, however late the stream registers.
    request = pb.SubscribeUpdatesRequest(accounts=["acct-1"], after_sequence=0)
    stream = stub.SubscribeUpdates(request)
    try:
        placed = (await stub.PlaceOrder(resting_buy("kinds-1"))).order
        await stub.ReplaceOrder(replace(placed.order_id, "r-k", limit_price="0.03"))
        await settled(stub, placed.order_id)
        await stub.CancelOrder(pb.CancelOrderRequest(account="acct-1", order_id=placed.order_id))
        kinds: list[int] = []
        async with asyncio.timeout(10):
            async for message in stream:
                if message.HasField("update"):
                    kinds.append(message.update.kind)
                    if message.update.kind == pb.UPDATE_KIND_CANCELED:
                        break
    finally:
        stream.cancel()
    assert kinds == [
        pb.UPDATE_KIND_CREATED,
        pb.UPDATE_KIND_ACCEPTED,
        pb.UPDATE_KIND_REPLACE_REQUESTED,
        pb.UPDATE_KIND_REPLACED,
        pb.UPDATE_KIND_CANCEL_REQUESTED,
        pb.UPDATE_KIND_CANCELED,
    ]


async def test_the_original_place_order_still_returns_the_replaced_order(stub: Stub) -> None:
    placed = (await stub.PlaceOrder(resting_buy("orig-1"))).order
    await stub.ReplaceOrder(replace(placed.order_id, "r-o", quantity="15"))
    await settled(stub, placed.order_id)
    again = (await stub.PlaceOrder(resting_buy("orig-1"))).order
    assert again.order_id == placed.order_id
    assert again.quantity == "15"  # the order as it is now
    with pytest.raises(grpc.aio.AioRpcError) as refused:  # the new terms are not its identity
        await stub.PlaceOrder(resting_buy("orig-1", quantity="15"))
    assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_a_retried_replace_returns_the_order_and_reaches_the_broker_once(
    stub: Stub, broker: RecordingBroker, gateway: Gateway
) -> None:
    placed = (await stub.PlaceOrder(resting_buy("retry-1"))).order
    other = (await stub.PlaceOrder(resting_buy("retry-2"))).order
    first = (await stub.ReplaceOrder(replace(placed.order_id, "r-same", quantity="12"))).order
    second = (await stub.ReplaceOrder(replace(placed.order_id, "r-same", quantity="12"))).order
    assert second.order_id == first.order_id
    await settled(stub, placed.order_id)
    third = (await stub.ReplaceOrder(replace(placed.order_id, "r-same", quantity="12"))).order
    assert third.status == pb.ORDER_STATUS_ACCEPTED
    assert third.quantity == "12"
    await gateway.actor.idle()
    assert [replace_id for replace_id, _ in broker.replaced] == ["r-same"]
    for request in (
        replace(placed.order_id, "r-same", quantity="13"),  # other terms
        replace(other.order_id, "r-same", quantity="12"),  # another order
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.ReplaceOrder(request)
        assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS
        assert error_reason(refused.value) == "REPLACE_ID_REUSED"


@pytest.mark.parametrize(
    ("terms", "fields"),
    [
        ({}, {"quantity"}),
        ({"quantity": "-1"}, {"quantity"}),
        ({"quantity": "1e3"}, {"quantity"}),
        ({"limit_price": "abc", "replace_id": ""}, {"limit_price", "replace_id"}),
        ({"stop_price": "1"}, {"stop_price"}),  # a LIMIT order has no stop price
        ({"quantity": "3"}, {"quantity"}),  # below the 4 already filled
    ],
)
async def test_bad_replaces_are_invalid_and_change_nothing(
    stub: Stub, broker: RecordingBroker, terms: dict[str, str], fields: set[str]
) -> None:
    placed = (await stub.PlaceOrder(resting_buy("bad-1"))).order
    broker.send(venue_fill(placed, "bad-x-1", "4"))
    await eventually(lambda: status_of(stub, placed.order_id), lambda o: o.filled_quantity == "4")
    request = replace(placed.order_id, terms.pop("replace_id", "r-bad"), **terms)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.ReplaceOrder(request)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(refused.value) == fields
    after = await status_of(stub, placed.order_id)
    assert (after.status, after.quantity, after.replace_id) == (
        pb.ORDER_STATUS_PARTIALLY_FILLED,
        "10",
        "",
    )
    assert broker.replaced == []


async def test_replace_of_a_filled_or_unknown_order_is_refused(stub: Stub) -> None:
    filled = (await stub.PlaceOrder(place_request("mkt-r"))).order
    await eventually(
        lambda: status_of(stub, filled.order_id), lambda o: o.status == pb.ORDER_STATUS_FILLED
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.ReplaceOrder(replace(filled.order_id, "r-f", quantity="20"))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(refused.value) == "ORDER_ALREADY_TERMINAL"
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await stub.ReplaceOrder(replace("no-such-order", "r-u", quantity="20"))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_second_replace_while_one_is_pending_is_refused(
    stub: Stub, broker: RecordingBroker
) -> None:
    placed = (await stub.PlaceOrder(resting_buy("twice-1"))).order
    broker.hold_replaces()
    await stub.ReplaceOrder(replace(placed.order_id, "r-a", quantity="11"))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.ReplaceOrder(replace(placed.order_id, "r-b", quantity="12"))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(refused.value) == "REPLACE_PENDING"
    broker.release_replaces()
    assert (await settled(stub, placed.order_id)).quantity == "11"


# ------------------------------------------------------------------ races


async def test_a_fill_during_the_pending_replace_is_counted(
    stub: Stub, broker: RecordingBroker, gateway: Gateway
) -> None:
    placed = (await stub.PlaceOrder(resting_buy("race-fill"))).order
    broker.hold_replaces()
    await stub.ReplaceOrder(replace(placed.order_id, "r-rf", quantity="20"))
    broker.send(venue_fill(placed, "race-x-1", "4"))
    during = await eventually(
        lambda: status_of(stub, placed.order_id), lambda o: o.filled_quantity == "4"
    )
    assert during.status == pb.ORDER_STATUS_PENDING_REPLACE
    assert during.leaves_quantity == "6"  # of the old quantity, still in force
    broker.release_replaces()
    done = await settled(stub, placed.order_id)
    assert (done.status, done.quantity, done.filled_quantity, done.leaves_quantity) == (
        pb.ORDER_STATUS_PARTIALLY_FILLED,
        "20",
        "4",
        "16",
    )
    assert gateway.actor.illegal_transitions == 0


async def test_a_cancel_during_the_pending_replace_ends_the_order(
    stub: Stub, broker: RecordingBroker, gateway: Gateway
) -> None:
    placed = (await stub.PlaceOrder(resting_buy("race-cancel"))).order
    broker.hold_replaces()
    await stub.ReplaceOrder(replace(placed.order_id, "r-rc", quantity="20"))
    cancel = await stub.CancelOrder(
        pb.CancelOrderRequest(account="acct-1", order_id=placed.order_id)
    )
    assert cancel.order.status == pb.ORDER_STATUS_PENDING_CANCEL
    await eventually(lambda: broker.cancelled, what="cancel at the broker")
    broker.release_replaces()  # arrives after the cancel: the venue refuses it
    done = await eventually(
        lambda: status_of(stub, placed.order_id),
        lambda o: o.status == pb.ORDER_STATUS_CANCELED,
        what="CANCELED",
    )
    await gateway.actor.idle()
    final = await status_of(stub, placed.order_id)
    assert final.status == pb.ORDER_STATUS_CANCELED
    assert final.quantity == "10"
    assert "canceled" in final.reject_reason  # the replace's refusal, recorded
    assert done.order_id == placed.order_id
    assert gateway.actor.illegal_transitions == 0


async def test_an_order_filled_during_the_pending_replace_stays_filled(
    stub: Stub, broker: RecordingBroker, gateway: Gateway
) -> None:
    placed = (await stub.PlaceOrder(resting_buy("race-done"))).order
    broker.hold_replaces()
    await stub.ReplaceOrder(replace(placed.order_id, "r-rd", quantity="20"))
    venue = broker.inner
    assert isinstance(venue, SimulatedBroker)
    await venue.set_price("AAPL", Decimal("0.01"))  # the venue fills it in full
    await eventually(
        lambda: status_of(stub, placed.order_id), lambda o: o.status == pb.ORDER_STATUS_FILLED
    )
    broker.release_replaces()
    await gateway.actor.idle()
    final = await status_of(stub, placed.order_id)
    assert (final.status, final.quantity, final.filled_quantity) == (
        pb.ORDER_STATUS_FILLED,
        "10",
        "10",
    )
    assert "filled" in final.reject_reason
    assert gateway.actor.illegal_transitions == 0


# ------------------------------------------------------------- cancel all


async def test_cancel_all_honours_symbol_and_side(stub: Stub, gateway: Gateway) -> None:
    aapl_buy = (await stub.PlaceOrder(resting_buy("ca-1"))).order
    aapl_sell = (
        await stub.PlaceOrder(resting_buy("ca-2", side=pb.SIDE_SELL, limit_price="100000"))
    ).order
    msft_buy = (await stub.PlaceOrder(resting_buy("ca-3", symbol="MSFT"))).order
    other_account = (await stub.PlaceOrder(resting_buy("ca-4", account="acct-2"))).order

    async def cancel_all(**selection: object) -> list[str]:
        request = pb.CancelAllOrdersRequest(account="acct-1", **selection)  # type: ignore[arg-type]
        response = await stub.CancelAllOrders(request)
        assert all(o.status == pb.ORDER_STATUS_PENDING_CANCEL for o in response.orders)
        ids = [o.order_id for o in response.orders]
        for order_id in ids:  # each ends as a normal cancel
            await eventually(
                functools.partial(status_of, stub, order_id),
                lambda o: o.status == pb.ORDER_STATUS_CANCELED,
                what="CANCELED",
            )
        return ids

    assert await cancel_all(symbol="AAPL", side=pb.SIDE_BUY) == [aapl_buy.order_id]
    assert await cancel_all(symbol="AAPL") == [aapl_sell.order_id]
    assert await cancel_all() == [msft_buy.order_id]
    assert await cancel_all() == []
    untouched = await stub.GetOrderStatus(
        pb.GetOrderStatusRequest(account="acct-2", order_id=other_account.order_id)
    )
    assert untouched.order.status == pb.ORDER_STATUS_ACCEPTED


async def test_cancel_all_of_many_orders_runs_in_batches(stub: Stub, gateway: Gateway) -> None:
    count = actor_module.CANCEL_ALL_BATCH * 2 + 3
    placed = await asyncio.gather(
        *(gateway.actor.place_order(_resting_spec(f"many-{i}")) for i in range(count))
    )
    response = await stub.CancelAllOrders(pb.CancelAllOrdersRequest(account="acct-1"))
    assert [o.order_id for o in response.orders] == sorted(
        (o.order_id for o in placed), key=[o.order_id for o in placed].index
    )
    assert len(response.orders) == count
    await eventually(
        lambda: gateway.actor.open_orders(), lambda open_: not open_, what="all cancelled"
    )


@pytest.mark.parametrize(
    ("request_", "fields"),
    [
        (pb.CancelAllOrdersRequest(), {"account"}),
        (pb.CancelAllOrdersRequest(account="acct-1", symbol="aapl"), {"symbol"}),
        (pb.CancelAllOrdersRequest(account="acct-1", side=7), {"side"}),  # type: ignore[arg-type]
    ],
)
async def test_bad_cancel_all_requests_are_invalid(
    stub: Stub, request_: pb.CancelAllOrdersRequest, fields: set[str]
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.CancelAllOrders(request_)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(refused.value) == fields


# ---------------------------------------------------------------- restart


async def test_replaced_terms_and_replace_ids_survive_a_restart(tmp_path: Path) -> None:
    async def start() -> Gateway:
        broker = SimulatedBroker(SimConfig(seed=1, tick_interval=0.01))
        gw = Gateway(gateway_test_config(tmp_path, checkpoint_every=3), broker=broker)
        await gw.start()
        return gw

    first = await start()
    try:
        async with grpc.aio.insecure_channel(first.address) as channel:
            stub: Stub = pb_grpc.ExecutionServiceStub(channel)
            placed = (await stub.PlaceOrder(resting_buy("keep-1"))).order
            await stub.ReplaceOrder(replace(placed.order_id, "r-keep", quantity="30"))
            before = await settled(stub, placed.order_id)
            for i in range(4):  # past a checkpoint, then more journal
                await stub.PlaceOrder(resting_buy(f"filler-{i}"))
    finally:
        await first.stop()
    second = await start()
    try:
        async with grpc.aio.insecure_channel(second.address) as channel:
            stub = pb_grpc.ExecutionServiceStub(channel)
            after = await status_of(stub, placed.order_id)
            assert (after.quantity, after.replace_id, after.status) == (
                "30",
                "r-keep",
                before.status,
            )
            # The replace_id is still known: a retry returns the order...
            again = await stub.ReplaceOrder(replace(placed.order_id, "r-keep", quantity="30"))
            assert again.order.quantity == "30"
            # ...and the original PlaceOrder still names it.
            retried = await stub.PlaceOrder(resting_buy("keep-1"))
            assert retried.order.order_id == placed.order_id
    finally:
        await second.stop()


def _resting_spec(client_order_id: str) -> OrderSpec:
    return OrderSpec(
        "acct-1", client_order_id, "AAPL", Side.BUY, OrderType.LIMIT, Decimal(10),
        TimeInForce.GTC, limit_price=Decimal("0.01"),
    )  # fmt: skip


# ------------------------------------------------------------ reject code


async def test_a_broker_rejection_says_who_refused(stub: Stub, broker: RecordingBroker) -> None:
    placed = (await stub.PlaceOrder(resting_buy("refused-1"))).order
    assert placed.reject_code == pb.REJECT_CODE_UNSPECIFIED
    now = datetime.now(UTC)
    broker.send(
        ExecutionReport(
            ReportKind.REJECTED,
            "acct-1",
            "refused-1",
            now,
            placed.broker_order_id,
            reason="insufficient buying power",
        )
    )
    rejected = await eventually(
        lambda: status_of(stub, placed.order_id),
        lambda o: o.status == pb.ORDER_STATUS_REJECTED,
        what="REJECTED",
    )
    assert rejected.reject_code == pb.REJECT_CODE_BROKER
    assert rejected.reject_reason == "insufficient buying power"
