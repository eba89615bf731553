"""Alpaca's wire format to the broker boundary's values, and back; pure functions.

Everything that knows Alpaca's field names, status and event words, and
error shapes lives here, so the adapter only moves bytes. Alpaca sends
numbers as strings: they become ``Decimal`` and never pass through float.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import aiohttp

from gateway.brokers.base import BrokerOrderState, ExecutionReport, ReportKind
from gateway.brokers.errors import (
    BrokerError,
    BrokerRateLimited,
    BrokerRejected,
    BrokerTimeout,
    BrokerUnavailable,
)
from gateway.domain import (
    Fill,
    OrderSpec,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    decimal_to_str,
)

ZERO = Decimal(0)
JsonObject = Mapping[str, Any]

# Statuses that settle an order. Everything else is live, and then what has
# filled decides between ACCEPTED, PARTIALLY_FILLED and FILLED.
_TERMINAL_STATUS = {
    "filled": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
    # The order lives on under a new id (``replaced_by``). The adapter follows
    # that id to the order's current state; one met here (a replace the
    # gateway never asked for) ends the gateway's order, like a cancel.
    "replaced": OrderStatus.CANCELED,
}
_PENDING_CANCEL = "pending_cancel"
# Terminal without filling: these states explain themselves with a reason.
_ENDED_EARLY = frozenset({OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED})

# trade_updates events that change the gateway's order. Unlisted events
# (pending_new, done_for_day, pending_cancel, pending_replace, calculated,
# stopped, suspended, trade_bust, ...) change nothing the state machine
# tracks, so the adapter drops them.
EVENT_KINDS: dict[str, ReportKind] = {
    "new": ReportKind.ACCEPTED,
    "accepted": ReportKind.ACCEPTED,
    "fill": ReportKind.FILL,
    "partial_fill": ReportKind.FILL,
    "canceled": ReportKind.CANCELED,
    # On the old order: the replacement (``replaced_by``) works on.
    "replaced": ReportKind.REPLACED,
    "order_replace_rejected": ReportKind.REPLACE_REJECTED,
    "expired": ReportKind.EXPIRED,
    "rejected": ReportKind.REJECTED,
    "order_cancel_rejected": ReportKind.CANCEL_REJECTED,
}

# Alpaca's replace makes a new order, with a client_order_id of its own. The
# gateway names it after the order's own id and the replace's id, joined by a
# character no client_order_id of ours may hold, so every event and state of
# the replacement maps back to the gateway's order by its own key (before the
# replace's answer arrives, and after a restart), with no table to keep.
REPLACEMENT_MARK = "~"

DUPLICATE_CLIENT_ORDER_ID = "client_order_id must be unique"


def loads(text: str | bytes) -> Any:
    """Parse JSON with every non-integer number as ``Decimal``."""
    return json.loads(text, parse_float=Decimal)


def to_decimal(value: object) -> Decimal | None:
    """Return Alpaca's number (a string, or a JSON number) as a Decimal; None if absent."""
    if value is None or value == "":
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | str) and not isinstance(value, bool):
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"not a number: {value!r}") from None
        if number.is_finite():
            return number
    raise ValueError(f"not a number: {value!r}")


# Python 3.11 reads at most 6 fractional digits; Alpaca writes up to 9.
_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_time(value: object) -> datetime | None:
    """Parse an RFC 3339 timestamp (``Z`` or offset, up to nanoseconds) as aware UTC."""
    if not isinstance(value, str) or not value:
        return None
    parsed = datetime.fromisoformat(_FRACTION.sub(r"\1", value))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def order_request(spec: OrderSpec) -> dict[str, str]:
    """Return the ``POST /v2/orders`` body for ``spec``; our enum words are Alpaca's."""
    body = {
        "symbol": spec.symbol,
        "qty": decimal_to_str(spec.quantity),
        "side": spec.side.value,
        "type": spec.order_type.value,
        "time_in_force": spec.time_in_force.value,
        "client_order_id": spec.client_order_id,
    }
    if spec.limit_price is not None:
        body["limit_price"] = decimal_to_str(spec.limit_price)
    if spec.stop_price is not None:
        body["stop_price"] = decimal_to_str(spec.stop_price)
    return body


def replacement_client_order_id(client_order_id: str, replace_id: str) -> str:
    """The client_order_id of the order a replace makes at Alpaca (at most 97 characters)."""
    return f"{client_order_id}{REPLACEMENT_MARK}{replace_id}"


def gateway_client_order_id(alpaca_client_order_id: str) -> str:
    """The gateway's client_order_id of an Alpaca order (a replacement's original's)."""
    return alpaca_client_order_id.partition(REPLACEMENT_MARK)[0]


