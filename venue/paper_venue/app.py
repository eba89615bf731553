"""The venue as an aiohttp application, and a server handle to run it on a port."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import WSCloseCode, web

from paper_venue.config import VenueConfig
from paper_venue.rest import add_routes, rest_middleware
from paper_venue.state import STATE, VenueState
from paper_venue.stream import stream_handler

log = logging.getLogger(__name__)


def create_app(config: VenueConfig) -> web.Application:
    """Build the venue: REST, the stream, and a background task that moves the market."""
    app = web.Application(middlewares=[rest_middleware])
    app[STATE] = VenueState.create(config)
    add_routes(app)
    app.router.add_get("/stream", stream_handler)
    app.cleanup_ctx.append(_ticker)
    app.on_shutdown.append(_close_streams)
    return app


async def _ticker(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE]
    interval = state.config.sim.tick_interval
    task = None
    if interval is not None:
        task = asyncio.create_task(_tick_forever(state, interval), name="venue-ticker")
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _tick_forever(state: VenueState, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        state.venue.tick()


async def _close_streams(app: web.Application) -> None:
    # Open WebSockets would hold the shutdown until their clients leave.
    for ws in list(app[STATE].sockets):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"venue shutting down")


class VenueServer:
    """A venue listening on a TCP port; ``start`` returns its base URL."""

    def __init__(self, config: VenueConfig) -> None:
        self.app = create_app(config)
        self._runner: web.AppRunner | None = None
        self.url = ""

    @property
    def state(self) -> VenueState:
        return self.app[STATE]

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on ``host:port`` (0 picks a free port); return ``http://host:port``."""
        runner = web.AppRunner(self.app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        bound = runner.addresses[0]
        display = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        self.url = f"http://{display}:{bound[1]}"
        return self.url

    async def stop(self) -> None:
        """Close stream connections, stop listening, stop the market."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
