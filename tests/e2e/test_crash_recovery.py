"""kill -9 under load: nothing acknowledged is lost, nothing is sent twice.

The paper venue runs in its own process and keeps trading while the gateway
is dead. Clients place and cancel orders concurrently; the gateway is
SIGKILLed at random points, many times, and restarted on the same data dir.
Afterwards every acknowledged order is there, the gateway agrees with the
venue on every fill (including fills made while it was down, each applied
once), and the venue received each order exactly once.
"""

from __future__ import annotations

import asyncio
import json
import random
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway._proto.execution.v1 import execution_pb2_grpc as pb_grpc
from gateway.domain import OrderFilled
from gateway.journal.datadir import JOURNAL_FILE
from gateway.journal.inspect import iter_records
from tests.processes import GATEWAY_READY, VENUE_READY, Service, clean_env, start
from tests.support import eventually, place_request, resting_buy

if TYPE_CHECKING:
    from gateway._proto.execution.v1.execution_pb2_grpc import ExecutionServiceAsyncStub

pytestmark = pytest.mark.e2e

ACCOUNT = "acct-1"
KEYS = {"APCA_API_KEY_ID": "PKCRASHTEST00001", "APCA_API_SECRET_KEY": "crash-test-secret"}
ROUNDS = 6
WORKERS = 4
# Orders per worker per round: bounded so the venue's order list (500 at
# most, as at Alpaca) holds every order of the test.
PER_ROUND = 15


@pytest.fixture
def venue() -> Iterator[Service]:
    # Liquidity 4 per match: a market order for 10 fills over several ticks, so
    # fills keep happening at the venue while the gateway is dead.
    service = start(
        [
            "paper_venue",
            "--listen=127.0.0.1:0",
            f"--account={ACCOUNT}",
            "--seed=3",
            "--tick-interval=0.05",
            "--liquidity=4",
        ],
        VENUE_READY,
        clean_env(**KEYS),
    )
    yield service
    service.stop()


