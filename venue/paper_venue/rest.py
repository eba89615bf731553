"""The venue's REST endpoints: the ``/v2`` subset of Alpaca's Trading API, plus admin.

``/v2/orders`` (POST, GET, DELETE), ``/v2/orders/{id}`` (GET, PATCH, DELETE),
``/v2/orders:by_client_order_id`` and ``/v2/account`` answer as Alpaca does.
``/_venue/...`` is the venue's own: drop stream connections, change faults,
set a price, so that tests in other processes can steer it.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import WSCloseCode, web

from paper_venue.config import VenueAccount
from paper_venue.state import STATE, VenueState
from paper_venue.wire import (
    CODE_INTERNAL,
    CODE_RATE_LIMIT,
    CODE_UNAUTHORIZED,
    MAX_CLIENT_ORDER_ID,
    VenueError,
    dumps,
    invalid,
    loads,
    parse_order_request,
    parse_timestamp,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_MAX_LIMIT = 500


def json_response(value: object, status: int = 200) -> web.Response:
    return web.Response(text=dumps(value), status=status, content_type="application/json")


def error_response(error: VenueError, headers: dict[str, str] | None = None) -> web.Response:
    response = json_response(error.body(), error.status)
    response.headers.update(headers or {})
    return response


def account_of(request: web.Request) -> VenueAccount:
    """Return the caller's account; the middleware has already refused strangers."""
    account = _authenticate(request)
    if account is None:
        raise VenueError(401, CODE_UNAUTHORIZED, "request is not authorized")
    return account


def _authenticate(request: web.Request) -> VenueAccount | None:
    return request.app[STATE].authenticate(
        request.headers.get("APCA-API-KEY-ID"), request.headers.get("APCA-API-SECRET-KEY")
    )


