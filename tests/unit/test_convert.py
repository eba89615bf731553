"""Domain values to protobuf messages, and the enum maps both ways."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway.domain import (
    Fill,
    Order,
    OrderSpec,
    OrderStatus,
    OrderType,
    OrderUpdate,
    RejectCode,
    Side,
    TimeInForce,
    UpdateKind,
    decimal_to_str,
)
from gateway.service.convert import (
    ORDER_STATUS_FROM_PROTO,
    ORDER_STATUS_TO_PROTO,
    ORDER_TYPE_FROM_PROTO,
    ORDER_TYPE_TO_PROTO,
    REJECT_CODE_FROM_PROTO,
    REJECT_CODE_TO_PROTO,
    SIDE_FROM_PROTO,
    SIDE_TO_PROTO,
    TIME_IN_FORCE_FROM_PROTO,
    TIME_IN_FORCE_TO_PROTO,
    UPDATE_KIND_FROM_PROTO,
    UPDATE_KIND_TO_PROTO,
    fill_to_proto,
    heartbeat_to_proto,
    order_to_proto,
    update_to_proto,
)
from gateway.service.validation import parse_decimal

CREATED = datetime(2024, 3, 1, 14, 30, 0, 123456, tzinfo=UTC)
UPDATED = CREATED + timedelta(seconds=2, microseconds=5)


def utc(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


# --- decimal_to_str ---------------------------------------------------------------

DECIMAL_STRINGS = [
    (Decimal("100.000"), "100"),
    (Decimal("1E+2"), "100"),
    (Decimal("1E+11"), "100000000000"),
    (Decimal("0.50"), "0.5"),
    (Decimal(0), "0"),
    (Decimal("0.000"), "0"),
    (Decimal("0E-9"), "0"),
    (Decimal("0E+3"), "0"),
    (Decimal("-0"), "0"),
    (Decimal("1E-9"), "0.000000001"),
    (Decimal("1.000000000"), "1"),
    (Decimal("187.25"), "187.25"),
    (Decimal("10"), "10"),
    (Decimal("120"), "120"),
    (Decimal("1.10"), "1.1"),
    (Decimal("999999999999.999999999"), "999999999999.999999999"),
    # More digits than the default context precision (28): never rounded.
    (Decimal("1234567890123456789012345678901.5"), "1234567890123456789012345678901.5"),
    (Decimal("5E-20"), "0.00000000000000000005"),
]


@pytest.mark.parametrize(("value", "expected"), DECIMAL_STRINGS)
def test_decimal_to_str(value: Decimal, expected: str) -> None:
    assert decimal_to_str(value) == expected


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity")])
def test_decimal_to_str_refuses_non_finite(value: Decimal) -> None:
    with pytest.raises(ValueError, match="non-finite"):
        decimal_to_str(value)


@pytest.mark.parametrize(
    "value",
    [Decimal("0.1"), Decimal("1E+3"), Decimal("42.4200"), Decimal("999999999999.999999999")],
)
def test_decimal_to_str_is_what_the_parser_accepts(value: Decimal) -> None:
    assert parse_decimal(decimal_to_str(value), "quantity", positive=True) == value


# --- enum maps ----------------------------------------------------------------------

ENUM_MAPS = [
    pytest.param(Side, SIDE_TO_PROTO, SIDE_FROM_PROTO, pb.Side, id="side"),
    pytest.param(OrderType, ORDER_TYPE_TO_PROTO, ORDER_TYPE_FROM_PROTO, pb.OrderType, id="type"),
    pytest.param(
        TimeInForce, TIME_IN_FORCE_TO_PROTO, TIME_IN_FORCE_FROM_PROTO, pb.TimeInForce, id="tif"
    ),
    pytest.param(
        OrderStatus, ORDER_STATUS_TO_PROTO, ORDER_STATUS_FROM_PROTO, pb.OrderStatus, id="status"
    ),
    pytest.param(
        RejectCode, REJECT_CODE_TO_PROTO, REJECT_CODE_FROM_PROTO, pb.RejectCode, id="reject_code"
    ),
    pytest.param(
        UpdateKind, UPDATE_KIND_TO_PROTO, UPDATE_KIND_FROM_PROTO, pb.UpdateKind, id="update_kind"
    ),
]


@pytest.mark.parametrize(("domain", "to_proto", "from_proto", "proto"), ENUM_MAPS)
def test_enum_maps_are_total_and_inverse(
    domain: type[Enum], to_proto: Mapping[Enum, int], from_proto: Mapping[int, Enum], proto: object
) -> None:
    descriptor = getattr(proto, "DESCRIPTOR")  # noqa: B009  (untyped wrapper attribute)
    proto_values = {v.number for v in descriptor.values if v.number != 0}
    assert set(to_proto) == set(domain)
    assert set(from_proto) == proto_values
    assert 0 not in from_proto  # UNSPECIFIED never maps to a domain value
    for member, number in to_proto.items():
        assert from_proto[number] is member


@pytest.mark.parametrize(("domain", "to_proto", "from_proto", "proto"), ENUM_MAPS)
def test_enum_maps_pair_same_names(
    domain: type[Enum], to_proto: Mapping[Enum, int], from_proto: Mapping[int, Enum], proto: object
) -> None:
    descriptor = getattr(proto, "DESCRIPTOR")  # noqa: B009  (untyped wrapper attribute)
    prefix = descriptor.values_by_number[0].name.removesuffix("UNSPECIFIED")
    for member, number in to_proto.items():
        assert descriptor.values_by_number[number].name == prefix + member.name


# --- orders --------------------------------------------------------------------------


def make_order(
    *,
    status: OrderStatus = OrderStatus.PARTIALLY_FILLED,
    order_type: OrderType = OrderType.STOP_LIMIT,
    limit_price: Decimal | None = Decimal("101.50"),
    stop_price: Decimal | None = Decimal("1E+2"),
    filled: Decimal = Decimal("30"),
    notional: Decimal = Decimal("3015.0"),
) -> Order:
    spec = OrderSpec(
        account="acct-1",
        client_order_id="strat:42",
        symbol="BTC/USD",
        side=Side.SELL,
        order_type=order_type,
        quantity=Decimal("100.000"),
        time_in_force=TimeInForce.GTC,
        limit_price=limit_price,
        stop_price=stop_price,
    )
    return Order(
        order_id="ord-7",
        spec=spec,
        status=status,
        created_at=CREATED,
        updated_at=UPDATED,
        created_sequence=3,
        broker_order_id="B-99",
        filled_quantity=filled,
        fill_notional=notional,
        reject_reason="",
    )


def test_order_to_proto_sets_every_field() -> None:
    message = order_to_proto(make_order())
    assert message == pb.Order(
        order_id="ord-7",
        client_order_id="strat:42",
        broker_order_id="B-99",
        account="acct-1",
        symbol="BTC/USD",
        side=pb.SIDE_SELL,
        order_type=pb.ORDER_TYPE_STOP_LIMIT,
        quantity="100",
        limit_price="101.5",
        stop_price="100",
        time_in_force=pb.TIME_IN_FORCE_GTC,
        status=pb.ORDER_STATUS_PARTIALLY_FILLED,
        filled_quantity="30",
        leaves_quantity="70",
        average_fill_price="100.5",
        reject_reason="",
        created_at=message.created_at,
        updated_at=message.updated_at,
    )
    assert utc(message.created_at) == CREATED
    assert utc(message.updated_at) == UPDATED


def test_order_to_proto_round_trips_through_the_parser() -> None:
    order = make_order()
    message = order_to_proto(order)
    assert parse_decimal(message.quantity, "quantity", positive=True) == order.spec.quantity
    assert parse_decimal(message.limit_price, "limit_price", positive=True) == Decimal("101.5")
    assert parse_decimal(message.stop_price, "stop_price", positive=True) == Decimal(100)
    filled = parse_decimal(message.filled_quantity, "filled_quantity", positive=False)
    leaves = parse_decimal(message.leaves_quantity, "leaves_quantity", positive=False)
    assert filled == order.filled_quantity
    assert leaves == order.leaves_quantity
    assert filled + leaves == order.spec.quantity
    assert order.average_fill_price is not None
    average = parse_decimal(message.average_fill_price, "average_fill_price", positive=True)
    assert average == order.average_fill_price
    assert SIDE_FROM_PROTO[message.side] is order.spec.side
    assert ORDER_TYPE_FROM_PROTO[message.order_type] is order.spec.order_type
    assert TIME_IN_FORCE_FROM_PROTO[message.time_in_force] is order.spec.time_in_force
    assert ORDER_STATUS_FROM_PROTO[message.status] is order.status


def test_fresh_market_order_has_empty_prices_and_zero_fill() -> None:
    message = order_to_proto(
        make_order(
            status=OrderStatus.PENDING_NEW,
            order_type=OrderType.MARKET,
            limit_price=None,
            stop_price=None,
            filled=Decimal(0),
            notional=Decimal(0),
        )
    )
    assert (message.limit_price, message.stop_price, message.average_fill_price) == ("", "", "")
    assert (message.filled_quantity, message.leaves_quantity) == ("0", "100")


@pytest.mark.parametrize("status", [s for s in OrderStatus if s.is_terminal])
def test_terminal_order_has_no_leaves(status: OrderStatus) -> None:
    message = order_to_proto(make_order(status=status))
    assert message.leaves_quantity == "0"
    assert message.filled_quantity == "30"
    assert message.status == ORDER_STATUS_TO_PROTO[status]


def test_average_fill_price_is_plain_and_exact() -> None:
    # 1 @ 100 + 2 @ 100.01 = 300.02 / 3 = 100.006666666... quantized to 9 places.
    message = order_to_proto(make_order(filled=Decimal(3), notional=Decimal("300.02")))
    assert message.average_fill_price == "100.006666667"


def test_reject_reason_is_carried() -> None:
    order = make_order(status=OrderStatus.REJECTED).evolve(reject_reason="insufficient funds")
    assert order_to_proto(order).reject_reason == "insufficient funds"


def test_timestamps_are_utc_whatever_the_zone() -> None:
    local = datetime(2024, 3, 1, 16, 30, tzinfo=timezone(timedelta(hours=2)))
    order = make_order().evolve(created_at=local, updated_at=local)
    assert utc(order_to_proto(order).created_at) == datetime(2024, 3, 1, 14, 30, tzinfo=UTC)


# --- fills, updates, heartbeats -----------------------------------------------------------

FILL = Fill(exec_id="X-1", quantity=Decimal("10.0"), price=Decimal("1.005E+2"), time=UPDATED)


def test_fill_to_proto() -> None:
    message = fill_to_proto(FILL)
    assert (message.exec_id, message.quantity, message.price) == ("X-1", "10", "100.5")
    assert utc(message.time) == UPDATED


def test_update_with_a_fill() -> None:
    message = update_to_proto(OrderUpdate(sequence=17, order=make_order(), time=UPDATED, fill=FILL))
    assert message.sequence == 17
    assert message.order == order_to_proto(make_order())
    assert message.HasField("fill")
    assert message.fill == fill_to_proto(FILL)
    assert utc(message.time) == UPDATED


def test_update_without_a_fill_leaves_it_unset() -> None:
    message = update_to_proto(OrderUpdate(sequence=2**63 - 1, order=make_order(), time=UPDATED))
    assert message.sequence == 2**63 - 1
    assert not message.HasField("fill")


def test_heartbeat_to_proto() -> None:
    message = heartbeat_to_proto(42, CREATED)
    assert message.sequence == 42
    assert utc(message.time) == CREATED
