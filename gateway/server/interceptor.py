"""The one server interceptor: metrics, drain gate, authentication, parsing, limits.

Owns what happens to every call before and around its handler, in this order:

1. count it and time it (whatever its outcome, refusals included);
2. refuse it with UNAVAILABLE if the gateway is draining (health stays open);
3. authenticate the caller from its metadata (bearer token) or its mTLS
   client certificate, before a byte of the request body is parsed, so an
   unauthenticated caller only ever gets UNAUTHENTICATED;
4. apply the principal's order-entry rate limit;
5. parse the body: one that is not the method's message is INVALID_ARGUMENT
   with a BadRequest, and costs at most one WARNING line per client per
   interval (never an UNKNOWN with a traceback: anyone who can reach the
   port could flood the log with those);
6. authorize the request's account(s); refuse an account another shard
   owns (WRONG_SHARD, see ``gateway.shards``) or one that differs from the
   ``x-gateway-account`` metadata a proxy routed the call by; register a
   stream under its principal (the open-stream cap, and ending it if a
   reload revokes it);
7. count unary calls in flight, so a drain can wait for them.

To authenticate before parsing, each handler is served with no request
deserializer (gRPC then hands over the bytes) and its own deserializer runs
here, after step 3. Everything that depends only on the method (its rule,
metric children, log fields, wrapped handler) is worked out at its first
call and kept, so a call costs little more than authentication itself.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError

from gateway.auth import AuthPolicy, Principal
from gateway.auth.audit import audit
from gateway.auth.limits import (
    OpenStream,
    OrderRateLimiter,
    PrincipalLimits,
    StreamRegistry,
    current_stream,
)
from gateway.auth.policy import (
    CONTROL_SERVICE,
    RULES,
    SERVICE,
    CallerCredential,
    current_principal,
    token_of,
)
from gateway.errors import (
    FieldViolation,
    GatewayError,
    InvalidArgument,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from gateway.observability import GatewayMetrics
from gateway.observability.logs import add_fields, trace_fields
from gateway.server.drain import DrainGate
from gateway.service import validation
from gateway.service.errors import abort_with
from gateway.shards import ACCOUNT_METADATA, ShardGuard

log = logging.getLogger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]
_HEALTH = "/grpc.health.v1.Health/"
_SERVICE_PREFIX = f"/{SERVICE}/"
_CONTROL_PREFIX = f"/{CONTROL_SERVICE}/"
DECODE_WARNING_INTERVAL = 60.0
"""Seconds between two WARNING lines about undecodable bodies from one client."""
_MAX_WARNED_CLIENTS = 4096  # bounds the memory a crowd of distinct peers can take


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


def _peer_host(peer: str) -> str:
    """``ipv4:10.0.0.7:51234`` -> ``ipv4:10.0.0.7``: one client, whichever port it uses."""
    host, sep, _ = peer.rpartition(":")
    return host if sep and host else peer


class _WarningGate:
    """At most one line per client per ``interval``; counts what it held back."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._clients: dict[str, tuple[float, int]] = {}

    def allow(self, client: str) -> int | None:
        """Return how many lines were held back since the last one, or None to hold this one."""
        now = self._clock()
        entry = self._clients.get(client)
        if entry is not None and now < entry[0]:
            self._clients[client] = (entry[0], entry[1] + 1)
            return None
        if entry is None and len(self._clients) >= _MAX_WARNED_CLIENTS:
            self._clients.clear()
        self._clients[client] = (now + self.interval, 0)
        return 0 if entry is None else entry[1]


if TYPE_CHECKING:
    _Interceptor = grpc.aio.ServerInterceptor[Any, Any]
else:  # generic only in grpc-stubs
    _Interceptor = grpc.aio.ServerInterceptor


class GatewayInterceptor(_Interceptor):
    """Wraps every method handler with the gateway's per-call policy."""

    def __init__(
        self,
        policy: AuthPolicy,
        gate: DrainGate,
        metrics: GatewayMetrics | None = None,
        *,
        limits: PrincipalLimits | None = None,
        streams: StreamRegistry | None = None,
        decode_warning_interval: float = DECODE_WARNING_INTERVAL,
        shards: ShardGuard | None = None,
    ) -> None:
        self.policy = policy
        self.shards = shards
        self.gate = gate
        self.metrics = metrics
        limits = limits or PrincipalLimits()
        self.streams = streams if streams is not None else StreamRegistry(limits.max_streams)
        self.order_rate = (
            OrderRateLimiter(limits.order_rate, limits.burst) if limits.order_rate > 0 else None
        )
        self.decode_warnings = _WarningGate(decode_warning_interval)
        # method -> (the handler gRPC found, our wrapping of it)
        self._methods: dict[str, tuple[Any, Any]] = {}

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
        method = handler_call_details.method
        known = self._methods.get(method)
        if known is not None and known[0] is handler:
            wrapped: grpc.RpcMethodHandler[Any, Any] = known[1]
            return wrapped
        wrapped = _Method(self, method, handler).wrap(handler)
        self._methods[method] = (handler, wrapped)
        return wrapped


