"""The actor's two queues: client commands, and broker results ahead of them.

Overload behaviour:
- commands: bounded; a full queue refuses the call at once (the client gets
  RESOURCE_EXHAUSTED and retries with backoff), never an unbounded wait;
- broker results (task outcomes, report frames, reconciliation answers): taken
  first, so a backlog of client commands never delays a fill. The report
  stream and reconciliation wait for room (backpressure on the venue, never a
  dropped report); a broker task's single outcome is always taken, since
  holding it back would not free anything.

One future wakes the actor per idle spell, instead of one per message.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

_Command = TypeVar("_Command")
_Result = TypeVar("_Result")
_T = TypeVar("_T")


class MailboxFull(Exception):
    """The command queue is at capacity."""


class Mailbox(Generic[_Command, _Result]):
    """Commands and results for one consumer task."""

    def __init__(self, command_capacity: int, result_capacity: int) -> None:
        self._commands: deque[_Command] = deque()
        self._results: deque[_Result] = deque()
        self._command_capacity = command_capacity
        self._result_capacity = result_capacity
        self._waiter: asyncio.Future[None] | None = None
        self._room = asyncio.Event()
        self._room.set()

    def __len__(self) -> int:
        return len(self._commands) + len(self._results)

    def command(self, message: _Command) -> None:
        """Queue a client command; raise MailboxFull at capacity."""
        if len(self._commands) >= self._command_capacity:
            raise MailboxFull
        self._commands.append(message)
        self._wake()

    def result(self, message: _Result) -> None:
        """Queue a broker task's outcome (never refused)."""
        self._results.append(message)
        self._wake()

    async def result_when_room(self, message: _Result) -> None:
        """Queue a result from a stream, waiting while the result queue is full."""
        while len(self._results) >= self._result_capacity:
            self._room.clear()
            await self._room.wait()
        self._results.append(message)
        self._wake()

    async def take(self, limit: int) -> tuple[list[_Result], list[_Command]]:
        """Wait for work; return about ``limit`` messages, results first."""
        while not self._results and not self._commands:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        results = _drain(self._results, limit)
        # A flood of reports never starves commands: they keep a quarter of a batch.
        commands = _drain(self._commands, max(limit - len(results), limit // 4, 1))
        if not self._room.is_set() and len(self._results) < self._result_capacity:
            self._room.set()
        return results, commands

    def drain_commands(self) -> list[_Command]:
        """Remove and return every queued command (at shutdown)."""
        commands = list(self._commands)
        self._commands.clear()
        return commands

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def _drain(queue: deque[_T], limit: int) -> list[_T]:
    count = min(limit, len(queue))
    return [queue.popleft() for _ in range(count)]
