"""A venue whose every move the test decides: for driving the actor with hypothesis."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from gateway.brokers import (
    BrokerOrderState,
    BrokerRejected,
    BrokerTimeout,
    BrokerUnavailable,
    ExecutionReport,
    ReportKind,
    SubmitAck,
)
from gateway.domain import Fill, OrderSpec, OrderStatus

NOW = datetime(2026, 1, 2, tzinfo=UTC)


@dataclass
class VenueOrder:
    spec: OrderSpec
    broker_order_id: str
    status: OrderStatus = OrderStatus.ACCEPTED
    fills: list[Fill] = field(default_factory=list)

    @property
    def filled(self) -> Decimal:
        return sum((f.quantity for f in self.fills), Decimal(0))

    def state(self) -> BrokerOrderState:
        return BrokerOrderState(
            self.spec.account,
            self.spec.client_order_id,
            self.broker_order_id,
            self.status,
            self.filled,
            tuple(self.fills),
        )


class ScriptedBroker:
    """Acts only when told: the test scripts fills, cancels, faults and report delivery."""

    name = "scripted"

    def __init__(self) -> None:
        self.orders: dict[tuple[str, str], VenueOrder] = {}
        self.acted_submits: Counter[tuple[str, str]] = Counter()
        self.submit_faults: list[str] = []  # "lost_answer" / "unavailable", consumed in order
        self.report_faults: list[str] = []  # "lose" / "duplicate" / "hold", consumed in order
        self._queue: asyncio.Queue[ExecutionReport] = asyncio.Queue()
        self._held: ExecutionReport | None = None
        self._exec = 0

    # -- the Broker protocol

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def submit(self, spec: OrderSpec) -> SubmitAck:
        fault = self.submit_faults.pop(0) if self.submit_faults else ""
        if fault == "unavailable":
            raise BrokerUnavailable("scripted: refused")
        order = self.orders.get(spec.key)
        if order is None:
            order = VenueOrder(spec, f"B-{spec.client_order_id}")
            self.orders[spec.key] = order
            self.acted_submits[spec.key] += 1
            self._send(ReportKind.ACCEPTED, order)
        if fault == "lost_answer":
            raise BrokerTimeout("scripted: the answer was lost")
        return SubmitAck(order.broker_order_id)

    async def cancel(self, account: str, client_order_id: str, broker_order_id: str) -> None:
        order = self.orders.get((account, client_order_id))
        if order is None:
            raise BrokerRejected("unknown order")
        if order.status.is_terminal:
            raise BrokerRejected(f"order already {order.status.value}")
        order.status = OrderStatus.CANCELED
        self._send(ReportKind.CANCELED, order)

    async def reports(self) -> AsyncIterator[Sequence[ExecutionReport]]:
        # One frame per report: the venue the test scripts sends them one at a time.
        while True:
            yield (await self._queue.get(),)

    async def order_status(self, account: str, client_order_id: str) -> BrokerOrderState | None:
        order = self.orders.get((account, client_order_id))
        return None if order is None else order.state()

    async def open_orders(self, account: str | None = None) -> list[BrokerOrderState]:
        return [o.state() for o in self.orders.values() if not o.status.is_terminal]

    @property
    def unread_reports(self) -> int:
        """Reports sent that the gateway's reader has not taken yet."""
        return self._queue.qsize()

    # -- what the test makes the venue do

    def fill(self, key: tuple[str, str], fraction: Decimal) -> None:
        order = self.orders.get(key)
        if order is None or order.status.is_terminal:
            return
        remaining = order.spec.quantity - order.filled
        quantity = max(Decimal(1), (remaining * fraction).to_integral_value())
        quantity = min(quantity, remaining)
        self._exec += 1
        fill = Fill(f"E{self._exec}", quantity, Decimal("99.5"), NOW)
        order.fills.append(fill)
        if order.filled == order.spec.quantity:
            order.status = OrderStatus.FILLED
        self._send(ReportKind.FILL, order, fill)

    def expire(self, key: tuple[str, str]) -> None:
        order = self.orders.get(key)
        if order is not None and not order.status.is_terminal:
            order.status = OrderStatus.EXPIRED
            self._send(ReportKind.EXPIRED, order)

    def _send(self, kind: ReportKind, order: VenueOrder, fill: Fill | None = None) -> None:
        report = ExecutionReport(
            kind,
            order.spec.account,
            order.spec.client_order_id,
            NOW,
            order.broker_order_id,
            fill,
        )
        fault = self.report_faults.pop(0) if self.report_faults else ""
        if fault == "lose":
            return  # lost in transit: reconciliation must find it
        if fault == "hold" and self._held is None:
            self._held = report  # overtaken by the next report
            return
        self._queue.put_nowait(report)
        if fault == "duplicate":
            self._queue.put_nowait(report)
        if self._held is not None:
            self._queue.put_nowait(self._held)
            self._held = None

    def release_held(self) -> None:
        if self._held is not None:
            self._queue.put_nowait(self._held)
            self._held = None
