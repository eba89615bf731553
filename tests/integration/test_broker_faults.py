"""The gateway when the broker misbehaves: isolation, lost acks, rate limits,
a dead broker, lost reports, orders that never arrived."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway._proto.execution.v1 import execution_pb2_grpc as pb_grpc
from gateway.app import Gateway
from gateway.brokers import Broker, ExecutionReport
from gateway.brokers.faults import CallFaults, FaultConfig, FaultyBroker
from gateway.brokers.simulated import SimConfig, SimulatedBroker
from gateway.brokers.testing import RecordingBroker
from gateway.journal import MemoryJournal
from tests.conftest import gateway_test_config
from tests.support import error_reason, eventually, place_request, resting_buy

if TYPE_CHECKING:
    from gateway._proto.execution.v1.execution_pb2_grpc import ExecutionServiceAsyncStub


def sim() -> SimulatedBroker:
    return SimulatedBroker(SimConfig(seed=11, tick_interval=0.01))


@pytest.fixture
async def started() -> AsyncIterator[list[Gateway]]:
    """Gateways a test starts; all stopped at the end."""
    running: list[Gateway] = []
    yield running
    for gw in running:
        await gw.stop(grace=0.2)


async def start(
    running: list[Gateway], tmp_path: Path, broker: object, **engine: object
) -> tuple[Gateway, ExecutionServiceAsyncStub]:
    config = gateway_test_config(tmp_path, **engine)
    gw = Gateway(config, broker=broker, journal=MemoryJournal())  # type: ignore[arg-type]
    await gw.start()
    running.append(gw)
    channel = grpc.aio.insecure_channel(gw.address)
    stub: ExecutionServiceAsyncStub = pb_grpc.ExecutionServiceStub(channel)
    return gw, stub


async def execution_health(gw: Gateway) -> int:
    async with grpc.aio.insecure_channel(gw.address) as channel:
        response = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="execution.v1.ExecutionService")
        )
    return int(response.status)


async def order_of(stub: ExecutionServiceAsyncStub, client_order_id: str) -> pb.Order:
    response = await stub.GetOrderStatus(
        pb.GetOrderStatusRequest(account="acct-1", client_order_id=client_order_id)
    )
    return response.order


async def test_a_stuck_broker_call_delays_no_other_order(
    started: list[Gateway], tmp_path: Path
) -> None:
    broker = RecordingBroker(sim())
    # The stuck order's PlaceOrder answers PENDING_NEW after ack_wait; the
    # others' acks must arrive within it, even on a busy machine.
    _, stub = await start(started, tmp_path, broker, ack_wait=1.0)
    other = (await stub.PlaceOrder(resting_buy("other"))).order
    broker.hold_order("stuck")
    stuck = (await stub.PlaceOrder(resting_buy("stuck"))).order
    assert stuck.status == pb.ORDER_STATUS_PENDING_NEW

    # While that submit hangs at the broker, everything else goes on.
    stream = stub.SubscribeUpdates(pb.SubscribeUpdatesRequest(accounts=["acct-1"]))
    opening = await stream.read()
    assert isinstance(opening, pb.SubscribeUpdatesResponse)
    assert opening.HasField("heartbeat")
    cancel = await stub.CancelOrder(
        pb.CancelOrderRequest(account="acct-1", client_order_id="other")
    )
    assert cancel.order.status == pb.ORDER_STATUS_PENDING_CANCEL
    fresh = (await stub.PlaceOrder(place_request("fresh"))).order
    assert fresh.status != pb.ORDER_STATUS_PENDING_NEW
    await eventually(
        lambda: order_of(stub, "other"),
        lambda o: o.status == pb.ORDER_STATUS_CANCELED,
        what="the other order CANCELED",
    )
    await eventually(
        lambda: order_of(stub, "fresh"),
        lambda o: o.status == pb.ORDER_STATUS_FILLED,
        what="a new order FILLED",
    )
    assert (await order_of(stub, "stuck")).status == pb.ORDER_STATUS_PENDING_NEW
    stream.cancel()
    broker.release_order("stuck")
    await eventually(
        lambda: order_of(stub, "stuck"),
        lambda o: o.status == pb.ORDER_STATUS_ACCEPTED,
        what="the stuck order accepted once released",
    )
    assert other.order_id != stuck.order_id
    assert broker.submit_count("acct-1", "stuck") == 1


async def test_a_lost_ack_is_settled_by_asking_never_by_sending_twice(
    started: list[Gateway], tmp_path: Path
) -> None:
    venue = RecordingBroker(sim())
    faults = FaultConfig(submit=CallFaults(lost_answer_rate=1.0))
    _, stub = await start(started, tmp_path, FaultyBroker(venue, faults), ack_wait=5)
    order = (await stub.PlaceOrder(resting_buy("lost-ack"))).order
    assert order.status == pb.ORDER_STATUS_ACCEPTED
    assert order.broker_order_id
    assert venue.submit_count("acct-1", "lost-ack") == 1
    exchange = venue.inner.exchange  # type: ignore[attr-defined]
    assert len(exchange.open_orders("acct-1")) == 1


class ReportsLost(RecordingBroker):
    """Loses the venue's reports about some orders: only asking can settle them."""

    def __init__(self, inner: Broker, lost: set[str]) -> None:
        super().__init__(inner)
        self.lost = lost

    async def reports(self) -> AsyncIterator[Sequence[ExecutionReport]]:
        async for reports in self.inner.reports():
            kept = [r for r in reports if r.client_order_id not in self.lost]
            if kept:
                yield kept


