"""grpc.health.v1: NOT_SERVING until recovered and connected; follows broker health; Watch."""

from __future__ import annotations

import asyncio
import threading
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
from gateway.journal.checkpoint import Checkpoint
from tests.conftest import gateway_test_config
from tests.support import STREAM_END, eventually

SERVICE = "execution.v1.ExecutionService"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class HeldBroker(SimulatedBroker):
    """A simulated broker whose connect waits until the test lets it."""

    def __init__(self) -> None:
        super().__init__(SimConfig(seed=7, tick_interval=0.01))
        self.release = asyncio.Event()

    async def connect(self) -> None:
        await self.release.wait()
        await super().connect()


async def status(channel: grpc.aio.Channel, service: str) -> int:
    answer = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=service), timeout=5
    )
    return int(answer.status)


async def next_status(watch: Any) -> int:
    async with asyncio.timeout(10):
        message = await watch.read()
    assert message is not STREAM_END
    return int(message.status)


async def test_not_serving_until_the_broker_is_connected_then_serving(tmp_path: Path) -> None:
    broker = HeldBroker()
    gw = Gateway(gateway_test_config(tmp_path), broker=broker, journal=MemoryJournal())
    starting = asyncio.create_task(gw.start())
    try:
        await eventually(lambda: gw.port, lambda port: port > 0, what="listening")
        async with grpc.aio.insecure_channel(gw.address) as channel:
            await eventually(
                lambda: _ready(channel), lambda ok: ok, what="server answering health checks"
            )
            assert await status(channel, "") == NOT_SERVING
            assert await status(channel, SERVICE) == NOT_SERVING
            watch = health_pb2_grpc.HealthStub(channel).Watch(
                health_pb2.HealthCheckRequest(service=SERVICE)
            )
            assert await next_status(watch) == NOT_SERVING
            broker.release.set()
            await starting
            assert await next_status(watch) == SERVING
            assert await status(channel, "") == SERVING
            watch.cancel()
    finally:
        broker.release.set()
        await starting
        await gw.stop(grace=0.5)


async def test_broker_health_flips_the_service_status_but_not_the_process(
    gateway: Gateway,
) -> None:
    gw = gateway
    async with grpc.aio.insecure_channel(gw.address) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=SERVICE)
        )
        assert await next_status(watch) == SERVING
        gw.set_broker_health(False)
        assert await next_status(watch) == NOT_SERVING
        assert await status(channel, "") == SERVING
        gw.set_broker_health(False)  # repeated: no change
        gw.set_broker_health(True)
        assert await next_status(watch) == SERVING
        # Flapping settles on the last word.
        for ok in (False, True, False):
            gw.set_broker_health(ok)
        await eventually(
            lambda: status(channel, SERVICE), lambda s: s == NOT_SERVING, what="last word"
        )
        await gw.stop(grace=0.5)
        gw.set_broker_health(True)  # after a drain began: stays NOT_SERVING
        assert gw.health_reporter.desired()[SERVICE] == NOT_SERVING
        watch.cancel()


async def _ready(channel: grpc.aio.Channel) -> bool:
    try:
        await status(channel, "")
    except grpc.aio.AioRpcError:
        return False
    return True


async def test_stopping_ends_open_watches_instead_of_waiting_out_the_grace(
    gateway: Gateway,
) -> None:
    gw = gateway
    async with grpc.aio.insecure_channel(gw.address) as channel:
        watches = [
            health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=name))
            for name in ("", SERVICE)
        ]
        for watch in watches:
            assert await next_status(watch) == SERVING
        # A grace far longer than the bound below: only ending the watches
        # lets stop return in time.
        async with asyncio.timeout(20):
            await gw.stop(grace=120)
        for watch in watches:
            assert await next_status(watch) == NOT_SERVING
            with pytest.raises(grpc.aio.AioRpcError) as ended:
                await watch.read()
            assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "shutting down" in (ended.value.details() or "")


class SlowToRecoverJournal(MemoryJournal):
    """A journal whose checkpoint takes until the test lets it (on the recovery thread)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def load_checkpoint(self) -> Checkpoint | None:
        self.release.wait(timeout=30)
        return super().load_checkpoint()


async def test_recovery_runs_off_the_event_loop_health_answers_not_serving_meanwhile(
    tmp_path: Path,
) -> None:
    journal = SlowToRecoverJournal()
    gw = Gateway(gateway_test_config(tmp_path), journal=journal)
    starting = asyncio.create_task(gw.start())
    try:
        await eventually(lambda: gw.port, lambda port: port > 0, what="listening")
        async with grpc.aio.insecure_channel(gw.address) as channel:
            await eventually(
                lambda: _ready(channel), lambda ok: ok, what="health answering during recovery"
            )
            assert await status(channel, "") == NOT_SERVING
            stub = pb_grpc.ExecutionServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.GetOrderStatus(
                    pb.GetOrderStatusRequest(account="acct-1", client_order_id="x"), timeout=5
                )
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            journal.release.set()
            await starting
            assert await status(channel, "") == SERVING
    finally:
        journal.release.set()
        await starting
        await gw.stop(grace=0.5)
