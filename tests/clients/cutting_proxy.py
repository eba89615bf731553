"""A TCP proxy that cuts its first connections mid-call: an "unknown outcome" on demand.

The client's request reaches the gateway, then the connection drops before the
answer comes back, so the client sees UNAVAILABLE for a call that did happen:
the case where only a retry with the same client_order_id is safe.
"""

from __future__ import annotations

import asyncio
import contextlib


class CuttingProxy:
    """Forward 127.0.0.1:<port> to ``upstream``; cut each of the first ``cuts`` connections
    ``after`` seconds after the client first sent something."""

    def __init__(self, upstream: str, *, cuts: int, after: float) -> None:
        host, _, port = upstream.rpartition(":")
        self._upstream = (host, int(port))
        self._cuts_left = cuts
        self._after = after
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections = 0
        self.address = ""

    async def __aenter__(self) -> CuttingProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.address = f"127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        cut = self._cuts_left > 0
        self._cuts_left -= 1
        up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        first_data = asyncio.Event()
        pumps = [
            asyncio.create_task(_pump(reader, up_writer, first_data)),
            asyncio.create_task(_pump(up_reader, writer, None)),
        ]
        self._tasks.update(pumps)
        try:
            if cut:
                await first_data.wait()
                await asyncio.sleep(self._after)
            else:
                await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
            for w in (writer, up_writer):
                w.transport.abort()  # a reset, not a graceful close


async def _pump(
    source: asyncio.StreamReader, sink: asyncio.StreamWriter, seen: asyncio.Event | None
) -> None:
    with contextlib.suppress(ConnectionError, asyncio.CancelledError):
        while data := await source.read(65536):
            if seen is not None:
                seen.set()
            sink.write(data)
            await sink.drain()
