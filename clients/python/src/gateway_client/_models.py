"""The SDK's own types: orders, fills and stream events, with Decimal numbers.

These are what callers see; protobuf messages stay behind the client (see
``_convert``). All are frozen: an ``Order`` is a snapshot as of its
``updated_at``, and a newer one arrives as a new value.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


class Side(enum.Enum):
    """Buy or sell."""

    BUY = "BUY"
    SELL = "SELL"


class OrderType(enum.Enum):
    """How an order is priced (see the proto for which prices each needs)."""

    MARKET = "MARKET"
    LIMIT = "LIMIT"
    STOP = "STOP"
    STOP_LIMIT = "STOP_LIMIT"


class TimeInForce(enum.Enum):
    """How long an order stays working."""

    DAY = "DAY"
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class OrderStatus(enum.Enum):
    """Where an order stands; FILLED, CANCELED, REJECTED and EXPIRED are terminal."""

    UNSPECIFIED = "UNSPECIFIED"
    PENDING_NEW = "PENDING_NEW"
    ACCEPTED = "ACCEPTED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    PENDING_CANCEL = "PENDING_CANCEL"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"

    @property
    def is_terminal(self) -> bool:
        """Whether the order can no longer change (but for a late fill)."""
        return self in _TERMINAL


_TERMINAL = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)


@dataclass(frozen=True, slots=True)
class Order:
    """The gateway's record of one order."""

    order_id: str
    client_order_id: str
    broker_order_id: str
    """Empty until the broker acknowledged the order."""
    account: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    limit_price: Decimal | None
    stop_price: Decimal | None
    time_in_force: TimeInForce
    status: OrderStatus
    filled_quantity: Decimal
    leaves_quantity: Decimal
    average_fill_price: Decimal | None
    """None before the first fill."""
    reject_reason: str
    created_at: datetime | None
    updated_at: datetime | None

    @property
    def is_terminal(self) -> bool:
        """Whether the order is FILLED, CANCELED, REJECTED or EXPIRED."""
        return self.status.is_terminal


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of (part of) an order."""

    exec_id: str
    quantity: Decimal
    price: Decimal
    time: datetime | None


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """One change to one order, numbered by the gateway-wide ``sequence``."""

    sequence: int
    order: Order
    """The order's state after this change."""
    fill: Fill | None
    """The execution, when this change is a fill."""
    time: datetime | None
    snapshot: bool = False
    """True for an open order's current state sent because a snapshot was asked for."""


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The stream is alive; ``sequence`` is the newest the gateway has assigned."""

    sequence: int
    time: datetime | None


@dataclass(frozen=True, slots=True)
class SnapshotComplete:
    """The snapshot asked for is complete; live updates follow."""

    sequence: int
    order_count: int


Event = OrderUpdate | Heartbeat | SnapshotComplete
"""Anything an update stream delivers."""
