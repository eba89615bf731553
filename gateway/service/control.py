"""ControlService: the operator's kill switch and view of the risk limits.

Protobuf in, actor calls, protobuf out, as ``servicer`` does for orders.
Authorization (the admin grant) is the interceptor's, by ``auth.policy``;
this layer names the caller in the halt it records and in the audit trail.
"""

from __future__ import annotations

import grpc

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway._proto.execution.v1 import execution_pb2_grpc as pb_grpc
from gateway.auth.audit import audit
from gateway.auth.policy import CONTROL_SERVICE, current_principal
from gateway.domain.controls import TradingMode
from gateway.engine import OrderActor
from gateway.risk import LimitsFile
from gateway.service import control_convert, convert, validation
from gateway.service.servicer import Context, _unary

# The name a halt records when the gateway runs without authentication.
ANONYMOUS = "anonymous"


def _caller() -> str:
    principal = current_principal.get()
    return ANONYMOUS if principal is None else principal.name


class ControlServicer(pb_grpc.ControlServiceServicer):
    """The gRPC face of the trading controls."""

    def __init__(self, actor: OrderActor, limits_file: LimitsFile | None = None) -> None:
        self._actor = actor
        self._limits_file = limits_file

    @_unary
    async def HaltTrading(
        self, request: pb.HaltTradingRequest, context: Context
    ) -> pb.HaltTradingResponse:
        scope, mode = validation.halt_from_proto(request)
        principal = _caller()
        outcome = await self._actor.halt_trading(
            scope, mode, request.reason, principal, cancel_open_orders=request.cancel_open_orders
        )
        _audit("halted", principal, "HaltTrading", scope, mode, request.reason, context)
        return pb.HaltTradingResponse(
            state=control_convert.trading_state_to_proto(outcome.halts),
            canceled_orders=[convert.order_to_proto(o) for o in outcome.canceled],
        )

    @_unary
    async def ResumeTrading(
        self, request: pb.ResumeTradingRequest, context: Context
    ) -> pb.ResumeTradingResponse:
        scope = validation.resume_from_proto(request)
        principal = _caller()
        halts = await self._actor.resume_trading(scope, request.reason, principal)
        _audit(
            "resumed",
            principal,
            "ResumeTrading",
            scope,
            TradingMode.ACTIVE,
            request.reason,
            context,
        )
        return pb.ResumeTradingResponse(state=control_convert.trading_state_to_proto(halts))

    @_unary
    async def GetTradingState(
        self, request: pb.GetTradingStateRequest, context: Context
    ) -> pb.GetTradingStateResponse:
        return pb.GetTradingStateResponse(
            state=control_convert.trading_state_to_proto(self._actor.trading_state())
        )

    @_unary
    async def GetRiskLimits(
        self, request: pb.GetRiskLimitsRequest, context: Context
    ) -> pb.GetRiskLimitsResponse:
        account = validation.limits_account_from_proto(request)
        limits = self._actor.risk_limits
        if account:
            entries = [control_convert.limits_to_proto(account, limits.for_account(account))]
        else:
            entries = [control_convert.limits_to_proto("", limits.defaults)]
            entries += [
                control_convert.limits_to_proto(name, limits.accounts[name])
                for name in sorted(limits.accounts)
            ]
        response = pb.GetRiskLimitsResponse(limits=entries)
        source = self._limits_file
        if source is not None:
            response.source = str(source.path)
            response.last_error = source.last_error
            if source.loaded_at is not None:
                response.loaded_at.CopyFrom(convert.timestamp_to_proto(source.loaded_at))
        return response


def _audit(
    outcome: str,
    principal: str,
    method: str,
    scope: str,
    mode: TradingMode,
    reason: str,
    context: Context,
) -> None:
    audit(
        "trading_control",
        outcome=outcome,
        principal=principal,
        rpc=f"/{CONTROL_SERVICE}/{method}",
        account=scope or "*",
        reason=mode.name,
        detail=reason,
        peer=context.peer(),
    )


def add_to_server(servicer: ControlServicer, server: grpc.aio.Server) -> None:
    """Register ``servicer`` on ``server``."""
    pb_grpc.add_ControlServiceServicer_to_server(servicer, server)
