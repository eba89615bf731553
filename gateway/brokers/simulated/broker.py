"""``SimulatedBroker``: the ``Broker`` protocol over an in-process ``SimulatedExchange``.

It adds what the exchange core leaves out on purpose: latency, a clock, a
background ticker that moves the market, and the asynchronous report stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal

from gateway.brokers.base import BrokerOrderState, ExecutionReport, ReplaceAck, SubmitAck
from gateway.brokers.errors import BrokerUnavailable
from gateway.brokers.simulated.config import SimConfig
from gateway.brokers.simulated.exchange import SimulatedExchange
from gateway.domain import OrderSpec


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SimulatedBroker:
    """A deterministic venue in the gateway's own process.

    Every report (acks and immediate fills included) goes to ``reports()``,
    even when the same fact is also in a command's reply, as a real venue
    does; the engine dedups. ``BrokerRejected`` comes from the exchange.
    """

    name: str = "simulated"

    def __init__(
        self, config: SimConfig | None = None, *, clock: Callable[[], datetime] = _utc_now
    ) -> None:
        self._config = config or SimConfig()
        self._clock = clock
        self._exchange = SimulatedExchange(self._config)
        # Overload: when the queue is full, whoever produces reports (the
        # ticker, submit, cancel) awaits the put. Backpressure, never a drop:
        # a dropped fill would be a lost execution. None wakes readers on close.
        # One item per exchange call: its reports, in exchange order.
        self._queue: asyncio.Queue[Sequence[ExecutionReport] | None] = asyncio.Queue(
            maxsize=self._config.report_queue_size
        )
        # One exchange call and the enqueuing of its reports happen under this
        # lock, so the stream carries each call's reports in exchange order.
        self._lock = asyncio.Lock()
        self._ticker: asyncio.Task[None] | None = None
        self._connected = False
        self._closed = False

    @property
    def exchange(self) -> SimulatedExchange:
        """The exchange core, for inspection; drive it through this broker."""
        return self._exchange

    def reference_price(self, symbol: str) -> Decimal:
        """The exchange's current price of ``symbol`` (``ReferencePrices``)."""
        return self._exchange.price(symbol)

    async def connect(self) -> None:
        """Start the market ticker (unless ``tick_interval`` is None); idempotent."""
        if self._closed:
            raise BrokerUnavailable("simulated broker is closed")
        if self._connected:
            return
        self._connected = True
        if self._config.tick_interval is not None:
            self._ticker = asyncio.create_task(self._run_ticker(self._config.tick_interval))

    async def close(self) -> None:
        """Stop the ticker and end every ``reports()`` iterator; unread reports are dropped."""
        if self._closed:
            return
        self._closed = True
        self._connected = False
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        # Dropping unread reports also frees producers blocked on a full queue.
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    async def submit(self, spec: OrderSpec) -> SubmitAck:
        """Send ``spec`` to the exchange after ``ack_latency``; return its ack."""
        self._ensure_connected()
        await asyncio.sleep(self._config.ack_latency)
        async with self._lock:
            # Closed while in flight: the order never reached the venue.
            self._ensure_connected()
            ack, reports = self._exchange.submit(spec, self._clock())
            await self._publish(reports)
        return ack

    async def cancel(self, account: str, client_order_id: str, broker_order_id: str) -> None:
        """Cancel at the exchange after ``ack_latency``; the CANCELED report is streamed."""
        self._ensure_connected()
        await asyncio.sleep(self._config.ack_latency)
        async with self._lock:
            self._ensure_connected()
            reports = self._exchange.cancel(
                account, client_order_id, self._clock(), broker_order_id=broker_order_id
            )
            await self._publish(reports)

    async def replace(
        self,
        account: str,
        client_order_id: str,
        broker_order_id: str,
        spec: OrderSpec,
        replace_id: str,
    ) -> ReplaceAck:
        """Amend at the exchange after ``ack_latency`` (see ``SimulatedExchange.replace``)."""
        self._ensure_connected()
        await asyncio.sleep(self._config.ack_latency)
        async with self._lock:
            self._ensure_connected()
            ack, reports = self._exchange.replace(
                account, client_order_id, spec, self._clock(), broker_order_id=broker_order_id
            )
            await self._publish(reports)
        return ack

    async def reports(self) -> AsyncIterator[Sequence[ExecutionReport]]:
        """Yield each exchange call's execution reports, of every account, until ``close()``."""
        while not self._closed:
            reports = await self._queue.get()
            if reports is None:
                # Pass the wake-up on to the next reader, if there is one.
                if not self._queue.full():
                    self._queue.put_nowait(None)
                return
            yield reports

    async def order_status(self, account: str, client_order_id: str) -> BrokerOrderState | None:
        """Return the exchange's view of one order, or None."""
        return self._exchange.order_status(account, client_order_id)

    async def open_orders(self, account: str | None = None) -> list[BrokerOrderState]:
        """Return the exchange's working orders, of one account or all."""
        return self._exchange.open_orders(account)

    async def tick(self) -> None:
        """Advance the market once now, as the ticker does; for deterministic tests."""
        async with self._lock:
            await self._publish(self._exchange.tick(self._clock()))

    async def set_price(self, symbol: str, price: Decimal) -> None:
        """Force ``symbol``'s reference price and match working orders against it."""
        async with self._lock:
            await self._publish(self._exchange.set_price(symbol, price, self._clock()))

    async def _run_ticker(self, interval: float) -> None:
        # The market keeps its own clock: ticks fall on a fixed grid of loop
        # times, so a busy event loop neither slows the market down (as
        # "sleep, then tick" would, by the tick and the loop's lag) nor makes
        # it catch up in a burst after a stall: ticks it missed are skipped.
        # A tick costs the exchange what trades in it (see SymbolBook), so
        # this runs on the gateway's loop without walking the resting orders.
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += interval
            late = loop.time() - next_at
            if late > 0:
                next_at += late // interval * interval  # whole ticks missed: skipped
            await asyncio.sleep(next_at - loop.time())
            await self.tick()

    async def _publish(self, reports: Sequence[ExecutionReport]) -> None:
        if reports and not self._closed:  # closed: nobody will read it; see close()
            await self._queue.put(reports)

    def _ensure_connected(self) -> None:
        if not self._connected:
            state = "closed" if self._closed else "not connected"
            raise BrokerUnavailable(f"simulated broker is {state}")
