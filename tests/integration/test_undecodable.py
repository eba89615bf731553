"""Bodies that are not protobuf: authentication comes first, then a clear INVALID_ARGUMENT.

The calls go through a real channel with no serializer, so the gateway sees
exactly the bytes written here.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway._proto.execution.v1 import execution_pb2_grpc as pb_grpc
from gateway.app import Gateway
from gateway.brokers.testing import RecordingBroker
from gateway.journal import MemoryJournal
from tests.conftest import gateway_test_config
from tests.ops_support import bearer, token_store
from tests.support import STREAM_END, error_reason, status_details

SERVICE = "/execution.v1.ExecutionService/"
UNARY = ("PlaceOrder", "CancelOrder", "GetOrderStatus", "ListOrders")
RPCS = (*UNARY, "SubscribeUpdates")
# A truncated varint, and a string field holding invalid UTF-8: neither parses.
GARBAGE = (b"\xff\xff\xff", b"\x0a\x02\xff\xfe")


@pytest.fixture
async def secured(tmp_path: Path, broker: RecordingBroker) -> AsyncIterator[Gateway]:
    config = dataclasses.replace(gateway_test_config(tmp_path), tokens=token_store())
    gw = Gateway(config, broker=broker, journal=MemoryJournal())
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop(grace=0.5)


async def call_raw(
    channel: grpc.aio.Channel,
    rpc: str,
    body: bytes,
    metadata: tuple[tuple[str, str], ...] = (),
) -> grpc.aio.AioRpcError:
    """Send ``body`` as the request of ``rpc``; return the error it ends with."""
    try:
        if rpc == "SubscribeUpdates":
            stream = channel.unary_stream(SERVICE + rpc, None, None)(
                body, metadata=metadata, timeout=5
            )
            message = await stream.read()
            assert message is not STREAM_END
        else:
            await channel.unary_unary(SERVICE + rpc, None, None)(body, metadata=metadata, timeout=5)
    except grpc.aio.AioRpcError as error:
        return error
    raise AssertionError(f"{rpc} accepted {body!r}")


def bad_request(error: grpc.aio.AioRpcError) -> error_details_pb2.BadRequest:
    found = [d for d in status_details(error) if isinstance(d, error_details_pb2.BadRequest)]
    assert found, f"no BadRequest in {error}"
    return found[0]


@pytest.mark.parametrize("rpc", RPCS)
async def test_an_undecodable_body_with_no_token_is_unauthenticated_and_logs_no_error(
    secured: Gateway, rpc: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with grpc.aio.insecure_channel(secured.address) as channel:
        for body in GARBAGE:
            error = await call_raw(channel, rpc, body)
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED, error
            assert error_reason(error) == "MISSING_TOKEN"
            forged = (("authorization", "Bearer forged-token-0123456789abcdef"),)
            error = await call_raw(channel, rpc, body, forged)
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED, error
            assert error_reason(error) == "INVALID_TOKEN"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize("rpc", RPCS)
async def test_an_undecodable_body_from_a_principal_is_invalid_argument_with_details(
    secured: Gateway, rpc: str
) -> None:
    async with grpc.aio.insecure_channel(secured.address) as channel:
        for body in GARBAGE:
            error = await call_raw(channel, rpc, body, bearer("ops"))
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
            violation = bad_request(error).field_violations[0]
            assert violation.field == "request"
            assert f"execution.v1.{rpc}Request" in violation.description
        # Nothing was placed, cancelled or subscribed.
        listed = await pb_grpc.ExecutionServiceStub(channel).ListOrders(
            pb.ListOrdersRequest(account="acct-a"), metadata=bearer("ops"), timeout=5
        )
    assert not listed.orders
    assert secured.actor.subscriber_count == 0


@pytest.mark.parametrize("rpc", RPCS)
async def test_without_authentication_an_undecodable_body_is_invalid_argument(
    gateway: Gateway, rpc: str
) -> None:
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        for body in GARBAGE:
            error = await call_raw(channel, rpc, body)
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
            assert bad_request(error).field_violations[0].field == "request"


async def test_a_flood_of_undecodable_bodies_logs_one_warning_per_client(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        for _ in range(50):
            for rpc in RPCS:
                error = await call_raw(channel, rpc, GARBAGE[0])
                assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "undecodable" in warnings[0].getMessage()