_Admitted = tuple[Any, Principal | None, CallerCredential | None, frozenset[str] | None]


class _Method:
    """One method's policy, worked out once, applied to each of its calls."""

    def __init__(self, interceptor: GatewayInterceptor, method: str, handler: Any) -> None:
        self._i = interceptor
        self.method = method
        self.gated = not method.startswith(_HEALTH)
        self.needs_auth = interceptor.policy.needs_token(method)
        self.control_call = method.startswith(_CONTROL_PREFIX)
        self.service_call = self.control_call or method.startswith(_SERVICE_PREFIX)
        self.rule = RULES.get(method)
        # Order entry is rate-limited; an operator's halt never waits behind it.
        self.rate_limited = self.rule is not None and self.rule.write and not self.rule.admin
        self.decode: Callable[[bytes], Any] | None = handler.request_deserializer
        message = getattr(getattr(self.decode, "__self__", None), "DESCRIPTOR", None)
        self.request_type = message.full_name if message is not None else "request"
        self.account_field, self.accounts_field = _account_fields(message)
        self.fields = {"rpc": method}
        self._principal_fields: dict[str, dict[str, str]] = {}
        self.kind = "unary"
        self._metrics: dict[str, tuple[Any, Any]] = {}  # status code -> metric children
        self._labels = ("", "", "")
        self._started_child: Any = None

    # ---------------------------------------------------------------- wrapping

    def wrap(self, handler: Any) -> Any:
        """Return ``handler`` served through this policy, taking the request as bytes."""
        raw = handler._replace(request_deserializer=None)
        if handler.unary_unary is not None:
            return raw._replace(unary_unary=self.unary(handler.unary_unary, "unary"))
        if handler.stream_unary is not None:
            behavior = self.unary(handler.stream_unary, "client_stream", streaming_request=True)
            return raw._replace(stream_unary=behavior)
        if handler.unary_stream is not None:
            return raw._replace(unary_stream=self.stream(handler.unary_stream, "server_stream"))
        behavior = self.stream(handler.stream_stream, "bidi_stream", streaming_request=True)
        return raw._replace(stream_stream=behavior)

    def _set_kind(self, kind: str) -> None:
        self.kind = kind
        metrics = self._i.metrics
        if metrics is not None:
            service, _, name = self.method.lstrip("/").rpartition("/")
            self._labels = (service, name, kind)
            self._started_child = metrics.child(metrics.rpc_started, *self._labels)

    def _started(self) -> float:
        if self._started_child is not None:
            self._started_child.inc()
        return time.perf_counter()

    def _finished(self, started: float, code: str, *, streaming: bool) -> None:
        metrics = self._i.metrics
        if metrics is None:
            return
        children = self._metrics.get(code)
        if children is None:
            histogram = metrics.stream_seconds if streaming else metrics.rpc_seconds
            children = self._metrics[code] = (
                metrics.child(metrics.rpc_handled, *self._labels, code),
                metrics.child(histogram, *self._labels, code),
            )
        children[0].inc()
        children[1].observe(time.perf_counter() - started)

    # --------------------------------------------------------------- admission

    def _admit(self, raw: Any, context: Context, *, streaming_request: bool) -> _Admitted:
        """Authenticate, limit, parse, authorize; return (request, principal, credential,
        accounts). Raise a GatewayError (audited) to refuse the call."""
        authorization: str | bytes | None = None
        traceparent: str | bytes | None = None
        routed: str | bytes | None = None
        repeated = False
        # One pass over the metadata for everything this call needs from it.
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                repeated = authorization is not None
                authorization = value
            elif key == "traceparent":
                traceparent = value
            elif key == ACCOUNT_METADATA:
                routed = value
        if traceparent is not None:  # rare: the common case sets one shared mapping below
            text = traceparent.decode("latin-1") if isinstance(traceparent, bytes) else traceparent
            add_fields({**self.fields, **trace_fields(text)})
        principal: Principal | None = None
        credential: CallerCredential | None = None
        try:
            if self.gated:
                self._i.gate.check()
            if self.needs_auth:
                if repeated:
                    raise Unauthenticated(
                        "more than one authorization header", reason="MALFORMED_AUTHORIZATION"
                    )
                token = None if authorization is None else token_of(authorization)
                caller, credential = self._i.policy.identify(token, context.auth_context)
                principal = caller
                add_fields(self._fields_of(caller.name))
                if self.rate_limited and self._i.order_rate is not None:
                    self._i.order_rate.admit(caller.name)
            else:
                add_fields(self.fields)
            request = None if streaming_request else self._decode(raw, context, principal)
            accounts: frozenset[str] | None = None
            if principal is not None and self.service_call:
                if streaming_request:
                    # Authorization reads the request; a streamed one is not in hand yet.
                    raise PermissionDenied(
                        f"{self.method} is not open to token holders",
                        reason="METHOD_NOT_GRANTED",
                    )
                named = self._i.policy.check(
                    principal, self.method, self.rule, validation.accounts_named(request)
                )
                # Before the grants fill in an empty filter: what the client named.
                if routed is not None or self._i.shards is not None:
                    named = self._check_accounts(request, routed, named)
                validation.grant_subscription(request, named)
                accounts = frozenset(named) if named else None
                if self.control_call:
                    current_principal.set(principal)
            elif request is not None and (routed is not None or self._i.shards is not None):
                self._check_accounts(request, routed, ())
        except GatewayError as refused:
            if principal is None:
                add_fields(self.fields)
            self._audit(refused, principal, context)
            raise
        return request, principal, credential, accounts

    def _check_accounts(
        self, request: Any, routed: str | bytes | None, granted: Sequence[str]
    ) -> Sequence[str]:
        """Refuse a request whose accounts this shard does not serve, or that the
        ``x-gateway-account`` metadata contradicts; return ``granted`` narrowed to
        this shard (what an empty subscription filter stands for here)."""
        shards = self._i.shards
        if self.account_field is not None:
            account: str = getattr(request, self.account_field)
            if account:  # empty: malformed, and validation says so
                if routed is not None and routed != account:
                    raise _routed_mismatch(self.account_field, account, routed)
                if shards is not None:
                    shards.check(account, self.account_field)
            return granted
        if self.accounts_field is None:
            return granted
        named: Sequence[str] = getattr(request, self.accounts_field)
        if routed is not None and named and routed not in named:
            raise _routed_mismatch(self.accounts_field, ", ".join(named), routed)
        if shards is None:
            return granted
        if named:
            shards.check_all(named)
            return granted
        # The client asked for every account it may see: here, those of this shard.
        mine = [account for account in granted if shards.owns(account)]
        if granted and not mine:
            shards.check(granted[0])  # raises: points the client at a shard with some
        return mine

    def _fields_of(self, principal: str) -> dict[str, str]:
        """The call's log fields for ``principal``: one mapping per principal, shared."""
        fields = self._principal_fields.get(principal)
        if fields is None:
            fields = self._principal_fields[principal] = {**self.fields, "principal": principal}
        return fields

    def _decode(self, raw: bytes, context: Context, principal: Principal | None) -> Any:
        decode = self.decode
        if decode is None:
            return raw
        try:
            return decode(raw)
        except (DecodeError, ValueError) as exc:
            client = principal.name if principal is not None else _peer_host(context.peer())
            held_back = self._i.decode_warnings.allow(client)
            if held_back is not None:
                log.warning(
                    "undecodable %s body from %s (%s); %d more held back since the last line",
                    self.request_type,
                    client,
                    type(exc).__name__,
                    held_back,
                )
            raise InvalidArgument(
                [
                    FieldViolation(
                        "request",
                        f"the body is not a valid {self.request_type} message "
                        "(check the client's protobuf definitions)",
                    )
                ]
            ) from None

    def _audit(self, refused: GatewayError, principal: Principal | None, context: Context) -> None:
        if isinstance(refused, Unauthenticated):
            event = "authentication"
        elif isinstance(refused, PermissionDenied):
            event = "authorization"
        elif isinstance(refused, ResourceExhausted):
            event = "limit"
        else:
            return  # draining, malformed bodies: not security decisions
        audit(
            event,
            outcome=type(refused).__name__,
            reason=refused.reason,
            principal=principal.name if principal is not None else None,
            rpc=self.method,
            account=refused.metadata.get("account"),
            peer=context.peer(),
        )

    async def _admit_or_abort(
        self, raw: Any, context: Context, *, streaming_request: bool
    ) -> _Admitted:
        """``_admit``, turning a refusal into the call's status (with details)."""
        try:
            return self._admit(raw, context, streaming_request=streaming_request)
        except GatewayError as refused:
            await abort_with(context, refused)
            raise AssertionError("abort returned") from refused  # abort always raises

    def _requests(self, raw: AsyncIterator[bytes], context: Context, principal: Any) -> Any:
        """Parse a streamed request's messages as the handler reads them."""

        async def parsed() -> AsyncIterator[Any]:
            async for message in raw:
                try:
                    yield self._decode(message, context, principal)
                except InvalidArgument as refused:
                    await abort_with(context, refused)

        return parsed()

    # ---------------------------------------------------------------- handlers

    def unary(
        self,
        behavior: Callable[[Any, Context], Awaitable[Any]],
        kind: str,
        *,
        streaming_request: bool = False,
        streaming_response: bool = False,
    ) -> Callable[[Any, Context], Awaitable[Any]]:
        self._set_kind(kind)
        gate = self._i.gate
        # A drain waits for unary calls; streams are ended by the actor instead.
        counted = not streaming_response

        async def handle(raw: Any, context: Context) -> Any:
            started = self._started()
            error: BaseException | None = None
            try:
                request, principal, _, _ = await self._admit_or_abort(
                    raw, context, streaming_request=streaming_request
                )
                if streaming_request:
                    request = self._requests(raw, context, principal)
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
                self._finished(started, code, streaming=streaming_response)

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
        self._set_kind(kind)
        streams = self._i.streams

        async def handle(raw: Any, context: Context) -> AsyncIterator[Any]:
            started = self._started()
            error: BaseException | None = None
            stream: OpenStream | None = None
            try:
                request, principal, credential, accounts = await self._admit_or_abort(
                    raw, context, streaming_request=streaming_request
                )
                if streaming_request:
                    request = self._requests(raw, context, principal)
                if principal is not None and credential is not None and self.service_call:
                    stream = await self._open_stream(principal, credential, accounts, context)
                    current_stream.set(stream)  # this call's task only
                responses = behavior(request, context)
                try:
                    async for response in responses:
                        if stream is not None and stream.error is not None:
                            # Revoked: nothing more leaves, even what was already queued.
                            await abort_with(context, stream.error)
                        yield response
                finally:
                    # Close the handler's generator now, not whenever it is collected:
                    # its cleanup (unsubscribing) must not wait for the garbage collector.
                    await responses.aclose()
            except BaseException as exc:
                error = exc
                raise
            finally:
                if stream is not None:
                    streams.close(stream)
                self._finished(started, _code_name(error, context), streaming=True)

        return handle

    async def _open_stream(
        self,
        principal: Principal,
        credential: CallerCredential,
        accounts: frozenset[str] | None,
        context: Context,
    ) -> OpenStream:
        try:
            return self._i.streams.open(principal, credential, accounts, self.method)
        except ResourceExhausted as refused:
            self._audit(refused, principal, context)
            await abort_with(context, refused)
            raise AssertionError("abort returned") from refused  # abort always raises


