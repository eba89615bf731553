"""Test doubles for the broker boundary, shipped for users' tests as well as ours.

``RecordingBroker`` wraps any broker, records every command that reaches it,
and can hold submits or cancels at a gate, to prove what the engine does
while a broker call is in flight or stuck.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

from gateway.brokers.base import Broker, BrokerOrderState, ExecutionReport, SubmitAck
from gateway.domain import OrderSpec


class RecordingBroker:
    """A broker that forwards to ``inner`` and remembers every call."""

    def __init__(self, inner: Broker) -> None:
        self.inner = inner
        self.name = f"recording({inner.name})"
        self.submitted: list[OrderSpec] = []
        self.cancelled: list[tuple[str, str]] = []
        self.submit_gate = asyncio.Event()
        self.cancel_gate = asyncio.Event()
        self.submit_gate.set()
        self.cancel_gate.set()
        # Submits of these client_order_ids wait for ``release_order``.
        self._stuck: dict[str, asyncio.Event] = {}

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

    async def connect(self) -> None:
        await self.inner.connect()

    async def close(self) -> None:
        self.release_submits()
        self.release_cancels()
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

    def reports(self) -> AsyncIterator[ExecutionReport]:
        return self.inner.reports()

    async def order_status(self, account: str, client_order_id: str) -> BrokerOrderState | None:
        return await self.inner.order_status(account, client_order_id)

    async def open_orders(self, account: str | None = None) -> list[BrokerOrderState]:
        return await self.inner.open_orders(account)
