"""Pure trading domain: orders, fills, events and the order state machine.

No asyncio, no gRPC, no I/O lives here.
"""

from gateway.domain.enums import (
    ALLOWED_TIME_IN_FORCE,
    TERMINAL_STATUSES,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from gateway.domain.events import (
    CancelRejected,
    CancelRequested,
    OrderAccepted,
    OrderCanceled,
    OrderCreated,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderUpdate,
)
from gateway.domain.order import Fill, Order, OrderSpec
from gateway.domain.queries import ListOrdersQuery, OrderRef, SubscriptionFilter
from gateway.domain.state_machine import TRANSITIONS, IllegalTransition, apply_event

__all__ = [
    "ALLOWED_TIME_IN_FORCE",
    "TERMINAL_STATUSES",
    "TRANSITIONS",
    "CancelRejected",
    "CancelRequested",
    "Fill",
    "IllegalTransition",
    "ListOrdersQuery",
    "Order",
    "OrderAccepted",
    "OrderCanceled",
    "OrderCreated",
    "OrderEvent",
    "OrderExpired",
    "OrderFilled",
    "OrderRef",
    "OrderRejected",
    "OrderSpec",
    "OrderStatus",
    "OrderType",
    "OrderUpdate",
    "Side",
    "SubscriptionFilter",
    "TimeInForce",
    "apply_event",
]
