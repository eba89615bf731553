"""Typed errors: every failed call raises a ``GatewayClientError`` subclass.

gRPC status codes map to families (``NotFound``, ``Unavailable``, ...), and a
stable ``google.rpc.ErrorInfo`` reason maps to a narrower class inside its
family (``ClientOrderIdReused`` is an ``AlreadyExists``). The status details
travel along: ``reason``, ``metadata`` and ``field_violations``. All mapping
happens in ``from_rpc_error``, from two tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import grpc
from google.rpc import error_details_pb2, status_pb2

_DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad field of an ``INVALID_ARGUMENT`` (from ``google.rpc.BadRequest``)."""

    field: str
    description: str


class GatewayClientError(Exception):
    """The root of every error the SDK raises."""

    retryable: ClassVar[bool] = False
    """Whether the same call may simply be tried again (PlaceOrder: with the same id)."""

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode | None = None,
        reason: str = "",
        metadata: dict[str, str] | None = None,
        field_violations: tuple[FieldViolation, ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason
        """The ErrorInfo reason, e.g. ``ORDER_ALREADY_TERMINAL`` ('' if none)."""
        self.metadata = metadata or {}
        """The ErrorInfo metadata, e.g. ``{"last_sequence": "42"}``."""
        self.field_violations = field_violations

    def __str__(self) -> str:
        parts = [self.code.name if self.code else type(self).__name__, self.message]
        if self.reason:
            parts.append(f"[{self.reason}]")
        parts.extend(f"{v.field}: {v.description}" for v in self.field_violations)
        return " ".join(p for p in parts if p)


class InvalidArgument(GatewayClientError):
    """A malformed or inconsistent request; ``field_violations`` name the fields."""


class NotFound(GatewayClientError):
    """Unknown order, or one the caller may not see."""


class AlreadyExists(GatewayClientError):
    """Something with that name exists already."""


class ClientOrderIdReused(AlreadyExists):
    """The client_order_id names a different order in this account."""


class ReplaceIdReused(AlreadyExists):
    """The replace_id names a different replace (other terms, or another order)."""


class FailedPrecondition(GatewayClientError):
    """The request cannot apply in the current state (e.g. trading halted)."""


class OrderAlreadyTerminal(FailedPrecondition):
    """The order is already FILLED, CANCELED, REJECTED or EXPIRED."""


class WrongShard(FailedPrecondition):
    """Another shard serves the account: ``metadata["shard"]`` and ``metadata["address"]``."""


class Unavailable(GatewayClientError):
    """The gateway (or its broker) cannot be reached right now; safe to retry."""

    retryable = True


class GatewayShuttingDown(Unavailable):
    """The gateway is draining; streams resume elsewhere or after its restart."""


class DeadlineExceeded(GatewayClientError):
    """The call's deadline passed; its outcome is unknown, so retry with the same id."""

    retryable = True


class ResourceExhausted(GatewayClientError):
    """A limit was hit: overload, rate limit or a slow subscriber."""


class GatewayOverloaded(ResourceExhausted):
    """Too many queued requests; back off and retry."""

    retryable = True


class SubscriberTooSlow(ResourceExhausted):
    """The stream fell behind its buffer; resume from ``last_sequence``."""

    retryable = True


class Unauthenticated(GatewayClientError):
    """Missing or bad token."""


class PermissionDenied(GatewayClientError):
    """The token is not granted the account."""


class AdminRequired(PermissionDenied):
    """A ControlService call (halt, resume, state, limits) by a token without the admin grant."""


class Cancelled(GatewayClientError):
    """The call was cancelled (by this client, usually)."""


class GatewayInternalError(GatewayClientError):
    """Anything else the gateway or the transport reported (INTERNAL, UNKNOWN, ...)."""


class SubscriptionLost(GatewayClientError):
    """An update stream could not be re-established within its reconnect policy."""


_BY_CODE: dict[grpc.StatusCode, type[GatewayClientError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.CANCELLED: Cancelled,
}

# A reason narrows its code's family; one that does not belong to it is ignored.
_BY_REASON: dict[str, type[GatewayClientError]] = {
    "CLIENT_ORDER_ID_REUSED": ClientOrderIdReused,
    "REPLACE_ID_REUSED": ReplaceIdReused,
    "ADMIN_REQUIRED": AdminRequired,
    "ORDER_ALREADY_TERMINAL": OrderAlreadyTerminal,
    "GATEWAY_SHUTTING_DOWN": GatewayShuttingDown,
    "GATEWAY_OVERLOADED": GatewayOverloaded,
    "SUBSCRIBER_TOO_SLOW": SubscriberTooSlow,
    "WRONG_SHARD": WrongShard,
}


def from_rpc_error(error: grpc.RpcError) -> GatewayClientError:
    """Translate a failed gRPC call (sync or asyncio) into the SDK's error."""
    call: Any = error  # both grpc.Call and grpc.aio.AioRpcError have these methods
    code: grpc.StatusCode = call.code()
    message: str = call.details() or ""
    reason, metadata, violations = _details(call.trailing_metadata() or ())
    family = _BY_CODE.get(code, GatewayInternalError)
    narrower = _BY_REASON.get(reason)
    kind = narrower if narrower is not None and issubclass(narrower, family) else family
    return kind(message, code=code, reason=reason, metadata=metadata, field_violations=violations)


def _details(
    trailing: Any,
) -> tuple[str, dict[str, str], tuple[FieldViolation, ...]]:
    reason, metadata = "", {}
    violations: tuple[FieldViolation, ...] = ()
    for key, value in trailing:
        if key != _DETAILS_KEY or not isinstance(value, bytes):
            continue
        for detail in status_pb2.Status.FromString(value).details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason, metadata = info.reason, dict(info.metadata)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations = tuple(
                    FieldViolation(v.field, v.description) for v in bad.field_violations
                )
    return reason, metadata, violations