def replace_request(spec: OrderSpec, client_order_id: str) -> dict[str, str]:
    """Return the ``PATCH /v2/orders/{id}`` body that gives an order ``spec``'s terms."""
    body = {
        "qty": decimal_to_str(spec.quantity),
        "time_in_force": spec.time_in_force.value,
        "client_order_id": client_order_id,
    }
    if spec.limit_price is not None:
        body["limit_price"] = decimal_to_str(spec.limit_price)
    if spec.stop_price is not None:
        body["stop_price"] = decimal_to_str(spec.stop_price)
    return body


def order_matches_spec(order: JsonObject, spec: OrderSpec) -> bool:
    """Whether an existing Alpaca order is the order ``spec`` describes."""
    return (
        order.get("symbol") == spec.symbol
        and order.get("side") == spec.side.value
        and (order.get("order_type") or order.get("type")) == spec.order_type.value
        and order.get("time_in_force") == spec.time_in_force.value
        and to_decimal(order.get("qty")) == spec.quantity
        and to_decimal(order.get("limit_price")) == spec.limit_price
        and to_decimal(order.get("stop_price")) == spec.stop_price
    )


def order_status(order: JsonObject) -> OrderStatus:
    """Map an Alpaca order's ``status`` (and fill progress) onto ours."""
    status = str(order.get("status", ""))
    if status in _TERMINAL_STATUS:
        return _TERMINAL_STATUS[status]
    if status == _PENDING_CANCEL:
        return OrderStatus.PENDING_CANCEL
    filled = to_decimal(order.get("filled_qty")) or ZERO
    quantity = to_decimal(order.get("qty"))
    if quantity is not None and filled >= quantity > 0:
        return OrderStatus.FILLED
    return OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.ACCEPTED


def order_state(order: JsonObject, account: str) -> BrokerOrderState:
    """Turn an Alpaca order object into the venue's view for reconciliation.

    ``fills`` stays empty: the order object carries only the cumulative
    quantity and average price, not the executions, and an invented
    aggregate fill would be counted a second time next to the real ones.
    ``filled_quantity`` is exact.
    """
    status = order_status(order)
    return BrokerOrderState(
        account=account,
        client_order_id=gateway_client_order_id(str(order["client_order_id"])),
        broker_order_id=str(order["id"]),
        status=status,
        filled_quantity=to_decimal(order.get("filled_qty")) or ZERO,
        reason=_status_reason(order) if status in _ENDED_EARLY else "",
        average_fill_price=to_decimal(order.get("filled_avg_price")),
        spec=order_spec(order, account),
    )


def order_spec(order: JsonObject, account: str) -> OrderSpec | None:
    """The terms of an Alpaca order as ours, or None where we have no word for them.

    Our enum words are Alpaca's; an order we could not have placed (a trailing
    stop, a notional order, a bracket's class) maps to None, so reconciliation
    reports it rather than adopting a copy with the wrong terms.
    """
    try:
        quantity = to_decimal(order.get("qty"))
        simple = order.get("order_class") in (None, "", "simple")
        if quantity is None or quantity <= 0 or not simple:
            return None
        return OrderSpec(
            account=account,
            client_order_id=gateway_client_order_id(str(order["client_order_id"])),
            symbol=str(order["symbol"]),
            side=Side(order.get("side")),
            order_type=OrderType(order.get("order_type") or order.get("type")),
            quantity=quantity,
            time_in_force=TimeInForce(order.get("time_in_force")),
            limit_price=to_decimal(order.get("limit_price")),
            stop_price=to_decimal(order.get("stop_price")),
        )
    except (KeyError, ValueError):
        return None


def report_from_trade_update(
    data: JsonObject, account: str, *, filled_before: Decimal = ZERO
) -> ExecutionReport | None:
    """Map one ``trade_updates`` event's ``data`` to a report; None for events we skip.

    ``filled_before`` (what this order had filled before the event) is used
    only when a fill event carries no ``qty``, as older streams did.
    """
    event = str(data.get("event", ""))
    kind = EVENT_KINDS.get(event)
    if kind is None:
        return None
    order: JsonObject = data["order"]
    time = (
        parse_time(data.get("timestamp"))
        or parse_time(order.get("updated_at"))
        or datetime.now(UTC)
    )
    fill = None
    reason = ""
    broker_order_id = str(order["id"])
    if kind is ReportKind.FILL:
        fill = _fill(data, order, time, filled_before)
    elif kind is not ReportKind.ACCEPTED:
        reason = str(data.get("reason") or "") or _event_reason(event, order)
    if kind is ReportKind.REPLACED:
        # The order's id from now on is its replacement's.
        broker_order_id = str(order.get("replaced_by") or "")
    return ExecutionReport(
        kind=kind,
        account=account,
        client_order_id=gateway_client_order_id(str(order["client_order_id"])),
        time=time,
        broker_order_id=broker_order_id,
        fill=fill,
        reason=reason,
        filled_quantity=to_decimal(order.get("filled_qty")),
    )


