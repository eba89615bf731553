"""Broker calls as tasks: the desk's ``BrokerWork``, as the actor runs it.

Each call is one task running a ``broker_calls`` function; its outcome (a
result message, never an exception) goes to the mailbox's result queue when
the task ends, by a done-callback rather than a wrapping coroutine.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from gateway.brokers import Broker, BrokerError, BrokerRejected, CancelsAll, Replaces
from gateway.domain import Order
from gateway.engine import broker_calls
from gateway.engine.breaker import BrokerHealth
from gateway.engine.config import EngineConfig
from gateway.engine.mailbox import Mailbox
from gateway.engine.messages import BrokerState, Command, ReplaceDone, Result

log = logging.getLogger(__name__)


class BrokerTasks:
    """The desk's ``BrokerWork``: each call a task whose outcome goes to the mailbox."""

    def __init__(
        self,
        broker: Broker,
        config: EngineConfig,
        health: BrokerHealth,
        mailbox: Mailbox[Command, Result],
        deliver: broker_calls.StateSink,
    ) -> None:
        self._broker = broker
        self._config = config
        self._health = health
        self._mailbox = mailbox
        self._deliver = deliver
        self.running: set[asyncio.Task[Result | None]] = set()

    def submit(
        self, order: Order, *, ask_first: bool = False, deadline: float | None = None
    ) -> None:
        self._spawn(
            broker_calls.submit_order(
                self._broker,
                self._config,
                self._health,
                order.order_id,
                order.spec,
                self._deliver,
                ask_first=ask_first,
                deadline=deadline,
            )
        )

    def recheck(self, order: Order) -> None:
        self._spawn(
            broker_calls.recheck_submit(
                self._broker,
                self._config,
                self._health,
                order.order_id,
                order.spec,
                self._deliver,
            )
        )

    def cancel(self, order: Order) -> None:
        self._spawn(
            broker_calls.cancel_order(
                self._broker,
                self._config,
                self._health,
                order.order_id,
                order.spec.account,
                order.spec.client_order_id,
                order.broker_order_id,
                self._deliver,
            )
        )

    @property
    def supports_replace(self) -> bool:
        return isinstance(self._broker, Replaces)

    def replace(self, order: Order) -> None:
        pending = order.pending_replace
        broker = self._broker
        if pending is None or not isinstance(broker, Replaces):
            # The desk checks both first; a refusal, should it ever happen.
            self._spawn(self._refused(order.order_id))
            return
        self._spawn(
            broker_calls.replace_order(
                broker,
                broker,
                self._config,
                self._health,
                order.order_id,
                order.broker_order_id,
                pending.applied_to(order.spec),
                pending.replace_id,
            )
        )

    @property
    def supports_cancel_all(self) -> bool:
        return isinstance(self._broker, CancelsAll)

    def cancel_all(self, account: str, order_ids: list[str]) -> None:
        broker = self._broker
        assert isinstance(broker, CancelsAll), "the desk asks only a broker that can"
        self._spawn(
            broker_calls.cancel_all_orders(broker, self._config, self._health, account, order_ids)
        )

    async def _refused(self, order_id: str) -> ReplaceDone:
        return ReplaceDone(
            order_id, error=BrokerRejected(f"the {self._broker.name} broker cannot replace orders")
        )

    def verify(self, order: Order) -> None:
        self._spawn(self._verify(order))

    async def _verify(self, order: Order) -> BrokerState | None:
        try:
            state = await broker_calls.check_order(
                self._broker,
                self._config,
                self._health,
                order.spec.account,
                order.spec.client_order_id,
            )
        except BrokerError:
            return None  # still unverified: the next reconciliation pass asks
        return None if state is None else BrokerState(state)

    def _spawn(self, coro: Coroutine[Any, Any, Result | None]) -> None:
        task = asyncio.create_task(coro)
        self.running.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Result | None]) -> None:
        """Hand a task's outcome to the actor (broker_calls' functions never raise)."""
        self.running.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("broker task failed: %r", error, exc_info=error)
            return
        message = task.result()
        if message is not None:
            self._mailbox.result(message)
