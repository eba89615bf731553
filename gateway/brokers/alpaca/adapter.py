"""``AlpacaBroker``: the ``Broker`` protocol over Alpaca's Trading API v2.

Commands go over REST (``POST/GET/PATCH/DELETE /v2/orders``); execution reports
come from the ``trade_updates`` WebSocket, which reconnects by itself. Both
use one aiohttp session. Alpaca's words and errors are translated in
``mapping``; this module only moves requests and messages.

One adapter is one Alpaca account, serving one gateway account
(``AlpacaConfig.account``); orders for any other account are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp

from gateway.brokers.alpaca.config import AlpacaConfig, check_live_gate
from gateway.brokers.alpaca.limiter import Priority, RateLimiter
from gateway.brokers.alpaca.mapping import (
    error_from_response,
    is_duplicate_client_order_id,
    loads,
    order_matches_spec,
    order_request,
    order_state,
    parse_time,
    replace_request,
    replacement_client_order_id,
    report_from_trade_update,
    to_decimal,
    transport_error,
)
from gateway.brokers.base import (
    BrokerOrderState,
    ExecutionReport,
    ReplaceAck,
    ReportKind,
    SubmitAck,
)
from gateway.brokers.errors import (
    BrokerError,
    BrokerRejected,
    BrokerTimeout,
    BrokerUnavailable,
)
from gateway.domain import OrderSpec

log = logging.getLogger(__name__)

# Alpaca's largest page of GET /v2/orders.
_PAGE_LIMIT = 500
_TERMINAL_REPORTS = frozenset({ReportKind.CANCELED, ReportKind.EXPIRED, ReportKind.REJECTED})
_ENDED = frozenset({"filled", "canceled", "expired", "rejected", "replaced"})
# How many replacements ``order_status`` follows from an order to its newest.
_MOST_REPLACES = 16


class AlpacaBroker:
    """Trade one Alpaca account (paper by default) for one gateway account.

    After every stream reconnect, ``reconnects`` grows and each ``on_reconnect``
    listener is called (synchronously, from the stream task: schedule work,
    do not block). Events Alpaca sent while the stream was down are not
    replayed; reconcile with ``order_status``/``open_orders`` then.
    """

    name: str = "alpaca"

    def __init__(
        self,
        config: AlpacaConfig,
        *,
        on_reconnect: Callable[[], None] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        # Refuse a live endpoint before anything is opened.
        check_live_gate(config, environ)
        self._config = config
        self._listeners: list[Callable[[], None]] = [on_reconnect] if on_reconnect else []
        self._session: aiohttp.ClientSession | None = None
        self._stream: TradeUpdatesStream | None = None
        # Overload: when full, the stream reader waits, and the WebSocket's
        # own buffers and TCP push back on the venue. Never a dropped fill.
        # One item per trade update frame (each carries one event).
        self._queue: asyncio.Queue[Sequence[ExecutionReport] | None] = asyncio.Queue(
            maxsize=config.report_queue_size
        )
        # Cumulative filled quantity per live Alpaca order, for fill events
        # that carry no ``qty`` (older streams); forgotten when the order ends.
        self._filled: dict[str, Decimal] = {}
        self._reconnects = 0
        self._connected = False
        self._closed = False
        self.limiter = RateLimiter(config.calls_per_minute, order_reserve=config.order_call_reserve)

    @property
    def config(self) -> AlpacaConfig:
        return self._config

    @property
    def reconnects(self) -> int:
        """How many times the ``trade_updates`` stream was re-established."""
        return self._reconnects

    @property
    def stream_connected(self) -> bool:
        """Whether the ``trade_updates`` stream is up and listening right now."""
        return self._stream is not None and self._stream.connected.is_set()

    def add_reconnect_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every stream reconnect (not the first connect)."""
        self._listeners.append(listener)

    async def connect(self) -> None:
        """Check the credentials, open the stream; idempotent.

        Raise ``BrokerRejected`` for keys Alpaca refuses, ``BrokerUnavailable``
        when Alpaca cannot be reached.
        """
        if self._closed:
            raise BrokerUnavailable("alpaca broker is closed")
        if self._connected:
            return
        config = self._config
        self._session = aiohttp.ClientSession(
            headers=config.auth_headers(),
            timeout=aiohttp.ClientTimeout(
                total=config.request_timeout, connect=config.connect_timeout
            ),
        )
        try:
            await self._check_account()
            self._stream = TradeUpdatesStream(
                config, self._session, self._on_message, self._reconnected
            )
            await self._stream.start()
        except BaseException:
            await self._session.close()
            self._session = None
            raise
        self._connected = True
        log.info("alpaca broker connected to %s for account %r", config.base_url, config.account)

    async def close(self) -> None:
        """Stop the stream, close the session; every ``reports()`` iterator ends."""
        if self._closed:
            return
        self._closed = True
        self._connected = False
        if self._stream is not None:
            await self._stream.stop()
        if self._session is not None:
            await self._session.close()
        # Dropping unread reports also frees a stream reader blocked on a full queue.
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    async def submit(self, spec: OrderSpec) -> SubmitAck:
        """Place ``spec`` with ``client_order_id``; a duplicate answers with the existing order."""
        self._check_gateway_account(spec.account)
        status, headers, text = await self._call(
            "POST", "/v2/orders", body=order_request(spec), priority=Priority.ORDER
        )
        if 200 <= status < 300:
            return SubmitAck(str(_parse(text)["id"]))
        if not is_duplicate_client_order_id(status, text):
            raise error_from_response(status, headers, text, now=time.time())
        # A retry of a submit that did reach Alpaca: the order exists, find it.
        existing = await self._order_by_client_id(spec.client_order_id, Priority.ORDER)
        if existing is None:
            raise BrokerTimeout("alpaca reports a duplicate client_order_id it cannot find yet")
        if not order_matches_spec(existing, spec):
            raise BrokerRejected("client_order_id already used at alpaca for a different order")
        return SubmitAck(str(existing["id"]))

    async def cancel(self, account: str, client_order_id: str, broker_order_id: str) -> None:
        """Ask Alpaca to cancel; the ``canceled`` event arrives on the stream."""
        self._check_gateway_account(account)
        if not broker_order_id:
            existing = await self._order_by_client_id(client_order_id, Priority.ORDER)
            if existing is None:
                raise BrokerRejected("unknown order")
            broker_order_id = str(existing["id"])
        status, headers, text = await self._call(
            "DELETE", f"/v2/orders/{broker_order_id}", priority=Priority.ORDER
        )
        if 200 <= status < 300:
            return
        if status == 404:
            raise BrokerRejected("unknown order")
        raise error_from_response(status, headers, text, now=time.time())

    async def replace(
        self,
        account: str,
        client_order_id: str,
        broker_order_id: str,
        spec: OrderSpec,
        replace_id: str,
    ) -> ReplaceAck:
        """Amend with ``PATCH /v2/orders/{id}``; answer with the replacement's new id.

        Alpaca replaces by making a new order (``replaced_by``/``replaces``
        link the two); it is named from ``client_order_id`` and
        ``replace_id``, so its events map to the same gateway order.
        """
        self._check_gateway_account(account)
        if not broker_order_id:
            current = await self.order_status(account, client_order_id)
            if current is None:
                raise BrokerRejected("unknown order")
            broker_order_id = current.broker_order_id
        body = replace_request(spec, replacement_client_order_id(client_order_id, replace_id))
        status, headers, text = await self._call(
            "PATCH", f"/v2/orders/{broker_order_id}", body=body, priority=Priority.ORDER
        )
        if 200 <= status < 300:
            return ReplaceAck(str(_parse(text)["id"]))
        if status == 404:
            raise BrokerRejected("unknown order")
        raise error_from_response(status, headers, text, now=time.time())

    async def cancel_all_orders(self, account: str) -> None:
        """Cancel every open order with ``DELETE /v2/orders``; the events follow.

        Alpaca answers 207 with one entry per order; an order it could not
        cancel stays open there, and reconciliation cancels it on its own.
        """
        self._check_gateway_account(account)
        status, headers, text = await self._call("DELETE", "/v2/orders", priority=Priority.ORDER)
        if not 200 <= status < 300:
            raise error_from_response(status, headers, text, now=time.time())

    async def reports(self) -> AsyncIterator[Sequence[ExecutionReport]]:
        """Yield each stream frame's execution reports until ``close()``."""
        while not self._closed:
            reports = await self._queue.get()
            if reports is None:
                # Pass the wake-up on to the next reader, if there is one.
                if not self._queue.full():
                    self._queue.put_nowait(None)
                return
            yield reports

    async def order_status(self, account: str, client_order_id: str) -> BrokerOrderState | None:
        """Return Alpaca's view of one order, or None if it has none (or not our account)."""
        if account != self._config.account:
            return None
        order = await self._order_by_client_id(client_order_id)
        # A replaced order lives on in its replacement: follow the chain to it.
        for _ in range(_MOST_REPLACES):
            if order is None or order.get("status") != "replaced" or not order.get("replaced_by"):
                break
            order = await self._order_by_id(str(order["replaced_by"]))
        return None if order is None else order_state(order, self._config.account)

    async def open_orders(self, account: str | None = None) -> list[BrokerOrderState]:
        """Return Alpaca's open orders, oldest first (none for another account)."""
        if account not in (None, self._config.account):
            return []
        params = {"status": "open", "limit": str(_PAGE_LIMIT), "direction": "asc"}
        return await self._pages(params, self._config.bulk_pages)

    async def orders_since(self, account: str, since: datetime) -> list[BrokerOrderState]:
        """Return the account's orders submitted after ``since``, open or not, oldest first.

        One call per page of 500 (``GET /v2/orders?status=all``), at most
        ``bulk_pages`` pages: reconciliation asks singly for whatever is
        beyond them.
        """
        if account != self._config.account:
            return []
        params = {
            "status": "all",
            "limit": str(_PAGE_LIMIT),
            "direction": "asc",
            "nested": "true",
            "after": _rfc3339(since),
        }
        return await self._pages(params, self._config.bulk_pages)

    # ------------------------------------------------------------ internals

    async def _check_account(self) -> None:
        status, headers, text = await self._call("GET", "/v2/account")
        if status in (401, 403):
            raise BrokerRejected(
                f"alpaca refused the credentials (HTTP {status}): check APCA_API_KEY_ID and "
                f"APCA_API_SECRET_KEY are keys of {self._config.base_url}"
            )
        if not 200 <= status < 300:
            raise error_from_response(status, headers, text, now=time.time())
        account = _parse(text)
        if account.get("trading_blocked") or account.get("account_blocked"):
            log.warning("alpaca account %s is blocked from trading", account.get("account_number"))

    async def _pages(self, params: dict[str, str], most: int) -> list[BrokerOrderState]:
        """Read up to ``most`` pages of ``GET /v2/orders``; each order once, by id."""
        states: dict[str, BrokerOrderState] = {}
        for _ in range(most):
            page = await self._get_json("/v2/orders", params)
            if not isinstance(page, list):
                raise BrokerTimeout("alpaca: GET /v2/orders did not return a list")
            fresh = 0
            for order in page:
                if isinstance(order, dict) and order.get("status") == "replaced":
                    # Its replacement is the order now (listed too, or asked singly).
                    continue
                state = _state_or_none(order, self._config.account)
                if state is not None and state.broker_order_id not in states:
                    fresh += 1
                    states[state.broker_order_id] = state
            last = parse_time(page[-1].get("submitted_at")) if page else None
            if len(page) < _PAGE_LIMIT or not fresh or last is None:
                break
            # Pages are cut by submission time (exclusive), Alpaca's only
            # cursor: step back a microsecond so that orders sharing the last
            # one's time are not skipped. The repeats are dropped by id.
            params["after"] = _rfc3339(last - timedelta(microseconds=1))
        return list(states.values())

    async def _order_by_client_id(
        self, client_order_id: str, priority: Priority = Priority.QUERY
    ) -> dict[str, Any] | None:
        status, headers, text = await self._call(
            "GET",
            "/v2/orders:by_client_order_id",
            params={"client_order_id": client_order_id},
            priority=priority,
        )
        if status == 404:
            return None
        if not 200 <= status < 300:
            raise error_from_response(status, headers, text, now=time.time())
        return _parse(text)

    async def _order_by_id(self, order_id: str) -> dict[str, Any] | None:
        status, headers, text = await self._call("GET", f"/v2/orders/{order_id}")
        if status == 404:
            return None
        if not 200 <= status < 300:
            raise error_from_response(status, headers, text, now=time.time())
        return _parse(text)

    async def _get_json(self, path: str, params: Mapping[str, str]) -> Any:
        status, headers, text = await self._call("GET", path, params=params)
        if not 200 <= status < 300:
            raise error_from_response(status, headers, text, now=time.time())
        try:
            return loads(text)
        except ValueError:
            raise BrokerTimeout(f"alpaca: unreadable answer to GET {path}") from None

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, str] | None = None,
        priority: Priority = Priority.QUERY,
    ) -> tuple[int, Mapping[str, str], str]:
        """Send one request when the rate limit allows ``priority``; return status,
        headers and body text, or raise a broker error."""
        session = self._session
        if session is None or session.closed:
            raise BrokerUnavailable("alpaca broker is not connected")
        url = self._config.base_url.rstrip("/") + path
        await self.limiter.acquire(priority)
        try:
            async with session.request(method, url, params=params, json=body) as response:
                self.limiter.observe(response.status, response.headers)
                return response.status, response.headers, await response.text()
        except BrokerError:
            raise
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise transport_error(exc) from exc

    def _check_gateway_account(self, account: str) -> None:
        if account != self._config.account:
            raise BrokerRejected(
                f"account {account!r} is not traded here (alpaca serves {self._config.account!r})"
            )

    async def _on_message(self, message: dict[str, Any]) -> None:
        if message.get("stream") != "trade_updates":
            return
        data = message.get("data")
        if not isinstance(data, dict):
            return
        try:
            order = data["order"]
            order_id = str(order["id"])
            report = report_from_trade_update(
                data, self._config.account, filled_before=self._filled.get(order_id, Decimal(0))
            )
            filled = to_decimal(order.get("filled_qty")) or Decimal(0)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # Unusable as it is; the next reconciliation settles the order.
            log.error("alpaca: unreadable trade update %r: %s", data.get("event"), exc)
            return
        if report is None:
            return
        if report.kind is ReportKind.REPLACED and report.broker_order_id:
            # The replacement counts its fills on from the replaced order's.
            self._filled[report.broker_order_id] = filled
        if order.get("status") in _ENDED or report.kind in _TERMINAL_REPORTS:
            self._filled.pop(order_id, None)
        elif report.kind is ReportKind.FILL:
            self._filled[order_id] = filled
        if not self._closed:
            await self._queue.put((report,))

    def _reconnected(self) -> None:
        self._reconnects += 1
        log.warning("alpaca stream reconnected (%d); reconcile open orders", self._reconnects)
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:
                log.exception("on_reconnect listener failed")


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _state_or_none(order: object, account: str) -> BrokerOrderState | None:
    """An order of a list answer as a state; None (and a log line) if it is unreadable."""
    try:
        return order_state(order, account)  # type: ignore[arg-type]  # a non-dict fails below
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        log.error("alpaca: unreadable order in a list answer (%s): %.200r", exc, order)
        return None


