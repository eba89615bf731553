"""The fan-out: filters, shared encoding, bounded buffers."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from gateway.domain import (
    Order,
    OrderSpec,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    SubscriptionFilter,
    TimeInForce,
)
from gateway.domain.controls import AnyUpdate
from gateway.engine.fanout import Fanout, SlowSubscriber, Subscriber

NOW = datetime(2026, 1, 2, tzinfo=UTC)


def update(sequence: int, account: str = "a", symbol: str = "AAPL") -> OrderUpdate:
    spec = OrderSpec(
        account, f"c-{sequence}", symbol, Side.BUY, OrderType.MARKET, Decimal(1), TimeInForce.DAY
    )
    order = Order(f"o-{sequence}", spec, OrderStatus.PENDING_NEW, NOW, NOW, sequence)
    return OrderUpdate(sequence, order, NOW)


async def test_each_update_is_encoded_once_for_all_subscribers() -> None:
    fanout = Fanout()
    subscribers = [Subscriber(SubscriptionFilter(), capacity=10) for _ in range(50)]
    for subscriber in subscribers:
        fanout.add(subscriber)
    fanout.publish(update(1))
    calls: list[int] = []

    def encode(u: AnyUpdate) -> bytes:
        calls.append(u.sequence)
        return b"wire-1"

    received = [await s.next(idle_after=1) for s in subscribers]
    assert all(r is not None and r.wire(encode) == b"wire-1" for r in received)
    assert calls == [1]


async def test_filters_route_updates() -> None:
    fanout = Fanout()
    msft = Subscriber(SubscriptionFilter(symbols=frozenset({"MSFT"})), capacity=10)
    acct_b = Subscriber(SubscriptionFilter(accounts=frozenset({"b"})), capacity=10)
    fanout.add(msft)
    fanout.add(acct_b)
    fanout.publish(update(1, account="a", symbol="AAPL"))
    fanout.publish(update(2, account="a", symbol="MSFT"))
    fanout.publish(update(3, account="b", symbol="AAPL"))
    got_msft = await msft.next(idle_after=0.01)
    got_b = await acct_b.next(idle_after=0.01)
    assert got_msft is not None
    assert got_msft.update.sequence == 2
    assert got_b is not None
    assert got_b.update.sequence == 3
    assert await msft.next(idle_after=0.01) is None
    assert await acct_b.next(idle_after=0.01) is None


async def test_an_overflowing_subscriber_is_removed_and_told_where_it_stopped() -> None:
    fanout = Fanout()
    slow = Subscriber(SubscriptionFilter(), capacity=2)
    fanout.add(slow)
    fanout.publish(update(1))
    first = await slow.next(idle_after=0.01)
    assert first is not None
    for sequence in (2, 3, 4):
        fanout.publish(update(sequence))
    assert len(fanout) == 0
    with pytest.raises(SlowSubscriber) as caught:
        await slow.next(idle_after=0.01)
    assert caught.value.metadata == {"last_sequence": "1"}