# Request fields naming one account, and (for subscriptions) several.
_ACCOUNT_FIELDS = ("account", "scope_account")
_ACCOUNTS_FIELDS = ("accounts",)


def _account_fields(message: Any) -> tuple[str | None, str | None]:
    """Return the request type's (single account field, repeated accounts field).

    Read off the message descriptor, so every RPC that names an account is
    checked against the shard map, those added later included.
    """
    if message is None:
        return None, None
    fields = message.fields_by_name
    string = FieldDescriptor.TYPE_STRING
    single = next(
        (
            name
            for name in _ACCOUNT_FIELDS
            if name in fields and fields[name].type == string and not _is_repeated(fields[name])
        ),
        None,
    )
    several = next(
        (
            name
            for name in _ACCOUNTS_FIELDS
            if name in fields and fields[name].type == string and _is_repeated(fields[name])
        ),
        None,
    )
    return single, several


def _is_repeated(field: Any) -> bool:
    return bool(field.is_repeated)


def _routed_mismatch(field: str, named: str, routed: str | bytes) -> InvalidArgument:
    shown = routed.decode("latin-1") if isinstance(routed, bytes) else routed
    return InvalidArgument(
        [
            FieldViolation(
                field,
                f"names {named!r} but the call's {ACCOUNT_METADATA} metadata says {shown!r} "
                "(a proxy routes on the metadata: they must agree)",
            )
        ]
    )
