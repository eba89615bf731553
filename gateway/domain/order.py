"""Orders and fills: immutable values with exact ``Decimal`` numbers."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import msgspec

from gateway.domain.decimals import AVERAGE_PRICE_QUANTUM, average_price
from gateway.domain.enums import OrderStatus, OrderType, Side, TimeInForce

__all__ = [
    "AVERAGE_PRICE_QUANTUM",
    "ZERO",
    "Fill",
    "Order",
    "OrderSpec",
    "ProvisionalFill",
    "shared_decimal",
]

ZERO = Decimal(0)


_SHARED: dict[str, Decimal] = {}
_SHARED_MAX = 1 << 16


def shared_decimal(value: Decimal) -> Decimal:
    """Return the one Decimal kept for ``value``'s text (``value`` itself once full)."""
    text = str(value)
    found = _SHARED.get(text)
    if found is None:
        if len(_SHARED) < _SHARED_MAX:
            _SHARED[text] = value
        return value
    return found


class OrderSpec(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """What the client asked for: the parameters that identify an order.

    Two ``PlaceOrder`` calls with the same (account, client_order_id) are the
    same order exactly when their specs are equal. A msgspec Struct: the
    journal stores it (in ``OrderCreated``) as an array of its fields.
    """

    account: str
    client_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    time_in_force: TimeInForce
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None

    def __post_init__(self) -> None:
        # A few accounts and symbols recur across millions of orders: one
        # string each instead of a copy per order (interned strings are freed
        # once unused, so a stray value costs nothing lasting).
        msgspec.structs.force_setattr(self, "account", sys.intern(self.account))
        msgspec.structs.force_setattr(self, "symbol", sys.intern(self.symbol))
        # So do quantities and prices: one Decimal each (about 100 bytes) for
        # every spec that states it, from a bounded table. Keyed by the text,
        # not the number: 10 and 10.0 are equal but read back differently.
        msgspec.structs.force_setattr(self, "quantity", shared_decimal(self.quantity))
        if self.limit_price is not None:
            msgspec.structs.force_setattr(self, "limit_price", shared_decimal(self.limit_price))

    @property
    def key(self) -> tuple[str, str]:
        """The idempotency key."""
        return (self.account, self.client_order_id)


class Fill(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One execution reported by the broker; ``exec_id`` is unique per fill."""

    exec_id: str
    quantity: Decimal
    price: Decimal
    time: datetime


@dataclass(frozen=True, slots=True)
class ProvisionalFill:
    """Fill quantity the broker's totals show but none of whose executions reached us.

    Booked from a status answer (``FillsReconciled``) that ran ahead of the
    report stream: the broker said ``cumulative`` filled at a notional of
    ``notional``. The executions inside that cumulative which we book since
    (``confirmed_*``) replace their share of it instead of adding to the
    order's totals, so nothing is counted twice. It is gone once they all came.
    """

    cumulative: Decimal
    """The broker's cumulative filled quantity it was booked from."""

    notional: Decimal
    """The broker's average price times ``cumulative``."""

    confirmed_quantity: Decimal
    """Quantity of real executions within ``cumulative``, booked before or since."""

    confirmed_notional: Decimal

    @property
    def quantity(self) -> Decimal:
        """Quantity no execution stands behind yet."""
        return self.cumulative - self.confirmed_quantity

    @property
    def open_notional(self) -> Decimal:
        return self.notional - self.confirmed_notional


@dataclass(frozen=True, slots=True)
class Order:
    """The gateway's record of one order, as of ``updated_at``."""

    order_id: str
    spec: OrderSpec
    status: OrderStatus
    created_at: datetime
    updated_at: datetime
    # The sequence of the event that created the order: orders list in this order.
    created_sequence: int
    # The sequence of the order's latest change.
    last_sequence: int = 0
    broker_order_id: str = ""
    filled_quantity: Decimal = ZERO
    # Sum of price * quantity over fills; the average price is derived from it
    # so that it never accumulates rounding.
    fill_notional: Decimal = ZERO
    reject_reason: str = ""
    # The status to return to if the broker refuses a cancel.
    status_before_cancel: OrderStatus | None = None
    # The highest cumulative filled quantity the broker has stated (on a fill
    # report or in a status answer): no fill may take the order beyond it, and
    # a status answer below it is stale.
    broker_filled: Decimal = ZERO
    # Part of filled_quantity/fill_notional booked from the broker's totals
    # and not yet replaced by its executions (None: every unit is itemised).
    provisional: ProvisionalFill | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    @property
    def leaves_quantity(self) -> Decimal:
        """Quantity still working: zero once the order is terminal."""
        if self.is_terminal:
            return ZERO
        return self.spec.quantity - self.filled_quantity

    @property
    def average_fill_price(self) -> Decimal | None:
        if self.filled_quantity == ZERO:
            return None
        return average_price(self.fill_notional, self.filled_quantity)

    def evolve(self, **changes: object) -> Order:
        """Return a copy with ``changes`` applied.

        Runs for every event, live and replayed: one constructor call over a
        field list fixed at import, not ``dataclasses.replace`` (which looks
        the fields up again on every call, at several times the cost).
        """
        values = {name: getattr(self, name) for name in _ORDER_FIELDS}
        values.update(changes)
        return Order(**values)


_ORDER_FIELDS = tuple(field.name for field in dataclasses.fields(Order))