async def test_an_order_left_in_doubt_is_asked_about_without_waiting_for_reconciliation(
    started: list[Gateway], tmp_path: Path
) -> None:
    # The venue acts on the submit but the answer is lost; every question
    # about it fails too; and its report never comes.
    faulty = FaultyBroker(
        sim(),
        FaultConfig(submit=CallFaults(lost_answer_rate=1.0), status=CallFaults(error_rate=1.0)),
    )
    broker = ReportsLost(faulty, lost={"doubt"})
    faulty.enabled = False  # until the start-up reconciliation pass is over
    gw, stub = await start(
        started,
        tmp_path,
        broker,
        ack_wait=0.2,
        broker_attempts=2,
        broker_backoff=0.01,
        broker_backoff_max=0.02,
        broker_failure_threshold=1000,  # stays "healthy": no fast probing
        reconcile_interval=3600,  # and no reconciliation pass in this test's life
        unhealthy_probe_interval=0.2,
    )
    await eventually(
        lambda: gw.actor.reconcile_passes,
        lambda n: n >= 1,
        what="the start-up reconciliation pass",
    )
    faulty.enabled = True
    order = (await stub.PlaceOrder(resting_buy("doubt"))).order
    assert order.status == pb.ORDER_STATUS_PENDING_NEW
    # Submit lost, then the one question failed: the submit ends in doubt.
    await eventually(
        lambda: faulty.injected.get("error", 0),
        lambda n: n >= 1,
        what="the question about the order failed",
    )
    faulty.enabled = False  # the venue answers again
    accepted = await eventually(
        lambda: order_of(stub, "doubt"),
        lambda o: o.status == pb.ORDER_STATUS_ACCEPTED,
        what="the order in doubt found ACCEPTED by asking",
    )
    assert accepted.broker_order_id
    assert broker.submit_count("acct-1", "doubt") == 1


async def test_rate_limits_are_retried_after_the_venues_retry_after(
    started: list[Gateway], tmp_path: Path
) -> None:
    venue = RecordingBroker(sim())
    faulty = FaultyBroker(
        venue, FaultConfig(submit=CallFaults(rate_limit_rate=1.0, retry_after=0.3))
    )
    _, stub = await start(started, tmp_path, faulty, ack_wait=0.05, broker_attempts=10)
    began = time.monotonic()
    order = (await stub.PlaceOrder(resting_buy("limited"))).order
    assert order.status == pb.ORDER_STATUS_PENDING_NEW
    await eventually(
        lambda: faulty.injected.get("rate_limit", 0),
        lambda n: n >= 2,
        what="two rate-limited tries",
    )
    # Two tries rate limited with Retry-After 0.3 s cannot be 0.3 s apart sooner.
    assert time.monotonic() - began >= 0.3
    faulty.enabled = False  # the limit lifts
    accepted = await eventually(
        lambda: order_of(stub, "limited"),
        lambda o: o.status == pb.ORDER_STATUS_ACCEPTED,
        what="accepted after the limit lifted",
    )
    assert accepted.broker_order_id
    assert venue.submit_count("acct-1", "limited") == 1  # 429s never reached the venue


