"""The venue's ``/stream`` WebSocket: Alpaca's ``trade_updates`` protocol.

A client authenticates (``{"action": "auth", "key", "secret"}``, or the
older ``{"action": "authenticate", "data": {"key_id", "secret_key"}}``),
then listens (``{"action": "listen", "data": {"streams": [...]}}``) and
receives its account's events. Frames are binary, as on Alpaca's paper
endpoint. Like Alpaca, the venue does not replay events a client missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from paper_venue.config import VenueAccount
from paper_venue.state import STATE, VenueState
from paper_venue.wire import dumps, loads

log = logging.getLogger(__name__)

STREAMS = frozenset({"trade_updates"})


async def stream_handler(request: web.Request) -> web.WebSocketResponse:
    """Serve one stream connection until either side closes it."""
    state = request.app[STATE]
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    state.sockets.add(ws)
    # Overload: a client that falls this far behind is disconnected (and
    # must reconcile on reconnect), so one slow reader never stalls the venue.
    queue: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue(
        state.config.stream_queue_size
    )
    writer = asyncio.create_task(_write(ws, queue))
    loop = asyncio.get_running_loop()
    account: VenueAccount | None = None

    def deliver(owner: str, message: dict[str, Any]) -> None:
        if account is None or owner != account.name or ws.closed:
            return
        # Each message carries the moment it may go out: a lagging stream
        # (Faults.stream_delay) still delivers everything, in order.
        try:
            queue.put_nowait((loop.time() + state.faults.stream_delay, message))
        except asyncio.QueueFull:
            log.warning("stream client of %s too slow; disconnecting it", owner)
            asyncio.get_running_loop().create_task(ws.close(code=WSCloseCode.TRY_AGAIN_LATER))

    try:
        account = await _authenticate(ws, state, queue)
        if account is None:
            await queue.join()
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"unauthorized")
            return ws
        async for message in ws:
            if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                continue
            request_ = _parse(message.data)
            if request_.get("action") != "listen":
                continue
            data = request_.get("data")
            wanted = data.get("streams", []) if isinstance(data, dict) else []
            streams = sorted(STREAMS.intersection(s for s in wanted if isinstance(s, str)))
            # Register before acknowledging: every event after the ack is delivered.
            state.venue.unsubscribe(deliver)
            if streams:
                state.venue.subscribe(deliver)
            queue.put_nowait((0.0, {"stream": "listening", "data": {"streams": streams}}))
    finally:
        state.venue.unsubscribe(deliver)
        state.sockets.discard(ws)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
    return ws


async def _authenticate(
    ws: web.WebSocketResponse,
    state: VenueState,
    queue: asyncio.Queue[tuple[float, dict[str, Any]]],
) -> VenueAccount | None:
    """Wait for the auth message; queue the answer; return the account or None."""
    try:
        message = await ws.receive(timeout=state.config.auth_timeout)
    except TimeoutError:
        message = None
    account = None
    if message is not None and message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
        auth = _parse(message.data)
        if auth.get("action") == "auth":
            account = state.authenticate(_text(auth.get("key")), _text(auth.get("secret")))
        elif auth.get("action") == "authenticate" and isinstance(auth.get("data"), dict):
            data = auth["data"]
            account = state.authenticate(_text(data.get("key_id")), _text(data.get("secret_key")))
    status = "authorized" if account else "unauthorized"
    queue.put_nowait(
        (0.0, {"stream": "authorization", "data": {"status": status, "action": "authenticate"}})
    )
    return account


async def _write(
    ws: web.WebSocketResponse, queue: asyncio.Queue[tuple[float, dict[str, Any]]]
) -> None:
    loop = asyncio.get_running_loop()
    while True:
        not_before, message = await queue.get()
        try:
            wait = not_before - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not ws.closed:
                await ws.send_bytes(dumps(message).encode())
        except ConnectionError:
            pass  # the reader side notices the closed connection and cleans up
        finally:
            queue.task_done()


def _parse(data: str | bytes) -> dict[str, Any]:
    try:
        parsed = loads(data)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