def venue_get(venue: Service, path: str) -> Any:
    request = urllib.request.Request(  # noqa: S310 - http on loopback, URL built here
        venue.address + path,
        headers={
            "APCA-API-KEY-ID": KEYS["APCA_API_KEY_ID"],
            "APCA-API-SECRET-KEY": KEYS["APCA_API_SECRET_KEY"],
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - same URL
        return json.loads(response.read())


def start_gateway(venue: Service, data_dir: Path) -> Service:
    return start(
        [
            "gateway",
            "--listen=127.0.0.1:0",
            f"--data-dir={data_dir}",
            "--broker=alpaca",
            f"--alpaca-base-url={venue.address}",
            f"--alpaca-account={ACCOUNT}",
            "--ack-wait=1",
        ],
        GATEWAY_READY,
        clean_env(**KEYS),
    )


@dataclass
class Ledger:
    """What clients sent, and what the gateway acknowledged."""

    requests: dict[str, pb.PlaceOrderRequest] = field(default_factory=dict)
    acked: dict[str, str] = field(default_factory=dict)  # client_order_id -> order_id

    @property
    def unacked(self) -> list[str]:
        return [c for c in self.requests if c not in self.acked]


async def place(stub: ExecutionServiceAsyncStub, ledger: Ledger, coid: str) -> None:
    response = await stub.PlaceOrder(ledger.requests[coid], timeout=5)
    previous = ledger.acked.setdefault(coid, response.order.order_id)
    assert previous == response.order.order_id, f"{coid} changed identity across a crash"


async def worker(stub: ExecutionServiceAsyncStub, ledger: Ledger, name: str, seed: int) -> None:
    """Place (and sometimes cancel) orders until the gateway dies under us."""
    rng = random.Random(seed)
    for i in range(PER_ROUND):
        await asyncio.sleep(rng.uniform(0, 0.06))  # spread the load over the round
        coid = f"{name}-{i}"
        if rng.random() < 0.6:
            ledger.requests[coid] = place_request(coid, account=ACCOUNT, quantity="10")
        else:
            ledger.requests[coid] = resting_buy(coid, account=ACCOUNT)
        try:
            await place(stub, ledger, coid)
            if ledger.requests[coid].order_type == pb.ORDER_TYPE_LIMIT and rng.random() < 0.5:
                await stub.CancelOrder(
                    pb.CancelOrderRequest(account=ACCOUNT, client_order_id=coid), timeout=5
                )
        except grpc.aio.AioRpcError:
            return  # the gateway died (or is not serving yet): next round retries


async def gateway_orders(stub: ExecutionServiceAsyncStub) -> dict[str, pb.Order]:
    orders: dict[str, pb.Order] = {}
    token = ""
    for _ in range(1_000):
        page = await stub.ListOrders(
            pb.ListOrdersRequest(account=ACCOUNT, page_size=1000, page_token=token)
        )
        orders.update({o.client_order_id: o for o in page.orders})
        token = page.next_page_token
        if not token:
            return orders
    raise AssertionError("paging did not end")


async def test_kill_9_under_load_loses_nothing_and_sends_nothing_twice(
    venue: Service, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    ledger = Ledger()
    rng = random.Random(2024)
    for round_ in range(ROUNDS):
        gateway = start_gateway(venue, data_dir)
        try:
            async with grpc.aio.insecure_channel(gateway.address) as channel:
                stub: ExecutionServiceAsyncStub = pb_grpc.ExecutionServiceStub(channel)
                # Orders whose answer died with the last gateway: retrying with
                # the same client_order_id is safe and must find them.
                for coid in ledger.unacked:
                    await place(stub, ledger, coid)
                workers = [
                    asyncio.ensure_future(
                        worker(stub, ledger, f"r{round_}w{w}", rng.randrange(2**32))
                    )
                    for w in range(WORKERS)
                ]
                await asyncio.sleep(rng.uniform(0.3, 1.2))
                gateway.kill()  # mid-flight, at a random point
                await asyncio.wait_for(asyncio.gather(*workers), 15)
        finally:
            if gateway.process.poll() is None:
                gateway.kill()
        await asyncio.sleep(rng.uniform(0.0, 0.4))  # the venue trades on meanwhile

    gateway = start_gateway(venue, data_dir)
    try:
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            stub = pb_grpc.ExecutionServiceStub(channel)
            for coid in ledger.unacked:
                await place(stub, ledger, coid)
            await check_agreement(stub, venue, ledger)
    finally:
        assert gateway.stop() == 0, gateway.log()

    records = list(iter_records(data_dir / JOURNAL_FILE))
    assert [r.sequence for r in records] == list(range(1, len(records) + 1))
    fills = Counter(
        (r.event.order_id, r.event.fill.exec_id)
        for r in records
        if isinstance(r.event, OrderFilled)
    )
    assert fills, "the test made no fills"
    assert max(fills.values()) == 1, "an exec_id was applied twice"


async def check_agreement(stub: ExecutionServiceAsyncStub, venue: Service, ledger: Ledger) -> None:
    async def disagreements() -> list[str]:
        ours = await gateway_orders(stub)
        theirs = {
            o["client_order_id"]: o for o in venue_get(venue, "/v2/orders?status=all&limit=500")
        }
        problems = [f"{c}: not at the venue" for c in ours if c not in theirs]
        for coid, order in theirs.items():
            mine = ours.get(coid)
            if mine is None:
                problems.append(f"{coid}: at the venue only")
            elif Decimal(mine.filled_quantity) != Decimal(order["filled_qty"] or 0):
                problems.append(f"{coid}: filled {mine.filled_quantity} vs {order['filled_qty']}")
            elif order["status"] in ("filled", "canceled") and mine.status in (
                pb.ORDER_STATUS_PENDING_NEW,
                pb.ORDER_STATUS_ACCEPTED,
                pb.ORDER_STATUS_PARTIALLY_FILLED,
                pb.ORDER_STATUS_PENDING_CANCEL,
            ):
                problems.append(f"{coid}: {pb.OrderStatus.Name(mine.status)} vs {order['status']}")
        return problems

    # Reconciliation after the last restart brings the two together.
    await eventually(disagreements, lambda found: not found, within=45, what="agreement")
    ours = await gateway_orders(stub)
    assert len(ledger.acked) > ROUNDS * WORKERS, "too little load to prove anything"
    for coid, order_id in ledger.acked.items():
        assert ours[coid].order_id == order_id, f"acknowledged order {coid} lost"
    sent = {s["client_order_id"]: s["count"] for s in venue_get(venue, "/_venue/submissions")}
    assert set(sent) == set(ours)
    assert max(sent.values()) == 1, f"sent twice: {[c for c, n in sent.items() if n > 1]}"