def _parse(text: str) -> dict[str, Any]:
    """Parse a 2xx JSON object body; an unreadable one leaves the outcome unknown."""
    try:
        parsed = loads(text)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise BrokerTimeout("alpaca: unreadable answer")
    return parsed


MessageHandler = Callable[[dict[str, Any]], Awaitable[None]]

# A connection that stayed up this long was healthy: the next drop starts the
# backoff afresh. Shorter ones (a venue accepting and dropping at once) count
# as failures, so a flapping venue is not hammered in a tight loop.
_HEALTHY_AFTER = 2.0


class TradeUpdatesStream:
    """A self-healing ``trade_updates`` subscription that hands each message to ``handle``."""

    def __init__(
        self,
        config: AlpacaConfig,
        session: aiohttp.ClientSession,
        handle: MessageHandler,
        on_reconnect: Callable[[], None],
    ) -> None:
        self._config = config
        self._session = session
        self._handle = handle
        self._on_reconnect = on_reconnect
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    async def start(self) -> None:
        """Connect once (errors propagate: bad keys, venue down), then keep reading."""
        self._ws = await self._open()
        self._task = asyncio.create_task(self._run(), name="alpaca-trade-updates")

    async def stop(self) -> None:
        """Stop reading and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._ws is not None:
            await self._ws.close()
        self.connected.clear()

    async def _run(self) -> None:
        failures = 0
        while True:
            ws = self._ws
            if ws is not None:
                started = time.monotonic()
                try:
                    await self._read(ws)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - any failure means: reconnect
                    log.warning("alpaca trade_updates stream failed: %s", exc)
                finally:
                    self.connected.clear()
                    await ws.close()
                log.warning("alpaca trade_updates stream disconnected; reconnecting")
                healthy = time.monotonic() - started >= _HEALTHY_AFTER
                failures = 0 if healthy else failures + 1
                self._ws = None
            if failures:
                cap = min(
                    self._config.reconnect_backoff_max,
                    self._config.reconnect_backoff * 2 ** (failures - 1),
                )
                # Full jitter: many gateways dropped together come back spread out.
                await asyncio.sleep(random.uniform(0, cap))
            try:
                self._ws = await self._open()
            except BrokerRejected as exc:
                log.error("alpaca trade_updates stream refused: %s", exc)
                failures += 1
                continue
            except BrokerUnavailable as exc:
                log.warning("alpaca trade_updates reconnect failed: %s", exc)
                failures += 1
                continue
            self._on_reconnect()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                for item in _items(loads(message.data)):
                    await self._handle(item)
            elif message.type is aiohttp.WSMsgType.ERROR:
                raise BrokerUnavailable(f"stream error: {ws.exception()}")

    async def _open(self) -> aiohttp.ClientWebSocketResponse:
        """Connect, authenticate and listen; raise BrokerRejected for bad keys."""
        url = self._config.stream_endpoint
        try:
            ws = await self._session.ws_connect(
                url,
                heartbeat=self._config.stream_heartbeat,
                timeout=aiohttp.ClientWSTimeout(ws_close=self._config.request_timeout),
            )
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status in (401, 403):
                raise BrokerRejected(f"alpaca stream {url} refused the credentials") from exc
            raise BrokerUnavailable(f"alpaca stream {url}: HTTP {exc.status}") from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise BrokerUnavailable(f"alpaca stream {url}: {type(exc).__name__}: {exc}") from exc
        try:
            await self._handshake(ws)
        except BaseException:
            await ws.close()
            raise
        self.connected.set()
        return ws

    async def _handshake(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        config = self._config
        await ws.send_str(
            json.dumps({"action": "auth", "key": config.key_id, "secret": config.secret_key})
        )
        reply = await self._control(ws, "authorization")
        if reply.get("status") != "authorized":
            raise BrokerRejected(
                f"alpaca stream refused the credentials ({reply.get('status', '?')}): check "
                f"APCA_API_KEY_ID / APCA_API_SECRET_KEY are keys of {config.base_url}"
            )
        await ws.send_str(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
        reply = await self._control(ws, "listening")
        if "trade_updates" not in reply.get("streams", []):
            raise BrokerUnavailable(f"alpaca stream would not listen to trade_updates: {reply}")

    async def _control(self, ws: aiohttp.ClientWebSocketResponse, stream: str) -> dict[str, Any]:
        """Return the ``data`` of the next message on ``stream``, within the request timeout."""
        deadline = time.monotonic() + self._config.request_timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                message = await ws.receive(timeout=max(remaining, 0.001))
            except TimeoutError:
                raise BrokerUnavailable(f"alpaca stream: no {stream!r} reply") from None
            if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                raise BrokerUnavailable(f"alpaca stream closed while waiting for {stream!r}")
            for item in _items(loads(message.data)):
                if item.get("stream") == stream:
                    data = item.get("data")
                    return data if isinstance(data, dict) else {}


def _items(payload: object) -> list[dict[str, Any]]:
    """Return the messages of one frame: one object, or a list of them."""
    items = payload if isinstance(payload, list) else [payload]
    return [item for item in items if isinstance(item, dict)]
