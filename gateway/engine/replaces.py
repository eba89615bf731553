"""Whether an order can take a replace: the checks before anything is recorded.

Pure: the order as the gateway knows it and the replace asked for in, the
refusal (a ``GatewayError`` the caller raises) or None out. The proto's
rules for ReplaceOrder that depend on the order live here; the ones that
depend on the request alone are the service's (``validation``).
"""

from __future__ import annotations

from gateway.domain import Order, OrderStatus, OrderType, ReplaceTerms
from gateway.errors import FailedPrecondition, FieldViolation, GatewayError, InvalidArgument

# Which prices each order type has: a replace may change only those.
_HAS_LIMIT = frozenset({OrderType.LIMIT, OrderType.STOP_LIMIT})
_HAS_STOP = frozenset({OrderType.STOP, OrderType.STOP_LIMIT})
# Why a replace is refused in each open status that cannot take one.
_NOT_REPLACEABLE = {
    OrderStatus.PENDING_NEW: ("ORDER_NOT_ACKNOWLEDGED", "the broker has not acknowledged it yet"),
    OrderStatus.PENDING_CANCEL: ("ORDER_PENDING_CANCEL", "a cancel is pending"),
    OrderStatus.PENDING_REPLACE: ("REPLACE_PENDING", "another replace is pending"),
}


def refusal(order: Order, terms: ReplaceTerms, *, broker_can_replace: bool) -> GatewayError | None:
    """Why ``order`` cannot take ``terms`` now, or None if it can."""
    metadata = {"order_id": order.order_id, "status": order.status.name}
    if not broker_can_replace:
        return FailedPrecondition(
            "this gateway's broker cannot replace orders; cancel and place a new one",
            reason="REPLACE_NOT_SUPPORTED",
            metadata=metadata,
        )
    if order.is_terminal:
        return FailedPrecondition(
            f"order {order.order_id} is already {order.status.name}; nothing to replace",
            reason="ORDER_ALREADY_TERMINAL",
            metadata=metadata,
        )
    refused = _NOT_REPLACEABLE.get(order.status)
    if refused is not None:
        reason, why = refused
        return FailedPrecondition(
            f"order {order.order_id} cannot be replaced now: {why}",
            reason=reason,
            metadata=metadata,
        )
    order_type = order.spec.order_type
    violations = []
    if terms.limit_price is not None and order_type not in _HAS_LIMIT:
        violations.append(
            FieldViolation("limit_price", f"must be empty: a {order_type.name} order has none")
        )
    if terms.stop_price is not None and order_type not in _HAS_STOP:
        violations.append(
            FieldViolation("stop_price", f"must be empty: a {order_type.name} order has none")
        )
    if terms.quantity is not None and terms.quantity < order.filled_quantity:
        violations.append(
            FieldViolation(
                "quantity", f"must not be below the {order.filled_quantity} already filled"
            )
        )
    return InvalidArgument(violations) if violations else None
