"""Domain values to protobuf messages, and the enum maps both ways.

The inverse direction (proto requests to domain commands, with validation)
lives in ``gateway.service.validation`` and uses the ``*_FROM_PROTO`` maps here,
so each enum is mapped in exactly one place.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from google.protobuf.timestamp_pb2 import Timestamp

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway.domain import (
    Fill,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    RejectCode,
    Side,
    TimeInForce,
    UpdateKind,
    decimal_to_str,
)

SIDE_TO_PROTO: dict[Side, pb.Side.ValueType] = {
    Side.BUY: pb.SIDE_BUY,
    Side.SELL: pb.SIDE_SELL,
}
ORDER_TYPE_TO_PROTO: dict[OrderType, pb.OrderType.ValueType] = {
    OrderType.MARKET: pb.ORDER_TYPE_MARKET,
    OrderType.LIMIT: pb.ORDER_TYPE_LIMIT,
    OrderType.STOP: pb.ORDER_TYPE_STOP,
    OrderType.STOP_LIMIT: pb.ORDER_TYPE_STOP_LIMIT,
}
TIME_IN_FORCE_TO_PROTO: dict[TimeInForce, pb.TimeInForce.ValueType] = {
    TimeInForce.DAY: pb.TIME_IN_FORCE_DAY,
    TimeInForce.GTC: pb.TIME_IN_FORCE_GTC,
    TimeInForce.IOC: pb.TIME_IN_FORCE_IOC,
    TimeInForce.FOK: pb.TIME_IN_FORCE_FOK,
}
ORDER_STATUS_TO_PROTO: dict[OrderStatus, pb.OrderStatus.ValueType] = {
    OrderStatus.PENDING_NEW: pb.ORDER_STATUS_PENDING_NEW,
    OrderStatus.ACCEPTED: pb.ORDER_STATUS_ACCEPTED,
    OrderStatus.PARTIALLY_FILLED: pb.ORDER_STATUS_PARTIALLY_FILLED,
    OrderStatus.FILLED: pb.ORDER_STATUS_FILLED,
    OrderStatus.PENDING_CANCEL: pb.ORDER_STATUS_PENDING_CANCEL,
    OrderStatus.CANCELED: pb.ORDER_STATUS_CANCELED,
    OrderStatus.REJECTED: pb.ORDER_STATUS_REJECTED,
    OrderStatus.EXPIRED: pb.ORDER_STATUS_EXPIRED,
    OrderStatus.PENDING_REPLACE: pb.ORDER_STATUS_PENDING_REPLACE,
}
REJECT_CODE_TO_PROTO: dict[RejectCode, pb.RejectCode.ValueType] = {
    RejectCode.BROKER: pb.REJECT_CODE_BROKER,
    RejectCode.RISK_LIMIT: pb.REJECT_CODE_RISK_LIMIT,
    RejectCode.TRADING_HALTED: pb.REJECT_CODE_TRADING_HALTED,
    RejectCode.NOT_DELIVERED: pb.REJECT_CODE_NOT_DELIVERED,
}
UPDATE_KIND_TO_PROTO: dict[UpdateKind, pb.UpdateKind.ValueType] = {
    UpdateKind.CREATED: pb.UPDATE_KIND_CREATED,
    UpdateKind.ACCEPTED: pb.UPDATE_KIND_ACCEPTED,
    UpdateKind.REJECTED: pb.UPDATE_KIND_REJECTED,
    UpdateKind.FILL: pb.UPDATE_KIND_FILL,
    UpdateKind.FILLS_RECONCILED: pb.UPDATE_KIND_FILLS_RECONCILED,
    UpdateKind.CANCEL_REQUESTED: pb.UPDATE_KIND_CANCEL_REQUESTED,
    UpdateKind.CANCELED: pb.UPDATE_KIND_CANCELED,
    UpdateKind.CANCEL_REJECTED: pb.UPDATE_KIND_CANCEL_REJECTED,
    UpdateKind.EXPIRED: pb.UPDATE_KIND_EXPIRED,
    UpdateKind.REPLACE_REQUESTED: pb.UPDATE_KIND_REPLACE_REQUESTED,
    UpdateKind.REPLACED: pb.UPDATE_KIND_REPLACED,
    UpdateKind.REPLACE_REJECTED: pb.UPDATE_KIND_REPLACE_REJECTED,
}

# UNSPECIFIED and unknown numbers are absent on purpose: a lookup miss is a
# refused request.
SIDE_FROM_PROTO = {v: k for k, v in SIDE_TO_PROTO.items()}
ORDER_TYPE_FROM_PROTO = {v: k for k, v in ORDER_TYPE_TO_PROTO.items()}
TIME_IN_FORCE_FROM_PROTO = {v: k for k, v in TIME_IN_FORCE_TO_PROTO.items()}
ORDER_STATUS_FROM_PROTO = {v: k for k, v in ORDER_STATUS_TO_PROTO.items()}
REJECT_CODE_FROM_PROTO = {v: k for k, v in REJECT_CODE_TO_PROTO.items()}
UPDATE_KIND_FROM_PROTO = {v: k for k, v in UPDATE_KIND_TO_PROTO.items()}


def _optional_decimal_to_str(d: Decimal | None) -> str:
    # The API's convention: an empty string means "not set".
    return "" if d is None else decimal_to_str(d)


def timestamp_to_proto(time: datetime) -> Timestamp:
    """Return ``time`` (a UTC-aware datetime) as a protobuf Timestamp."""
    stamp = Timestamp()
    stamp.FromDatetime(time)
    return stamp


def order_to_proto(order: Order) -> pb.Order:
    """Return the wire form of ``order``."""
    spec = order.spec
    return pb.Order(
        order_id=order.order_id,
        client_order_id=spec.client_order_id,
        broker_order_id=order.broker_order_id,
        account=spec.account,
        symbol=spec.symbol,
        side=SIDE_TO_PROTO[spec.side],
        order_type=ORDER_TYPE_TO_PROTO[spec.order_type],
        quantity=decimal_to_str(spec.quantity),
        limit_price=_optional_decimal_to_str(spec.limit_price),
        stop_price=_optional_decimal_to_str(spec.stop_price),
        time_in_force=TIME_IN_FORCE_TO_PROTO[spec.time_in_force],
        status=ORDER_STATUS_TO_PROTO[order.status],
        filled_quantity=decimal_to_str(order.filled_quantity),
        leaves_quantity=decimal_to_str(order.leaves_quantity),
        average_fill_price=_optional_decimal_to_str(order.average_fill_price),
        reject_reason=order.reject_reason,
        created_at=timestamp_to_proto(order.created_at),
        updated_at=timestamp_to_proto(order.updated_at),
        reject_code=(
            pb.REJECT_CODE_UNSPECIFIED
            if order.reject_code is None
            else REJECT_CODE_TO_PROTO[order.reject_code]
        ),
        replace_id=order.replace_id,
    )


def fill_to_proto(fill: Fill) -> pb.Fill:
    """Return the wire form of ``fill``."""
    return pb.Fill(
        exec_id=fill.exec_id,
        quantity=decimal_to_str(fill.quantity),
        price=decimal_to_str(fill.price),
        time=timestamp_to_proto(fill.time),
    )


def update_to_proto(update: OrderUpdate) -> pb.OrderUpdate:
    """Return the wire form of ``update``; ``fill`` is set only for a fill."""
    return pb.OrderUpdate(
        sequence=update.sequence,
        order=order_to_proto(update.order),
        fill=None if update.fill is None else fill_to_proto(update.fill),
        time=timestamp_to_proto(update.time),
        snapshot=update.snapshot,
        kind=update_kind_to_proto(update.kind),
    )


def update_kind_to_proto(kind: UpdateKind | None) -> pb.UpdateKind.ValueType:
    """Return the wire kind of an update (UNSPECIFIED for a snapshot)."""
    return pb.UPDATE_KIND_UNSPECIFIED if kind is None else UPDATE_KIND_TO_PROTO[kind]


def heartbeat_to_proto(sequence: int, time: datetime) -> pb.Heartbeat:
    """Return a heartbeat naming the newest sequence the gateway has assigned."""
    return pb.Heartbeat(sequence=sequence, time=timestamp_to_proto(time))
