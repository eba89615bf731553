"""Assembled responses decode to exactly what the generated messages would say."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway.domain import (
    Fill,
    Order,
    OrderSpec,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
    UpdateKind,
)
from gateway.service import convert
from gateway.service.wire import OrderEncoder

T0 = datetime(2026, 1, 2, 14, 30, tzinfo=UTC)


def order(n: int = 1, reason: str = "") -> Order:
    spec = OrderSpec(
        "acct-1", f"c-{n}", "AAPL", Side.BUY, OrderType.LIMIT, Decimal("10.5"),
        TimeInForce.GTC, limit_price=Decimal("187.25"),
    )  # fmt: skip
    return Order(
        f"o-{n}", spec, OrderStatus.PARTIALLY_FILLED, T0, T0 + timedelta(seconds=n), n, n + 1,
        "B-1", Decimal(4), Decimal("749"), reason,
    )  # fmt: skip


def test_single_order_responses_decode_as_the_generated_ones() -> None:
    encoder = OrderEncoder()
    wire = encoder.order_response(order())
    for response in (pb.PlaceOrderResponse, pb.CancelOrderResponse, pb.GetOrderStatusResponse):
        assert response.FromString(wire) == response(order=convert.order_to_proto(order()))


def test_a_long_order_gets_a_multi_byte_length() -> None:
    big = order(reason="x" * 300)
    wire = OrderEncoder().order_response(big)
    assert pb.PlaceOrderResponse.FromString(wire).order == convert.order_to_proto(big)


def test_list_responses_keep_order_and_token() -> None:
    orders = [order(1), order(2), order(3)]
    encoder = OrderEncoder()
    wire = encoder.list_response(orders, "next-page")
    expected = pb.ListOrdersResponse(
        orders=[convert.order_to_proto(o) for o in orders], next_page_token="next-page"
    )
    assert pb.ListOrdersResponse.FromString(wire) == expected
    assert (
        pb.ListOrdersResponse.FromString(encoder.list_response([], "")) == pb.ListOrdersResponse()
    )


def test_updates_decode_as_the_generated_ones_with_and_without_a_fill() -> None:
    fill = Fill("x-1", Decimal(4), Decimal("187.25"), T0)
    encoder = OrderEncoder()
    for update in (
        OrderUpdate(7, order(), T0, fill, kind=UpdateKind.FILL),
        OrderUpdate(8, order(), T0, kind=UpdateKind.REPLACED),
        OrderUpdate(2, order(), T0, snapshot=True),
    ):
        expected = pb.SubscribeUpdatesResponse(update=convert.update_to_proto(update))
        assert pb.SubscribeUpdatesResponse.FromString(encoder.update_response(update)) == expected
    kinds = [
        pb.SubscribeUpdatesResponse.FromString(encoder.update_response(u)).update.kind
        for u in (
            OrderUpdate(9, order(), T0, kind=UpdateKind.REPLACED),
            OrderUpdate(9, order(), T0),
        )
    ]
    assert kinds == [pb.UPDATE_KIND_REPLACED, pb.UPDATE_KIND_UNSPECIFIED]


def test_an_order_state_is_encoded_once_and_a_new_state_again() -> None:
    encoder = OrderEncoder()
    first = order()
    encoder.order_response(first)
    encoder.update_response(OrderUpdate(2, first, T0))
    assert encoder.hits == 1

    changed = dataclasses.replace(first, status=OrderStatus.FILLED)
    wire = encoder.order_response(changed)
    assert encoder.hits == 1
    assert pb.PlaceOrderResponse.FromString(wire).order.status == pb.ORDER_STATUS_FILLED


def test_the_cache_is_bounded() -> None:
    encoder = OrderEncoder(capacity=2)
    kept = [order(n) for n in range(5)]
    for each in kept:
        encoder.order(each)
    encoder.order(kept[0])  # evicted long ago: encoded again
    assert encoder.hits == 0
    encoder.order(kept[4])
    assert encoder.hits == 1


def test_lengths_of_every_varint_width_decode() -> None:
    encoder = OrderEncoder()
    for size in (10, 127, 128, 16_383, 16_384, 70_000):
        big = order(reason="r" * size)
        wire = encoder.order_response(big)
        assert pb.GetOrderStatusResponse.FromString(wire).order.reject_reason == "r" * size
