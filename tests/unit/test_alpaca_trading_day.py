"""A trading day's ``trade_updates`` events, mapped and applied to the order state machine.

Each recorded event (Alpaca's documented shapes, ``tests/fixtures/alpaca``)
goes through the adapter's mapping and the engine's interpretation into the
order state machine, from the status the order would be in when Alpaca sends
it. Events the adapter drops on purpose leave the order as it was.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from gateway.brokers.alpaca.mapping import loads, report_from_trade_update
from gateway.domain import (
    CancelRequested,
    Order,
    OrderAccepted,
    OrderCreated,
    OrderSpec,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    apply_event,
)
from gateway.engine import interpret
from tests.unit.test_alpaca_mapping import FIXTURES

ACCOUNT = "alpaca"
T0 = datetime(2026, 1, 2, 14, 30, tzinfo=UTC)
S = OrderStatus


def events() -> dict[tuple[str, str], dict[str, Any]]:
    messages = loads((FIXTURES / "trade_updates.json").read_text())
    return {
        (m["data"]["event"], m["data"]["order"]["client_order_id"]): m["data"] for m in messages
    }


def order_for(data: dict[str, Any], status: OrderStatus) -> Order:
    """The gateway's order behind ``data``, brought to ``status`` by legal events."""
    alpaca = data["order"]
    spec = OrderSpec(
        ACCOUNT,
        alpaca["client_order_id"],
        alpaca["symbol"],
        Side(alpaca["side"]),
        OrderType.MARKET,
        Decimal(alpaca["qty"]),
        TimeInForce.DAY,
    )
    order = apply_event(None, OrderCreated("o-1", spec, T0), 1)
    if status is not S.PENDING_NEW:
        order = apply_event(order, OrderAccepted("o-1", alpaca["id"], T0), 2)
    if status is S.PENDING_CANCEL:
        order = apply_event(order, CancelRequested("o-1", T0), 3)
    assert order.status is status
    return order


def nothing_booked(order_id: str, key: str) -> bool:
    return False


# (event, client_order_id) -> (status before, status after). Alpaca's event
# words the adapter drops (pending_new, pending_cancel, done_for_day) leave
# the status as it was: what they say the gateway knows already or does not
# track (see docs/brokers.md).
DAY = [
    ("pending_new", "eb9e2aaa-f71a-4f51-b5b4-52a6c565dad4", S.PENDING_NEW, S.PENDING_NEW),
    ("new", "eb9e2aaa-f71a-4f51-b5b4-52a6c565dad4", S.PENDING_NEW, S.ACCEPTED),
    ("partial_fill", "eb9e2aaa-f71a-4f51-b5b4-52a6c565dad4", S.ACCEPTED, S.PARTIALLY_FILLED),
    ("pending_cancel", "b7a3e5c1-1111-4a7e-9d52-0c1f2e3d4a5b", S.PENDING_CANCEL, S.PENDING_CANCEL),
    ("canceled", "b7a3e5c1-1111-4a7e-9d52-0c1f2e3d4a5b", S.PENDING_CANCEL, S.CANCELED),
    ("done_for_day", "c-expiring-1", S.ACCEPTED, S.ACCEPTED),
    ("expired", "c-expiring-1", S.ACCEPTED, S.EXPIRED),
    ("rejected", "d-rejected-1", S.PENDING_NEW, S.REJECTED),
    ("replaced", "e-replaced-1", S.ACCEPTED, S.CANCELED),
    ("order_cancel_rejected", "f-cancel-too-late", S.PENDING_CANCEL, S.ACCEPTED),
]


@pytest.mark.parametrize(("event", "coid", "before", "after"), DAY, ids=[d[0] for d in DAY])
def test_each_event_of_a_trading_day_moves_the_order_as_alpaca_says(
    event: str, coid: str, before: OrderStatus, after: OrderStatus
) -> None:
    data = events()[(event, coid)]
    order = order_for(data, before)
    report = report_from_trade_update(data, ACCOUNT)
    if report is not None:
        applied = interpret.report_event(order, report, nothing_booked)
        if applied is not None:
            order = apply_event(order, applied, 10)
    assert order.status is after


def test_a_fill_completes_the_order_at_alpacas_cumulative() -> None:
    data = events()[("fill", "eb9e2aaa-f71a-4f51-b5b4-52a6c565dad4")]
    partial = events()[("partial_fill", "eb9e2aaa-f71a-4f51-b5b4-52a6c565dad4")]
    order = order_for(data, S.ACCEPTED)
    for step, message in enumerate((partial, data), start=10):
        report = report_from_trade_update(message, ACCOUNT)
        assert report is not None
        event = interpret.report_event(order, report, nothing_booked)
        assert event is not None
        order = apply_event(order, event, step)
    assert order.status is S.FILLED
    assert order.filled_quantity == Decimal(data["order"]["filled_qty"])
    assert order.broker_filled == order.filled_quantity
