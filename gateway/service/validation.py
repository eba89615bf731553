"""Protobuf requests to domain values, refusing anything malformed.

Every function here either returns a domain value or raises ``InvalidArgument``
listing every problem it found, each naming the proto field, so that a client
can fix its request in one round trip. The rules are the ones stated in the
comments of ``execution.proto``; where this module adds one (canonical decimal
form, order id charset, page token format), the reason is beside it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TypeVar

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway.domain import (
    ALLOWED_TIME_IN_FORCE,
    ListOrdersQuery,
    OrderRef,
    OrderSpec,
    OrderType,
    ReplaceTerms,
    Side,
    SubscriptionFilter,
)
from gateway.domain.controls import TradingMode
from gateway.errors import FieldViolation, InvalidArgument
from gateway.service.control_convert import HALT_MODE_FROM_PROTO
from gateway.service.convert import (
    ORDER_TYPE_FROM_PROTO,
    SIDE_FROM_PROTO,
    TIME_IN_FORCE_FROM_PROTO,
)

K = TypeVar("K")
E = TypeVar("E")

MAX_INTEGER_DIGITS = 12
MAX_FRACTION_DIGITS = 9
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
# Bounds the work (and the error message) for a request with a huge list.
MAX_FILTER_ENTRIES = 1000
# Sequences are stored as SQLite integers (signed 64 bit); anything above can
# never exist, and must not overflow a query.
MAX_SEQUENCE = 2**63 - 1

# Length is checked before any regex, so a 1 MB string costs one len() call.
_MAX_DECIMAL_CHARS = MAX_INTEGER_DIGITS + 1 + MAX_FRACTION_DIGITS
# One canonical spelling per value: no leading zeros ("007"), so that equal
# numbers look equal in logs and idempotency comparisons surprise nobody.
# [0-9], not \d: \d also matches non-ASCII digits such as "٣".
_DECIMAL = re.compile(
    rf"(?:0|[1-9][0-9]{{0,{MAX_INTEGER_DIGITS - 1}}})(?:\.[0-9]{{1,{MAX_FRACTION_DIGITS}}})?"
)
_DECIMAL_RULE = (
    f"a plain decimal string like 100 or 187.25: digits with an optional fraction, "
    f"no sign, exponent, spaces or leading zeros, at most {MAX_INTEGER_DIGITS} integer "
    f"and {MAX_FRACTION_DIGITS} fractional digits"
)

_MAX_NAME_CHARS = 64  # the longest account, id or symbol allowed
_ACCOUNT = re.compile(r"[A-Za-z0-9._-]{1,64}")
_ACCOUNT_RULE = "must be 1-64 characters of A-Z a-z 0-9 . _ -"
_CLIENT_ORDER_ID = re.compile(r"[A-Za-z0-9._:-]{1,48}")
_CLIENT_ORDER_ID_RULE = "must be 1-48 characters of A-Z a-z 0-9 . _ : -"
_SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9./-]{0,23}")
_SYMBOL_RULE = "must be 1-24 characters of A-Z 0-9 . / - (upper case), starting with A-Z or 0-9"
# The proto leaves the gateway's order id opaque; this is wide enough for any
# id the engine makes (UUIDs, ULIDs, prefixed counters) and keeps junk out of
# logs and lookups.
_ORDER_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_ORDER_ID_RULE = "must be 1-64 characters of A-Z a-z 0-9 . _ : -"

_PAGE_TOKEN_VERSION = 1
_MAX_PAGE_TOKEN_CHARS = 256
_PAGE_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_-]+")


def _decimal_problem(text: str, *, positive: bool) -> str | None:
    if not text:
        return f"is required: {_DECIMAL_RULE}"
    if len(text) > _MAX_DECIMAL_CHARS or not _DECIMAL.fullmatch(text):
        return f"must be {_DECIMAL_RULE}"
    if positive and Decimal(text) == 0:
        return "must be greater than zero"
    return None


def parse_decimal(text: str, field: str, *, positive: bool) -> Decimal:
    """Parse a wire decimal string exactly, or raise ``InvalidArgument`` naming ``field``.

    The strict regex runs first, so ``Decimal`` never sees "NaN", "1e3",
    " 1" or other spellings it would accept.
    """
    problem = _decimal_problem(text, positive=positive)
    if problem is not None:
        raise InvalidArgument([FieldViolation(field, problem)])
    return Decimal(text)


class _Violations:
    """Collects every problem with a request, then raises them together."""

    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.items.append(FieldViolation(field, description))

    def text(self, value: str, field: str, pattern: re.Pattern[str], rule: str) -> str:
        if not value:
            self.add(field, f"is required: {rule}")
        # The length check first bounds the work for a 1 MB string; fullmatch,
        # not match with "$", which would accept a trailing newline.
        elif len(value) > _MAX_NAME_CHARS or not pattern.fullmatch(value):
            self.add(field, rule)
        return value

    def decimal(self, value: str, field: str) -> Decimal | None:
        problem = _decimal_problem(value, positive=True)
        if problem is not None:
            self.add(field, problem)
            return None
        return Decimal(value)

    def enum(self, value: K, table: Mapping[K, E], field: str, names: Sequence[str]) -> E | None:
        # Proto3 enums are open: an unknown number arrives intact and must be
        # refused just like UNSPECIFIED.
        found = table.get(value)
        if found is None:
            self.add(field, f"must be one of {', '.join(names)}")
        return found

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument(self.items)


_SIDE_NAMES = [pb.Side.Name(v) for v in SIDE_FROM_PROTO]
_ORDER_TYPE_NAMES = [pb.OrderType.Name(v) for v in ORDER_TYPE_FROM_PROTO]
_TIME_IN_FORCE_NAMES = [pb.TimeInForce.Name(v) for v in TIME_IN_FORCE_FROM_PROTO]

# Which prices each order type requires; every other price must be empty.
_REQUIRED_PRICES: dict[OrderType, frozenset[str]] = {
    OrderType.MARKET: frozenset(),
    OrderType.LIMIT: frozenset({"limit_price"}),
    OrderType.STOP: frozenset({"stop_price"}),
    OrderType.STOP_LIMIT: frozenset({"limit_price", "stop_price"}),
}


def place_order_from_proto(req: pb.PlaceOrderRequest) -> OrderSpec:
    """Validate a PlaceOrder request and return the order it asks for."""
    v = _Violations()
    account = v.text(req.account, "account", _ACCOUNT, _ACCOUNT_RULE)
    client_order_id = v.text(
        req.client_order_id, "client_order_id", _CLIENT_ORDER_ID, _CLIENT_ORDER_ID_RULE
    )
    symbol = v.text(req.symbol, "symbol", _SYMBOL, _SYMBOL_RULE)
    side = v.enum(req.side, SIDE_FROM_PROTO, "side", _SIDE_NAMES)
    order_type = v.enum(req.order_type, ORDER_TYPE_FROM_PROTO, "order_type", _ORDER_TYPE_NAMES)
    time_in_force = v.enum(
        req.time_in_force, TIME_IN_FORCE_FROM_PROTO, "time_in_force", _TIME_IN_FORCE_NAMES
    )
    quantity = v.decimal(req.quantity, "quantity")

    prices: dict[str, Decimal | None] = {}
    for field, text in (("limit_price", req.limit_price), ("stop_price", req.stop_price)):
        if text:
            # Checked as a decimal even when the type is invalid or forbids
            # the price, so that every problem is reported at once.
            prices[field] = v.decimal(text, field)
        if order_type is None:
            continue
        required = field in _REQUIRED_PRICES[order_type]
        if required and not text:
            v.add(field, f"is required for {pb.OrderType.Name(req.order_type)}")
        elif text and not required:
            v.add(field, f"must be empty for {pb.OrderType.Name(req.order_type)}")

    if (
        order_type is not None
        and time_in_force is not None
        and time_in_force not in ALLOWED_TIME_IN_FORCE[order_type]
    ):
        allowed = sorted(
            pb.TimeInForce.Name(p)
            for p, d in TIME_IN_FORCE_FROM_PROTO.items()
            if d in ALLOWED_TIME_IN_FORCE[order_type]
        )
        v.add(
            "time_in_force",
            f"{pb.TimeInForce.Name(req.time_in_force)} is not allowed for "
            f"{pb.OrderType.Name(req.order_type)}; allowed: {', '.join(allowed)}",
        )

    v.raise_if_any()
    assert side is not None
    assert order_type is not None
    assert time_in_force is not None
    assert quantity is not None
    return OrderSpec(
        account=account,
        client_order_id=client_order_id,
        symbol=symbol,
        side=side,
        order_type=order_type,
        quantity=quantity,
        time_in_force=time_in_force,
        limit_price=prices.get("limit_price"),
        stop_price=prices.get("stop_price"),
    )


def order_ref_from_proto(
    req: pb.CancelOrderRequest | pb.GetOrderStatusRequest | pb.ReplaceOrderRequest,
    v: _Violations | None = None,
) -> OrderRef:
    """Validate a Cancel/GetOrderStatus request and return the order it names.

    Given ``v``, its problems are added there too (and raised with them).
    """
    if v is None:
        v = _Violations()
    account = v.text(req.account, "account", _ACCOUNT, _ACCOUNT_RULE)
    which = req.WhichOneof("order_ref")
    if which is None:
        v.add("order_id", "set exactly one of order_id or client_order_id")
    elif which == "order_id":
        v.text(req.order_id, "order_id", _ORDER_ID, _ORDER_ID_RULE)
    else:
        v.text(req.client_order_id, "client_order_id", _CLIENT_ORDER_ID, _CLIENT_ORDER_ID_RULE)
    v.raise_if_any()
    if which == "order_id":
        return OrderRef(account=account, order_id=req.order_id)
    return OrderRef(account=account, client_order_id=req.client_order_id)


def _symbols(v: _Violations, values: Sequence[str], field: str) -> frozenset[str]:
    if len(values) > MAX_FILTER_ENTRIES:
        v.add(field, f"must have at most {MAX_FILTER_ENTRIES} entries")
        return frozenset()
    for i, symbol in enumerate(values):
        v.text(symbol, f"{field}[{i}]", _SYMBOL, _SYMBOL_RULE)
    return frozenset(values)


def _filter_hash(account: str, open_only: bool, symbols: frozenset[str]) -> str:
    canonical = json.dumps([account, open_only, sorted(symbols)], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode_page_token(query: ListOrdersQuery, last_created_sequence: int) -> str:
    """Return the token for the page after ``last_created_sequence`` of ``query``.

    The token is opaque to clients; it binds the account and filters (by hash)
    so that a token reused with other filters is refused, not misapplied.
    """
    body = {
        "v": _PAGE_TOKEN_VERSION,
        "after": last_created_sequence,
        "f": _filter_hash(query.account, query.open_only, query.symbols),
    }
    raw = json.dumps(body, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode_page_token(token: str, expected_hash: str) -> int | str:
    """Return the ``after`` sequence in ``token``, or a description of its problem."""
    malformed = "is not a page token from this gateway; pass next_page_token unchanged"
    if len(token) > _MAX_PAGE_TOKEN_CHARS or not _PAGE_TOKEN_CHARS.fullmatch(token):
        return malformed
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body = json.loads(raw)
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        return malformed
    if not isinstance(body, dict) or set(body) != {"v", "after", "f"}:
        return malformed
    after, filter_hash = body["after"], body["f"]
    if body["v"] != _PAGE_TOKEN_VERSION or type(after) is not int or not 0 <= after <= MAX_SEQUENCE:
        return malformed
    if filter_hash != expected_hash:
        return "was issued for another account or other filters"
    return after


def list_query_from_proto(req: pb.ListOrdersRequest) -> ListOrdersQuery:
    """Validate a ListOrders request and return the page it asks for."""
    v = _Violations()
    account = v.text(req.account, "account", _ACCOUNT, _ACCOUNT_RULE)
    symbols = _symbols(v, req.symbols, "symbols")
    after = 0
    if req.page_token:
        decoded = _decode_page_token(req.page_token, _filter_hash(account, req.open_only, symbols))
        if isinstance(decoded, str):
            v.add("page_token", decoded)
        else:
            after = decoded
    v.raise_if_any()
    page_size = req.page_size or DEFAULT_PAGE_SIZE
    return ListOrdersQuery(
        account=account,
        page_size=min(page_size, MAX_PAGE_SIZE),
        open_only=req.open_only,
        symbols=symbols,
        after_created_sequence=after,
    )


def accounts_named(request: object) -> Sequence[str]:
    """Return the accounts an ExecutionService request names, before validation.

    Authorization asks this (it must decide before the handler validates);
    the fields are the ones the functions here validate as accounts.
    """
    if isinstance(request, pb.SubscribeUpdatesRequest):
        return tuple(request.accounts)
    if isinstance(request, _ONE_ACCOUNT):
        return (request.account,)
    if isinstance(request, pb.HaltTradingRequest | pb.ResumeTradingRequest):
        return (request.scope_account,) if request.scope_account else ()
    if isinstance(request, pb.GetRiskLimitsRequest) and request.account:
        return (request.account,)
    return ()


_ONE_ACCOUNT = (
    pb.PlaceOrderRequest,
    pb.CancelOrderRequest,
    pb.GetOrderStatusRequest,
    pb.ListOrdersRequest,
    pb.ReplaceOrderRequest,
    pb.CancelAllOrdersRequest,
    pb.GetPositionsRequest,
)


def grant_subscription(request: object, accounts: Sequence[str]) -> None:
    """Make a SubscribeUpdates request naming no account name ``accounts``.

    Authorization narrows "every account" to what the caller was granted;
    the handler then validates and filters as if the client had named them.
    """
    if isinstance(request, pb.SubscribeUpdatesRequest) and not request.accounts:
        request.accounts.extend(accounts)


def subscription_from_proto(req: pb.SubscribeUpdatesRequest) -> SubscriptionFilter:
    """Validate a SubscribeUpdates request and return the filter it asks for."""
    v = _Violations()
    if len(req.accounts) > MAX_FILTER_ENTRIES:
        v.add("accounts", f"must have at most {MAX_FILTER_ENTRIES} entries")
    else:
        for i, account in enumerate(req.accounts):
            v.text(account, f"accounts[{i}]", _ACCOUNT, _ACCOUNT_RULE)
    symbols = _symbols(v, req.symbols, "symbols")
    if req.snapshot and req.HasField("after_sequence"):
        v.add("snapshot", "cannot be combined with after_sequence: resume or start cold")
    v.raise_if_any()
    after: int | None = None
    if req.HasField("after_sequence"):
        # No sequence exceeds MAX_SEQUENCE, so clamping keeps the meaning
        # ("nothing yet") while keeping the number storable.
        after = min(req.after_sequence, MAX_SEQUENCE)
    return SubscriptionFilter(
        accounts=frozenset(req.accounts),
        symbols=symbols,
        after_sequence=after,
        snapshot=req.snapshot,
    )


def replace_order_from_proto(req: pb.ReplaceOrderRequest) -> tuple[OrderRef, ReplaceTerms]:
    """Validate a ReplaceOrder request: the order it names and the replace it asks.

    What depends on the order (a price its type lacks, a quantity below its
    fills, its status) is the engine's to check: only it knows the order.
    """
    v = _Violations()
    replace_id = v.text(req.replace_id, "replace_id", _CLIENT_ORDER_ID, _CLIENT_ORDER_ID_RULE)
    terms: dict[str, Decimal | None] = {}
    for field, text in (
        ("quantity", req.quantity),
        ("limit_price", req.limit_price),
        ("stop_price", req.stop_price),
    ):
        if text:
            terms[field] = v.decimal(text, field)
    if not (req.quantity or req.limit_price or req.stop_price):
        v.add("quantity", "set at least one of quantity, limit_price and stop_price")
    # Raises with every problem at once: the terms' (found above) and the ref's.
    ref = order_ref_from_proto(req, v)
    return ref, ReplaceTerms(
        replace_id,
        quantity=terms.get("quantity"),
        limit_price=terms.get("limit_price"),
        stop_price=terms.get("stop_price"),
    )


def cancel_all_from_proto(req: pb.CancelAllOrdersRequest) -> tuple[str, str | None, Side | None]:
    """Validate a CancelAllOrders request: the account, and the symbol and side if given."""
    v = _Violations()
    account = v.text(req.account, "account", _ACCOUNT, _ACCOUNT_RULE)
    if req.symbol:
        v.text(req.symbol, "symbol", _SYMBOL, _SYMBOL_RULE)
    side = None
    if req.side != pb.SIDE_UNSPECIFIED:
        side = v.enum(req.side, SIDE_FROM_PROTO, "side", _SIDE_NAMES)
    v.raise_if_any()
    return account, req.symbol or None, side


def positions_query_from_proto(req: pb.GetPositionsRequest) -> tuple[str, frozenset[str]]:
    """Validate a GetPositions request; return its account and symbols (empty: all)."""
    v = _Violations()
    account = v.text(req.account, "account", _ACCOUNT, _ACCOUNT_RULE)
    symbols = _symbols(v, req.symbols, "symbols")
    v.raise_if_any()
    return account, symbols


def halt_from_proto(req: pb.HaltTradingRequest) -> tuple[str, TradingMode]:
    """Validate a HaltTrading request; return its scope ("" = every account) and mode."""
    v = _Violations()
    scope = _optional_account(v, req.scope_account, "scope_account")
    mode = v.enum(req.mode, HALT_MODE_FROM_PROTO, "mode", _HALT_MODES)
    _reason(v, req.reason)
    v.raise_if_any()
    assert mode is not None
    return scope, mode


def resume_from_proto(req: pb.ResumeTradingRequest) -> str:
    """Validate a ResumeTrading request; return its scope ("" = the gateway-wide halt)."""
    v = _Violations()
    scope = _optional_account(v, req.scope_account, "scope_account")
    _reason(v, req.reason)
    v.raise_if_any()
    return scope


def limits_account_from_proto(req: pb.GetRiskLimitsRequest) -> str:
    """Validate a GetRiskLimits request; return its account ("" = all)."""
    v = _Violations()
    account = _optional_account(v, req.account, "account")
    v.raise_if_any()
    return account


_HALT_MODES = ("TRADING_MODE_HALTED", "TRADING_MODE_REDUCING")
MAX_REASON_CHARS = 512


def _optional_account(v: _Violations, value: str, field: str) -> str:
    return v.text(value, field, _ACCOUNT, _ACCOUNT_RULE) if value else ""


def _reason(v: _Violations, reason: str) -> None:
    if len(reason) > MAX_REASON_CHARS:
        v.add("reason", f"must be at most {MAX_REASON_CHARS} characters")
