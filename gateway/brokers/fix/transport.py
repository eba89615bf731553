"""Bytes to and from the counterparty: one TCP (optionally TLS) connection at a time.

Below this line only sockets; the session decides what to write. The
connection's reads have a short timeout so the session gets its clock ticks
(heartbeats, test requests) even when the counterparty is silent.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass

from gateway.brokers.fix.config import FixConfig, FixTls

READ_CHUNK = 64 * 1024


def tls_context(tls: FixTls) -> ssl.SSLContext:
    """A client context verifying the counterparty (and presenting our certificate)."""
    context = ssl.create_default_context(
        cafile=str(tls.ca_file) if tls.ca_file is not None else None
    )
    if tls.cert_file is not None and tls.key_file is not None:
        context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    return context


@dataclass(slots=True)
class Connection:
    """One open connection."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def read(self, wait: float) -> bytes | None:
        """Return received bytes, b"" at end of stream, None if nothing came in ``wait`` seconds."""
        try:
            return await asyncio.wait_for(self.reader.read(READ_CHUNK), wait)
        except TimeoutError:
            return None

    async def write(self, chunks: list[bytes]) -> None:
        if chunks:
            self.writer.write(b"".join(chunks))
            await self.writer.drain()

    async def close(self) -> None:
        self.writer.close()
        # The peer may be gone already: nothing left to flush then.
        with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
            await asyncio.wait_for(self.writer.wait_closed(), 2.0)


async def open_connection(config: FixConfig, limit: float) -> Connection:
    """Connect to the counterparty; raise OSError (or TimeoutError) when it cannot be reached."""
    context = tls_context(config.tls) if config.tls is not None else None
    hostname = None
    if config.tls is not None:
        hostname = config.tls.server_hostname or config.host
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(config.host, config.port, ssl=context, server_hostname=hostname),
        limit,
    )
    return Connection(reader, writer)