async def test_a_dead_broker_fails_new_orders_fast_and_recovers(
    started: list[Gateway], tmp_path: Path
) -> None:
    venue = RecordingBroker(sim())
    dead = CallFaults(error_rate=1.0)
    faulty = FaultyBroker(venue, FaultConfig(submit=dead, cancel=dead, status=dead))
    gw, stub = await start(
        started,
        tmp_path,
        faulty,
        ack_wait=2,
        broker_attempts=2,
        broker_failure_threshold=2,
        unhealthy_probe_interval=0.05,
    )
    flips: list[bool] = []
    gw.actor.on_broker_health(flips.append)
    first = (await stub.PlaceOrder(resting_buy("doomed"))).order
    # The broker certainly never got it: a rejection is the truth.
    assert first.status == pb.ORDER_STATUS_REJECTED
    assert "unavailable" in first.reject_reason
    assert first.reject_code == pb.REJECT_CODE_NOT_DELIVERED
    await eventually(lambda: gw.actor.broker_healthy, lambda ok: not ok, what="unhealthy")
    assert await execution_health(gw) == health_pb2.HealthCheckResponse.NOT_SERVING
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.PlaceOrder(resting_buy("refused"))
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_reason(caught.value) == "BROKER_UNAVAILABLE"
    with pytest.raises(grpc.aio.AioRpcError):
        await order_of(stub, "refused")  # the refused order does not exist
    assert (await order_of(stub, "doomed")).status == pb.ORDER_STATUS_REJECTED  # reads work

    faulty.enabled = False  # the broker comes back
    await eventually(lambda: gw.actor.broker_healthy, lambda ok: ok, what="healthy again")
    assert flips == [False, True]
    await eventually(
        lambda: execution_health(gw),
        lambda status: status == health_pb2.HealthCheckResponse.SERVING,
        what="health SERVING again",
    )
    retried = (await stub.PlaceOrder(resting_buy("refused"))).order
    assert retried.status == pb.ORDER_STATUS_ACCEPTED


async def test_fills_lost_in_a_disconnect_are_recovered_by_reconciliation(
    started: list[Gateway], tmp_path: Path
) -> None:
    venue = SimulatedBroker(SimConfig(seed=5, tick_interval=None, partial_fills=4))
    faults = FaultConfig(disconnect_rate=1.0, disconnect_seconds=1.0)
    faulty = FaultyBroker(venue, faults)
    gw, stub = await start(started, tmp_path, faulty, ack_wait=0.5, broker_backoff=0.05)
    order = (await stub.PlaceOrder(resting_buy("gap", limit_price="99"))).order
    # Every report dies in the first disconnect; stop injecting more.
    await eventually(lambda: faulty.injected.get("disconnect", 0), lambda n: n >= 1)
    faulty.faults = replace(faults, disconnect_rate=0.0)
    await venue.set_price("AAPL", Decimal("98"))  # the buy fills while reports are lost
    filled = await eventually(
        lambda: order_of(stub, "gap"),
        lambda o: o.status == pb.ORDER_STATUS_FILLED,
        within=15,
        what="FILLED through reconciliation",
    )
    assert filled.order_id == order.order_id
    assert filled.filled_quantity == "10"
    assert faulty.injected.get("lost_report", 0) >= 1  # the fills never came by the stream
    assert gw.actor.reconcile_passes >= 2


async def test_an_order_that_never_arrived_is_rejected_after_the_grace(
    started: list[Gateway], tmp_path: Path
) -> None:
    venue = RecordingBroker(sim())
    hang = CallFaults(hang_rate=1.0, hang_seconds=30)
    faulty = FaultyBroker(venue, FaultConfig(submit=hang))
    _, stub = await start(
        started,
        tmp_path,
        faulty,
        ack_wait=0.1,
        broker_attempts=1,
        broker_call_timeout=0.1,
        absence_grace=0.3,
        reconcile_interval=0.1,
    )
    order = (await stub.PlaceOrder(resting_buy("vanished"))).order
    assert order.status == pb.ORDER_STATUS_PENDING_NEW
    rejected = await eventually(
        lambda: order_of(stub, "vanished"),
        lambda o: o.status != pb.ORDER_STATUS_PENDING_NEW,
        what="settled by reconciliation",
    )
    assert rejected.status == pb.ORDER_STATUS_REJECTED
    assert "never arrived" in rejected.reject_reason
    assert rejected.reject_code == pb.REJECT_CODE_NOT_DELIVERED
    assert venue.submit_count("acct-1", "vanished") == 0  # the hung call never got there
