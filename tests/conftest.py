"""Fixtures: a real gateway on port 0 (in this process) and stubs to call it."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from gateway._proto.execution.v1 import execution_pb2_grpc as pb_grpc
from gateway.app import Gateway
from gateway.brokers.simulated import SimConfig, SimulatedBroker
from gateway.brokers.testing import RecordingBroker
from gateway.config import GatewayConfig
from gateway.engine import EngineConfig
from gateway.journal import MemoryJournal
from gateway.service.config import ServiceConfig
from tests.pg_server import PgServer, server_or_skip

if TYPE_CHECKING:
    from gateway._proto.execution.v1.execution_pb2_grpc import ExecutionServiceAsyncStub


def gateway_test_config(tmp_path: Path, **engine: object) -> GatewayConfig:
    """A gateway config for tests: port 0, fast heartbeats, short ack wait."""
    return GatewayConfig(
        listen="127.0.0.1:0",
        data_dir=tmp_path / "data",
        shutdown_grace=0.5,
        engine=dataclasses.replace(EngineConfig(ack_wait=2.0), **engine),  # type: ignore[arg-type]
        service=ServiceConfig(heartbeat_interval=0.2),
        sim=SimConfig(seed=7, tick_interval=0.01),
    )


@pytest.fixture
def broker() -> RecordingBroker:
    return RecordingBroker(SimulatedBroker(SimConfig(seed=7, tick_interval=0.01)))


@pytest.fixture
async def gateway(tmp_path: Path, broker: RecordingBroker) -> AsyncIterator[Gateway]:
    gw = Gateway(gateway_test_config(tmp_path), broker=broker, journal=MemoryJournal())
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop(grace=0.5)


@pytest.fixture
async def channel(gateway: Gateway) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(gateway.address) as ch:
        yield ch


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> ExecutionServiceAsyncStub:
    return pb_grpc.ExecutionServiceStub(channel)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A PostgreSQL server of the test session's own (tests/pg_server.py)."""
    with server_or_skip() as server:
        yield server


@pytest.fixture
def pg_dsn(pg_server: PgServer) -> str:
    """The URL of a new, empty database on the session's PostgreSQL server."""
    return pg_server.new_database()
