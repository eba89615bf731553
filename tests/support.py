"""Helpers shared by the test layers: waiting with a deadline, building requests."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar, overload

import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway.domain import OrderUpdate
from gateway.journal import JournalRecord

T = TypeVar("T")

# The end-of-stream marker of grpc.aio stream reads (missing from grpc-stubs).
STREAM_END: Any = grpc.aio.EOF  # type: ignore[attr-defined]


@overload
async def eventually(
    probe: Callable[[], Awaitable[T]],
    until: Callable[[T], bool] = ...,
    *,
    within: float = ...,
    interval: float = ...,
    what: str = ...,
) -> T: ...


@overload
async def eventually(
    probe: Callable[[], T],
    until: Callable[[T], bool] = ...,
    *,
    within: float = ...,
    interval: float = ...,
    what: str = ...,
) -> T: ...


async def eventually(
    probe: Callable[[], Any],
    until: Callable[[Any], bool] = bool,
    *,
    within: float = 10.0,
    interval: float = 0.02,
    what: str = "condition",
) -> Any:
    """Poll ``probe`` until ``until(result)`` holds; fail after ``within`` seconds.

    The one poller of the test suite. ``probe`` is a plain function (a value
    read: ``lambda: actor.subscriber_count``) or returns an awaitable (a call:
    ``lambda: stub.GetOrderStatus(...)``); ``until`` defaults to truthiness.
    The deadline only fails on a hang: it is far above any normal wait. A
    blocking probe (a subprocess) is fine from a sync test via ``asyncio.run``.
    """
    deadline = time.monotonic() + within
    while True:
        last = probe()
        if inspect.isawaitable(last):
            last = await last
        if until(last):
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached within {within}s; last value: {last!r}")
        await asyncio.sleep(interval)


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


def change_sequence(message: pb.SubscribeUpdatesResponse) -> int | None:
    """The sequence of the change a stream message carries: an order update, a
    position change or a trading-state change (they share one sequence space);
    None for heartbeats and snapshot markers."""
    kind = message.WhichOneof("event")
    if kind == "update":
        return message.update.sequence
    if kind == "position":
        return message.position.sequence
    if kind == "trading_state":
        return message.trading_state.sequence
    return None


def order_updates(records: Iterable[JournalRecord]) -> list[OrderUpdate]:
    """The order updates of journal records (not position or trading-state changes)."""
    return [r.update for r in records if isinstance(r.update, OrderUpdate)]


def update_of(record: JournalRecord) -> OrderUpdate:
    """The order update of an order event's record (a control record fails the test)."""
    assert isinstance(record.update, OrderUpdate), f"not an order's record: {record}"
    return record.update
