"""The drain gate: refuses new calls once closed, and counts the unary calls in flight.

Owns the "are we taking new work" switch of a graceful shutdown. Streams are
not counted: they run until the actor ends them (UNAVAILABLE with their last
sequence), after the unary calls in flight have finished.
"""

from __future__ import annotations

import asyncio

from gateway.errors import Unavailable


class DrainGate:
    """Open while serving; ``close()`` makes ``enter()`` refuse with UNAVAILABLE."""

    def __init__(self) -> None:
        self._open = True
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def is_open(self) -> bool:
        return self._open

    @property
    def in_flight(self) -> int:
        """Unary calls admitted and not yet finished."""
        return self._in_flight

    def close(self) -> None:
        self._open = False

    def check(self) -> None:
        """Raise Unavailable if the gateway no longer takes new calls."""
        if not self._open:
            raise Unavailable(
                "gateway is draining; retry (another replica will answer)",
                reason="GATEWAY_DRAINING",
            )

    def enter(self) -> None:
        """Admit one unary call (after ``check``); pair with ``leave``."""
        self._in_flight += 1
        self._idle.clear()

    def leave(self) -> None:
        self._in_flight -= 1
        if self._in_flight == 0:
            self._idle.set()

    async def wait_idle(self, within: float) -> bool:
        """Wait until no unary call is in flight; return False if ``within`` seconds ran out."""
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel.
            async with asyncio.timeout(max(within, 0.0)):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True
