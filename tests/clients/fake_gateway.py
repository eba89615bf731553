"""A hand-written fake of the gateway's two services, for the SDK's own tests.

A real ``grpc.aio`` server on a loopback port 0 serves it, and the SDK talks to
it through its real channel and stubs: what these tests pin down is the client
side (the requests it builds, the answers and errors it decodes, its retries and
stream resumption), independent of the server's implementation. The fake
records every request, answers with canned messages, and fails on demand.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import grpc
from gateway_client._proto.execution.v1 import execution_pb2 as pb
from gateway_client._proto.execution.v1 import execution_pb2_grpc as pb_grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

DETAILS_KEY = "grpc-status-details-bin"
HOLD_OPEN = 30.0
"""Seconds a scripted stream stays open after its messages: longer than any test."""


@dataclass(frozen=True)
class Failure:
    """Fail one call with ``code``, and an ErrorInfo ``reason`` if given."""

    code: grpc.StatusCode
    reason: str = ""
    message: str = "injected by the fake"


def order(**fields: Any) -> pb.Order:
    """An ``execution.v1.Order`` with plausible defaults, overridden by ``fields``."""
    defaults: dict[str, Any] = {
        "order_id": "ord-1",
        "client_order_id": "cid-1",
        "account": "acct-1",
        "symbol": "AAPL",
        "side": pb.SIDE_BUY,
        "order_type": pb.ORDER_TYPE_LIMIT,
        "quantity": "5",
        "limit_price": "0.01",
        "time_in_force": pb.TIME_IN_FORCE_GTC,
        "status": pb.ORDER_STATUS_ACCEPTED,
        "filled_quantity": "0",
        "leaves_quantity": "5",
    }
    return pb.Order(**(defaults | fields))


# One "connection" of SubscribeUpdates: the messages to send, then how it ends
# (None: it stays open until the client cancels it).
StreamScript = tuple[Sequence[pb.SubscribeUpdatesResponse], Failure | None]


@dataclass
class FakeGateway(pb_grpc.ExecutionServiceServicer, pb_grpc.ControlServiceServicer):
    """Both services; ``requests[method]`` lists what each received, in order."""

    requests: dict[str, list[Any]] = field(default_factory=dict)
    failures: dict[str, deque[Failure]] = field(default_factory=dict)
    """Per method, the failures to answer the next calls with (then the canned answer)."""
    answers: dict[str, Any] = field(default_factory=dict)
    """Per method, the response message (or a function of the request returning it)."""
    streams: deque[StreamScript] = field(default_factory=deque)
    metadata: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    """Per method, each call's metadata (the last value of each key)."""
    address: str = ""
    _server: grpc.aio.Server | None = None

    def fail(self, method: str, *failures: Failure) -> None:
        """Answer the next calls of ``method`` with these failures, in order."""
        self.failures.setdefault(method, deque()).extend(failures)

    async def __aenter__(self) -> Self:
        self._server = grpc.aio.server()
        pb_grpc.add_ExecutionServiceServicer_to_server(self, self._server)
        pb_grpc.add_ControlServiceServicer_to_server(self, self._server)
        port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()
        self.address = f"127.0.0.1:{port}"
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._server is not None:
            await self._server.stop(grace=None)

    async def _unary(self, method: str, request: Any, context: Any) -> Any:
        self.requests.setdefault(method, []).append(request)
        sent = dict(context.invocation_metadata() or ())
        self.metadata.setdefault(method, []).append(sent)
        pending = self.failures.get(method)
        if pending:
            await _abort(context, pending.popleft())
        answer = self.answers[method]
        return answer(request) if callable(answer) else answer

    async def PlaceOrder(self, request: Any, context: Any) -> Any:  # noqa: N802
        return await self._unary("PlaceOrder", request, context)

    async def CancelOrder(self, request: Any, context: Any) -> Any:  # noqa: N802
        return await self._unary("CancelOrder", request, context)

    async def GetOrderStatus(self, request: Any, context: Any) -> Any:  # noqa: N802
        return await self._unary("GetOrderStatus", request, context)

    async def ListOrders(self, request: Any, context: Any) -> Any:  # noqa: N802
        return await self._unary("ListOrders", request, context)

    async def ReplaceOrder(self, request: Any, context: Any) -> Any:  # noqa: N802 (gRPC's name)
        return await self._unary("ReplaceOrder", request, context)

    async def CancelAllOrders(self, request: Any, context: Any) -> Any:  # noqa: N802
        return await self._unary("CancelAllOrders", request, context)

    async def GetPositions(self, request: Any, context: Any) -> Any:  # noqa: N802
        return await self._unary("GetPositions", request, context)

    async def HaltTrading(self, request: Any, context: Any) -> Any:  # noqa: N802
        return await self._unary("HaltTrading", request, context)

    async def ResumeTrading(self, request: Any, context: Any) -> Any:  # noqa: N802
        return await self._unary("ResumeTrading", request, context)

    async def GetTradingState(self, request: Any, context: Any) -> Any:  # noqa: N802
        return await self._unary("GetTradingState", request, context)

    async def GetRiskLimits(self, request: Any, context: Any) -> Any:  # noqa: N802
        return await self._unary("GetRiskLimits", request, context)

    async def SubscribeUpdates(  # noqa: N802
        self, request: Any, context: Any
    ) -> AsyncIterator[pb.SubscribeUpdatesResponse]:
        self.requests.setdefault("SubscribeUpdates", []).append(request)
        if not self.streams:
            await _abort(context, Failure(grpc.StatusCode.FAILED_PRECONDITION, "NO_SCRIPT"))
        messages, ending = self.streams.popleft()
        for message in messages:
            yield message
        if ending is not None:
            await _abort(context, ending)
        # Open until the client hangs up (or the server stops), like a live stream.
        await asyncio.sleep(HOLD_OPEN)


async def _abort(context: Any, failure: Failure) -> None:
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.ErrorInfo(reason=failure.reason, domain="execution.v1"))
    status = status_pb2.Status(
        code=getattr(code_pb2, failure.code.name), message=failure.message, details=[detail]
    )
    trailing = ((DETAILS_KEY, status.SerializeToString()),) if failure.reason else ()
    await context.abort(failure.code, failure.message, trailing)


def unknown_stream_member(sequence: int) -> pb.SubscribeUpdatesResponse:
    """A stream message from a newer gateway: a oneof member (field 15) this SDK lacks.

    Its body is a message whose field 1 is a sequence, like every other member's.
    """
    body = b"\x08" + _varint(sequence)
    raw = b"\x7a" + _varint(len(body)) + body  # field 15, wire type 2
    return pb.SubscribeUpdatesResponse.FromString(raw)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)
