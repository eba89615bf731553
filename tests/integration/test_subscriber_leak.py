"""A SubscribeUpdates call cancelled at any await point leaves no subscriber behind.

The servicer runs on a real gRPC server against a real order actor, through
``PausingActor``: a thin stand-in that delegates to the actor but can hold
the stream at each await point of the subscribe path until the test has
cancelled the call. That makes the interleaving that used to leak (the actor
registered the subscriber, the handler was cancelled before it resumed)
happen every time instead of once in a few hundred calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast

import grpc
import pytest

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway._proto.execution.v1 import execution_pb2_grpc as pb_grpc
from gateway.auth import AuthPolicy
from gateway.brokers.simulated import SimConfig, SimulatedBroker
from gateway.domain import SubscriptionFilter
from gateway.engine import EngineConfig, OrderActor, Subscriber
from gateway.journal import MemoryJournal
from gateway.observability import GatewayMetrics
from gateway.server import DrainGate, GatewayInterceptor
from gateway.service.config import ServiceConfig
from gateway.service.servicer import ExecutionServicer, add_to_server
from tests.support import eventually, resting_buy

SUBSCRIBE = "/execution.v1.ExecutionService/SubscribeUpdates"


class PausingActor:
    """Delegates to an ``OrderActor``; holds the caller at a named point when asked."""

    def __init__(self, actor: OrderActor) -> None:
        self._actor = actor
        self.pause_at: str | None = None
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._actor, name)

    async def _point(self, name: str) -> None:
        if self.pause_at == name:
            self.reached.set()
            await self.release.wait()

    async def subscribe(self, filter_: SubscriptionFilter, capacity: int | None = None) -> Any:
        await self._point("before registration")
        subscriber = await self._actor.subscribe(filter_, capacity)
        # The actor has registered it; the stream is cancelled before it resumes.
        await self._point("after registration")
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._actor.unsubscribe(subscriber)

    async def replay(self, *args: Any, **kwargs: Any) -> Any:
        await self._point("replay")
        return await self._actor.replay(*args, **kwargs)


@dataclass
class Rig:
    actor: OrderActor
    pausing: PausingActor
    metrics: GatewayMetrics
    stub: Any

    def gauge(self) -> float | None:
        return self.metrics.registry.get_sample_value("gateway_subscribers")

    def cancelled_calls(self) -> float:
        value = self.metrics.registry.get_sample_value(
            "grpc_server_handled_total",
            {
                "grpc_service": "execution.v1.ExecutionService",
                "grpc_method": "SubscribeUpdates",
                "grpc_type": "server_stream",
                "grpc_code": "CANCELLED",
            },
        )
        return value or 0.0


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    broker = SimulatedBroker(SimConfig(seed=3, tick_interval=None))
    actor = OrderActor(broker, MemoryJournal(), EngineConfig(ack_wait=1.0))
    await broker.connect()
    await actor.start()
    pausing = PausingActor(actor)
    metrics = GatewayMetrics()
    metrics.watch_actor(actor)
    interceptor = GatewayInterceptor(AuthPolicy(None), DrainGate(), metrics)
    server = grpc.aio.server(interceptors=[interceptor])
    servicer = ExecutionServicer(cast(OrderActor, pausing), ServiceConfig(heartbeat_interval=0.2))
    add_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield Rig(actor, pausing, metrics, pb_grpc.ExecutionServiceStub(channel))
    finally:
        await server.stop(0)
        await actor.stop()
        await broker.close()


async def back_to_baseline(rig: Rig) -> None:
    await eventually(
        lambda: (rig.actor.subscriber_count, rig.gauge()),
        lambda counts: counts == (0, 0),
        within=5,
        what="fan-out size and gateway_subscribers back to 0",
    )


@pytest.mark.parametrize("point", ["before registration", "after registration", "replay"])
async def test_a_stream_cancelled_while_held_at_an_await_point_leaves_no_subscriber(
    rig: Rig, point: str
) -> None:
    # One journaled update, so that after_sequence=0 has something to replay.
    await rig.stub.PlaceOrder(resting_buy("leak-seed"), timeout=5)
    rig.pausing.pause_at = point
    cancelled_before = rig.cancelled_calls()
    call = rig.stub.SubscribeUpdates(pb.SubscribeUpdatesRequest(after_sequence=0))
    await asyncio.wait_for(rig.pausing.reached.wait(), 5)
    call.cancel()
    # The server has seen the cancel (the handler ended CANCELLED) before the
    # held await point is let go: exactly the order of events that leaked.
    await eventually(
        lambda: rig.cancelled_calls(),
        lambda n: n == cancelled_before + 1,
        within=5,
        what="the server handled the cancel",
    )
    rig.pausing.release.set()
    await back_to_baseline(rig)


@pytest.mark.parametrize("messages", [1, 3])
async def test_a_stream_cancelled_between_messages_leaves_no_subscriber(
    rig: Rig, messages: int
) -> None:
    # Message 1 is the opening heartbeat; then the handler waits for live updates.
    call = rig.stub.SubscribeUpdates(pb.SubscribeUpdatesRequest())
    for _ in range(messages):
        await call.read()
    assert rig.actor.subscriber_count == 1
    call.cancel()
    await back_to_baseline(rig)


async def test_many_streams_cancelled_at_once_leave_no_subscriber(rig: Rig) -> None:
    calls = [rig.stub.SubscribeUpdates(pb.SubscribeUpdatesRequest()) for _ in range(30)]
    await asyncio.sleep(0)
    for call in calls:
        call.cancel()
    await back_to_baseline(rig)
