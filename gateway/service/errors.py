"""The one table from gateway errors to gRPC status codes, with rich details.

Every error a client sees passes through ``to_rpc_status``: INVALID_ARGUMENT
carries a ``google.rpc.BadRequest`` naming each bad field, every other error
a ``google.rpc.ErrorInfo`` with a stable ``reason`` and metadata.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from gateway import errors

ERROR_DOMAIN = "execution.v1"

# Most specific first: the first family an error belongs to decides its code.
STATUS_CODES: tuple[tuple[type[errors.GatewayError], grpc.StatusCode], ...] = (
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
    (errors.ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (errors.GatewayError, grpc.StatusCode.INTERNAL),
)


def status_code_for(error: errors.GatewayError) -> grpc.StatusCode:
    """Return the gRPC code for ``error``'s family."""
    for family, code in STATUS_CODES:
        if isinstance(error, family):
            return code
    return grpc.StatusCode.INTERNAL


async def abort_with(
    context: grpc.aio.ServicerContext[Any, Any], error: errors.GatewayError
) -> None:
    """End the call with ``error``'s status; the details travel in the trailing
    metadata (grpc-status-details-bin). Always raises."""
    status = to_rpc_status(error)
    await context.abort(status.code, status.details, status.trailing_metadata)


def to_rpc_status(error: errors.GatewayError) -> grpc.Status:
    """Build the status (code, message, details) a client receives for ``error``."""
    code = status_code_for(error)
    detail = any_pb2.Any()
    if isinstance(error, errors.InvalidArgument):
        detail.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field, description=v.description
                    )
                    for v in error.violations
                ]
            )
        )
    else:
        detail.Pack(
            error_details_pb2.ErrorInfo(
                reason=error.reason, domain=ERROR_DOMAIN, metadata=error.metadata
            )
        )
    status = status_pb2.Status(
        code=getattr(code_pb2, code.name), message=error.message, details=[detail]
    )
    result: grpc.Status = rpc_status.to_status(status)
    return result
