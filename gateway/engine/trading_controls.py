"""The actor's side of the trading controls: halts, resumes, and screening new orders.

Synchronous, run by the actor's task between commits like the desk. A halt
is a journaled event: it takes effect for every order handled after it (in
the same batch too), and its caller is answered once it is durable. New
orders are screened against the trading mode and the risk limits before
they can reach the broker; a refused order is recorded REJECTED, with the
refusal's code and reason, and never sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from gateway.domain import Order, OrderCreated, OrderRejected, OrderSpec
from gateway.domain.controls import TradingHalt, TradingMode, TradingStateChanged
from gateway.engine.ledger import Ledger
from gateway.errors import FailedPrecondition
from gateway.risk import Refusal, RiskChecker

log = logging.getLogger(__name__)
ZERO = Decimal(0)


@dataclass(slots=True)
class Halt:
    """An operator halts trading for ``scope`` ("" is every account)."""

    scope: str
    mode: TradingMode
    reason: str
    principal: str
    cancel_open_orders: bool
    reply: asyncio.Future[HaltOutcome]


@dataclass(slots=True)
class Resume:
    """An operator lifts the halt of ``scope`` ("" is the gateway-wide one)."""

    scope: str
    reason: str
    principal: str
    reply: asyncio.Future[list[TradingHalt]]


@dataclass(frozen=True, slots=True)
class HaltOutcome:
    """The halts in force once the halt is durable, and the orders asked to cancel."""

    halts: list[TradingHalt]
    canceled: list[Order]


class TradingControls:
    """Halts, resumes and pre-trade screening over the ledger."""

    def __init__(
        self,
        ledger: Ledger,
        checker: RiskChecker,
        cancel: Callable[[Order], Order],
        *,
        clock: Callable[[], datetime],
        new_id: Callable[[], str],
    ) -> None:
        self._ledger = ledger
        self.checker = checker
        self._cancel = cancel
        self._clock = clock
        self._new_id = new_id

    # ------------------------------------------------------------ screening

    def screen(self, spec: OrderSpec) -> Order | None:
        """Refuse ``spec`` if the trading mode or a limit says so: return the
        REJECTED order (journaled like any), or None to let it through."""
        refusal = self.checker.check(spec, self._ledger.controls.mode(spec.account))
        if refusal is None:
            return None
        return self._record_refusal(spec, refusal)

    def screen_replace(self, order: Order, new: OrderSpec) -> None:
        """Raise FailedPrecondition if the trading mode or a limit refuses
        ``order``'s replace by ``new`` terms; nothing is recorded (the order
        keeps its terms, as after any refused request)."""
        mode = self._ledger.controls.mode(new.account)
        refusal = self.checker.check_replace(order.spec, order.leaves_quantity, new, mode)
        if refusal is not None:
            raise FailedPrecondition(
                refusal.reason,
                reason=refusal.code.name,
                metadata={"order_id": order.order_id, "limit": refusal.limit},
            )

    def _record_refusal(self, spec: OrderSpec, refusal: Refusal) -> Order:
        now = self._clock()
        order = self._ledger.emit(OrderCreated(self._new_id(), spec, now))
        log.info(
            "order %s/%s refused before the broker (%s): %s",
            spec.account,
            spec.client_order_id,
            refusal.limit,
            refusal.reason,
        )
        return self._ledger.emit(OrderRejected(order.order_id, refusal.reason, now, refusal.code))

    def position(self, account: str, symbol: str) -> Decimal:
        """The signed quantity held (latest, committed or not), zero if never traded."""
        position = self._ledger.controls.position(account, symbol)
        return ZERO if position is None else position.quantity

    # ---------------------------------------------------------------- halts

    def halt(self, message: Halt) -> HaltOutcome:
        """Halt (journaled), cancel the scope's open orders if asked; return the outcome."""
        now = self._clock()
        halt = TradingHalt(message.scope, message.mode, message.reason, message.principal, now)
        self._ledger.emit_control(TradingStateChanged(halt, now))
        log.warning(
            "trading %s for %s by %s: %s",
            message.mode.name,
            message.scope or "every account",
            message.principal,
            message.reason,
        )
        canceled: list[Order] = []
        if message.cancel_open_orders:
            for order in self._ledger.table.open_orders():
                if not message.scope or order.spec.account == message.scope:
                    canceled.append(self._cancel(order))
        return HaltOutcome(self._ledger.controls.halts(), canceled)

    def resume(self, message: Resume) -> list[TradingHalt]:
        """Lift the scope's halt (journaled; nothing if none); return the halts left."""
        if self._ledger.controls.halt(message.scope) is not None:
            now = self._clock()
            lifted = TradingHalt(
                message.scope, TradingMode.ACTIVE, message.reason, message.principal, now
            )
            self._ledger.emit_control(TradingStateChanged(lifted, now))
            log.warning(
                "trading resumed for %s by %s: %s",
                message.scope or "every account (gateway-wide halt lifted)",
                message.principal,
                message.reason,
            )
        return self._ledger.controls.halts()
