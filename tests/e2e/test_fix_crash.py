"""kill -9 of a gateway trading over FIX: the session and the orders in doubt survive.

The gateway runs as a process against our acceptor (in this test's event
loop), which takes orders and does not answer them: each is in doubt when the
gateway is killed. On restart on the same data dir, the FIX session carries on
with the next sequence numbers (no reset, no gap for the venue), no order is
sent twice, and every order in doubt is settled by an OrderStatusRequest (H).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway._proto.execution.v1 import execution_pb2_grpc as pb_grpc
from tests.fix.fault_acceptor import FaultAcceptor
from tests.processes import GATEWAY_READY, Service, clean_env, start
from tests.support import eventually, place_request

if TYPE_CHECKING:
    from gateway._proto.execution.v1.execution_pb2_grpc import ExecutionServiceAsyncStub

pytestmark = pytest.mark.e2e

ACCOUNT = "main"
ORDERS = 3


@pytest.fixture
async def venue() -> AsyncIterator[FaultAcceptor]:
    acceptor = FaultAcceptor(hold_orders=True)
    await acceptor.start()
    try:
        yield acceptor
    finally:
        await acceptor.stop()


async def start_gateway(data_dir: Path, config: Path) -> Service:
    # In a thread: the acceptor lives on this event loop and must answer the Logon.
    return await asyncio.to_thread(
        start,
        [
            "gateway",
            "--listen=127.0.0.1:0",
            f"--data-dir={data_dir}",
            "--broker=fix",
            f"--fix-config={config}",
            "--ack-wait=0.5",
            "--reconcile-interval=0.5",
        ],
        GATEWAY_READY,
        clean_env(),
    )


async def order(stub: ExecutionServiceAsyncStub, client_order_id: str) -> pb.Order:
    response = await stub.GetOrderStatus(
        pb.GetOrderStatusRequest(account=ACCOUNT, client_order_id=client_order_id)
    )
    return response.order


async def test_kill_9_mid_session_continues_numbers_and_settles_orders_in_doubt(
    venue: FaultAcceptor, tmp_path: Path
) -> None:
    config = tmp_path / "fix.toml"
    config.write_text(
        f'host = "127.0.0.1"\nport = {venue.port}\nsender_comp_id = "GATEWAY"\n'
        'target_comp_id = "VENUE"\nheartbeat_interval = 1\nreconnect_backoff = 0.1\n'
        'request_timeout = 2\n[accounts]\nmain = "ACC-1"\n'
    )
    data_dir = tmp_path / "data"
    gateway = await start_gateway(data_dir, config)
    ids = [f"doubt-{n}" for n in range(ORDERS)]
    try:
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            stub: ExecutionServiceAsyncStub = pb_grpc.ExecutionServiceStub(channel)
            for client_order_id in ids:
                placed = await stub.PlaceOrder(place_request(client_order_id, account=ACCOUNT))
                assert placed.order.status == pb.ORDER_STATUS_PENDING_NEW
            await eventually(lambda: sum(venue.count("D").values()), lambda n: n == ORDERS)
    finally:
        await asyncio.to_thread(gateway.kill)
    first_logon = next(m for m in venue.received if m.msg_type == "A")
    sent_before = venue.next_in  # the next number the venue expects from the gateway
    venue.hold_orders = False  # the venue answers from now on (status requests too)

    gateway = await start_gateway(data_dir, config)
    try:
        logons = await eventually(
            lambda: [m for m in venue.received if m.msg_type == "A"], lambda ls: len(ls) == 2
        )
        # The session carried on: the next number, no reset, so no resend either way.
        assert first_logon.seq_num == 1
        assert logons[1].seq_num == sent_before
        assert logons[1].get(141) is None
        assert venue.resend_requests == 0
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            stub = pb_grpc.ExecutionServiceStub(channel)
            for client_order_id in ids:
                settled = await eventually(
                    lambda cid=client_order_id: order(stub, cid),  # type: ignore[misc]
                    lambda o: o.status == pb.ORDER_STATUS_ACCEPTED,
                    what=f"{client_order_id} settled by a status request",
                )
                assert settled.broker_order_id == f"O-{client_order_id}"
    finally:
        gateway.stop()
    assert venue.count("D") == dict.fromkeys(ids, 1)  # never sent twice
    assert set(venue.count("H")) == set(ids)
