"""Orders and fills: immutable values with exact ``Decimal`` numbers."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from gateway.domain.decimals import AVERAGE_PRICE_QUANTUM, average_price
from gateway.domain.enums import OrderStatus, OrderType, RejectCode, Side, TimeInForce

__all__ = [
    "AVERAGE_PRICE_QUANTUM",
    "ZERO",
    "Fill",
    "Order",
    "OrderSpec",
    "ProvisionalFill",
    "ReplaceTerms",
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


class ReplaceTerms(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One replace request: its client-chosen id and the terms it changes.

    A term left None keeps the order's current one. ``replace_id`` is
    idempotent per account, like a client_order_id: the same id with the
    same terms is the same request.
    """

    replace_id: str
    quantity: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None

    def applied_to(self, spec: OrderSpec) -> OrderSpec:
        """Return ``spec`` with these terms in place of its own."""
        return msgspec.structs.replace(
            spec,
            quantity=spec.quantity if self.quantity is None else self.quantity,
            limit_price=spec.limit_price if self.limit_price is None else self.limit_price,
            stop_price=spec.stop_price if self.stop_price is None else self.stop_price,
        )

    def matches(self, spec: OrderSpec) -> bool:
        """Whether ``spec`` already has every term this request sets."""
        return (
            (self.quantity is None or self.quantity == spec.quantity)
            and (self.limit_price is None or self.limit_price == spec.limit_price)
            and (self.stop_price is None or self.stop_price == spec.stop_price)
        )


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
    # Who refused the order, once it is REJECTED (None: not rejected, or
    # rejected before the gateway recorded codes).
    reject_code: RejectCode | None = None
    # ``spec`` holds the order's current terms: what works at the broker, and
    # what quantities and fills are checked against. Once a replace changed
    # them, ``placed_spec`` keeps the terms it was placed with, which still
    # identify it for PlaceOrder retries (None: never replaced).
    placed_spec: OrderSpec | None = None
    # Every replace request taken for the order, oldest first: each
    # replace_id stays known (a retry returns the order) across restarts.
    replaces: tuple[ReplaceTerms, ...] = ()
    # The replace on its way to the broker (None: none pending).
    pending_replace: ReplaceTerms | None = None

    @property
    def placed(self) -> OrderSpec:
        """The terms the order was placed with: its identity for idempotent placement."""
        return self.spec if self.placed_spec is None else self.placed_spec

    @property
    def replace_id(self) -> str:
        """The id of the order's latest replace request ("" if never replaced)."""
        return self.replaces[-1].replace_id if self.replaces else ""

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

        Runs for every event, live and replayed: one positional constructor
        call compiled at import (see ``_compile_evolve``), not
        ``dataclasses.replace`` (which looks the fields up again on every
        call, at several times the cost).
        """
        return _evolve(self, changes)


_ORDER_FIELDS = tuple(field.name for field in dataclasses.fields(Order))


def _compile_evolve() -> Callable[[Order, dict[str, object]], Order]:
    """Build ``Order.evolve``'s body: each field from ``changes`` or the order, positionally.

    Straight-line code, as ``dataclasses`` builds ``__init__``: a loop over
    the field names (getattr per field, a dict, a keyword call) cost half as
    much again as the constructor itself, and this runs for every event.
    The source is built from the dataclass's own field names only.
    """
    arguments = ", ".join(f"get({name!r}, order.{name})" for name in _ORDER_FIELDS)
    source = f"def evolve(order, changes):\n    get = changes.get\n    return Order({arguments})\n"
    namespace: dict[str, Any] = {"Order": Order}
    exec(source, namespace)  # noqa: S102 - our own field names, fixed at import
    evolve: Callable[[Order, dict[str, object]], Order] = namespace["evolve"]
    return evolve


_evolve = _compile_evolve()