def _fill(data: JsonObject, order: JsonObject, time: datetime, filled_before: Decimal) -> Fill:
    cumulative = to_decimal(order.get("filled_qty")) or ZERO
    quantity = to_decimal(data.get("qty"))
    if quantity is None:
        quantity = cumulative - filled_before
    price = to_decimal(data.get("price"))
    if price is None:
        price = to_decimal(order.get("filled_avg_price"))
    if price is None or quantity <= 0:
        raise ValueError(f"fill event without price or quantity: {dict(data)!r}")
    # The cumulative quantity after a fill identifies it within its order
    # when an older stream sends no execution_id.
    # An identifier, journalled with the fill: its spelling must never change.
    exec_id = str(data.get("execution_id") or f"{order['id']}:{format(cumulative, 'f')}")
    return Fill(exec_id=exec_id, quantity=quantity, price=price, time=time)


def _event_reason(event: str, order: JsonObject) -> str:
    if event == "replaced":
        return f"replaced by order {order.get('replaced_by') or '?'} at alpaca"
    if event == "order_cancel_rejected":
        return "alpaca rejected the cancel"
    if event == "order_replace_rejected":
        return "alpaca rejected the replace"
    return f"{event} at alpaca"


def _status_reason(order: JsonObject) -> str:
    status = str(order.get("status", ""))
    if status == "replaced":
        return f"replaced by order {order.get('replaced_by') or '?'} at alpaca"
    return f"{status} at alpaca"


# ---------------------------------------------------------------- errors


def error_message(body: str) -> tuple[int | None, str]:
    """Return ``(code, message)`` of an Alpaca error body (or its text if not JSON)."""
    try:
        parsed = loads(body)
    except ValueError:
        return None, body.strip()[:200]
    if not isinstance(parsed, dict):
        return None, body.strip()[:200]
    code = parsed.get("code")
    return (code if isinstance(code, int) else None), str(parsed.get("message", "")).strip()


def is_duplicate_client_order_id(status: int, body: str) -> bool:
    """Whether a failed submit says the ``client_order_id`` exists already."""
    return status == 422 and DUPLICATE_CLIENT_ORDER_ID in error_message(body)[1].lower()


def error_from_response(
    status: int, headers: Mapping[str, str], body: str, *, now: float
) -> BrokerError:
    """Map a non-2xx REST answer onto the broker errors; ``now`` is epoch seconds.

    429 (refused before any work) is ``BrokerRateLimited`` with ``retry_after``
    from ``X-RateLimit-Reset``; 500/502/504 may have acted, so their outcome
    is unknown (``BrokerTimeout``); other 5xx did not act; 4xx are permanent.
    """
    code, message = error_message(body)
    text = f"alpaca HTTP {status}" + (f" (code {code})" if code else "") + f": {message}"
    if status == 429:
        return BrokerRateLimited(text, retry_after=retry_after(headers, now=now))
    if status in (500, 502, 504):
        return BrokerTimeout(text, retry_after=retry_after(headers, now=now))
    if status >= 500:
        return BrokerUnavailable(text, retry_after=retry_after(headers, now=now))
    return BrokerRejected(text)


def retry_after(headers: Mapping[str, str], *, now: float) -> float | None:
    """Seconds to wait, from ``X-RateLimit-Reset`` (epoch seconds) or ``Retry-After``."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        if "x-ratelimit-reset" in lowered:
            return max(0.0, float(lowered["x-ratelimit-reset"]) - now)
        if "retry-after" in lowered:
            return max(0.0, float(lowered["retry-after"]))
    except ValueError:
        return None
    return None


# Checked in order: the first matching class decides. A request whose
# connection could not be opened never reached Alpaca; any later failure
# may have happened after Alpaca acted on it.
_TRANSPORT_ERRORS: tuple[tuple[type[BaseException], type[BrokerError]], ...] = (
    (aiohttp.ClientConnectorError, BrokerUnavailable),
    (aiohttp.ConnectionTimeoutError, BrokerUnavailable),
    (aiohttp.ServerTimeoutError, BrokerTimeout),
    (asyncio.TimeoutError, BrokerTimeout),
    (aiohttp.ClientError, BrokerTimeout),
    (OSError, BrokerTimeout),
)


def transport_error(exc: BaseException) -> BrokerError:
    """Translate an aiohttp/socket failure into the broker error it means."""
    for foreign, ours in _TRANSPORT_ERRORS:
        if isinstance(exc, foreign):
            return ours(f"alpaca: {type(exc).__name__}: {exc}")
    return BrokerTimeout(f"alpaca: {type(exc).__name__}: {exc}")
