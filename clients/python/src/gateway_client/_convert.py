"""Conversions between the SDK's types and the protobuf messages, in pairs.

The only module besides the clients that touches ``_proto``. Numbers cross the
wire as plain decimal strings; a float is refused rather than rounded.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from google.protobuf.timestamp_pb2 import Timestamp

from gateway_client._models import (
    Event,
    Fill,
    Heartbeat,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    SnapshotComplete,
    TimeInForce,
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
        status=OrderStatus(pb.OrderStatus.Name(message.status).removeprefix("ORDER_STATUS_")),
        filled_quantity=decimal_from_wire(message.filled_quantity),
        leaves_quantity=decimal_from_wire(message.leaves_quantity),
        average_fill_price=_optional_decimal(message.average_fill_price),
        reject_reason=message.reject_reason,
        created_at=_time(message.created_at, message.HasField("created_at")),
        updated_at=_time(message.updated_at, message.HasField("updated_at")),
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
