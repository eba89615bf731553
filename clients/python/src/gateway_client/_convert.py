"""Conversions between the SDK's types and the protobuf messages, in pairs.

The only module besides the clients that touches ``_proto``. Numbers cross the
wire as plain decimal strings; a float is refused rather than rounded.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from gateway_client._models import (
    Event,
    Fill,
    HaltResult,
    Heartbeat,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Position,
    PositionUpdate,
    RejectCode,
    RiskLimits,
    RiskLimitsReport,
    Side,
    SnapshotComplete,
    TimeInForce,
    TradingHalt,
    TradingMode,
    TradingState,
    TradingStateUpdate,
    UpdateKind,
)
from gateway_client._proto.execution.v1 import execution_pb2 as pb

DecimalLike = Decimal | int | str
"""What the SDK accepts as a quantity or price. Never a float: floats round."""


def decimal_to_wire(value: DecimalLike, field: str) -> str:
    """Return ``value`` as the plain decimal string the gateway expects ("187.25")."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise TypeError(f"{field} must be a Decimal, int or str, not {type(value).__name__}")
    try:
        number = Decimal(value) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise ValueError(f"{field}: {value!r} is not a decimal number") from None
    if not number.is_finite():
        raise ValueError(f"{field}: {value!r} is not finite")
    # Fixed-point, never exponent form: Decimal("1E+3") goes out as "1000".
    return format(number, "f")


def decimal_from_wire(text: str) -> Decimal:
    """Parse a decimal string from the gateway ("0" when empty)."""
    return Decimal(text) if text else Decimal(0)


def _optional_decimal(text: str) -> Decimal | None:
    return Decimal(text) if text else None


def _time(timestamp: Timestamp, present: bool) -> datetime | None:
    return timestamp.ToDatetime(tzinfo=UTC) if present else None


M = TypeVar("M", bound=enum.Enum)


def _by_number(model: type[M], proto_enum: Any, prefix: str) -> dict[int, M]:
    """Map a proto enum's numbers to the SDK enum's members of the same name."""
    return {
        number: model(name.removeprefix(prefix))
        for name, number in proto_enum.items()
        if name.removeprefix(prefix) in model.__members__
    }


# Values a newer gateway may add read as UNSPECIFIED: an older SDK must not
# fail on an order (or update) only because the server grew.
_STATUS = _by_number(OrderStatus, pb.OrderStatus, "ORDER_STATUS_")
_REJECT_CODE = _by_number(RejectCode, pb.RejectCode, "REJECT_CODE_")
_UPDATE_KIND = _by_number(UpdateKind, pb.UpdateKind, "UPDATE_KIND_")
_TRADING_MODE = _by_number(TradingMode, pb.TradingMode, "TRADING_MODE_")


def order_from_proto(message: pb.Order) -> Order:
    """Return the SDK's ``Order`` for an ``execution.v1.Order``."""
    return Order(
        order_id=message.order_id,
        client_order_id=message.client_order_id,
        broker_order_id=message.broker_order_id,
        account=message.account,
        symbol=message.symbol,
        side=Side(pb.Side.Name(message.side).removeprefix("SIDE_")),
        order_type=OrderType(pb.OrderType.Name(message.order_type).removeprefix("ORDER_TYPE_")),
        quantity=decimal_from_wire(message.quantity),
        limit_price=_optional_decimal(message.limit_price),
        stop_price=_optional_decimal(message.stop_price),
        time_in_force=TimeInForce(
            pb.TimeInForce.Name(message.time_in_force).removeprefix("TIME_IN_FORCE_")
        ),
        status=_STATUS.get(message.status, OrderStatus.UNSPECIFIED),
        filled_quantity=decimal_from_wire(message.filled_quantity),
        leaves_quantity=decimal_from_wire(message.leaves_quantity),
        average_fill_price=_optional_decimal(message.average_fill_price),
        reject_reason=message.reject_reason,
        created_at=_time(message.created_at, message.HasField("created_at")),
        updated_at=_time(message.updated_at, message.HasField("updated_at")),
        reject_code=_REJECT_CODE.get(message.reject_code, RejectCode.UNSPECIFIED),
        replace_id=message.replace_id,
    )


def fill_from_proto(message: pb.Fill) -> Fill:
    """Return the SDK's ``Fill`` for an ``execution.v1.Fill``."""
    return Fill(
        exec_id=message.exec_id,
        quantity=decimal_from_wire(message.quantity),
        price=decimal_from_wire(message.price),
        time=_time(message.time, message.HasField("time")),
    )


