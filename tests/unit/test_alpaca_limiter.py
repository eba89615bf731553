"""The Alpaca adapter's client-side rate limit: a bucket, Alpaca's headers, orders first."""

from __future__ import annotations

import asyncio

import pytest

from gateway.brokers.alpaca.limiter import Priority, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(per_minute: int = 60, **options: float) -> tuple[RateLimiter, Clock]:
    clock = Clock()
    return RateLimiter(per_minute, clock=clock, wall=lambda: clock.now, **options), clock


async def test_calls_spend_the_bucket_and_it_refills_at_the_allowed_rate() -> None:
    rate, clock = limiter(60, order_reserve=0)
    for _ in range(60):
        await rate.acquire(Priority.QUERY)
    assert rate.tokens < 1
    assert rate.waits == 0
    clock.now += 1.0  # one call per second comes back
    await asyncio.wait_for(rate.acquire(Priority.QUERY), 1)
    assert rate.tokens < 1


async def test_questions_leave_a_reserve_to_orders() -> None:
    rate, _ = limiter(10, order_reserve=0.2)  # 2 of 10 kept for orders
    for _ in range(8):
        await rate.acquire(Priority.QUERY)
    question = asyncio.ensure_future(rate.acquire(Priority.QUERY))
    await asyncio.sleep(0.01)
    assert not question.done()  # held back: what is left is the orders'
    await asyncio.wait_for(rate.acquire(Priority.ORDER), 1)
    await asyncio.wait_for(rate.acquire(Priority.ORDER), 1)
    question.cancel()


async def test_alpacas_remaining_count_wins_and_zero_waits_for_the_reset() -> None:
    rate, clock = limiter(200)
    rate.observe(200, {"X-RateLimit-Limit": "150", "X-RateLimit-Remaining": "5"})
    assert rate.limit == 150
    assert rate.tokens == pytest.approx(5)
    rate.observe(200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(clock.now + 30)})
    order = asyncio.ensure_future(rate.acquire(Priority.ORDER))
    await asyncio.sleep(0.01)
    assert not order.done()  # not even an order goes before the window resets
    order.cancel()


async def test_a_429_blocks_until_its_reset_then_calls_go_again() -> None:
    rate, clock = limiter(200)
    rate.observe(429, {"X-RateLimit-Reset": str(clock.now + 2)})
    waiting = asyncio.ensure_future(rate.acquire(Priority.ORDER))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    clock.now += 2.5
    await asyncio.wait_for(waiting, 2)
    assert rate.waits == 1


def test_unreadable_headers_are_ignored() -> None:
    rate, _ = limiter(200)
    rate.observe(200, {"X-RateLimit-Limit": "lots", "X-RateLimit-Remaining": "nan"})
    assert rate.limit == 200
    with pytest.raises(ValueError, match="per_minute"):
        RateLimiter(0)
