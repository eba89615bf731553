"""Helpers shared by the test layers: waiting with a deadline, building requests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from gateway._proto.execution.v1 import execution_pb2 as pb

T = TypeVar("T")

# The end-of-stream marker of grpc.aio stream reads (missing from grpc-stubs).
STREAM_END: Any = grpc.aio.EOF  # type: ignore[attr-defined]


async def eventually(
    probe: Callable[[], Awaitable[T]],
    until: Callable[[T], bool],
    *,
    within: float = 10.0,
    interval: float = 0.02,
    what: str = "condition",
) -> T:
    """Poll ``probe`` until ``until(result)`` holds; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    last: T | None = None
    while time.monotonic() < deadline:
        last = await probe()
        if until(last):
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"{what} not reached within {within}s; last value: {last!r}")


def place_request(
    client_order_id: str,
    *,
    account: str = "acct-1",
    symbol: str = "AAPL",
    side: pb.Side.ValueType = pb.SIDE_BUY,
    order_type: pb.OrderType.ValueType = pb.ORDER_TYPE_MARKET,
    quantity: str = "10",
    limit_price: str = "",
    stop_price: str = "",
    time_in_force: pb.TimeInForce.ValueType = pb.TIME_IN_FORCE_DAY,
) -> pb.PlaceOrderRequest:
    """Return a valid PlaceOrderRequest (a market buy of 10 AAPL unless told otherwise)."""
    return pb.PlaceOrderRequest(
        account=account,
        client_order_id=client_order_id,
        symbol=symbol,
        side=side,
        order_type=order_type,
        quantity=quantity,
        limit_price=limit_price,
        stop_price=stop_price,
        time_in_force=time_in_force,
    )


def resting_buy(client_order_id: str, **overrides: object) -> pb.PlaceOrderRequest:
    """A buy limit far below the simulated price (~100): it rests until cancelled."""
    fields: dict[str, object] = {
        "order_type": pb.ORDER_TYPE_LIMIT,
        "limit_price": "0.01",
        "time_in_force": pb.TIME_IN_FORCE_GTC,
    }
    fields.update(overrides)
    return place_request(client_order_id, **fields)  # type: ignore[arg-type]


def status_details(error: grpc.aio.AioRpcError) -> list[Message]:
    """Unpack the google.rpc.Status details (BadRequest, ErrorInfo) of a failed call."""
    # grpc-stubs types Metadata as opaque; at runtime it is a tuple of pairs.
    metadata: Any = error.trailing_metadata() or ()
    for key, value in metadata:
        if key == "grpc-status-details-bin":
            assert isinstance(value, bytes)
            status = status_pb2.Status.FromString(value)
            assert status.code == error.code().value[0]
            found: list[Message] = []
            for detail in status.details:
                for kind in (error_details_pb2.BadRequest, error_details_pb2.ErrorInfo):
                    if detail.Is(kind.DESCRIPTOR):
                        message = kind()
                        detail.Unpack(message)
                        found.append(message)
            return found
    return []


def violated_fields(error: grpc.aio.AioRpcError) -> set[str]:
    """The field names of an INVALID_ARGUMENT's BadRequest."""
    return {
        v.field
        for d in status_details(error)
        if isinstance(d, error_details_pb2.BadRequest)
        for v in d.field_violations
    }


def error_reason(error: grpc.aio.AioRpcError) -> str:
    """The ErrorInfo reason of a failed call ('' if none)."""
    for detail in status_details(error):
        if isinstance(detail, error_details_pb2.ErrorInfo):
            return str(detail.reason)
    return ""


def error_metadata(error: grpc.aio.AioRpcError) -> dict[str, str]:
    """The ErrorInfo metadata of a failed call (empty if none)."""
    for detail in status_details(error):
        if isinstance(detail, error_details_pb2.ErrorInfo):
            return dict(detail.metadata)
    return {}
