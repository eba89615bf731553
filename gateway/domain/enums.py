"""The trading vocabulary: sides, order types, times in force, statuses."""

from __future__ import annotations

from enum import Enum


class Side(Enum):
    BUY = "buy"
    SELL = "sell"


class OrderType(Enum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"


class TimeInForce(Enum):
    DAY = "day"
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"


class OrderStatus(Enum):
    PENDING_NEW = "pending_new"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    PENDING_CANCEL = "pending_cancel"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    # Appended: the journal and checkpoints store statuses by value.
    PENDING_REPLACE = "pending_replace"

    @property
    def is_terminal(self) -> bool:
        # Identity tests, not ``in TERMINAL_STATUSES``: an Enum's hash runs in
        # Python, and this is asked for every event applied and replayed.
        return (
            self is OrderStatus.FILLED
            or self is OrderStatus.CANCELED
            or self is OrderStatus.REJECTED
            or self is OrderStatus.EXPIRED
        )


TERMINAL_STATUSES = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)

# Which times in force make sense for each order type. A market order that
# rests overnight (GTC) or a stop that must trigger "immediately" (IOC/FOK) is
# almost always a client bug, so the gateway refuses them up front.
ALLOWED_TIME_IN_FORCE: dict[OrderType, frozenset[TimeInForce]] = {
    OrderType.MARKET: frozenset({TimeInForce.DAY, TimeInForce.IOC, TimeInForce.FOK}),
    OrderType.LIMIT: frozenset(TimeInForce),
    OrderType.STOP: frozenset({TimeInForce.DAY, TimeInForce.GTC}),
    OrderType.STOP_LIMIT: frozenset({TimeInForce.DAY, TimeInForce.GTC}),
}


class RejectCode(Enum):
    """Who refused an order, for programs (``reject_reason`` says why, for people)."""

    BROKER = "broker"
    """The broker refused it."""
    RISK_LIMIT = "risk_limit"
    """A pre-trade risk limit refused it."""
    TRADING_HALTED = "trading_halted"
    """Trading is halted (or reducing only) for the account."""
    NOT_DELIVERED = "not_delivered"
    """It never reached the broker (unavailable, or never seen there)."""


class UpdateKind(Enum):
    """What one sequenced change to an order was: the kind of its event."""

    CREATED = "created"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    FILL = "fill"
    FILLS_RECONCILED = "fills_reconciled"
    CANCEL_REQUESTED = "cancel_requested"
    CANCELED = "canceled"
    CANCEL_REJECTED = "cancel_rejected"
    EXPIRED = "expired"
    REPLACE_REQUESTED = "replace_requested"
    REPLACED = "replaced"
    REPLACE_REJECTED = "replace_rejected"
