"""PlaceOrder, CancelOrder, GetOrderStatus, ListOrders through real stubs on port 0."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import grpc
import pytest

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway.app import Gateway
from gateway.brokers.testing import RecordingBroker
from tests.support import (
    error_reason,
    eventually,
    place_request,
    resting_buy,
    violated_fields,
)

if TYPE_CHECKING:
    from gateway._proto.execution.v1.execution_pb2_grpc import (
        ExecutionServiceAsyncStub as Stub,
    )


async def status_of(stub: Stub, order_id: str, account: str = "acct-1") -> pb.Order:
    response = await stub.GetOrderStatus(
        pb.GetOrderStatusRequest(account=account, order_id=order_id)
    )
    return response.order


async def test_market_order_fills_completely(
    stub: Stub, broker: RecordingBroker, gateway: Gateway
) -> None:
    placed = (await stub.PlaceOrder(place_request("mkt-1"))).order
    assert placed.order_id
    assert placed.client_order_id == "mkt-1"
    assert placed.status != pb.ORDER_STATUS_PENDING_NEW  # the broker answered in time
    assert placed.broker_order_id
    filled = await eventually(
        lambda: status_of(stub, placed.order_id),
        lambda o: o.status == pb.ORDER_STATUS_FILLED,
        what="order FILLED",
    )
    assert filled.filled_quantity == "10"
    assert filled.leaves_quantity == "0"
    assert filled.average_fill_price
    assert filled.limit_price == ""
    assert filled.updated_at.ToDatetime() >= filled.created_at.ToDatetime()
    assert broker.submit_count("acct-1", "mkt-1") == 1
    # Acks that trail the fills are echoes, not illegal transitions.
    assert gateway.actor.illegal_transitions == 0


async def test_status_by_client_order_id_matches_by_order_id(stub: Stub) -> None:
    placed = (await stub.PlaceOrder(resting_buy("rest-1"))).order
    by_client = await stub.GetOrderStatus(
        pb.GetOrderStatusRequest(account="acct-1", client_order_id="rest-1")
    )
    assert by_client.order.order_id == placed.order_id
    assert by_client.order.status == pb.ORDER_STATUS_ACCEPTED
    assert by_client.order.limit_price == "0.01"
    assert by_client.order.leaves_quantity == "10"


async def test_repeated_place_returns_the_same_order_and_submits_once(
    gateway: Gateway, stub: Stub, broker: RecordingBroker
) -> None:
    first = (await stub.PlaceOrder(resting_buy("dup-1"))).order
    second = (await stub.PlaceOrder(resting_buy("dup-1"))).order
    assert second.order_id == first.order_id
    await gateway.actor.idle()
    assert broker.submit_count("acct-1", "dup-1") == 1


async def test_concurrent_duplicates_in_flight_reach_the_broker_once(
    gateway: Gateway, stub: Stub, broker: RecordingBroker
) -> None:
    broker.hold_submits()
    calls = [asyncio.ensure_future(stub.PlaceOrder(resting_buy("race-1"))) for _ in range(25)]
    await eventually(
        lambda: broker.submit_count("acct-1", "race-1"),
        lambda n: n >= 1,
        what="the submit reaching the broker",
    )
    broker.release_submits()
    orders = [response.order for response in await asyncio.gather(*calls)]
    assert len({o.order_id for o in orders}) == 1
    # Every consequence of those calls has run, so a second submit would show.
    await gateway.actor.idle()
    assert broker.submit_count("acct-1", "race-1") == 1
    assert all(o.status == pb.ORDER_STATUS_ACCEPTED for o in orders)


async def test_same_client_order_id_in_another_account_is_another_order(stub: Stub) -> None:
    a = (await stub.PlaceOrder(resting_buy("shared-id", account="acct-1"))).order
    b = (await stub.PlaceOrder(resting_buy("shared-id", account="acct-2"))).order
    assert a.order_id != b.order_id


async def test_reused_client_order_id_with_other_parameters_is_already_exists(
    stub: Stub, broker: RecordingBroker
) -> None:
    original = (await stub.PlaceOrder(resting_buy("reuse-1"))).order
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.PlaceOrder(resting_buy("reuse-1", quantity="11"))
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error_reason(caught.value) == "CLIENT_ORDER_ID_REUSED"
    unchanged = await status_of(stub, original.order_id)
    assert unchanged.quantity == "10"
    assert broker.submit_count("acct-1", "reuse-1") == 1


async def test_pending_new_after_the_configured_wait_then_accepted(
    tmp_path: object, broker: RecordingBroker, gateway: Gateway, stub: Stub
) -> None:
    broker.hold_submits()
    placed = (await stub.PlaceOrder(resting_buy("slow-1"), timeout=0.5)).order
    assert placed.status == pb.ORDER_STATUS_PENDING_NEW
    assert placed.broker_order_id == ""
    broker.release_submits()
    accepted = await eventually(
        lambda: status_of(stub, placed.order_id),
        lambda o: o.status == pb.ORDER_STATUS_ACCEPTED,
        what="ACCEPTED after the broker answered",
    )
    assert accepted.broker_order_id


async def test_cancel_is_pending_then_canceled(stub: Stub) -> None:
    placed = (await stub.PlaceOrder(resting_buy("cxl-1"))).order
    response = await stub.CancelOrder(
        pb.CancelOrderRequest(account="acct-1", order_id=placed.order_id)
    )
    assert response.order.status in (pb.ORDER_STATUS_PENDING_CANCEL, pb.ORDER_STATUS_CANCELED)
    canceled = await eventually(
        lambda: status_of(stub, placed.order_id),
        lambda o: o.status == pb.ORDER_STATUS_CANCELED,
        what="CANCELED",
    )
    assert canceled.filled_quantity == "0"
    assert canceled.leaves_quantity == "0"


async def test_cancel_by_client_order_id(stub: Stub) -> None:
    await stub.PlaceOrder(resting_buy("cxl-2"))
    response = await stub.CancelOrder(
        pb.CancelOrderRequest(account="acct-1", client_order_id="cxl-2")
    )
    assert response.order.client_order_id == "cxl-2"
    assert response.order.status in (pb.ORDER_STATUS_PENDING_CANCEL, pb.ORDER_STATUS_CANCELED)


async def test_cancel_while_submit_in_flight_cancels_after_the_ack(
    stub: Stub, broker: RecordingBroker
) -> None:
    broker.hold_submits()
    placed = (await stub.PlaceOrder(resting_buy("cxl-early"), timeout=0.3)).order
    assert placed.status == pb.ORDER_STATUS_PENDING_NEW
    pending = (
        await stub.CancelOrder(pb.CancelOrderRequest(account="acct-1", order_id=placed.order_id))
    ).order
    assert pending.status == pb.ORDER_STATUS_PENDING_CANCEL
    assert broker.cancelled == []  # the broker does not know the order yet
    broker.release_submits()
    canceled = await eventually(
        lambda: status_of(stub, placed.order_id),
        lambda o: o.status == pb.ORDER_STATUS_CANCELED,
        what="CANCELED once the ack arrived",
    )
    assert canceled.broker_order_id


async def test_cancel_of_a_terminal_order_is_failed_precondition(stub: Stub) -> None:
    placed = (await stub.PlaceOrder(place_request("done-1"))).order
    await eventually(
        lambda: status_of(stub, placed.order_id),
        lambda o: o.status == pb.ORDER_STATUS_FILLED,
        what="FILLED",
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CancelOrder(pb.CancelOrderRequest(account="acct-1", order_id=placed.order_id))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(caught.value) == "ORDER_ALREADY_TERMINAL"
    assert (await status_of(stub, placed.order_id)).status == pb.ORDER_STATUS_FILLED


async def test_unknown_orders_are_not_found(stub: Stub) -> None:
    for call in (
        stub.CancelOrder(pb.CancelOrderRequest(account="acct-1", order_id="nope")),
        stub.GetOrderStatus(pb.GetOrderStatusRequest(account="acct-1", client_order_id="nope")),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        assert error_reason(caught.value) == "ORDER_NOT_FOUND"


async def test_another_accounts_order_is_not_found_and_untouched(stub: Stub) -> None:
    theirs = (await stub.PlaceOrder(resting_buy("private-1", account="acct-2"))).order
    for request in (
        pb.CancelOrderRequest(account="acct-1", order_id=theirs.order_id),
        pb.CancelOrderRequest(account="acct-1", client_order_id="private-1"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.CancelOrder(request)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetOrderStatus(
            pb.GetOrderStatusRequest(account="acct-1", order_id=theirs.order_id)
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    still = await status_of(stub, theirs.order_id, account="acct-2")
    assert still.status == pb.ORDER_STATUS_ACCEPTED


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (place_request("bad-1", quantity="1e3"), "quantity"),
        (place_request("bad-2", quantity="0"), "quantity"),
        (place_request("bad-3", quantity="-5"), "quantity"),
        (place_request("bad-4", quantity="NaN"), "quantity"),
        (place_request("bad-5", limit_price="10"), "limit_price"),
        (place_request("bad-6", order_type=pb.ORDER_TYPE_LIMIT), "limit_price"),
        (place_request("bad-7", order_type=pb.ORDER_TYPE_STOP), "stop_price"),
        (place_request("bad-8", side=pb.SIDE_UNSPECIFIED), "side"),
        (place_request("bad-9", side=42), "side"),  # type: ignore[arg-type]
        (place_request("bad-10", time_in_force=pb.TIME_IN_FORCE_GTC), "time_in_force"),
        (place_request("bad-11", symbol="aapl"), "symbol"),
        (place_request("", account="acct-1"), "client_order_id"),
        (place_request("x" * 1_000_000), "client_order_id"),
        (place_request("bad-13", account=""), "account"),
        (place_request("bad-14", quantity="1" * 100_000), "quantity"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
async def test_bad_requests_are_invalid_argument_naming_the_field(
    stub: Stub, broker: RecordingBroker, request_: pb.PlaceOrderRequest, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.PlaceOrder(request_)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in violated_fields(caught.value)
    assert broker.submitted == []
    listed = await stub.ListOrders(pb.ListOrdersRequest(account="acct-1"))
    assert list(listed.orders) == []
    # ...and the server keeps serving.
    assert (await stub.PlaceOrder(resting_buy("after-bad"))).order.order_id


async def test_cancel_and_status_need_exactly_one_order_reference(stub: Stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CancelOrder(pb.CancelOrderRequest(account="acct-1"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetOrderStatus(pb.GetOrderStatusRequest(account="", order_id="x"))
    assert "account" in violated_fields(caught.value)


async def test_list_orders_filters_and_pages(stub: Stub) -> None:
    for i in range(7):
        await stub.PlaceOrder(resting_buy(f"list-{i}", symbol="MSFT" if i % 2 else "AAPL"))
    done = (await stub.PlaceOrder(place_request("list-mkt"))).order
    await eventually(
        lambda: status_of(stub, done.order_id),
        lambda o: o.status == pb.ORDER_STATUS_FILLED,
        what="FILLED",
    )
    everything = await stub.ListOrders(pb.ListOrdersRequest(account="acct-1"))
    assert [o.client_order_id for o in everything.orders] == [
        *(f"list-{i}" for i in range(7)),
        "list-mkt",
    ]
    assert everything.next_page_token == ""

    open_only = await stub.ListOrders(pb.ListOrdersRequest(account="acct-1", open_only=True))
    assert "list-mkt" not in {o.client_order_id for o in open_only.orders}
    assert len(open_only.orders) == 7

    msft = await stub.ListOrders(pb.ListOrdersRequest(account="acct-1", symbols=["MSFT"]))
    assert {o.symbol for o in msft.orders} == {"MSFT"}
    assert len(msft.orders) == 3

    seen: list[str] = []
    token = ""
    for _ in range(10):
        page = await stub.ListOrders(
            pb.ListOrdersRequest(account="acct-1", page_size=3, page_token=token)
        )
        assert len(page.orders) <= 3
        seen += [o.client_order_id for o in page.orders]
        token = page.next_page_token
        if not token:
            break
    assert seen == [o.client_order_id for o in everything.orders]

    other_account = await stub.ListOrders(pb.ListOrdersRequest(account="acct-9"))
    assert list(other_account.orders) == []


async def test_list_orders_refuses_a_foreign_or_garbage_page_token(stub: Stub) -> None:
    for i in range(3):
        await stub.PlaceOrder(resting_buy(f"tok-{i}"))
    page = await stub.ListOrders(pb.ListOrdersRequest(account="acct-1", page_size=1))
    assert page.next_page_token
    for request in (
        pb.ListOrdersRequest(account="acct-1", open_only=True, page_token=page.next_page_token),
        pb.ListOrdersRequest(account="acct-1", page_token="not-a-token"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListOrders(request)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "page_token" in violated_fields(caught.value)
