"""Trading controls between domain and protobuf: positions, halts, risk limits.

Beside ``convert`` (orders), for the values ``ControlService`` and
``GetPositions`` carry, and the position and trading-state updates streams send.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway.domain import decimal_to_str
from gateway.domain.controls import (
    Position,
    PositionUpdate,
    TradingHalt,
    TradingMode,
    TradingStateUpdate,
)
from gateway.risk.limits import AccountLimits
from gateway.service.convert import timestamp_to_proto

TRADING_MODE_TO_PROTO: dict[TradingMode, pb.TradingMode.ValueType] = {
    TradingMode.ACTIVE: pb.TRADING_MODE_ACTIVE,
    TradingMode.HALTED: pb.TRADING_MODE_HALTED,
    TradingMode.REDUCING: pb.TRADING_MODE_REDUCING,
}
# A halt request names HALTED or REDUCING; anything else is refused.
HALT_MODE_FROM_PROTO = {
    pb.TRADING_MODE_HALTED: TradingMode.HALTED,
    pb.TRADING_MODE_REDUCING: TradingMode.REDUCING,
}


def _text(value: Decimal | None) -> str:
    return "" if value is None else decimal_to_str(value)


def position_to_proto(position: Position) -> pb.Position:
    """Return the wire form of ``position``."""
    return pb.Position(
        account=position.account,
        symbol=position.symbol,
        quantity=decimal_to_str(position.quantity),
        average_cost=_text(position.average_cost),
        realized_pnl=decimal_to_str(position.realized_pnl),
        updated_at=timestamp_to_proto(position.updated_at),
    )


def halt_to_proto(halt: TradingHalt) -> pb.TradingHalt:
    """Return the wire form of ``halt``."""
    return pb.TradingHalt(
        scope_account=halt.scope_account,
        mode=TRADING_MODE_TO_PROTO[halt.mode],
        reason=halt.reason,
        principal=halt.principal,
        since=timestamp_to_proto(halt.since),
    )


def trading_state_to_proto(halts: Iterable[TradingHalt]) -> pb.TradingState:
    """Return every halt in force as a ``TradingState``."""
    return pb.TradingState(halts=[halt_to_proto(h) for h in halts])


def limits_to_proto(account: str, limits: AccountLimits) -> pb.RiskLimits:
    """Return one account's limits (or the defaults: ``account`` empty)."""
    return pb.RiskLimits(
        account=account,
        max_order_quantity=_text(limits.max_order_quantity),
        max_order_notional=_text(limits.max_order_notional),
        max_open_orders=limits.max_open_orders or 0,
        max_position=_text(limits.max_position),
        max_order_rate=_text(limits.max_order_rate),
        order_rate_burst=limits.order_rate_burst or 0,
        price_collar_percent=_text(limits.price_collar_percent),
        allowed_symbols=sorted(limits.allowed_symbols or ()),
        denied_symbols=sorted(limits.denied_symbols or ()),
    )


def control_update_response(update: PositionUpdate | TradingStateUpdate) -> bytes:
    """A SubscribeUpdatesResponse carrying a position or trading-state update."""
    if isinstance(update, PositionUpdate):
        position = pb.PositionUpdate(
            sequence=update.sequence,
            position=position_to_proto(update.position),
            order_id=update.order_id,
            time=timestamp_to_proto(update.time),
        )
        return pb.SubscribeUpdatesResponse(position=position).SerializeToString()
    state = pb.TradingStateUpdate(
        sequence=update.sequence,
        change=halt_to_proto(update.halt),
        time=timestamp_to_proto(update.time),
    )
    return pb.SubscribeUpdatesResponse(trading_state=state).SerializeToString()
