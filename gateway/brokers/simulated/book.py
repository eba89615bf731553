"""The working orders of one symbol, indexed by the price at which each can trade.

The exchange asks a ``SymbolBook`` which orders can trade at a new reference
price. The answer costs a few comparisons at the ends of sorted lists, a
binary search where one matches, and the orders returned: an order resting
far from the market is never looked at, however many there are. Orders enter
and leave by binary search too (the list insertions are one memmove each).

Where an order sits follows from its own state, so adding, moving and
removing it always agree:

- an untriggered stop: among the buy or sell stops, by stop price;
- a limit order (a triggered stop-limit too): among the bids or asks, by limit;
- an order with no price condition left (a market order or triggered stop
  that liquidity left partly unfilled): among the *sweeping* orders, which
  trade on every step until filled.
"""

from __future__ import annotations

import sys
from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from gateway.brokers.base import BrokerOrderState
from gateway.domain import Fill, OrderSpec, OrderStatus, Side

ZERO = Decimal(0)

# Entries are (price, arrival sequence): equal prices keep arrival order, and a
# probe with sequence 0 (before every order) or _AFTER_ALL (after every order)
# finds the first or last position of a price.
_Entry = tuple[Decimal, int]
_AFTER_ALL = sys.maxsize


@dataclass(slots=True)
class BookOrder:
    """An order as the exchange holds it; mutable because the book is the exchange's own."""

    spec: OrderSpec
    broker_order_id: str
    sequence: int
    """Arrival number at the exchange: time priority, and the order reports come in."""
    expires_at: datetime | None
    triggered: bool
    status: OrderStatus = OrderStatus.ACCEPTED
    fills: list[Fill] = field(default_factory=list)
    filled: Decimal = ZERO
    """The sum of ``fills``, kept as they are added rather than summed on every match."""
    reason: str = ""

    @property
    def remaining(self) -> Decimal:
        return self.spec.quantity - self.filled

    def add_fill(self, fill: Fill) -> None:
        self.fills.append(fill)
        self.filled += fill.quantity

    def state(self) -> BrokerOrderState:
        return BrokerOrderState(
            account=self.spec.account,
            client_order_id=self.spec.client_order_id,
            broker_order_id=self.broker_order_id,
            status=self.status,
            filled_quantity=self.filled,
            fills=tuple(self.fills),
            reason=self.reason,
            spec=self.spec,
        )


class SymbolBook:
    """One symbol's working orders: bids, asks, pending stops and sweeping orders."""

    __slots__ = ("_asks", "_bids", "_buy_stops", "_orders", "_sell_stops", "_sweeping", "examined")

    def __init__(self) -> None:
        self._orders: dict[int, BookOrder] = {}
        # Ascending by price. Buys trade (bids) or trigger (buy stops) when the
        # reference is at or below / at or above their price, sells the other
        # way round; each condition holds for one end of its list.
        self._bids: list[_Entry] = []
        self._asks: list[_Entry] = []
        self._buy_stops: list[_Entry] = []
        self._sell_stops: list[_Entry] = []
        self._sweeping: dict[int, BookOrder] = {}
        self.examined = 0
        """Stops ``tradable`` has triggered plus orders it has returned: its work so far."""

    def __len__(self) -> int:
        return len(self._orders)

    def add(self, order: BookOrder) -> None:
        """Rest ``order`` (not already in the book) where its state puts it."""
        self._orders[order.sequence] = order
        self._place(order)

    def remove(self, order: BookOrder) -> None:
        """Take ``order`` out of the book; an order not in it is left alone."""
        if self._orders.pop(order.sequence, None) is None:
            return
        side, price = self._side(order)
        if side is None:
            del self._sweeping[order.sequence]
            return
        entry = (price, order.sequence)
        index = bisect_left(side, entry)
        assert side[index] == entry, "a working order is where its state puts it"
        del side[index]

    def tradable(self, price: Decimal) -> list[BookOrder]:
        """Trigger the stops ``price`` reaches, then return the orders that can trade at it.

        The orders come in no particular order; the caller sorts them by arrival.
        """
        orders = self._orders
        triggered: list[_Entry] = []
        stops = self._buy_stops
        if stops and stops[0][0] <= price:
            cut = bisect_right(stops, (price, _AFTER_ALL))
            triggered += stops[:cut]
            del stops[:cut]
        stops = self._sell_stops
        if stops and stops[-1][0] >= price:
            cut = bisect_left(stops, (price, 0))
            triggered += stops[cut:]
            del stops[cut:]
        for _, sequence in triggered:
            # Once reached, a stop stays triggered: a stop-limit then works as
            # a limit order even if the price moves back through the stop.
            order = orders[sequence]
            order.triggered = True
            self._place(order)

        found = list(self._sweeping.values())
        bids = self._bids
        if bids and bids[-1][0] >= price:
            found += [orders[seq] for _, seq in bids[bisect_left(bids, (price, 0)) :]]
        asks = self._asks
        if asks and asks[0][0] <= price:
            found += [orders[seq] for _, seq in asks[: bisect_right(asks, (price, _AFTER_ALL))]]
        self.examined += len(triggered) + len(found)
        return found

    def _place(self, order: BookOrder) -> None:
        side, price = self._side(order)
        if side is None:
            self._sweeping[order.sequence] = order
        else:
            insort(side, (price, order.sequence))

    def _side(self, order: BookOrder) -> tuple[list[_Entry] | None, Decimal]:
        """Return the list ``order`` belongs in (None: sweeping) and its price there."""
        spec = order.spec
        buy = spec.side is Side.BUY
        if not order.triggered:
            assert spec.stop_price is not None, "only stops wait for a trigger"
            return (self._buy_stops if buy else self._sell_stops), spec.stop_price
        if spec.limit_price is not None:
            return (self._bids if buy else self._asks), spec.limit_price
        return None, ZERO
