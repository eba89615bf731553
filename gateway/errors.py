"""The gateway's one error root and its families.

Every error a caller can see is a ``GatewayError``. The service layer maps the
families to gRPC status codes in one table (``gateway.service.errors``); code
below the service raises these and never thinks about gRPC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


class GatewayError(Exception):
    """Root of every error the gateway reports to a caller.

    ``reason`` is a stable, UPPER_SNAKE identifier clients may switch on
    (it becomes ``google.rpc.ErrorInfo.reason``); ``metadata`` adds facts.
    """

    reason = "INTERNAL"

    def __init__(
        self, message: str, *, reason: str | None = None, metadata: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        self.metadata: dict[str, str] = dict(metadata or {})


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One problem with one request field (becomes a BadRequest field violation)."""

    field: str
    description: str


class InvalidArgument(GatewayError):
    """The request is malformed or inconsistent; nothing was changed."""

    reason = "INVALID_ARGUMENT"

    def __init__(self, violations: list[FieldViolation]) -> None:
        summary = "; ".join(f"{v.field}: {v.description}" for v in violations)
        super().__init__(f"invalid request: {summary}")
        self.violations = violations


class NotFound(GatewayError):
    """The order does not exist, or the caller may not see it."""

    reason = "ORDER_NOT_FOUND"


class AlreadyExists(GatewayError):
    """A client_order_id was reused with different parameters."""

    reason = "CLIENT_ORDER_ID_REUSED"


class FailedPrecondition(GatewayError):
    """The request is valid but the order's or gateway's state forbids it."""

    reason = "FAILED_PRECONDITION"


class Unavailable(GatewayError):
    """The broker or the gateway cannot take the request now; safe to retry."""

    reason = "UNAVAILABLE"


class ResourceExhausted(GatewayError):
    """Overload, a rate limit, or a subscriber that fell behind."""

    reason = "RESOURCE_EXHAUSTED"


class Unauthenticated(GatewayError):
    """The caller presented no credentials, or bad ones."""

    reason = "UNAUTHENTICATED"


class PermissionDenied(GatewayError):
    """The caller is known but not granted this account or action."""

    reason = "PERMISSION_DENIED"
