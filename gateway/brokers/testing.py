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

    def submit_count(self, account: str, client_order_id: str) -> int:
        """How many submits for this key reached the broker."""
        counts = Counter(spec.key for spec in self.submitted)
        return counts[(account, client_order_id)]

    def hold_submits(self) -> None:
        """Make submits wait at the gate until ``release_submits``."""
        self.submit_gate.clear()

    def release_submits(self) -> None:
        self.submit_gate.set()

    def hold_cancels(self) -> None:
        self.cancel_gate.clear()

    def release_cancels(self) -> None:
        self.cancel_gate.set()

    async def connect(self) -> None:
        await self.inner.connect()

    async def close(self) -> None:
        self.release_submits()
        self.release_cancels()
        await self.inner.close()

    async def submit(self, spec: OrderSpec) -> SubmitAck:
        self.submitted.append(spec)
        await self.submit_gate.wait()
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
