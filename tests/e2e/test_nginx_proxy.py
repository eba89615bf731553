"""A real L7 proxy in front of the gateway: nginx with grpc_pass, on loopback.

nginx cuts a gRPC stream that says nothing for ``grpc_read_timeout``; the
gateway's heartbeats must keep a quiet stream alive through it. The control
case (heartbeats slower than the proxy's timeout) shows the timeout is real.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
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
from gateway.service.config import ServiceConfig
from tests.conftest import gateway_test_config
from tests.processes import require_tool
from tests.support import STREAM_END, eventually, resting_buy, violated_fields

pytestmark = pytest.mark.e2e

READ_TIMEOUT = 1.0  # nginx's grpc_read_timeout, seconds
STREAM_FOR = 4 * READ_TIMEOUT


def nginx_binary() -> str:
    return require_tool("nginx", "/usr/sbin/nginx", hint="apt-get install nginx (.ci/run does)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


NGINX_CONF = """
daemon off;
master_process off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port} http2;
        location / {{
            grpc_pass grpc://{upstream};
            grpc_read_timeout {read_timeout_ms}ms;
            grpc_send_timeout 5s;
        }}
    }}
}}
"""


@dataclasses.dataclass
class Nginx:
    address: str
    process: subprocess.Popen[bytes]
    directory: Path

    def error_log(self) -> str:
        path = self.directory / "error.log"
        return path.read_text() if path.exists() else ""


@pytest.fixture
def nginx_factory(tmp_path: Path) -> Iterator[list[Nginx]]:
    started: list[Nginx] = []
    yield started
    for proxy in started:
        proxy.process.terminate()
        try:
            proxy.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proxy.process.kill()
            proxy.process.wait(timeout=10)


async def start_nginx(binary: str, directory: Path, upstream: str, started: list[Nginx]) -> Nginx:
    # Blocking file work here is a few bytes, once, before anything runs.
    directory.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240
    port = free_port()
    conf = directory / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            tmp=directory, port=port, upstream=upstream, read_timeout_ms=int(READ_TIMEOUT * 1000)
        )
    )
    process = subprocess.Popen(  # noqa: ASYNC220 - nginx runs beside the test, not awaited
        [binary, "-p", str(directory), "-c", str(conf), "-e", str(directory / "error.log")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    proxy = Nginx(f"127.0.0.1:{port}", process, directory)
    started.append(proxy)

    async def answering() -> bool:
        assert process.poll() is None, f"nginx exited:\n{proxy.error_log()}"
        try:
            async with grpc.aio.insecure_channel(proxy.address) as channel:
                await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=2
                )
        except grpc.aio.AioRpcError:
            return False
        return True

    await eventually(answering, lambda ok: ok, what="nginx proxying health checks", within=15)
    return proxy


async def gateway(tmp_path: Path, heartbeat: float) -> Gateway:
    config = dataclasses.replace(
        gateway_test_config(tmp_path), service=ServiceConfig(heartbeat_interval=heartbeat)
    )
    gw = Gateway(
        config,
        broker=SimulatedBroker(SimConfig(seed=7, tick_interval=0.01)),
        journal=MemoryJournal(),
    )
    await gw.start()
    return gw


@pytest.fixture
async def fast_heartbeats(tmp_path: Path) -> AsyncIterator[Gateway]:
    gw = await gateway(tmp_path, heartbeat=READ_TIMEOUT / 5)
    try:
        yield gw
    finally:
        await gw.stop(grace=0.5)


async def test_unary_calls_and_error_details_pass_through_nginx(
    fast_heartbeats: Gateway, tmp_path: Path, nginx_factory: list[Nginx]
) -> None:
    proxy = await start_nginx(
        nginx_binary(), tmp_path / "nginx", fast_heartbeats.address, nginx_factory
    )
    async with grpc.aio.insecure_channel(proxy.address) as channel:
        stub = pb_grpc.ExecutionServiceStub(channel)
        placed = await stub.PlaceOrder(resting_buy("via-nginx"), timeout=10)
        again = await stub.PlaceOrder(resting_buy("via-nginx"), timeout=10)
        assert again.order.order_id == placed.order.order_id
        found = await stub.GetOrderStatus(
            pb.GetOrderStatusRequest(account="acct-1", order_id=placed.order.order_id), timeout=10
        )
        assert found.order.client_order_id == "via-nginx"
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.PlaceOrder(resting_buy("bad", quantity="1e3"), timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violated_fields(caught.value) == {"quantity"}  # trailers survived the proxy


async def test_heartbeats_keep_a_quiet_stream_alive_past_the_proxy_timeout(
    fast_heartbeats: Gateway, tmp_path: Path, nginx_factory: list[Nginx]
) -> None:
    proxy = await start_nginx(
        nginx_binary(), tmp_path / "nginx", fast_heartbeats.address, nginx_factory
    )
    async with grpc.aio.insecure_channel(proxy.address) as channel:
        stub = pb_grpc.ExecutionServiceStub(channel)
        stream = stub.SubscribeUpdates(pb.SubscribeUpdatesRequest(accounts=["acct-1"]))
        heartbeats = 0
        started = time.monotonic()
        placed = False
        try:
            while time.monotonic() - started < STREAM_FOR:
                message = await stream.read()
                assert isinstance(message, pb.SubscribeUpdatesResponse)
                if message.HasField("heartbeat"):
                    heartbeats += 1
                if not placed and time.monotonic() - started > STREAM_FOR / 2:
                    placed = True
                    await stub.PlaceOrder(resting_buy("mid-stream"), timeout=10)
                if message.HasField("update"):
                    assert message.update.order.client_order_id == "mid-stream"
            # Still open after several proxy timeouts: an update still gets through.
            await stub.PlaceOrder(resting_buy("late"), timeout=10)
            async with asyncio.timeout(10):
                while True:
                    message = await stream.read()
                    assert isinstance(message, pb.SubscribeUpdatesResponse)
                    if (
                        message.HasField("update")
                        and message.update.order.client_order_id == "late"
                    ):
                        break
        finally:
            stream.cancel()
    assert heartbeats >= STREAM_FOR / (READ_TIMEOUT / 5) / 2, heartbeats


async def test_control_without_timely_heartbeats_nginx_cuts_the_stream(
    tmp_path: Path, nginx_factory: list[Nginx]
) -> None:
    slow = await gateway(tmp_path / "slow", heartbeat=READ_TIMEOUT * 10)
    try:
        proxy = await start_nginx(nginx_binary(), tmp_path / "nginx", slow.address, nginx_factory)
        async with grpc.aio.insecure_channel(proxy.address) as channel:
            stub = pb_grpc.ExecutionServiceStub(channel)
            stream = stub.SubscribeUpdates(pb.SubscribeUpdatesRequest(accounts=["acct-1"]))
            assert (await stream.read()) is not STREAM_END  # the opening heartbeat
            started = time.monotonic()
            with pytest.raises(grpc.aio.AioRpcError):
                await read_until_cut(stream)
            assert time.monotonic() - started < READ_TIMEOUT * 5
    finally:
        await slow.stop(grace=0.5)


async def read_until_cut(stream: Any) -> None:
    """Read until the stream fails (raising its error); a clean end is a failure."""
    async with asyncio.timeout(READ_TIMEOUT * 8):
        while True:
            if await stream.read() is STREAM_END:
                raise AssertionError("stream ended OK")
