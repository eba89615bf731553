"""Test doubles for the broker boundary, shipped for users' tests as well as ours.

``RecordingBroker`` wraps any broker, records every command that reaches it,
and can hold submits or cancels at a gate, to prove what the engine does
while a broker call is in flight or stuck. It can also speak for the venue:
``send`` puts reports on its stream as if the venue sent them (a repeat, a
report for an order it never had), and ``answer_status`` makes it answer a
status question with a given state (totals without itemised fills). ``each_report`` reads a broker's
report stream one report at a time, for tests that do not care how the venue
grouped them.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Sequence

from gateway.brokers.base import (
    Broker,
    BrokerOrderState,
    ExecutionReport,
    ReplaceAck,
    Replaces,
    SubmitAck,
)
from gateway.brokers.errors import BrokerRejected
from gateway.domain import OrderSpec


async def each_report(
    frames: AsyncIterator[Sequence[ExecutionReport]],
) -> AsyncIterator[ExecutionReport]:
    """Yield the reports of ``frames`` (a ``Broker.reports()`` stream) one by one."""
    async for frame in frames:
        for report in frame:
            yield report


class RecordingBroker:
    """A broker that forwards to ``inner`` and remembers every call."""

    def __init__(self, inner: Broker) -> None:
        self.inner = inner
        self.name = f"recording({inner.name})"
        self.submitted: list[OrderSpec] = []
        self.cancelled: list[tuple[str, str]] = []
        self.replaced: list[tuple[str, OrderSpec]] = []
        """Replaces that reached the venue: (replace_id, the new terms)."""
        self.submit_gate = asyncio.Event()
        self.cancel_gate = asyncio.Event()
        self.replace_gate = asyncio.Event()
        self.submit_gate.set()
        self.cancel_gate.set()
        self.replace_gate.set()
        # Submits of these client_order_ids wait for ``release_order``.
        self._stuck: dict[str, asyncio.Event] = {}
        # The stream: the venue's frames and sent ones, in arrival order.
        self._frames: asyncio.Queue[Sequence[ExecutionReport] | BaseException] = asyncio.Queue()
        self._states: dict[tuple[str, str], BrokerOrderState] = {}

    def send(self, *reports: ExecutionReport) -> None:
        """Put ``reports`` on the stream as one frame, as if the venue sent them."""
        self._frames.put_nowait(reports)

    @property
    def unread_frames(self) -> int:
        """Frames on the stream that its reader has not taken yet."""
        return self._frames.qsize()

    def answer_status(self, state: BrokerOrderState) -> None:
        """Answer status questions about ``state``'s order with ``state`` from now on."""
        self._states[(state.account, state.client_order_id)] = state

    def submit_count(self, account: str, client_order_id: str) -> int:
        """How many submits for this key were sent (one our timeout cut off counts too)."""
        counts = Counter(spec.key for spec in self.submitted)
        return counts[(account, client_order_id)]

    def hold_submits(self) -> None:
        """Make submits wait at the gate until ``release_submits``."""
        self.submit_gate.clear()

    def release_submits(self) -> None:
        self.submit_gate.set()

    def hold_order(self, client_order_id: str) -> None:
        """Make the submit of this one order hang until ``release_order``."""
        self._stuck[client_order_id] = asyncio.Event()

    def release_order(self, client_order_id: str) -> None:
        gate = self._stuck.pop(client_order_id, None)
        if gate is not None:
            gate.set()

    def hold_cancels(self) -> None:
        self.cancel_gate.clear()

    def release_cancels(self) -> None:
        self.cancel_gate.set()

    def hold_replaces(self) -> None:
        """Make replaces wait at the gate (after being recorded) until ``release_replaces``."""
        self.replace_gate.clear()

    def release_replaces(self) -> None:
        self.replace_gate.set()

    async def connect(self) -> None:
        await self.inner.connect()

    async def close(self) -> None:
        self.release_submits()
        self.release_cancels()
        self.release_replaces()
        for client_order_id in list(self._stuck):
            self.release_order(client_order_id)
        await self.inner.close()

    async def submit(self, spec: OrderSpec) -> SubmitAck:
        self.submitted.append(spec)
        await self.submit_gate.wait()
        stuck = self._stuck.get(spec.client_order_id)
        if stuck is not None:
            await stuck.wait()
        return await self.inner.submit(spec)

    async def cancel(self, account: str, client_order_id: str, broker_order_id: str) -> None:
        self.cancelled.append((account, client_order_id))
        await self.cancel_gate.wait()
        await self.inner.cancel(account, client_order_id, broker_order_id)

    async def replace(
        self,
        account: str,
        client_order_id: str,
        broker_order_id: str,
        spec: OrderSpec,
        replace_id: str,
    ) -> ReplaceAck:
        """Forward a replace; refused as the venue would if ``inner`` cannot replace."""
        self.replaced.append((replace_id, spec))
        await self.replace_gate.wait()
        if not isinstance(self.inner, Replaces):
            raise BrokerRejected(f"the {self.inner.name} broker cannot replace orders")
        return await self.inner.replace(account, client_order_id, broker_order_id, spec, replace_id)

    async def reports(self) -> AsyncIterator[Sequence[ExecutionReport]]:
        pump = asyncio.create_task(self._pump())
        try:
            while True:
                frame = await self._frames.get()
                if isinstance(frame, StopAsyncIteration):
                    return
                if isinstance(frame, BaseException):
                    raise frame
                yield frame
        finally:
            pump.cancel()

    async def _pump(self) -> None:
        try:
            async for frame in self.inner.reports():
                self._frames.put_nowait(frame)
        except Exception as exc:  # noqa: BLE001 - re-raised by the reader
            self._frames.put_nowait(exc)
        else:
            self._frames.put_nowait(StopAsyncIteration())

    async def order_status(self, account: str, client_order_id: str) -> BrokerOrderState | None:
        answer = self._states.get((account, client_order_id))
        if answer is not None:
            return answer
        return await self.inner.order_status(account, client_order_id)

    async def open_orders(self, account: str | None = None) -> list[BrokerOrderState]:
        return await self.inner.open_orders(account)
