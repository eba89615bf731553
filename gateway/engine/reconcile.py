"""Reconciliation: make the order table agree with the broker.

A pass asks the broker about every open order the gateway is not already
talking to the broker about (in bulk where the broker can answer so, one
order at a time only for what the bulk answer lacks), feeds what it learns back into the actor as
broker order states (so fills missed while disconnected or down are
applied once each), and reports two kinds of disagreement:

- an order the broker has no record of: if it is still PENDING_NEW and older
  than the broker's grace, it never arrived and is rejected (the client may
  place it again); otherwise it is asked about again next pass. Never
  re-sent under a new key, never assumed rejected because a call timed out.
- an open order at the broker the gateway does not know: adopted when it is
  one of ours (the broker gives its terms and the account is one this gateway
  trades; a salvaged journal that lost acknowledged orders is the case), with
  the broker's terms, ack and fills; otherwise (placed elsewhere) reported,
  never adopted.

Runs as a task outside the actor; it reads the table only through messages.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from gateway.brokers import Broker, BrokerError, BrokerOrderState, BulkOrderStates
from gateway.domain import Order
from gateway.engine import broker_calls
from gateway.engine.breaker import BrokerHealth
from gateway.engine.config import EngineConfig

log = logging.getLogger(__name__)

# Orders asked about at once, one by one: enough to finish a pass quickly, few
# enough not to trip a venue's rate limit.
CONCURRENCY = 8
# How far before the oldest order's creation (our clock) the bulk question
# starts: the venue stamps submission with its own clock.
CLOCK_MARGIN = timedelta(minutes=5)


@dataclass(slots=True)
class ReconcileResult:
    """What one pass found."""

    checked: int = 0
    found: int = 0
    bulk: int = 0  # orders answered by the bulk question
    absent: list[str] = field(default_factory=list)
    errors: int = 0
    foreign: list[BrokerOrderState] = field(default_factory=list)


@dataclass(slots=True)
class Reconciler:
    """One broker's reconciliation; the actor supplies the inputs and sinks."""

    broker: Broker
    config: EngineConfig
    health: BrokerHealth
    deliver: broker_calls.StateSink
    passes: int = 0

    async def run(
        self,
        open_orders: list[Order],
        report_absent: Callable[[str], Awaitable[None]],
        report_foreign: Callable[[list[BrokerOrderState]], Awaitable[None]],
    ) -> ReconcileResult:
        """Check ``open_orders`` against the broker; deliver what it says."""
        result = ReconcileResult()
        limit = asyncio.Semaphore(CONCURRENCY)
        known = await self._bulk(open_orders, result)

        async def check(order: Order) -> None:
            state = known.get((order.spec.account, order.spec.client_order_id))
            if state is not None:
                result.checked += 1
                result.found += 1
                result.bulk += 1
                await self.deliver(state)
                return
            async with limit:
                try:
                    state = await broker_calls.check_order(
                        self.broker,
                        self.config,
                        self.health,
                        order.spec.account,
                        order.spec.client_order_id,
                    )
                except BrokerError as error:
                    result.errors += 1
                    log.debug("reconcile: %s unanswered: %r", order.order_id, error)
                    return
                result.checked += 1
                if state is None:
                    result.absent.append(order.order_id)
                    await report_absent(order.order_id)
                    return
                result.found += 1
                await self.deliver(state)

        await asyncio.gather(*(check(order) for order in open_orders))
        try:
            at_broker = await broker_calls.check_open_orders(self.broker, self.config, self.health)
        except BrokerError as error:
            result.errors += 1
            log.debug("reconcile: open orders unanswered: %r", error)
        else:
            result.foreign = at_broker
            await report_foreign(at_broker)
        self.passes += 1
        return result

    async def _bulk(
        self, orders: list[Order], result: ReconcileResult
    ) -> dict[tuple[str, str], BrokerOrderState]:
        """The broker's states of ``orders`` from bulk questions, one per account."""
        broker = self.broker
        if not orders or not isinstance(broker, BulkOrderStates):
            return {}
        oldest: dict[str, Order] = {}
        for order in orders:
            first = oldest.get(order.spec.account)
            if first is None or order.created_at < first.created_at:
                oldest[order.spec.account] = order
        known: dict[tuple[str, str], BrokerOrderState] = {}
        for account, first in oldest.items():
            try:
                states = await broker_calls.check_orders_since(
                    broker, self.config, self.health, account, first.created_at - CLOCK_MARGIN
                )
            except BrokerError as error:
                result.errors += 1
                log.debug("reconcile: bulk question for %s unanswered: %r", account, error)
                continue  # asked order by order instead
            known.update(((s.account, s.client_order_id), s) for s in states)
        return known
