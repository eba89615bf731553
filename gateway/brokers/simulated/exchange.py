"""The simulated exchange: a deterministic, synchronous matching core.

It owns per-symbol reference prices (a seeded random walk), the accounts
(opened on first use) and their orders, and turns submits, cancels and the
passage of time into ``ExecutionReport`` lists. Time is always passed in as
``now`` and randomness comes from the exchange's own ``random.Random(seed)``,
so the same seed and the same calls give the same reports. There is no
asyncio and no I/O here: the in-process ``SimulatedBroker`` drives it, and an
out-of-process paper venue can too.

Semantics, in short: a marketable order fills at once in up to
``partial_fills`` fills near the reference price (at most ``liquidity`` per
match); the rest rests and is matched again on every ``tick`` (IOC cancels
it, FOK fills all or nothing). Stops trigger when the reference reaches the
stop, then act as market (STOP) or limit (STOP_LIMIT) orders. DAY orders
expire at the first ``session_end`` after their submission. Time moves only
in ``tick`` and ``set_price``: that is when expiry and resting matches happen.
Cancelling a terminal or unknown order raises ``BrokerRejected``.

A time step costs what can happen in it, not what rests: each symbol's
``SymbolBook`` keeps its orders sorted by the price at which they trade or
trigger, and DAY orders sit in a heap by expiry, so a step looks only at
orders that expire, trigger or trade. Orders that trade in one step do so
in arrival order across all symbols, which fixes the order of their reports
and of the random draws that price their fills.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from gateway.brokers.base import (
    BrokerOrderState,
    ExecutionReport,
    ReplaceAck,
    ReportKind,
    SubmitAck,
)
from gateway.brokers.errors import BrokerRejected
from gateway.brokers.simulated.book import BookOrder, SymbolBook
from gateway.brokers.simulated.config import SimConfig
from gateway.domain import (
    ALLOWED_TIME_IN_FORCE,
    Fill,
    OrderSpec,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)

ZERO = Decimal(0)
# Below this many entries a heap of expiries is never compacted.
_SMALL_HEAP = 64
_USES_LIMIT = frozenset({OrderType.LIMIT, OrderType.STOP_LIMIT})
_USES_STOP = frozenset({OrderType.STOP, OrderType.STOP_LIMIT})


class SimulatedExchange:
    """A venue in memory: prices, accounts, orders and matching, driven by its caller."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self._config = config or SimConfig()
        self._rng = random.Random(self._config.seed)
        # Symbols walk in the order they became known, so that the random
        # stream is consumed identically by identical call sequences.
        self._prices: dict[str, Decimal] = {
            symbol: settings.price for symbol, settings in self._config.symbols.items()
        }
        self._accounts: dict[str, dict[str, BookOrder]] = {}
        self._by_broker_id: dict[str, BookOrder] = {}
        # Working orders by arrival sequence, oldest first (for open_orders).
        self._open: dict[int, BookOrder] = {}
        self._books: dict[str, SymbolBook] = {}
        # (expires_at, sequence) of resting DAY orders. An order that leaves
        # the book otherwise stays here until popped or compacted away;
        # _expiring counts the entries still live.
        self._expiries: list[tuple[datetime, int]] = []
        self._expiring = 0
        self._expiry_examined = 0
        self._last_id = 0
        self.received: Counter[tuple[str, str]] = Counter()
        """Submits that arrived, per (account, client_order_id), repeats included:
        what tests check "never sent twice" against (the venue's own view)."""

    @property
    def config(self) -> SimConfig:
        return self._config

    @property
    def orders_examined(self) -> int:
        """Orders that time steps (``tick``, ``set_price``) have visited so far.

        A step visits each order that expires, each stop it triggers and each
        order that can trade at the new price (a stop that triggers and trades
        counts twice); orders resting away from the price are never visited,
        so this grows with what happens, not with what rests.
        """
        return self._expiry_examined + sum(book.examined for book in self._books.values())

    def price(self, symbol: str) -> Decimal:
        """Return the reference price of ``symbol`` (its configured start if never traded)."""
        return self._prices.get(symbol, self._config.symbol(symbol).price)

    def set_price(self, symbol: str, price: Decimal, now: datetime) -> list[ExecutionReport]:
        """Move ``symbol`` to ``price``, then expire and match working orders at ``now``."""
        if not (price.is_finite() and price > 0):
            raise ValueError(f"price must be positive, got {price}")
        self._prices[symbol] = price
        return self._settle(now)

    def tick(self, now: datetime) -> list[ExecutionReport]:
        """Step every known price once, then expire and match working orders at ``now``."""
        for symbol, price in self._prices.items():
            settings = self._config.symbol(symbol)
            step = self._rng.randint(-settings.max_step_ticks, settings.max_step_ticks)
            self._prices[symbol] = max(settings.tick_size, price + step * settings.tick_size)
        return self._settle(now)

    def submit(self, spec: OrderSpec, now: datetime) -> tuple[SubmitAck, list[ExecutionReport]]:
        """Accept ``spec`` and match it at once; raise ``BrokerRejected`` if the venue refuses.

        A ``client_order_id`` the account already used returns that order's ack
        and no reports, so a retried submit never creates a second order.
        """
        self.received[spec.key] += 1
        orders = self._accounts.setdefault(spec.account, {})
        existing = orders.get(spec.client_order_id)
        if existing is not None:
            if existing.spec != spec:
                raise BrokerRejected("client_order_id already used for a different order")
            return SubmitAck(existing.broker_order_id), []
        self._validate(spec)

        self._last_id += 1
        order = BookOrder(
            spec=spec,
            broker_order_id=f"{self._config.order_id_prefix}-{self._last_id}",
            sequence=self._last_id,
            expires_at=self._expiry(spec, now),
            triggered=spec.order_type not in _USES_STOP,
        )
        orders[spec.client_order_id] = order
        self._by_broker_id[order.broker_order_id] = order
        self._prices.setdefault(spec.symbol, self._config.symbol(spec.symbol).price)

        reports = [self._report(order, ReportKind.ACCEPTED, now)]
        tif = spec.time_in_force
        if tif is not TimeInForce.FOK or self._fully_fillable(order):
            reports += self._match(order, now)
        if order.status.is_terminal:
            return SubmitAck(order.broker_order_id), reports
        if tif in (TimeInForce.IOC, TimeInForce.FOK):
            reports.append(self._finish(order, OrderStatus.CANCELED, f"{tif.value}: unfilled", now))
        else:
            self._rest(order)
        return SubmitAck(order.broker_order_id), reports

    def cancel(
        self, account: str, client_order_id: str, now: datetime, broker_order_id: str = ""
    ) -> list[ExecutionReport]:
        """Cancel a working order, found by ``client_order_id`` or else ``broker_order_id``.

        Raise ``BrokerRejected`` for an order the account does not have, and
        for one already terminal (filled, cancelled or expired).
        """
        order = self._find(account, client_order_id, broker_order_id)
        if order is None:
            raise BrokerRejected("unknown order")
        if order.status.is_terminal:
            raise BrokerRejected(f"order already {order.status.value}")
        return [self._finish(order, OrderStatus.CANCELED, "canceled by request", now)]

    def replace(
        self,
        account: str,
        client_order_id: str,
        spec: OrderSpec,
        now: datetime,
        broker_order_id: str = "",
    ) -> tuple[ReplaceAck, list[ExecutionReport]]:
        """Give a working order the quantity and prices of ``spec``, in place.

        Like a FIX cancel/replace at a venue that amends in place: the order
        keeps its broker id and its fills, loses its time priority (it rests
        again as if it just arrived at its new price) and may trade at once.
        Raise ``BrokerRejected`` for an unknown or finished order, for terms
        the venue refuses, and for a quantity not above what already filled.
        A replace to the terms the order already has is a repeat: acked, no reports.
        """
        order = self._find(account, client_order_id, broker_order_id)
        if order is None:
            raise BrokerRejected("unknown order")
        if order.status.is_terminal:
            raise BrokerRejected(f"order already {order.status.value}")
        if spec.key != order.spec.key or (spec.symbol, spec.side, spec.order_type) != (
            order.spec.symbol,
            order.spec.side,
            order.spec.order_type,
        ):
            raise BrokerRejected("a replace changes only quantity and prices")
        if spec == order.spec:
            return ReplaceAck(order.broker_order_id), []
        self._validate(spec)
        if spec.quantity <= order.filled:
            raise BrokerRejected(f"quantity {spec.quantity} is not above {order.filled} filled")
        self._retire(order)
        order.spec = spec
        reports = [self._report(order, ReportKind.REPLACED, now)]
        reports += self._match(order, now)
        if not order.status.is_terminal:
            self._rest(order)
        return ReplaceAck(order.broker_order_id), reports

    def order_status(self, account: str, client_order_id: str) -> BrokerOrderState | None:
        """Return one order of ``account``, or None if it has no such order."""
        order = self._accounts.get(account, {}).get(client_order_id)
        return order.state() if order else None

    def open_orders(self, account: str | None = None) -> list[BrokerOrderState]:
        """Return the working orders of ``account`` (or of all accounts), oldest first."""
        return [
            order.state()
            for order in self._open.values()
            if account is None or order.spec.account == account
        ]

    def _validate(self, spec: OrderSpec) -> None:
        config = self._config
        if not spec.account or not spec.client_order_id:
            raise BrokerRejected("account and client_order_id are required")
        if config.restrict_symbols and spec.symbol not in config.symbols:
            raise BrokerRejected(f"unknown symbol {spec.symbol!r}")
        if not (spec.quantity.is_finite() and spec.quantity > 0):
            raise BrokerRejected(f"quantity must be positive, got {spec.quantity}")
        if config.max_quantity is not None and spec.quantity > config.max_quantity:
            raise BrokerRejected(f"quantity {spec.quantity} exceeds {config.max_quantity}")
        if spec.time_in_force not in ALLOWED_TIME_IN_FORCE[spec.order_type]:
            raise BrokerRejected(
                f"time in force {spec.time_in_force.value} not allowed"
                f" for {spec.order_type.value} orders"
            )
        for name, price, used in (
            ("limit", spec.limit_price, spec.order_type in _USES_LIMIT),
            ("stop", spec.stop_price, spec.order_type in _USES_STOP),
        ):
            if used and (price is None or not (price.is_finite() and price > 0)):
                raise BrokerRejected(f"{spec.order_type.value} order needs a positive {name} price")
            if not used and price is not None:
                raise BrokerRejected(f"{spec.order_type.value} order takes no {name} price")

    def _expiry(self, spec: OrderSpec, now: datetime) -> datetime | None:
        end = self._config.session_end
        if spec.time_in_force is not TimeInForce.DAY or end is None:
            return None
        now = now.astimezone(UTC)
        expires = datetime.combine(now.date(), end, tzinfo=UTC)
        # Submitted after today's session end: it works for the next session.
        return expires if expires > now else expires + timedelta(days=1)

    def _rest(self, order: BookOrder) -> None:
        self._open[order.sequence] = order
        self._books.setdefault(order.spec.symbol, SymbolBook()).add(order)
        if order.expires_at is not None:
            heapq.heappush(self._expiries, (order.expires_at, order.sequence))
            self._expiring += 1

    def _retire(self, order: BookOrder) -> None:
        """Take a finished order out of the working set (if it was resting there)."""
        if self._open.pop(order.sequence, None) is None:
            return
        self._books[order.spec.symbol].remove(order)
        if order.expires_at is None:
            return
        self._expiring -= 1
        # Cancelled and filled orders leave dead heap entries behind; rebuild
        # once they are the majority, so the heap stays proportional to the
        # live DAY orders at an amortised O(1) per order.
        heap = self._expiries
        if len(heap) > _SMALL_HEAP and len(heap) > 2 * self._expiring:
            heap[:] = [entry for entry in heap if entry[1] in self._open]
            heapq.heapify(heap)

    def _settle(self, now: datetime) -> list[ExecutionReport]:
        # Expire first: an order past its session must not fill at a later price.
        expired = []
        heap = self._expiries
        while heap and heap[0][0] <= now:
            order = self._open.get(heapq.heappop(heap)[1])
            if order is not None:  # else it was cancelled or filled already
                expired.append(order)
        self._expiry_examined += len(expired)
        expired.sort(key=_arrival)
        reports = [
            self._finish(order, OrderStatus.EXPIRED, "session ended", now) for order in expired
        ]

        tradable: list[BookOrder] = []
        for symbol, book in self._books.items():
            if book:
                tradable += book.tradable(self.price(symbol))
        # Arrival order, across symbols: what fixes the report order and the
        # random draws that price the fills.
        tradable.sort(key=_arrival)
        for order in tradable:
            reports += self._match(order, now)
        return reports

    def _stop_reached(self, order: BookOrder) -> bool:
        spec = order.spec
        if order.triggered or spec.stop_price is None:
            return True
        price = self.price(spec.symbol)
        return price >= spec.stop_price if spec.side is Side.BUY else price <= spec.stop_price

    def _marketable(self, order: BookOrder) -> bool:
        spec = order.spec
        if not self._stop_reached(order):
            return False
        if spec.limit_price is None:
            return True
        price = self.price(spec.symbol)
        return spec.limit_price >= price if spec.side is Side.BUY else spec.limit_price <= price

    def _fully_fillable(self, order: BookOrder) -> bool:
        liquidity = self._config.symbol(order.spec.symbol).liquidity
        return self._marketable(order) and (liquidity is None or liquidity >= order.remaining)

    def _match(self, order: BookOrder, now: datetime) -> list[ExecutionReport]:
        # A stop, once reached, stays triggered: a stop-limit then works as a
        # limit order even if the price moves back through the stop. Only a
        # new order can change here: the books trigger their own stops (and
        # move them), and hand out triggered orders only.
        order.triggered = self._stop_reached(order)
        if not self._marketable(order):
            return []
        spec = order.spec
        settings = self._config.symbol(spec.symbol)
        quantity = order.remaining
        if settings.liquidity is not None:
            quantity = min(quantity, settings.liquidity)
        reports = []
        for part in _split(quantity, self._config.partial_fills):
            fill = Fill(
                exec_id=f"{order.broker_order_id}-{len(order.fills) + 1}",
                quantity=part,
                price=self._fill_price(spec),
                time=now,
            )
            order.add_fill(fill)
            reports.append(self._report(order, ReportKind.FILL, now, fill=fill))
        if order.remaining == ZERO:
            order.status = OrderStatus.FILLED
            self._retire(order)
        else:
            order.status = OrderStatus.PARTIALLY_FILLED
        return reports

    def _fill_price(self, spec: OrderSpec) -> Decimal:
        settings = self._config.symbol(spec.symbol)
        slip = self._rng.randint(0, settings.slippage_ticks) * settings.tick_size
        reference = self.price(spec.symbol)
        if spec.side is Side.BUY:
            price = reference + slip
            return price if spec.limit_price is None else min(price, spec.limit_price)
        price = max(reference - slip, settings.tick_size)
        return price if spec.limit_price is None else max(price, spec.limit_price)

    def _finish(
        self, order: BookOrder, status: OrderStatus, reason: str, now: datetime
    ) -> ExecutionReport:
        order.status = status
        order.reason = reason
        self._retire(order)
        kind = ReportKind.EXPIRED if status is OrderStatus.EXPIRED else ReportKind.CANCELED
        return self._report(order, kind, now, reason=reason)

    def _find(self, account: str, client_order_id: str, broker_order_id: str) -> BookOrder | None:
        if client_order_id:
            order = self._accounts.get(account, {}).get(client_order_id)
            if order and broker_order_id and order.broker_order_id != broker_order_id:
                return None
            return order
        order = self._by_broker_id.get(broker_order_id)
        return order if order and order.spec.account == account else None

    @staticmethod
    def _report(
        order: BookOrder,
        kind: ReportKind,
        now: datetime,
        *,
        fill: Fill | None = None,
        reason: str = "",
    ) -> ExecutionReport:
        return ExecutionReport(
            kind=kind,
            account=order.spec.account,
            client_order_id=order.spec.client_order_id,
            time=now,
            broker_order_id=order.broker_order_id,
            fill=fill,
            reason=reason,
        )


def _arrival(order: BookOrder) -> int:
    return order.sequence


def _split(quantity: Decimal, parts: int) -> list[Decimal]:
    """Split ``quantity`` into at most ``parts`` positive pieces that sum to it exactly.

    Pieces are whole multiples of the quantity's last digit, so 100 splits as
    34 + 33 + 33 and 0.5 as 0.2 + 0.2 + 0.1.
    """
    exponent = quantity.as_tuple().exponent
    assert isinstance(exponent, int), "quantity is finite"
    quantum = Decimal(1).scaleb(min(exponent, 0))
    units = int(quantity / quantum)
    parts = max(1, min(parts, units))
    base, extra = divmod(units, parts)
    return [quantum * (base + (1 if i < extra else 0)) for i in range(parts)]