def event_from_proto(message: pb.SubscribeUpdatesResponse) -> Event | None:
    """Return the event one stream message carries (None for a kind this SDK predates)."""
    kind = message.WhichOneof("event")
    if kind == "update":
        update = message.update
        return OrderUpdate(
            sequence=update.sequence,
            order=order_from_proto(update.order),
            fill=fill_from_proto(update.fill) if update.HasField("fill") else None,
            time=_time(update.time, update.HasField("time")),
            snapshot=update.snapshot,
            kind=_UPDATE_KIND.get(update.kind, UpdateKind.UNSPECIFIED),
        )
    if kind == "position":
        moved = message.position
        return PositionUpdate(
            sequence=moved.sequence,
            position=position_from_proto(moved.position),
            order_id=moved.order_id,
            time=_time(moved.time, moved.HasField("time")),
        )
    if kind == "trading_state":
        change = message.trading_state
        return TradingStateUpdate(
            sequence=change.sequence,
            change=halt_from_proto(change.change),
            time=_time(change.time, change.HasField("time")),
        )
    if kind == "heartbeat":
        beat = message.heartbeat
        return Heartbeat(beat.sequence, _time(beat.time, beat.HasField("time")))
    if kind == "snapshot_complete":
        complete = message.snapshot_complete
        return SnapshotComplete(complete.sequence, complete.order_count)
    return None


def place_request_to_proto(
    *,
    account: str,
    client_order_id: str,
    symbol: str,
    side: Side,
    quantity: DecimalLike,
    order_type: OrderType,
    limit_price: DecimalLike | None,
    stop_price: DecimalLike | None,
    time_in_force: TimeInForce,
) -> pb.PlaceOrderRequest:
    """Build a ``PlaceOrderRequest``; numbers go out as plain decimal strings."""
    return pb.PlaceOrderRequest(
        account=account,
        client_order_id=client_order_id,
        symbol=symbol,
        side=pb.Side.Value(f"SIDE_{Side(side).value}"),
        order_type=pb.OrderType.Value(f"ORDER_TYPE_{OrderType(order_type).value}"),
        quantity=decimal_to_wire(quantity, "quantity"),
        limit_price="" if limit_price is None else decimal_to_wire(limit_price, "limit_price"),
        stop_price="" if stop_price is None else decimal_to_wire(stop_price, "stop_price"),
        time_in_force=pb.TimeInForce.Value(f"TIME_IN_FORCE_{TimeInForce(time_in_force).value}"),
    )


def _order_ref(order_id: str | None, client_order_id: str | None) -> dict[str, str]:
    if (order_id is None) == (client_order_id is None):
        raise ValueError("name the order by exactly one of order_id and client_order_id")
    if order_id is not None:
        return {"order_id": order_id}
    return {"client_order_id": client_order_id or ""}


def cancel_request_to_proto(
    account: str, order_id: str | None, client_order_id: str | None
) -> pb.CancelOrderRequest:
    """Build a ``CancelOrderRequest`` naming the order by one of its ids."""
    return pb.CancelOrderRequest(account=account, **_order_ref(order_id, client_order_id))


def status_request_to_proto(
    account: str, order_id: str | None, client_order_id: str | None
) -> pb.GetOrderStatusRequest:
    """Build a ``GetOrderStatusRequest`` naming the order by one of its ids."""
    return pb.GetOrderStatusRequest(account=account, **_order_ref(order_id, client_order_id))


def list_request_to_proto(
    account: str, open_only: bool, symbols: Sequence[str], page_size: int, page_token: str
) -> pb.ListOrdersRequest:
    """Build one page's ``ListOrdersRequest``."""
    return pb.ListOrdersRequest(
        account=account,
        open_only=open_only,
        symbols=list(symbols),
        page_size=page_size,
        page_token=page_token,
    )


def subscribe_request_to_proto(
    accounts: Sequence[str], symbols: Sequence[str], after_sequence: int | None, snapshot: bool
) -> pb.SubscribeUpdatesRequest:
    """Build a ``SubscribeUpdatesRequest`` (after_sequence and snapshot exclude each other)."""
    request = pb.SubscribeUpdatesRequest(
        accounts=list(accounts), symbols=list(symbols), snapshot=snapshot
    )
    if after_sequence is not None:
        request.after_sequence = after_sequence
    return request


# --- Trading controls: replace, mass cancel, positions, halts, risk limits ---


def replace_request_to_proto(
    *,
    account: str,
    order_id: str | None,
    client_order_id: str | None,
    replace_id: str,
    quantity: DecimalLike | None,
    limit_price: DecimalLike | None,
    stop_price: DecimalLike | None,
) -> pb.ReplaceOrderRequest:
    """Build a ``ReplaceOrderRequest``; an omitted number keeps the order's current one."""
    if quantity is None and limit_price is None and stop_price is None:
        raise ValueError("nothing to replace: give a quantity, a limit_price or a stop_price")
    return pb.ReplaceOrderRequest(
        account=account,
        replace_id=replace_id,
        quantity="" if quantity is None else decimal_to_wire(quantity, "quantity"),
        limit_price="" if limit_price is None else decimal_to_wire(limit_price, "limit_price"),
        stop_price="" if stop_price is None else decimal_to_wire(stop_price, "stop_price"),
        **_order_ref(order_id, client_order_id),
    )


