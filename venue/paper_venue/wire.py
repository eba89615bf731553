"""Alpaca's JSON shapes as the venue writes and reads them.

Field names, types and words follow Alpaca's Trading API v2 reference:
numbers travel as strings, timestamps as RFC 3339 UTC, absent values as
null. Errors are ``{"code": ..., "message": ...}`` with Alpaca's codes.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from gateway.domain import OrderSpec, OrderType, Side, TimeInForce, decimal_to_str
from paper_venue.config import VENUE_NAMESPACE

MAX_CLIENT_ORDER_ID = 128
# Python 3.11 reads at most 6 fractional digits; RFC 3339 allows more.
_FRACTION = re.compile(r"(\.\d{6})\d+")
_Word = TypeVar("_Word", Side, OrderType, TimeInForce)

# Alpaca's error codes: HTTP status followed by a sub-code.
CODE_INVALID = 40010001
CODE_UNAUTHORIZED = 40110000
CODE_NOT_FOUND = 40410000
CODE_NOT_CANCELABLE = 42210000
CODE_RATE_LIMIT = 42910000
CODE_INTERNAL = 50010000


class VenueError(Exception):
    """A request the venue answers with an Alpaca error body."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


def invalid(message: str) -> VenueError:
    return VenueError(422, CODE_INVALID, message)


def dumps(value: object) -> str:
    """Encode JSON with Decimals and datetimes written as Alpaca writes them."""
    return json.dumps(value, default=_encode, separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    """Decode JSON with every non-integer number as a Decimal."""
    return json.loads(text, parse_float=Decimal)


def timestamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(value: str) -> datetime:
    """Read an RFC 3339 timestamp (Z or offset; fractions beyond microseconds cut)."""
    parsed = datetime.fromisoformat(_FRACTION.sub(r"\1", value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def number(value: Decimal) -> str:
    return decimal_to_str(value)


def asset_id(symbol: str) -> str:
    """A stable UUID per symbol, standing in for Alpaca's asset id."""
    return str(uuid.uuid5(VENUE_NAMESPACE, f"asset:{symbol}"))


def _encode(value: object) -> object:
    if isinstance(value, Decimal):
        return number(value)
    if isinstance(value, datetime):
        return timestamp(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A parsed ``POST /v2/orders`` body."""

    symbol: str
    qty: Decimal
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce
    client_order_id: str
    limit_price: Decimal | None
    stop_price: Decimal | None

    def spec(self, account: str) -> OrderSpec:
        return OrderSpec(
            account=account,
            client_order_id=self.client_order_id,
            symbol=self.symbol,
            side=self.side,
            order_type=self.order_type,
            quantity=self.qty,
            time_in_force=self.time_in_force,
            limit_price=self.limit_price,
            stop_price=self.stop_price,
        )


def parse_order_request(body: object) -> OrderRequest:
    """Validate an order request as Alpaca does (the subset the venue trades)."""
    if not isinstance(body, Mapping):
        raise VenueError(400, 40010000, "request body format is invalid")
    symbol = body.get("symbol")
    if not isinstance(symbol, str) or not symbol:
        raise invalid("symbol is required")
    if body.get("notional") is not None:
        raise invalid("notional orders are not supported by this venue")
    if body.get("order_class") not in (None, "", "simple"):
        raise invalid(f"order_class {body.get('order_class')} is not supported by this venue")
    qty = _decimal(body, "qty")
    if qty is None or qty <= 0:
        raise invalid("qty must be > 0")
    client_order_id = body.get("client_order_id") or str(uuid.uuid4())
    if not isinstance(client_order_id, str) or len(client_order_id) > MAX_CLIENT_ORDER_ID:
        raise invalid(f"client_order_id must be no more than {MAX_CLIENT_ORDER_ID} characters")
    return OrderRequest(
        symbol=symbol.upper(),
        qty=qty,
        side=_word(Side, body, "side"),
        order_type=_word(OrderType, body, "type"),
        time_in_force=_word(TimeInForce, body, "time_in_force"),
        client_order_id=client_order_id,
        limit_price=_decimal(body, "limit_price"),
        stop_price=_decimal(body, "stop_price"),
    )


def _decimal(body: Mapping[str, Any], name: str) -> Decimal | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise invalid(f"invalid {name}")
    try:
        parsed = Decimal(value)
    except InvalidOperation:
        raise invalid(f"invalid {name}") from None
    if not parsed.is_finite():
        raise invalid(f"invalid {name}")
    return parsed


def _word(kind: type[_Word], body: Mapping[str, Any], name: str) -> _Word:
    value = body.get(name)
    try:
        return kind(value)
    except ValueError:
        raise invalid(f"invalid {name}: {value!r}") from None
