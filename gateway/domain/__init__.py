"""Pure trading domain: orders, fills, events and the order state machine.

No asyncio, no gRPC, no I/O lives here.
"""

from gateway.domain.decimals import average_price, decimal_to_str
from gateway.domain.enums import (
    ALLOWED_TIME_IN_FORCE,
    TERMINAL_STATUSES,
    OrderStatus,
    OrderType,
    RejectCode,
    Side,
    TimeInForce,
    UpdateKind,
)
from gateway.domain.events import (
    CancelRejected,
    CancelRequested,
    FillsReconciled,
    OrderAccepted,
    OrderCanceled,
    OrderCreated,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    OrderUpdate,
    ReplaceRejected,
    ReplaceRequested,
)
from gateway.domain.order import Fill, Order, OrderSpec, ProvisionalFill, ReplaceTerms
from gateway.domain.queries import ListOrdersQuery, OrderRef, SubscriptionFilter
from gateway.domain.state_machine import TRANSITIONS, IllegalTransition, apply_event

__all__ = [
    "ALLOWED_TIME_IN_FORCE",
    "TERMINAL_STATUSES",
    "TRANSITIONS",
    "CancelRejected",
    "CancelRequested",
    "Fill",
    "FillsReconciled",
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
    "OrderReplaced",
    "OrderSpec",
    "OrderStatus",
    "OrderType",
    "OrderUpdate",
    "ProvisionalFill",
    "RejectCode",
    "ReplaceRejected",
    "ReplaceRequested",
    "ReplaceTerms",
    "Side",
    "SubscriptionFilter",
    "TimeInForce",
    "UpdateKind",
    "apply_event",
    "average_price",
    "decimal_to_str",
]
