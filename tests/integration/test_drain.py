"""Graceful drain: health first, then refusals, in-flight calls finish, streams hand over.

The order of a drain, step by step, against a real gateway; then the stream
resumes on a second gateway over the same journal with no gap.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway._proto.execution.v1 import execution_pb2_grpc as pb_grpc
from gateway.app import Gateway
from gateway.brokers.simulated import SimConfig, SimulatedBroker
from gateway.journal import MemoryJournal
from tests.conftest import gateway_test_config
from tests.support import (
    change_sequence,
    error_metadata,
    error_reason,
    eventually,
    order_updates,
    place_request,
    resting_buy,
)

DELAY = 0.6
GRACE = 5.0
HANG = 15.0  # a deadline only a hang reaches: far above any drain's normal length
# Keeps a market PlaceOrder in flight past the delay, so the refusals can be seen
# while the gateway still runs (it stops once nothing is in flight).
ACK_LATENCY = DELAY + 1.2


def make_gateway(tmp_path: Path, journal: MemoryJournal) -> Gateway:
    config = gateway_test_config(tmp_path)
    config = dataclasses.replace(
        config, sim=dataclasses.replace(config.sim, ack_latency=ACK_LATENCY)
    )
    broker = SimulatedBroker(SimConfig(seed=7, tick_interval=0.01, ack_latency=ACK_LATENCY))
    return Gateway(config, broker=broker, journal=journal)


async def health_status(channel: grpc.aio.Channel, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    answer = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return int(answer.status)


async def read_until_error(call: Any, received: list[int]) -> grpc.aio.AioRpcError:
    """Read a stream, noting update sequences, until it fails; return the failure."""
    try:
        async with asyncio.timeout(30):
            while True:
                message = await call.read()
                assert isinstance(message, pb.SubscribeUpdatesResponse), (
                    "stream ended OK; expected UNAVAILABLE"
                )
                if (sequence := change_sequence(message)) is not None:
                    received.append(sequence)
    except grpc.aio.AioRpcError as error:
        return error


async def test_drain_refuses_late_calls_finishes_in_flight_ones_and_hands_streams_over(
    tmp_path: Path,
) -> None:
    journal = MemoryJournal()
    first = make_gateway(tmp_path, journal)
    await first.start()
    channel = grpc.aio.insecure_channel(first.address)
    stub = pb_grpc.ExecutionServiceStub(channel)
    try:
        stream = stub.SubscribeUpdates(pb.SubscribeUpdatesRequest(accounts=["acct-1"]))
        await stream.read()  # the opening heartbeat: subscribed
        received: list[int] = []
        reader = asyncio.create_task(read_until_error(stream, received))
        await stub.PlaceOrder(resting_buy("resting-1"), timeout=10)
        in_flight = asyncio.ensure_future(stub.PlaceOrder(place_request("in-flight"), timeout=10))
        await eventually(lambda: first.gate.in_flight, lambda n: n >= 1, what="call in flight")

        started = time.monotonic()
        drain = asyncio.create_task(first.stop(grace=GRACE, delay=DELAY))
        # 1. Health says NOT_SERVING at once, for the process and the service.
        await eventually(
            lambda: health_status(channel),
            lambda s: s == health_pb2.HealthCheckResponse.NOT_SERVING,
            what="health NOT_SERVING",
        )
        assert await health_status(channel, "execution.v1.ExecutionService") == (
            health_pb2.HealthCheckResponse.NOT_SERVING
        )
        # 2. During the delay calls are still served (proxies are still routing here).
        if time.monotonic() - started < DELAY * 0.8:
            await stub.GetOrderStatus(
                pb.GetOrderStatusRequest(account="acct-1", client_order_id="resting-1"),
                timeout=5,
            )

        # 3. After it, new calls get UNAVAILABLE (GATEWAY_DRAINING): safe to retry elsewhere.
        async def late_call() -> str:
            try:
                await stub.GetOrderStatus(
                    pb.GetOrderStatusRequest(account="acct-1", client_order_id="resting-1"),
                    timeout=5,
                )
            except grpc.aio.AioRpcError as error:
                return f"{error.code().name}/{error_reason(error)}"
            return "OK"

        await eventually(
            late_call, lambda r: r == "UNAVAILABLE/GATEWAY_DRAINING", what="late call refused"
        )
        assert time.monotonic() - started >= DELAY

        # 4. The call in flight finishes normally.
        answer = await in_flight
        assert answer.order.client_order_id == "in-flight"

        # 5. The stream ends UNAVAILABLE naming the last sequence it delivered.
        error = await reader
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        last = int(error_metadata(error)["last_sequence"])
        assert last == (received[-1] if received else 0)
        await drain
        assert time.monotonic() - started < DELAY + GRACE + 1.0
        newest = journal.records[-1].sequence
    finally:
        await channel.close(None)
        await first.stop()

    # 6. "Elsewhere": another gateway on the same journal continues the stream.
    second = make_gateway(tmp_path, journal)
    await second.start()
    try:
        async with grpc.aio.insecure_channel(second.address) as channel2:
            stub2 = pb_grpc.ExecutionServiceStub(channel2)
            resumed = stub2.SubscribeUpdates(
                pb.SubscribeUpdatesRequest(accounts=["acct-1"], after_sequence=last)
            )
            replayed: list[int] = []
            async with asyncio.timeout(15):
                while (replayed[-1] if replayed else last) < newest:
                    message = await resumed.read()
                    assert isinstance(message, pb.SubscribeUpdatesResponse)
                    if (sequence := change_sequence(message)) is not None:
                        replayed.append(sequence)
            resumed.cancel()
        assert [s for s in replayed if s <= newest] == list(range(last + 1, newest + 1))
        assert set(received) | {s for s in replayed if s <= newest} == set(range(1, newest + 1))
    finally:
        await second.stop()


async def test_a_drain_with_nothing_in_flight_ends_promptly(tmp_path: Path) -> None:
    gw = make_gateway(tmp_path, MemoryJournal())
    await gw.start()
    # Nothing in flight: the drain must not sit out its grace. A grace far
    # longer than any scheduling delay makes that the only way to fail.
    started = time.monotonic()
    await gw.stop(grace=HANG, delay=0.2)
    assert time.monotonic() - started < HANG


async def test_a_call_outliving_the_grace_ends_unavailable(tmp_path: Path) -> None:
    journal = MemoryJournal()
    gw = make_gateway(tmp_path, journal)
    config = dataclasses.replace(
        gw.config, engine=dataclasses.replace(gw.config.engine, ack_wait=30)
    )
    gw = Gateway(
        config,
        broker=SimulatedBroker(SimConfig(seed=7, tick_interval=0.01, ack_latency=20)),
        journal=journal,
    )
    await gw.start()
    async with grpc.aio.insecure_channel(gw.address) as channel:
        stub = pb_grpc.ExecutionServiceStub(channel)
        slow = asyncio.ensure_future(stub.PlaceOrder(place_request("slow"), timeout=30))
        await eventually(lambda: gw.gate.in_flight, lambda n: n >= 1, what="in flight")
        # The call would take 20 s (ack latency): stopping must not wait for it.
        async with asyncio.timeout(HANG):
            await gw.stop(grace=0.5)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await slow
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    # The order was journaled before the drain: it is there to be found again.
    updates = order_updates(journal.records)
    assert any(u.order.spec.client_order_id == "slow" for u in updates)
