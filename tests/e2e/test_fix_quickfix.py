"""The gateway trading through FIX 4.4 against QuickFIX, the reference engine.

``ordermatch`` (QuickFIX's matching engine example, patched to FIX 4.4 by
tests/fix/ordermatch-fix44.patch) fills crossing orders and cancels resting
ones; ``executor`` fills every limit order at once, refuses what it does not
know with Reject (3) or BusinessMessageReject (j), and hangs up on a Logon
from CompIDs it does not know. Both run as processes on loopback.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway._proto.execution.v1 import execution_pb2_grpc as pb_grpc
from gateway.app import SERVICE_NAME, Gateway
from gateway.brokers.errors import BrokerTimeout
from gateway.brokers.fix import FixBroker, FixConfig
from gateway.domain import OrderSpec, OrderStatus, OrderType, Side, TimeInForce
from gateway.journal import MemoryJournal
from tests.conftest import gateway_test_config
from tests.fix.quickfix import Acceptor, quickfix_acceptor
from tests.support import eventually, place_request

if TYPE_CHECKING:
    from gateway._proto.execution.v1.execution_pb2_grpc import ExecutionServiceAsyncStub

pytestmark = pytest.mark.e2e

ACCOUNT = "main"


def fix_config(port: int, **changes: Any) -> FixConfig:
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "sender_comp_id": "GATEWAY",
        "target_comp_id": "VENUE",
        "accounts": {ACCOUNT: "ACC-1"},
        "heartbeat_interval": 2,
        "logon_timeout": 3.0,
        "reconnect_backoff": 0.1,
        "reconnect_backoff_max": 0.5,
        "request_timeout": 5.0,
        # QuickFIX's examples answer neither H nor AF.
        "status_requests": False,
    }
    settings.update(changes)
    return FixConfig(**settings)


@pytest.fixture
def ordermatch(tmp_path: Path) -> Iterator[Acceptor]:
    with quickfix_acceptor("ordermatch", tmp_path / "ordermatch") as acceptor:
        yield acceptor


@pytest.fixture
def executor(tmp_path: Path) -> Iterator[Acceptor]:
    with quickfix_acceptor("executor", tmp_path / "executor") as acceptor:
        yield acceptor


async def running_gateway(tmp_path: Path, config: FixConfig) -> AsyncGenerator[Gateway, None]:
    fix = FixBroker(config, tmp_path / "fix.sqlite")
    gateway = Gateway(gateway_test_config(tmp_path), broker=fix, journal=MemoryJournal())
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop(grace=0.5)


@pytest.fixture
async def stub_for(tmp_path: Path) -> AsyncIterator[Any]:
    """``await stub_for(acceptor)``: a gateway on that acceptor, and a stub to call it."""
    opened: list[tuple[AsyncGenerator[Gateway, None], grpc.aio.Channel]] = []

    async def start(acceptor: Acceptor, **changes: Any) -> ExecutionServiceAsyncStub:
        gateways = running_gateway(tmp_path, fix_config(acceptor.port, **changes))
        gateway = await anext(gateways)
        channel = grpc.aio.insecure_channel(gateway.address)
        opened.append((gateways, channel))
        stub: ExecutionServiceAsyncStub = pb_grpc.ExecutionServiceStub(channel)
        stub.gateway = gateway  # type: ignore[attr-defined]  # for the tests' own checks
        stub.health = health_pb2_grpc.HealthStub(channel)  # type: ignore[attr-defined]
        return stub

    yield start
    for gateways, channel in opened:
        await channel.close(None)
        await gateways.aclose()


async def order(stub: ExecutionServiceAsyncStub, client_order_id: str) -> pb.Order:
    response = await stub.GetOrderStatus(
        pb.GetOrderStatusRequest(account=ACCOUNT, client_order_id=client_order_id)
    )
    return response.order


async def settled(stub: ExecutionServiceAsyncStub, client_order_id: str, status: int) -> pb.Order:
    return await eventually(
        lambda: order(stub, client_order_id),
        lambda o: o.status == status,
        what=f"{client_order_id} in status {pb.OrderStatus.Name(status)}",  # type: ignore[arg-type]
    )


def limit(client_order_id: str, side: int, quantity: str, price: str) -> pb.PlaceOrderRequest:
    return place_request(
        client_order_id,
        account=ACCOUNT,
        side=side,  # type: ignore[arg-type]
        order_type=pb.ORDER_TYPE_LIMIT,
        quantity=quantity,
        limit_price=price,
    )


async def test_ordermatch_fills_limit_and_market_orders_against_crossing_orders(
    ordermatch: Acceptor, stub_for: Any
) -> None:
    stub = await stub_for(ordermatch)
    await stub.PlaceOrder(limit("ask-1", pb.SIDE_SELL, "10", "100.5"))
    await settled(stub, "ask-1", pb.ORDER_STATUS_ACCEPTED)
    await stub.PlaceOrder(limit("bid-1", pb.SIDE_BUY, "4", "101"))
    bid = await settled(stub, "bid-1", pb.ORDER_STATUS_FILLED)
    ask = await settled(stub, "ask-1", pb.ORDER_STATUS_PARTIALLY_FILLED)
    assert (bid.filled_quantity, Decimal(bid.average_fill_price)) == ("4", Decimal("100.5"))
    assert (ask.filled_quantity, ask.leaves_quantity) == ("4", "6")
    # A market buy takes the rest of the resting ask, at its price.
    await stub.PlaceOrder(place_request("mkt-1", account=ACCOUNT, quantity="6"))
    market = await settled(stub, "mkt-1", pb.ORDER_STATUS_FILLED)
    ask = await settled(stub, "ask-1", pb.ORDER_STATUS_FILLED)
    assert (market.filled_quantity, Decimal(market.average_fill_price)) == ("6", Decimal("100.5"))
    assert ask.filled_quantity == "10"
    assert ask.broker_order_id == "ask-1"  # ordermatch's OrderID is the ClOrdID


async def test_ordermatch_cancels_a_resting_order(ordermatch: Acceptor, stub_for: Any) -> None:
    stub = await stub_for(ordermatch)
    await stub.PlaceOrder(limit("rest-1", pb.SIDE_BUY, "3", "50"))
    await settled(stub, "rest-1", pb.ORDER_STATUS_ACCEPTED)
    await stub.CancelOrder(pb.CancelOrderRequest(account=ACCOUNT, client_order_id="rest-1"))
    cancelled = await settled(stub, "rest-1", pb.ORDER_STATUS_CANCELED)
    assert cancelled.filled_quantity == "0"
    # The book no longer holds it: a crossing sell rests instead of filling.
    await stub.PlaceOrder(limit("ask-2", pb.SIDE_SELL, "3", "40"))
    ask = await settled(stub, "ask-2", pb.ORDER_STATUS_ACCEPTED)
    assert ask.filled_quantity == "0"


async def test_executor_fills_limits_and_rejects_what_it_does_not_take(
    executor: Acceptor, stub_for: Any
) -> None:
    stub = await stub_for(executor)
    await stub.PlaceOrder(limit("ex-1", pb.SIDE_BUY, "7", "12.25"))
    filled = await settled(stub, "ex-1", pb.ORDER_STATUS_FILLED)
    assert (filled.filled_quantity, Decimal(filled.average_fill_price)) == ("7", Decimal("12.25"))
    # executor takes limit orders only: a market order gets a session-level Reject.
    placed = await stub.PlaceOrder(place_request("ex-2", account=ACCOUNT))
    refused = placed.order
    if refused.status != pb.ORDER_STATUS_REJECTED:
        refused = await settled(stub, "ex-2", pb.ORDER_STATUS_REJECTED)
    assert refused.reject_reason != ""


async def test_executor_refuses_status_requests_and_the_adapter_falls_back(
    executor: Acceptor, tmp_path: Path
) -> None:
    fix = FixBroker(fix_config(executor.port, status_requests=True), tmp_path / "fix.sqlite")
    await fix.connect()
    try:
        assert fix.logged_on, fix.last_error
        spec = OrderSpec(
            ACCOUNT,
            "h-1",
            "AAPL",
            Side.BUY,
            OrderType.LIMIT,
            Decimal(1),
            TimeInForce.DAY,
            limit_price=Decimal(5),
        )
        assert (await fix.submit(spec)).broker_order_id != ""
        # executor answers H with j (unsupported): the question failed, not the order...
        with pytest.raises(BrokerTimeout, match="H refused"):
            await fix.order_status(ACCOUNT, "h-1")
        # ...and from then on the adapter answers from executor's last report.
        state = await fix.order_status(ACCOUNT, "h-1")
        assert state is not None
        assert (state.status, state.filled_quantity) == (OrderStatus.FILLED, Decimal(1))
        sent = [m.msg_type for m in fix.store.sent_between(1, fix.store.next_out)]
        assert sent.count("H") == 1
    finally:
        await fix.close()


async def test_logon_with_wrong_comp_ids_is_refused_clearly_and_reads_are_served(
    executor: Acceptor, stub_for: Any
) -> None:
    stub = await stub_for(executor, sender_comp_id="STRANGER")
    fix = stub.gateway.broker
    assert "logon refused" in fix.last_error
    answer = await stub.health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
    assert answer.status == health_pb2.HealthCheckResponse.NOT_SERVING
    listed = await stub.ListOrders(pb.ListOrdersRequest(account=ACCOUNT))
    assert list(listed.orders) == []
