"""SIGTERM under load, for real: a gateway process drains, exits 0, and a new one carries on.

Clients place orders as fast as they can while a stream is open; the gateway
gets SIGTERM mid-load. Every order acknowledged before then must be there in
the next process (same data dir); the stream must end UNAVAILABLE naming its
last sequence and resume from it with no gap. The process logs JSON lines,
none of which holds a token.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import grpc
import pytest

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway._proto.execution.v1 import execution_pb2_grpc as pb_grpc
from tests.ops_support import GatewayProcess, clean_env
from tests.support import error_metadata, eventually, resting_buy

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

TOKEN = "drain-test-token-0123456789abcdef"
TABLE = f"trader {TOKEN} acct-a rw"  # plaintext on purpose: it must not reach the logs
AUTH = (("authorization", f"Bearer {TOKEN}"),)
DRAIN_DELAY = 0.5
GRACE = 5.0
WORKERS = 4
MAX_ORDERS_PER_WORKER = 300


def start(data_dir: Path) -> GatewayProcess:
    return GatewayProcess.start(
        [
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            str(data_dir),
            "--drain-delay",
            str(DRAIN_DELAY),
            "--shutdown-grace",
            str(GRACE),
            "--heartbeat-interval",
            "0.2",
            "--log-format",
            "json",
            "--log-level",
            "DEBUG",
        ],
        env=clean_env(GATEWAY_AUTH_TOKENS=TABLE),
    )


async def place_until_refused(
    stub: Any, worker: int, acknowledged: dict[str, str], stop_at: float
) -> None:
    """Place orders one after another until the gateway refuses (UNAVAILABLE) or goes away."""
    code = grpc.StatusCode.UNAVAILABLE
    for n in range(MAX_ORDERS_PER_WORKER):
        if time.monotonic() > stop_at:
            break
        client_order_id = f"load-{worker}-{n}"
        try:
            response = await stub.PlaceOrder(
                resting_buy(client_order_id, account="acct-a"), metadata=AUTH, timeout=10
            )
        except grpc.aio.AioRpcError as error:
            code = error.code()
            break
        acknowledged[client_order_id] = response.order.order_id
    assert code == grpc.StatusCode.UNAVAILABLE, code


async def read_stream(call: Any, sequences: list[int]) -> grpc.aio.AioRpcError:
    try:
        async with asyncio.timeout(60):
            while True:
                message = await call.read()
                assert isinstance(message, pb.SubscribeUpdatesResponse), (
                    "stream ended OK; expected UNAVAILABLE"
                )
                if message.HasField("update"):
                    sequences.append(message.update.sequence)
    except grpc.aio.AioRpcError as error:
        return error


async def test_sigterm_under_load_loses_no_acknowledged_order_and_streams_resume(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    first = start(data_dir)
    acknowledged: dict[str, str] = {}
    streamed: list[int] = []
    try:
        async with grpc.aio.insecure_channel(first.address) as channel:
            stub = pb_grpc.ExecutionServiceStub(channel)
            stream = stub.SubscribeUpdates(
                pb.SubscribeUpdatesRequest(accounts=["acct-a"], after_sequence=0), metadata=AUTH
            )
            await stream.read()
            reader = asyncio.create_task(read_stream(stream, streamed))
            stop_at = time.monotonic() + 60
            workers = [
                asyncio.create_task(place_until_refused(stub, w, acknowledged, stop_at))
                for w in range(WORKERS)
            ]
            await eventually(lambda: len(acknowledged), lambda n: n >= 40, what="load", within=30)
            signalled = time.monotonic()
            first.process.send_signal(15)  # SIGTERM
            await asyncio.gather(*workers)
            error = await reader
            exit_code = await asyncio.to_thread(first.process.wait, DRAIN_DELAY + GRACE + 10)
            took = time.monotonic() - signalled
    finally:
        first.kill()
    assert exit_code == 0, first.log()
    assert took < DRAIN_DELAY + GRACE + 5, f"drain took {took:.1f}s"
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    last = int(error_metadata(error)["last_sequence"])
    assert last == (streamed[-1] if streamed else 0)
    assert streamed == list(range(1, last + 1)), "the stream had a gap before the drain"

    lines = first.log().splitlines()
    assert lines
    for line in lines:
        entry = json.loads(line)  # every line is one JSON object
        assert {"time", "level", "logger", "message"} <= entry.keys()
    assert TOKEN not in first.log()
    assert any("draining" in json.loads(line)["message"] for line in lines)

    second = start(data_dir)
    try:
        async with grpc.aio.insecure_channel(second.address) as channel:
            stub = pb_grpc.ExecutionServiceStub(channel)
            for client_order_id, order_id in acknowledged.items():
                found = await stub.GetOrderStatus(
                    pb.GetOrderStatusRequest(account="acct-a", client_order_id=client_order_id),
                    metadata=AUTH,
                    timeout=10,
                )
                assert found.order.order_id == order_id
            resumed = stub.SubscribeUpdates(
                pb.SubscribeUpdatesRequest(accounts=["acct-a"], after_sequence=last),
                metadata=AUTH,
            )
            first_message = await resumed.read()
            assert isinstance(first_message, pb.SubscribeUpdatesResponse)
            newest = first_message.heartbeat.sequence
            replayed: list[int] = []
            async with asyncio.timeout(30):
                while (replayed[-1] if replayed else last) < newest:
                    message = await resumed.read()
                    assert isinstance(message, pb.SubscribeUpdatesResponse)
                    if message.HasField("update"):
                        replayed.append(message.update.sequence)
            resumed.cancel()
        assert replayed[: newest - last] == list(range(last + 1, newest + 1))
    finally:
        assert second.terminate(within=DRAIN_DELAY + GRACE + 10) == 0, second.log()


def test_a_public_address_without_tokens_is_refused(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "gateway", "--listen", "0.0.0.0:0", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
        env=clean_env(),
        check=False,
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("gateway: error: refusing to serve 0.0.0.0:0")
    assert "--insecure" in last


def test_a_bad_token_table_is_a_one_line_error_without_the_token(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "gateway", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
        env=clean_env(GATEWAY_AUTH_TOKENS=f"trader {TOKEN} acct-a root"),
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert TOKEN not in result.stderr
    assert "mode must be rw, ro or admin" in result.stderr.strip().splitlines()[-1]
