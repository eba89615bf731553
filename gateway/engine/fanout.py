"""Fan-out of order updates to subscribers, each behind a bounded buffer.

Overload behaviour: publishing never waits. A subscriber whose buffer is full
is cut off (it will raise ``SlowSubscriber`` after what it already has),
so one slow reader never slows the actor or any other subscriber, and nothing
is dropped silently: the subscriber learns where it stopped and can resume.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable

from gateway.domain import Order, OrderUpdate, SubscriptionFilter
from gateway.domain.controls import AnyUpdate, PositionUpdate
from gateway.errors import GatewayError, ResourceExhausted


class Published:
    """One update as published to every subscriber, with its wire form.

    The first stream that sends it encodes it; every other stream reuses the
    bytes, so serialization costs once per update, not once per subscriber.
    """

    __slots__ = ("_wire", "update")

    def __init__(self, update: AnyUpdate) -> None:
        self.update = update
        self._wire: bytes | None = None

    def wire(self, encode: Callable[[AnyUpdate], bytes]) -> bytes:
        """Return the encoded update, encoding it on first use."""
        if self._wire is None:
            self._wire = encode(self.update)
        return self._wire


class SlowSubscriber(ResourceExhausted):
    """The subscriber fell behind its buffer; resume with after_sequence."""

    reason = "SUBSCRIBER_TOO_SLOW"


class Subscriber:
    """One stream's buffer of updates, filled by the fan-out, drained by the stream."""

    _ids = itertools.count(1)

    def __init__(self, filter_: SubscriptionFilter, capacity: int) -> None:
        self.id = next(self._ids)
        self.filter = filter_
        self.capacity = capacity
        self._buffer: deque[Published] = deque()
        self._wakeup = asyncio.Event()
        self.overflowed = False
        # Set when the gateway ends the stream: builds the error the stream
        # ends with, given the last sequence it was sent.
        self.closed_by: Callable[[int], GatewayError] | None = None
        # Sequences up to this one come from the journal, after it from the buffer.
        self.live_after = 0
        self.last_sent = filter_.after_sequence or 0
        # Filled at registration when the filter asks for a snapshot: the
        # matching open orders as of ``live_after``, oldest change first.
        self.snapshot: list[Order] = []

    @property
    def depth(self) -> int:
        """Updates buffered and not yet read."""
        return len(self._buffer)

    def offer(self, update: Published) -> bool:
        """Buffer ``update`` without waiting; return False if the buffer is full."""
        if self.overflowed or self.closed_by is not None:
            return False
        if len(self._buffer) >= self.capacity:
            self.overflowed = True
            self._wakeup.set()
            return False
        self._buffer.append(update)
        self._wakeup.set()
        return True

    def close(self, error: Callable[[int], GatewayError]) -> None:
        """End the subscription: its next read raises ``error(last sequence sent)``."""
        self.closed_by = error
        self._wakeup.set()

    def end_with(self, error: GatewayError) -> None:
        """End the subscription with ``error``, telling the reader where it stopped.

        For ends decided outside the actor (a revoked credential): a closed
        subscriber refuses what is published next, and the fan-out drops it.
        ``error`` is this subscriber's own (it gains ``last_sequence``).
        """

        def ended(last_sent: int) -> GatewayError:
            error.metadata["last_sequence"] = str(last_sent)
            return error

        self.close(ended)

    def check_open(self) -> None:
        """Raise the error the subscription was ended with, if it was."""
        if self.closed_by is not None:
            raise self.closed_by(self.last_sent)

    async def next(self, idle_after: float) -> Published | None:
        """Return the next buffered update, or None after ``idle_after`` seconds without one."""
        while True:
            if self.closed_by is not None:
                raise self.closed_by(self.last_sent)
            if self.overflowed:
                raise SlowSubscriber(
                    f"subscriber fell more than {self.capacity} updates behind; "
                    "resume with after_sequence",
                    metadata={"last_sequence": str(self.last_sent)},
                )
            if self._buffer:
                published = self._buffer.popleft()
                self.last_sent = published.update.sequence
                return published
            self._wakeup.clear()
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow
                # the cancel of a closing stream and leak this subscriber.
                async with asyncio.timeout(idle_after):
                    await self._wakeup.wait()
            except TimeoutError:
                return None


class Fanout:
    """The registry of live subscribers; owned by the actor."""

    def __init__(self) -> None:
        self._subscribers: dict[int, Subscriber] = {}

    def __len__(self) -> int:
        return len(self._subscribers)

    def buffer_depths(self) -> list[int]:
        """Updates waiting in each subscriber's buffer (for metrics)."""
        return [s.depth for s in self._subscribers.values()]

    def add(self, subscriber: Subscriber) -> None:
        self._subscribers[subscriber.id] = subscriber

    def remove(self, subscriber: Subscriber) -> None:
        self._subscribers.pop(subscriber.id, None)

    def publish(self, update: AnyUpdate) -> None:
        """Offer ``update`` to every matching subscriber; drop the ones that overflow."""
        published = Published(update)
        if type(update) is not OrderUpdate:
            overflowed = [
                subscriber
                for subscriber in self._subscribers.values()
                if update_matches(subscriber.filter, update) and not subscriber.offer(published)
            ]
            for subscriber in overflowed:
                self.remove(subscriber)
            return
        account, symbol = update.order.spec.account, update.order.spec.symbol
        # Called for every update: no copy of the registry, drops collected aside.
        overflowed = [
            subscriber
            for subscriber in self._subscribers.values()
            if subscriber.filter.matches(account, symbol) and not subscriber.offer(published)
        ]
        for subscriber in overflowed:
            self.remove(subscriber)

    def close_all(self, error: Callable[[int], GatewayError]) -> None:
        for subscriber in self._subscribers.values():
            subscriber.close(error)
        self._subscribers.clear()


def update_matches(filter_: SubscriptionFilter, update: AnyUpdate) -> bool:
    """Whether a subscriber with ``filter_`` is sent ``update`` (live or replayed).

    A position goes where its account and symbol go. A halt goes to every
    subscriber of its account, whatever the symbols; the gateway-wide one
    goes to everyone.
    """
    if isinstance(update, OrderUpdate):
        return filter_.matches(update.order.spec.account, update.order.spec.symbol)
    if isinstance(update, PositionUpdate):
        return filter_.matches(update.position.account, update.position.symbol)
    scope = update.halt.scope_account
    return not scope or not filter_.accounts or scope in filter_.accounts