def cancel_all_request_to_proto(
    account: str, symbol: str | None, side: Side | None
) -> pb.CancelAllOrdersRequest:
    """Build a ``CancelAllOrdersRequest`` (no symbol: every symbol; no side: both)."""
    return pb.CancelAllOrdersRequest(
        account=account,
        symbol=symbol or "",
        side=pb.SIDE_UNSPECIFIED if side is None else pb.Side.Value(f"SIDE_{Side(side).value}"),
    )


def positions_request_to_proto(account: str, symbols: Sequence[str]) -> pb.GetPositionsRequest:
    """Build a ``GetPositionsRequest`` (no symbols: every symbol the account traded)."""
    return pb.GetPositionsRequest(account=account, symbols=list(symbols))


def position_from_proto(message: pb.Position) -> Position:
    """Return the SDK's ``Position`` for an ``execution.v1.Position``."""
    return Position(
        account=message.account,
        symbol=message.symbol,
        quantity=decimal_from_wire(message.quantity),
        average_cost=_optional_decimal(message.average_cost),
        realized_pnl=decimal_from_wire(message.realized_pnl),
        updated_at=_time(message.updated_at, message.HasField("updated_at")),
    )


def halt_from_proto(message: pb.TradingHalt) -> TradingHalt:
    """Return the SDK's ``TradingHalt`` for an ``execution.v1.TradingHalt``."""
    return TradingHalt(
        scope_account=message.scope_account,
        mode=_TRADING_MODE.get(message.mode, TradingMode.UNSPECIFIED),
        reason=message.reason,
        principal=message.principal,
        since=_time(message.since, message.HasField("since")),
    )


def trading_state_from_proto(message: pb.TradingState) -> TradingState:
    """Return the SDK's ``TradingState`` (every halt in force)."""
    return TradingState(tuple(halt_from_proto(halt) for halt in message.halts))


def halt_request_to_proto(
    scope_account: str, mode: TradingMode, cancel_open_orders: bool, reason: str
) -> pb.HaltTradingRequest:
    """Build a ``HaltTradingRequest``; ``mode`` is HALTED or REDUCING."""
    if TradingMode(mode) not in (TradingMode.HALTED, TradingMode.REDUCING):
        raise ValueError(f"a halt's mode is HALTED or REDUCING, not {TradingMode(mode).value}")
    return pb.HaltTradingRequest(
        scope_account=scope_account,
        mode=pb.TradingMode.Value(f"TRADING_MODE_{TradingMode(mode).value}"),
        cancel_open_orders=cancel_open_orders,
        reason=reason,
    )


def resume_request_to_proto(scope_account: str, reason: str) -> pb.ResumeTradingRequest:
    """Build a ``ResumeTradingRequest`` ('' lifts the gateway-wide halt)."""
    return pb.ResumeTradingRequest(scope_account=scope_account, reason=reason)


def trading_state_request_to_proto() -> pb.GetTradingStateRequest:
    """Build a ``GetTradingStateRequest`` (it has no fields)."""
    return pb.GetTradingStateRequest()


def risk_limits_request_to_proto(account: str) -> pb.GetRiskLimitsRequest:
    """Build a ``GetRiskLimitsRequest`` ('' asks for the defaults and every override)."""
    return pb.GetRiskLimitsRequest(account=account)


def halt_result_from_proto(message: pb.HaltTradingResponse) -> HaltResult:
    """Return what a ``HaltTrading`` call did."""
    return HaltResult(
        state=trading_state_from_proto(message.state),
        canceled_orders=tuple(order_from_proto(o) for o in message.canceled_orders),
    )


def risk_limits_from_proto(message: pb.RiskLimits) -> RiskLimits:
    """Return the SDK's ``RiskLimits``: an empty field (or 0 count) is no limit."""
    return RiskLimits(
        account=message.account,
        max_order_quantity=_optional_decimal(message.max_order_quantity),
        max_order_notional=_optional_decimal(message.max_order_notional),
        max_open_orders=message.max_open_orders or None,
        max_position=_optional_decimal(message.max_position),
        max_order_rate=_optional_decimal(message.max_order_rate),
        order_rate_burst=message.order_rate_burst or None,
        price_collar_percent=_optional_decimal(message.price_collar_percent),
        allowed_symbols=tuple(message.allowed_symbols),
        denied_symbols=tuple(message.denied_symbols),
    )


def risk_report_from_proto(message: pb.GetRiskLimitsResponse) -> RiskLimitsReport:
    """Return the limits in force and the state of their file."""
    return RiskLimitsReport(
        limits=tuple(risk_limits_from_proto(limits) for limits in message.limits),
        source=message.source,
        loaded_at=_time(message.loaded_at, message.HasField("loaded_at")),
        last_error=message.last_error,
    )
