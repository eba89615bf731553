"""SubscribeUpdates: live updates, replay, heartbeats, filters, shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import TYPE_CHECKING

import grpc
import pytest

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway.app import Gateway
from tests.support import (
    STREAM_END,
    error_metadata,
    error_reason,
    eventually,
    place_request,
    resting_buy,
    violated_fields,
)

Stream = grpc.aio.UnaryStreamCall[pb.SubscribeUpdatesRequest, pb.SubscribeUpdatesResponse]

if TYPE_CHECKING:
    from gateway._proto.execution.v1.execution_pb2_grpc import (
        ExecutionServiceAsyncStub as Stub,
    )


async def next_message(stream: Stream, within: float = 5.0) -> pb.SubscribeUpdatesResponse:
    async with asyncio.timeout(within):
        message = await stream.read()
    assert message is not STREAM_END
    assert isinstance(message, pb.SubscribeUpdatesResponse)
    return message


async def updates_until(
    stream: Stream, done: object, within: float = 10.0
) -> AsyncIterator[pb.OrderUpdate]:
    """Yield updates (skipping heartbeats) until one satisfies ``done``."""
    async with asyncio.timeout(within):
        while True:
            message = await stream.read()
            assert message is not STREAM_END
            assert isinstance(message, pb.SubscribeUpdatesResponse)
            if message.HasField("update"):
                yield message.update
                if done(message.update):  # type: ignore[operator]
                    return


async def read_to_end(stream: Stream, within: float = 5.0) -> None:
    """Read until the stream ends; its error status raises AioRpcError."""
    async with asyncio.timeout(within):
        while await stream.read() is not STREAM_END:
            pass


def is_filled(update: pb.OrderUpdate) -> bool:
    return update.order.status == pb.ORDER_STATUS_FILLED


async def test_market_order_fills_stream_until_filled(stub: Stub) -> None:
    stream = stub.SubscribeUpdates(pb.SubscribeUpdatesRequest(accounts=["acct-1"]))
    first = await next_message(stream)
    assert first.HasField("heartbeat")  # the stream is open: orders placed now are seen
    placed = (await stub.PlaceOrder(place_request("stream-1", quantity="100"))).order

    updates = [u async for u in updates_until(stream, is_filled)]
    stream.cancel()

    assert all(u.order.order_id == placed.order_id for u in updates)
    sequences = [u.sequence for u in updates]
    assert sequences == sorted(set(sequences)), "strictly increasing"
    assert sequences[0] > first.heartbeat.sequence
    assert updates[0].order.status == pb.ORDER_STATUS_PENDING_NEW
    fills = [u.fill for u in updates if u.HasField("fill")]
    assert len(fills) > 1, "the simulated broker fills in parts"
    assert len({f.exec_id for f in fills}) == len(fills)
    assert sum(Decimal(f.quantity) for f in fills) == Decimal(100)
    filled_so_far = [Decimal(u.order.filled_quantity) for u in updates]
    assert filled_so_far == sorted(filled_so_far), "filled_quantity never decreases"
    for update in updates:
        order = update.order
        if order.status not in (pb.ORDER_STATUS_FILLED, pb.ORDER_STATUS_CANCELED):
            assert Decimal(order.filled_quantity) + Decimal(order.leaves_quantity) == 100
    assert updates[-1].order.filled_quantity == "100"


async def test_heartbeats_carry_the_newest_sequence(stub: Stub) -> None:
    placed = (await stub.PlaceOrder(resting_buy("hb-1"))).order
    assert placed.status == pb.ORDER_STATUS_ACCEPTED
    stream = stub.SubscribeUpdates(pb.SubscribeUpdatesRequest(accounts=["nobody"]))
    beats = [await next_message(stream) for _ in range(3)]
    stream.cancel()
    assert all(b.HasField("heartbeat") for b in beats)
    # Two events so far (created, accepted); the heartbeat reports them though
    # none matched this stream's filter.
    assert beats[-1].heartbeat.sequence >= 2


async def test_after_sequence_replays_then_continues_live_without_gap(stub: Stub) -> None:
    for i in range(5):
        await stub.PlaceOrder(resting_buy(f"replay-{i}"))
    everything = stub.SubscribeUpdates(
        pb.SubscribeUpdatesRequest(accounts=["acct-1"], after_sequence=0)
    )
    replayed = [u async for u in updates_until(everything, lambda u: u.sequence >= 10)]
    assert [u.sequence for u in replayed] == list(range(1, 11))

    resumed = stub.SubscribeUpdates(
        pb.SubscribeUpdatesRequest(accounts=["acct-1"], after_sequence=6)
    )
    await stub.PlaceOrder(resting_buy("replay-live"))
    tail = [
        u
        async for u in updates_until(
            resumed,
            lambda u: (
                u.order.client_order_id == "replay-live"
                and u.order.status == pb.ORDER_STATUS_ACCEPTED
            ),
        )
    ]
    everything.cancel()
    resumed.cancel()
    assert [u.sequence for u in tail] == list(range(7, 13))
    assert [u.order.client_order_id for u in tail][-2:] == ["replay-live", "replay-live"]


async def test_after_sequence_beyond_the_newest_is_invalid(stub: Stub) -> None:
    stream = stub.SubscribeUpdates(pb.SubscribeUpdatesRequest(after_sequence=1_000))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await next_message(stream)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "after_sequence" in violated_fields(caught.value)


async def test_filters_by_account_and_symbol(stub: Stub) -> None:
    msft_only = stub.SubscribeUpdates(
        pb.SubscribeUpdatesRequest(accounts=["acct-1"], symbols=["MSFT"])
    )
    other_account = stub.SubscribeUpdates(pb.SubscribeUpdatesRequest(accounts=["acct-2"]))
    await next_message(msft_only)
    await next_message(other_account)
    await stub.PlaceOrder(resting_buy("f-aapl", symbol="AAPL"))
    await stub.PlaceOrder(resting_buy("f-msft", symbol="MSFT"))
    await stub.PlaceOrder(resting_buy("f-other", account="acct-2", symbol="MSFT"))
    seen = [
        u
        async for u in updates_until(
            msft_only, lambda u: u.order.status == pb.ORDER_STATUS_ACCEPTED
        )
    ]
    assert {(u.order.account, u.order.symbol) for u in seen} == {("acct-1", "MSFT")}
    theirs = [
        u
        async for u in updates_until(
            other_account, lambda u: u.order.status == pb.ORDER_STATUS_ACCEPTED
        )
    ]
    assert {u.order.client_order_id for u in theirs} == {"f-other"}
    msft_only.cancel()
    other_account.cancel()


async def test_bad_filters_are_invalid_argument(stub: Stub) -> None:
    stream = stub.SubscribeUpdates(pb.SubscribeUpdatesRequest(accounts=["bad account!"]))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await next_message(stream)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(caught.value) == {"accounts[0]"}


async def test_streams_end_unavailable_on_shutdown_and_subscribers_are_released(
    gateway: Gateway, stub: Stub
) -> None:
    stream = stub.SubscribeUpdates(pb.SubscribeUpdatesRequest())
    await next_message(stream)
    assert gateway.actor.subscriber_count == 1
    await stub.PlaceOrder(resting_buy("last-one"))
    received = [u async for u in updates_until(stream, lambda u: u.sequence == 2)]
    await gateway.actor.stop()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await read_to_end(stream)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_reason(caught.value) == "GATEWAY_SHUTTING_DOWN"
    assert error_metadata(caught.value)["last_sequence"] == str(received[-1].sequence)
    assert gateway.actor.subscriber_count == 0
    with pytest.raises(grpc.aio.AioRpcError) as unary:
        await stub.PlaceOrder(resting_buy("too-late"))
    assert unary.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_cancelled_streams_release_their_subscriber(gateway: Gateway, stub: Stub) -> None:
    for _ in range(20):
        stream = stub.SubscribeUpdates(pb.SubscribeUpdatesRequest())
        await next_message(stream)
        stream.cancel()
    await eventually(
        lambda: gateway.actor.subscriber_count,
        lambda n: n == 0,
        what="every subscriber released",
    )


async def test_snapshot_sends_open_orders_then_live_changes(stub: Stub) -> None:
    for i in range(3):
        await stub.PlaceOrder(resting_buy(f"snap-{i}"))
    filled = (await stub.PlaceOrder(place_request("snap-done"))).order
    await eventually(
        lambda: stub.GetOrderStatus(
            pb.GetOrderStatusRequest(account="acct-1", order_id=filled.order_id)
        ),
        lambda r: r.order.status == pb.ORDER_STATUS_FILLED,
        what="FILLED",
    )
    stream = stub.SubscribeUpdates(pb.SubscribeUpdatesRequest(accounts=["acct-1"], snapshot=True))
    assert (await next_message(stream)).HasField("heartbeat")
    snapshot = [(await next_message(stream)).update for _ in range(3)]
    complete = (await next_message(stream)).snapshot_complete
    assert [u.order.client_order_id for u in snapshot] == ["snap-0", "snap-1", "snap-2"]
    assert all(u.snapshot for u in snapshot)
    assert all(u.order.status == pb.ORDER_STATUS_ACCEPTED for u in snapshot)
    sequences = [u.sequence for u in snapshot]
    assert sequences == sorted(set(sequences))
    assert complete.order_count == 3
    assert complete.sequence >= sequences[-1]

    await stub.CancelOrder(pb.CancelOrderRequest(account="acct-1", client_order_id="snap-1"))
    live = [
        u async for u in updates_until(stream, lambda u: u.order.status == pb.ORDER_STATUS_CANCELED)
    ]
    stream.cancel()
    assert all(not u.snapshot and u.sequence > complete.sequence for u in live)
    assert {u.order.client_order_id for u in live} == {"snap-1"}


async def test_snapshot_and_after_sequence_are_exclusive(stub: Stub) -> None:
    stream = stub.SubscribeUpdates(pb.SubscribeUpdatesRequest(snapshot=True, after_sequence=0))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await next_message(stream)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "snapshot" in violated_fields(caught.value)