@web.middleware
async def rest_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate, apply rate limit and faults, and turn VenueErrors into Alpaca errors."""
    path = request.path
    if not path.startswith(("/v2/", "/_venue/")):
        return await handler(request)
    state = request.app[STATE]
    account = _authenticate(request)
    if account is None:
        return error_response(VenueError(401, CODE_UNAUTHORIZED, "request is not authorized"))
    if path.startswith("/_venue/"):
        return await _guarded(request, handler)

    route = request.match_info.route.resource
    state.calls[(request.method, route.canonical if route else path)] += 1
    faults = state.faults
    if faults.latency:
        await asyncio.sleep(faults.latency)
    limit_headers, over = _count_call(state, account.name)
    if over or state.rng.random() < faults.rate_limit_rate:
        if not over:
            # An injected 429: the window "resets" in a second. A limit is
            # named only if the venue enforces one: a client that believes
            # the header must not be slowed to a limit that does not exist.
            limit_headers = {
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(math.ceil(time.time()) + 1),
            }
            if state.config.calls_per_minute is not None:
                limit_headers["X-RateLimit-Limit"] = str(state.config.calls_per_minute)
        error = VenueError(429, CODE_RATE_LIMIT, "rate limit exceeded")
        return error_response(error, limit_headers)
    if state.rng.random() < faults.error_rate:
        return error_response(VenueError(500, CODE_INTERNAL, "internal server error"))
    response = await _guarded(request, handler)
    acted = request.method in ("POST", "PATCH", "DELETE") and response.status < 300
    if acted and state.rng.random() < faults.lost_answer_rate:
        # The call took effect; the caller only learns that it failed.
        return error_response(VenueError(500, CODE_INTERNAL, "internal server error"))
    response.headers.update(limit_headers)
    return response


async def _guarded(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except VenueError as error:
        return error_response(error)


def _count_call(state: VenueState, account: str) -> tuple[dict[str, str], bool]:
    """Count one call in the account's one-minute window; return headers and whether over."""
    limit = state.config.calls_per_minute
    if limit is None:
        return {}, False
    minute = int(time.time() // 60)
    window, calls = state.windows.get(account, (minute, 0))
    if window != minute:
        calls = 0
    calls += 1
    state.windows[account] = (minute, calls)
    headers = {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(max(limit - calls, 0)),
        "X-RateLimit-Reset": str((minute + 1) * 60),
    }
    return headers, calls > limit


# ------------------------------------------------------------------ /v2


async def post_order(request: web.Request) -> web.Response:
    try:
        body = loads(await request.read())
    except ValueError:
        raise VenueError(400, 40010000, "request body format is invalid") from None
    order_request = parse_order_request(body)
    state = request.app[STATE]
    spec = order_request.spec(account_of(request).name)
    key = (spec.account, spec.client_order_id)
    state.submissions[key] = state.submissions.get(key, 0) + 1
    reject = state.rng.random() < state.faults.late_reject_rate
    return json_response(state.venue.submit(spec, reject_later=reject))


async def list_orders(request: web.Request) -> web.Response:
    query = request.query
    status = query.get("status", "open")
    direction = query.get("direction", "desc")
    if status not in ("open", "closed", "all"):
        raise invalid(f"invalid status: {status}")
    if direction not in ("asc", "desc"):
        raise invalid(f"invalid direction: {direction}")
    try:
        limit = int(query.get("limit", "50"))
    except ValueError:
        raise invalid("invalid limit") from None
    if not 0 < limit <= _MAX_LIMIT:
        raise invalid(f"limit must be within 1..{_MAX_LIMIT}")
    symbols = frozenset(s.strip().upper() for s in query.get("symbols", "").split(",") if s)
    orders = request.app[STATE].venue.list(
        account_of(request).name,
        status=status,
        limit=limit,
        direction=direction,
        after=_time_param(query.get("after")),
        until=_time_param(query.get("until")),
        symbols=symbols,
    )
    return json_response(orders)


async def get_order(request: web.Request) -> web.Response:
    venue = request.app[STATE].venue
    return json_response(venue.get(account_of(request).name, request.match_info["order_id"]))


async def get_by_client_order_id(request: web.Request) -> web.Response:
    client_order_id = request.query.get("client_order_id", "")
    if not client_order_id:
        raise invalid("client_order_id is required")
    venue = request.app[STATE].venue
    return json_response(venue.by_client_order_id(account_of(request).name, client_order_id))


async def delete_order(request: web.Request) -> web.Response:
    venue = request.app[STATE].venue
    venue.cancel(account_of(request).name, request.match_info["order_id"])
    return web.Response(status=204)


async def patch_order(request: web.Request) -> web.Response:
    """Replace an order (Alpaca's ``PATCH /v2/orders/{id}``): answer with the new order."""
    try:
        body = loads(await request.read())
    except ValueError:
        raise VenueError(400, 40010000, "request body format is invalid") from None
    if not isinstance(body, dict):
        raise VenueError(400, 40010000, "request body format is invalid")
    terms = {name: _decimal_field(body, name) for name in ("qty", "limit_price", "stop_price")}
    if all(value is None for value in terms.values()):
        raise invalid("qty, limit_price or stop_price is required")
    qty = terms["qty"]
    if qty is not None and qty <= 0:
        raise invalid("qty must be > 0")
    client_order_id = body.get("client_order_id") or str(uuid.uuid4())
    if not isinstance(client_order_id, str) or len(client_order_id) > MAX_CLIENT_ORDER_ID:
        raise invalid(f"client_order_id must be no more than {MAX_CLIENT_ORDER_ID} characters")
    tif = body.get("time_in_force")
    venue = request.app[STATE].venue
    replacement = venue.replace(
        account_of(request).name,
        request.match_info["order_id"],
        qty=qty,
        limit_price=terms["limit_price"],
        stop_price=terms["stop_price"],
        time_in_force=None if tif is None else str(tif),
        client_order_id=client_order_id,
    )
    return json_response(replacement)


async def delete_orders(request: web.Request) -> web.Response:
    """Cancel every open order (Alpaca's ``DELETE /v2/orders``): 207 with one entry each."""
    venue = request.app[STATE].venue
    return json_response(venue.cancel_all(account_of(request).name), status=207)


def _decimal_field(body: dict[str, Any], name: str) -> Decimal | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise invalid(f"invalid {name}") from None
    if not number.is_finite():
        raise invalid(f"invalid {name}")
    return number


async def get_account(request: web.Request) -> web.Response:
    account = account_of(request)
    # The venue keeps no cash ledger: balances are fixed, generous numbers.
    cash = "100000"
    return json_response(
        {
            "id": account.id,
            "account_number": account.name,
            "status": "ACTIVE",
            "currency": "USD",
            "cash": cash,
            "buying_power": cash,
            "equity": cash,
            "portfolio_value": cash,
            "pattern_day_trader": False,
            "trading_blocked": False,
            "transfers_blocked": False,
            "account_blocked": False,
            "trade_suspended_by_user": False,
            "shorting_enabled": True,
            "multiplier": "1",
            "created_at": "2024-01-01T00:00:00.000000Z",
        }
    )


def _time_param(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        raise invalid(f"invalid timestamp: {value}") from None


# --------------------------------------------------------------- /_venue


async def drop_streams(request: web.Request) -> web.Response:
    """Close every stream connection, as a network blip would."""
    state = request.app[STATE]
    sockets = list(state.sockets)
    for ws in sockets:
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"dropped by venue")
    return json_response({"dropped": len(sockets)})


async def put_faults(request: web.Request) -> web.Response:
    """Change fault rates while running: a JSON object of ``Faults`` fields."""
    body: Any = loads(await request.read())
    if not isinstance(body, dict):
        raise invalid("expected a JSON object")
    try:
        changes = {str(k): float(v) for k, v in body.items()}
        faults = request.app[STATE].set_faults(**changes)
    except (TypeError, ValueError) as exc:
        raise invalid(str(exc)) from None
    return json_response(
        {
            "latency": faults.latency,
            "error_rate": faults.error_rate,
            "lost_answer_rate": faults.lost_answer_rate,
            "rate_limit_rate": faults.rate_limit_rate,
            "stream_delay": faults.stream_delay,
            "late_reject_rate": faults.late_reject_rate,
        }
    )


async def set_price(request: web.Request) -> web.Response:
    """Force a symbol's reference price: ``{"symbol": "AAPL", "price": "101.5"}``."""
    body: Any = loads(await request.read())
    try:
        symbol = str(body["symbol"]).upper()
        price = Decimal(str(body["price"]))
        request.app[STATE].venue.set_price(symbol, price)
    except (KeyError, TypeError, InvalidOperation, ValueError) as exc:
        raise invalid(f"invalid price request: {exc}") from None
    return json_response({"symbol": symbol, "price": price})


async def submissions(request: web.Request) -> web.Response:
    """Count order submissions per client_order_id, duplicates included."""
    counts = request.app[STATE].submissions
    return json_response(
        [{"account": a, "client_order_id": c, "count": n} for (a, c), n in counts.items()]
    )


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v2/orders", post_order)
    app.router.add_get("/v2/orders", list_orders)
    # Registered before /v2/orders/{order_id}, although the colon keeps them apart anyway.
    app.router.add_get("/v2/orders:by_client_order_id", get_by_client_order_id)
    app.router.add_get("/v2/orders/{order_id}", get_order)
    app.router.add_delete("/v2/orders/{order_id}", delete_order)
    app.router.add_patch("/v2/orders/{order_id}", patch_order)
    app.router.add_delete("/v2/orders", delete_orders)
    app.router.add_get("/v2/account", get_account)
    app.router.add_post("/_venue/streams/drop", drop_streams)
    app.router.add_put("/_venue/faults", put_faults)
    app.router.add_post("/_venue/prices", set_price)
    app.router.add_get("/_venue/submissions", submissions)
