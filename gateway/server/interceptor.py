"""The one server interceptor: metrics, drain gate, authentication, log context.

Owns what happens to every call before and around its handler, in this order:

1. count it and time it (whatever its outcome, refusals included);
2. refuse it with UNAVAILABLE if the gateway is draining (health stays open);
3. authenticate the bearer token and authorize the request's account(s);
4. count unary calls in flight, so a drain can wait for them.

It wraps the method handler rather than deciding in ``intercept_service``,
because authorization needs the deserialized request.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc

from gateway.auth import AuthPolicy
from gateway.errors import GatewayError
from gateway.logs import set_fields, trace_fields
from gateway.observability import GatewayMetrics
from gateway.server.drain import DrainGate
from gateway.service.errors import abort_with

Context = grpc.aio.ServicerContext[Any, Any]
_HEALTH = "/grpc.health.v1.Health/"


def _code_name(exc: BaseException | None, context: Context) -> str:
    if exc is None:
        code = context.code()
        return code.name if isinstance(code, grpc.StatusCode) else "OK"
    if isinstance(exc, asyncio.CancelledError):
        return "CANCELLED"
    code = context.code()
    if isinstance(code, grpc.StatusCode) and code is not grpc.StatusCode.OK:
        return code.name
    return "UNKNOWN"


if TYPE_CHECKING:
    _Interceptor = grpc.aio.ServerInterceptor[Any, Any]
else:  # generic only in grpc-stubs
    _Interceptor = grpc.aio.ServerInterceptor


class GatewayInterceptor(_Interceptor):
    """Wraps every method handler with the gateway's per-call policy."""

    def __init__(
        self, policy: AuthPolicy, gate: DrainGate, metrics: GatewayMetrics | None = None
    ) -> None:
        self.policy = policy
        self.gate = gate
        self.metrics = metrics

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        # At run time the handler is a namedtuple (or None for an unknown method).
        handler: Any = await continuation(handler_call_details)
        if handler is None:
            return None  # type: ignore[return-value]  # unknown method: gRPC says UNIMPLEMENTED
        wrapped: grpc.RpcMethodHandler[Any, Any] = _wrap(
            handler, _Call(self, handler_call_details.method)
        )
        return wrapped


def _wrap(handler: Any, call: _Call) -> Any:
    """Return ``handler`` with its behaviour wrapped by ``call``'s policy."""
    if handler.unary_unary is not None:
        return handler._replace(unary_unary=call.unary(handler.unary_unary, "unary"))
    if handler.stream_unary is not None:
        wrapped = call.unary(handler.stream_unary, "client_stream", streaming_request=True)
        return handler._replace(stream_unary=wrapped)
    if handler.unary_stream is not None:
        return handler._replace(unary_stream=call.stream(handler.unary_stream, "server_stream"))
    wrapped = call.stream(handler.stream_stream, "bidi_stream", streaming_request=True)
    return handler._replace(stream_stream=wrapped)


class _Call:
    """The policy for one method, applied to each of its calls."""

    def __init__(self, interceptor: GatewayInterceptor, method: str) -> None:
        self._i = interceptor
        self._method = method
        self._gated = not method.startswith(_HEALTH)

    def _log_fields(self, context: Context) -> dict[str, str]:
        traceparent = next(
            (v for k, v in context.invocation_metadata() or () if k == "traceparent"), None
        )
        return {"rpc": self._method, **trace_fields(str(traceparent) if traceparent else None)}

    def _admit(self, request: Any, context: Context) -> dict[str, str]:
        """Raise a GatewayError unless the call may proceed; return log fields."""
        if self._gated:
            self._i.gate.check()
        policy = self._i.policy
        if not policy.needs_token(self._method):
            return {}
        metadata: Any = context.invocation_metadata()  # pairs of (key, value)
        principal = policy.authenticate(metadata)
        if request is not None:
            policy.authorize(principal, self._method, request)
        return {"principal": principal.name}

    async def _admit_or_abort(self, request: Any, context: Context) -> dict[str, str]:
        """``_admit``, turning a refusal into the call's status (with details)."""
        try:
            return self._admit(request, context)
        except GatewayError as refused:
            await abort_with(context, refused)
            raise AssertionError("abort returned") from refused  # abort always raises

    def _started(self, kind: str) -> float:
        if self._i.metrics is not None:
            self._i.metrics.rpc_start(self._method, kind)
        return time.perf_counter()

    def _finished(self, kind: str, started: float, code: str, *, streaming: bool) -> None:
        if self._i.metrics is not None:
            self._i.metrics.observe_rpc(
                self._method, kind, code, time.perf_counter() - started, streaming=streaming
            )

    def unary(
        self,
        behavior: Callable[[Any, Context], Awaitable[Any]],
        kind: str,
        *,
        streaming_request: bool = False,
        streaming_response: bool = False,
    ) -> Callable[[Any, Context], Awaitable[Any]]:
        gate = self._i.gate
        # A drain waits for unary calls; streams are ended by the actor instead.
        counted = not streaming_response

        async def handle(request: Any, context: Context) -> Any:
            started = self._started(kind)
            error: BaseException | None = None
            # Each call runs in its own task: these fields stay with this call.
            set_fields(**self._log_fields(context))
            try:
                fields = await self._admit_or_abort(None if streaming_request else request, context)
                set_fields(**fields)
                if counted:
                    gate.enter()
                try:
                    return await behavior(request, context)
                finally:
                    if counted:
                        gate.leave()
            except BaseException as exc:
                error = exc
                raise
            finally:
                code = _code_name(error, context)
                self._finished(kind, started, code, streaming=streaming_response)

        return handle

    def stream(
        self,
        behavior: Callable[[Any, Context], Any],
        kind: str,
        *,
        streaming_request: bool = False,
    ) -> Callable[[Any, Context], Any]:
        if not inspect.isasyncgenfunction(behavior):
            # Handlers that write with context.write (health Watch) return a coroutine.
            return self.unary(
                behavior, kind, streaming_request=streaming_request, streaming_response=True
            )

        async def handle(request: Any, context: Context) -> AsyncIterator[Any]:
            started = self._started(kind)
            error: BaseException | None = None
            set_fields(**self._log_fields(context))
            try:
                fields = await self._admit_or_abort(None if streaming_request else request, context)
                set_fields(**fields)
                async for response in behavior(request, context):
                    yield response
            except BaseException as exc:
                error = exc
                raise
            finally:
                self._finished(kind, started, _code_name(error, context), streaming=True)

        return handle
