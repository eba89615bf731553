"""The order desk: what the gateway does with each command and broker result.

Synchronous and single-owner (the actor's task calls it between commits).
It applies events through the ledger, keeps one in-flight record per order,
and says what to do once the batch is durable: answers (``replies``) and
broker work (``after_commit``, which calls the ``BrokerWork`` port). It never
awaits, so everything here runs to completion inside one batch.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from gateway.brokers import BrokerOrderState, BrokerRejected, BrokerUnavailable, ExecutionReport
from gateway.domain import (
    CancelRejected,
    CancelRequested,
    IllegalTransition,
    Order,
    OrderCreated,
    OrderEvent,
    OrderRef,
    OrderRejected,
    OrderReplaced,
    OrderSpec,
    OrderStatus,
    RejectCode,
    ReplaceRejected,
    ReplaceRequested,
)
from gateway.engine import interpret, replaces
from gateway.engine.breaker import BrokerHealth
from gateway.engine.config import EngineConfig
from gateway.engine.inflight import InFlightOrders
from gateway.engine.ledger import Ledger
from gateway.engine.messages import (
    Absent,
    BrokerOpenOrders,
    BrokerReports,
    BrokerState,
    BulkCancel,
    BulkCancelDone,
    Cancel,
    CancelAll,
    CancelDone,
    Place,
    PlaceOutcome,
    Replace,
    ReplaceDone,
    SubmitDone,
)
from gateway.errors import (
    AlreadyExists,
    FailedPrecondition,
    GatewayError,
    NotFound,
    Unavailable,
)
from gateway.observability import tracing

log = logging.getLogger(__name__)

OrderMessage = (
    Place
    | Cancel
    | SubmitDone
    | CancelDone
    | BrokerReports
    | BrokerState
    | Absent
    | BrokerOpenOrders
    | Replace
    | ReplaceDone
    | CancelAll
    | BulkCancel
    | BulkCancelDone
)


class BrokerWork(Protocol):
    """Broker calls the desk asks for; each runs as its own task after the commit."""

    def submit(
        self, order: Order, *, ask_first: bool = False, deadline: float | None = None
    ) -> None:
        """Send ``order`` (asking first whether the broker already has it)."""

    def recheck(self, order: Order) -> None:
        """Ask about an order whose submit ended in doubt."""

    def cancel(self, order: Order) -> None:
        """Ask the broker to cancel ``order``."""

    def verify(self, order: Order) -> None:
        """Ask for ``order``'s state: its fills may be incomplete."""

    @property
    def supports_replace(self) -> bool:
        """Whether the broker can replace orders (the optional ``Replaces`` port)."""

    def replace(self, order: Order) -> None:
        """Ask the broker to give ``order`` the terms of its pending replace."""

    @property
    def supports_cancel_all(self) -> bool:
        """Whether the broker cancels an account's orders in one call (``CancelsAll``)."""

    def cancel_all(self, account: str, order_ids: list[str]) -> None:
        """Ask the broker to cancel every open order of ``account`` (``order_ids`` wait)."""


def not_found(ref: OrderRef) -> NotFound:
    which = ref.order_id or ref.client_order_id
    return NotFound(
        f"no order {which!r} in account {ref.account!r}",
        metadata={"account": ref.account, "order": which},
    )


class OrderDesk:
    """Order logic over the ledger; see the module docstring."""

    def __init__(
        self,
        ledger: Ledger,
        config: EngineConfig,
        health: BrokerHealth,
        work: BrokerWork,
        *,
        clock: Callable[[], datetime],
        new_id: Callable[[], str],
        new_future: Callable[[], asyncio.Future[Any]],
    ) -> None:
        self._ledger = ledger
        self._table = ledger.table
        self._config = config
        self._health = health
        self._work = work
        self._clock = clock
        self._new_id = new_id
        self._new_future = new_future
        self._inflight = InFlightOrders()
        # What the batch in progress owes once it is durable.
        self.replies: list[tuple[asyncio.Future[Any], Any]] = []
        self.after_commit: list[Callable[[], None]] = []
        # Open orders at the broker that this gateway did not place, as of the
        # last pass: each is reported once while it stays open, and the set
        # holds only what is open there now.
        self._foreign_open: set[tuple[str, str]] = set()
        self.illegal_transitions = 0
        self.unknown_reports = 0
        self.foreign_orders = 0
        self.adopted_orders = 0
        # Set by the actor: returns the order REJECTED if it may not be sent.
        self.screen: Callable[[OrderSpec], Order | None] | None = None
        # Set by the actor: raises if a replace to the new terms may not be sent.
        self.screen_replace: Callable[[Order, OrderSpec], None] | None = None

    @property
    def in_flight_count(self) -> int:
        return len(self._inflight)

    def handle(self, message: OrderMessage) -> None:
        """Apply one message; a refusal becomes its caller's answer."""
        reply = getattr(message, "reply", None)
        try:
            match message:
                case Place():
                    self._on_place(message)
                case BrokerReports():
                    self._health.record(None)  # a report proves the broker is alive
                    for report in message.reports:
                        self._on_report(report)
                case SubmitDone():
                    self._on_submit_done(message)
                case Cancel():
                    self._on_cancel(message)
                case CancelDone():
                    self._on_cancel_done(message)
                case BrokerState():
                    self._on_broker_state(message.state)
                case Absent():
                    self._on_absent(message.order_id)
                case BrokerOpenOrders():
                    self._on_broker_open_orders(message.states)
                case Replace():
                    self._on_replace(message)
                case ReplaceDone():
                    self._on_replace_done(message)
                case CancelAll():
                    self._on_cancel_all(message)
                case BulkCancel():
                    self._on_bulk_cancel(message)
                case BulkCancelDone():
                    self._on_bulk_cancel_done(message)
        except GatewayError as exc:
            if reply is not None:
                self.replies.append((reply, exc))
        except Exception as exc:
            # A bug must not take the actor (and every order) down with it.
            log.exception("failed to handle %s", type(message).__name__)
            if reply is not None:
                self.replies.append((reply, GatewayError(f"internal error: {exc}")))

    def resume(self, order: Order) -> None:
        """Send again an order found PENDING_NEW at start: an earlier process
        may or may not have sent it, so the broker is asked first."""
        self._inflight.of(order.order_id).submitting = True
        self._work.submit(order, ask_first=True)

    def orders_to_reconcile(self) -> list[Order]:
        """Open orders not being submitted, then terminal ones still unverified."""
        inflight = self._inflight
        orders = [o for o in self._table.open_orders() if not inflight.submitting(o.order_id)]
        for order_id in inflight.unverified():
            order = self._table.get(order_id)
            if order is not None and order.is_terminal:
                orders.append(order)
        return orders

    def _schedule_cancel(self, order: Order) -> None:
        self._inflight.of(order.order_id).cancelling = True
        self.after_commit.append(lambda: self._work.cancel(order))

    def _find(self, ref: OrderRef) -> Order:
        order = self._table.find(ref)
        if order is None:
            raise not_found(ref)
        return order

    def _on_place(self, message: Place) -> None:
        spec = message.spec
        existing = self._table.by_key(*spec.key)
        if existing is not None:
            # The terms it was placed with: a replace since does not make a
            # retry of the original PlaceOrder a different order.
            if existing.placed != spec:
                raise AlreadyExists(
                    f"client_order_id {spec.client_order_id!r} already names a different "
                    f"order in account {spec.account!r}",
                    metadata={"order_id": existing.order_id},
                )
            self.replies.append((message.reply, PlaceOutcome(existing, self._settle(existing))))
            return
        if self.screen is not None:
            refused = self.screen(spec)  # pre-trade risk and the trading mode
            if refused is not None:
                self.replies.append((message.reply, PlaceOutcome(refused, None)))
                return
        if not self._health.healthy:
            # Fail fast, before the order exists: the client retries later with
            # the same client_order_id and nothing is stuck in between.
            raise Unavailable(
                f"broker unavailable ({self._health.last_error}); retry later",
                reason="BROKER_UNAVAILABLE",
            )
        order = self._emit(OrderCreated(self._new_id(), spec, self._clock()))
        self._inflight.of(order.order_id).submitting = True
        deadline, trace = message.deadline, message.trace

        def submit() -> None:
            self._work.submit(order, deadline=deadline)

        # Traced, the submit's broker call is a child of the caller's span.
        self.after_commit.append(
            submit if trace is None else functools.partial(tracing.within, trace, submit)
        )
        self.replies.append((message.reply, PlaceOutcome(order, self._settle(order))))

    def _settle(self, order: Order) -> asyncio.Future[Order | None] | None:
        """Return a new future settled when ``order`` leaves PENDING_NEW (None if it has)."""
        if order.status is not OrderStatus.PENDING_NEW:
            return None
        flight = self._inflight.of(order.order_id)
        waiter: asyncio.Future[Order | None] = self._new_future()
        if flight.waiters is None:
            flight.waiters = [waiter]
        else:
            # Retries of an order stuck in doubt: drop the waits that ended.
            flight.waiters = [w for w in flight.waiters if not w.done()]
            flight.waiters.append(waiter)
        return waiter

    def _on_cancel(self, message: Cancel) -> None:
        order = self._find(message.ref)
        if order.is_terminal:
            raise FailedPrecondition(
                f"order {order.order_id} is already {order.status.name}; nothing to cancel",
                reason="ORDER_ALREADY_TERMINAL",
                metadata={"order_id": order.order_id, "status": order.status.name},
            )
        self.replies.append((message.reply, self.request_cancel(order)))

    def request_cancel(self, order: Order, *, bulk: bool = False) -> Order:
        """Ask for ``order``'s (open) cancel; return it PENDING_CANCEL.

        ``bulk``: one broker call cancels the account's orders afterwards, so
        none is sent for this order (unless its submit is still running).
        """
        if order.status is OrderStatus.PENDING_CANCEL:
            return order  # already on its way
        updated = self._emit(CancelRequested(order.order_id, self._clock()))
        if self._inflight.submitting(order.order_id):
            # The broker may not know the order yet: cancel once the submit returns.
            self._inflight.of(order.order_id).cancel_after_submit = True
        elif bulk:
            self._inflight.of(order.order_id).cancelling = True
        else:
            self._schedule_cancel(updated)
        return updated

    def _on_submit_done(self, message: SubmitDone) -> None:
        order_id = message.order_id
        flight = self._inflight.of(order_id)
        flight.submitting = False
        cancel_after = flight.cancel_after_submit
        flight.cancel_after_submit = False
        self._inflight.tidy(order_id)
        order = self._table.get(order_id)
        if order is None:
            return
        now = self._clock()
        error = message.error
        if message.ack is not None:
            self._emit_if(interpret.ack_event(order, message.ack.broker_order_id, now))
        elif isinstance(error, BrokerRejected):
            self._emit_safely(OrderRejected(order_id, error.reason, now, RejectCode.BROKER))
        elif isinstance(error, BrokerUnavailable):
            # Certain it never reached the broker: a rejection is the truth.
            self._emit_safely(
                OrderRejected(
                    order_id, f"broker unavailable: {error}", now, RejectCode.NOT_DELIVERED
                )
            )
        else:
            # Unknown outcome: stay PENDING_NEW; never assume a rejection.
            log.error(
                "order %s (%s/%s): submit outcome unknown after retries (%r); "
                "left PENDING_NEW until the broker reports it; asking it shortly",
                order_id,
                order.spec.account,
                order.spec.client_order_id,
                error,
            )
            self.after_commit.append(lambda: self._work.recheck(order))
        if cancel_after:
            current = self._table.get(order_id)
            if current is not None and not current.is_terminal:
                self._schedule_cancel(current)

    def _on_cancel_done(self, message: CancelDone) -> None:
        order_id = message.order_id
        flight = self._inflight.get(order_id)
        if flight is not None:
            flight.cancelling = False
            self._inflight.tidy(order_id)
        if message.error is None or message.unresolved:
            return  # the outcome arrives as a report, or reconciliation finds it
        order = self._table.get(order_id)
        if order is None or order.status is not OrderStatus.PENDING_CANCEL:
            return
        reason = (
            message.error.reason
            if isinstance(message.error, BrokerRejected)
            else f"cancel not confirmed by the broker: {message.error}"
        )
        self._emit_safely(CancelRejected(order_id, reason, self._clock()))

    def _on_broker_state(self, state: BrokerOrderState, *, fresh: bool = False) -> None:
        """Bring one order in line with the broker's view of it.

        ``fresh``: the state was asked for after the order's last replace call
        ended, so it tells that replace's outcome (see ``_replace_lost``).
        """
        order = self._table.by_key(state.account, state.client_order_id)
        if order is None:
            self.unknown_reports += 1
            log.warning("state for unknown order %s/%s", state.account, state.client_order_id)
            return
        order_id, now, booked = order.order_id, self._clock(), self._ledger.booked
        flight = self._inflight.get(order_id)
        if flight is not None and flight.unverified:
            flight.unverified = False
            self._inflight.tidy(order_id)
        if state.status is not OrderStatus.REJECTED:
            order = self._emit_if(interpret.ack_event(order, state.broker_order_id, now)) or order
        for fill in interpret.itemised_fills(order, state, booked):
            order = self._emit_safely(fill) or order
        totals = interpret.catch_up(order, state, now)
        if totals is not None:
            log.warning(
                "order %s: the broker counts %s filled at %s, ahead of the executions we "
                "have (%s); booked provisionally until they arrive",
                order_id,
                totals.cumulative_quantity,
                totals.average_price,
                order.filled_quantity,
            )
            order = self._emit_safely(totals) or order
        elif state.filled_quantity > order.filled_quantity:
            # Left for a later answer: one with a price, or one not older than
            # what the stream already said. Unverified, it is asked about again.
            self._inflight.of(order_id).unverified = True
            log.log(
                logging.ERROR if state.average_fill_price is None else logging.INFO,
                "order %s: broker reports %s filled (at %s), we know %s and the broker said "
                "%s before; not booked from this answer",
                order_id,
                state.filled_quantity,
                state.average_fill_price,
                order.filled_quantity,
                order.broker_filled,
            )
        if order.pending_replace is not None and self._replace_lost(order, fresh):
            order = self._emit_if(interpret.replace_outcome(order, state, now)) or order
        terminal = interpret.terminal_event(order, state, now)
        if terminal is not None:
            self._emit_safely(terminal)
        elif order.status is OrderStatus.PENDING_CANCEL:
            self._retry_unconfirmed_cancel(order)

    def _retry_unconfirmed_cancel(self, order: Order) -> None:
        """The broker still has an order we asked to cancel, and no cancel is on
        its way: the last one's outcome was lost. Send it again (cancels are
        idempotent); after a few tries, report the cancel as not confirmed."""
        order_id = order.order_id
        flight = self._inflight.of(order_id)
        if flight.cancelling or flight.submitting:
            return
        tries = flight.cancel_resends
        if tries >= self._config.broker_attempts:
            flight.cancel_resends = 0
            self._inflight.tidy(order_id)
            reason = f"cancel not confirmed by the broker after {tries + 1} tries"
            self._emit_safely(CancelRejected(order_id, reason, self._clock()))
            return
        flight.cancel_resends = tries + 1
        log.warning("order %s: cancel unconfirmed, still open at the broker; re-sending", order_id)
        self._schedule_cancel(order)

    def _on_absent(self, order_id: str) -> None:
        flight = self._inflight.get(order_id)
        if flight is not None and flight.unverified:
            flight.unverified = False  # nothing there to complete it from
            self._inflight.tidy(order_id)
        order = self._table.get(order_id)
        if order is None or order.is_terminal or self._inflight.submitting(order_id):
            return
        # Cancelled while its submit was in doubt, and the broker never had it:
        # as unarrived as an order still PENDING_NEW.
        never_acked = order.status is OrderStatus.PENDING_NEW or (
            order.status is OrderStatus.PENDING_CANCEL
            and order.status_before_cancel is OrderStatus.PENDING_NEW
            and not order.broker_order_id
        )
        if not never_acked:
            flight = self._inflight.of(order_id)
            if not flight.reported_missing:
                flight.reported_missing = True
                log.error(
                    "order %s is %s here but unknown at the broker; left as is for an operator",
                    order_id,
                    order.status.name,
                )
            return
        age = (self._clock() - order.created_at).total_seconds()
        if age < self._config.absence_grace:
            return  # it may still be on its way: ask again next pass
        self._emit_safely(
            OrderRejected(
                order_id,
                f"not found at the broker {int(age)}s after submission; it never arrived",
                self._clock(),
                RejectCode.NOT_DELIVERED,
            )
        )

    def _on_broker_open_orders(self, states: list[BrokerOrderState]) -> None:
        foreign: set[tuple[str, str]] = set()
        for state in states:
            key = (state.account, state.client_order_id)
            if self._table.by_key(*key) is not None:
                continue
            if self._is_ours(state):
                self._adopt(state)
                continue
            foreign.add(key)
            if key in self._foreign_open:
                continue
            self.foreign_orders += 1
            log.warning(
                "broker holds open order %s/%s (broker id %s) that this gateway did not "
                "place; reported, not adopted",
                state.account,
                state.client_order_id,
                state.broker_order_id,
            )
        self._foreign_open = foreign

    def _is_ours(self, state: BrokerOrderState) -> bool:
        """Whether an open broker order missing from the table is one of ours.

        It is when the broker gives its terms (``spec``, keyed as the state
        is) and its account is one this gateway trades: one with an order in
        the table. A salvaged journal that dropped acknowledged orders keeps
        the account's earlier ones, so what it lost comes back; an account
        the gateway never traded stays someone else's (reported only).
        """
        spec = state.spec
        return (
            spec is not None
            and spec.key == (state.account, state.client_order_id)
            and self._table.trades(state.account)
        )

    def _adopt(self, state: BrokerOrderState) -> None:
        """Take an order of ours back from the broker: created with the broker's
        terms, then brought to the broker's state (ack, fills) as any other."""
        assert state.spec is not None
        order = self._emit(OrderCreated(self._new_id(), state.spec, self._clock()))
        self.adopted_orders += 1
        log.warning(
            "broker holds open order %s/%s (broker id %s) missing here (a salvaged "
            "journal?); adopted as %s with the broker's terms and fills",
            state.account,
            state.client_order_id,
            state.broker_order_id,
            order.order_id,
        )
        self._on_broker_state(state)

    def _on_report(self, report: ExecutionReport) -> None:
        order = self._table.by_key(report.account, report.client_order_id)
        if order is None and report.broker_order_id:
            order = self._table.by_broker_id(report.broker_order_id)
        if order is None:
            self.unknown_reports += 1
            log.warning(
                "report %s for an order the gateway does not know: %s/%s (broker id %s)",
                report.kind.name,
                report.account,
                report.client_order_id,
                report.broker_order_id,
            )
            return
        event = interpret.report_event(order, report, self._ledger.booked)
        if event is not None:
            order = self._emit_safely(event) or order
        if interpret.may_have_missed_fills(order, report) or (
            order.provisional is not None and interpret.ended_on_old_totals(order)
        ):
            flight = self._inflight.of(order.order_id)
            if not flight.unverified:
                flight.unverified = True
                self.after_commit.append(lambda: self._work.verify(order))

    # ------------------------------------------------- replace, cancel-all

    def _on_replace(self, message: Replace) -> None:
        terms, ref = message.terms, message.ref
        order = self._find(ref)
        known = self._ledger.replace_request(ref.account, terms.replace_id)
        if known is not None:
            if known != (order.order_id, terms):
                raise AlreadyExists(
                    f"replace_id {terms.replace_id!r} already names a different replace "
                    f"in account {ref.account!r}",
                    reason="REPLACE_ID_REUSED",
                    metadata={"order_id": known[0], "replace_id": terms.replace_id},
                )
            self.replies.append((message.reply, order))  # a retry: the order as it is now
            return
        refused = replaces.refusal(order, terms, broker_can_replace=self._work.supports_replace)
        if refused is not None:
            raise refused
        if self.screen_replace is not None:
            self.screen_replace(order, terms.applied_to(order.spec))  # halts and risk limits
        if not self._health.healthy:
            raise Unavailable(
                f"broker unavailable ({self._health.last_error}); retry later",
                reason="BROKER_UNAVAILABLE",
            )
        updated = self._emit(ReplaceRequested(order.order_id, terms, self._clock()))
        self._inflight.of(order.order_id).replacing = True
        self.after_commit.append(lambda: self._work.replace(updated))
        self.replies.append((message.reply, updated))

    def _on_replace_done(self, message: ReplaceDone) -> None:
        order_id = message.order_id
        flight = self._inflight.get(order_id)
        if flight is not None:
            flight.replacing = False
            self._inflight.tidy(order_id)
        if message.state is not None:
            self._on_broker_state(message.state, fresh=True)  # settles it by the broker's terms
        order = self._table.get(order_id)
        if order is None or order.pending_replace is None or message.unresolved:
            return  # settled already (a report came first), or reconciliation settles it
        now, error = self._clock(), message.error
        if message.ack is not None:
            self._emit_safely(
                OrderReplaced(order_id, order.pending_replace, now, message.ack.broker_order_id)
            )
        elif isinstance(error, BrokerRejected):
            self._emit_safely(ReplaceRejected(order_id, error.reason, now))
        elif isinstance(error, BrokerUnavailable):
            # Certain it never reached the broker: the old terms stand.
            self._emit_safely(ReplaceRejected(order_id, f"broker unavailable: {error}", now))
        else:
            log.error(
                "order %s: replace outcome unknown (%r); left PENDING_REPLACE until the "
                "broker's state settles it",
                order_id,
                error,
            )

    def _replace_lost(self, order: Order, fresh: bool) -> bool:
        """Whether a state may settle ``order``'s pending replace by its terms.

        Not while a replace call runs (its answer settles it). A state from
        reconciliation may have been asked for before the replace reached
        the broker, so it only counts once the replace has been pending for
        ``absence_grace`` (missing evidence is not an outcome); a ``fresh``
        one, asked for after the call ended, counts at once.
        """
        flight = self._inflight.get(order.order_id)
        if flight is not None and flight.replacing:
            return False
        age = (self._clock() - order.updated_at).total_seconds()
        return fresh or age >= self._config.absence_grace

    def _on_cancel_all(self, message: CancelAll) -> None:
        orders, more = self._table.open_page(
            message.account, message.after_created_sequence, message.limit, message.symbol
        )
        bulk = message.bulk and self._work.supports_cancel_all
        asked = [
            self.request_cancel(order, bulk=bulk)
            for order in orders
            if message.side is None or order.spec.side is message.side
        ]
        following = orders[-1].created_sequence if more and orders else None
        self.replies.append((message.reply, (asked, following)))

    def _on_bulk_cancel(self, message: BulkCancel) -> None:
        account, order_ids = message.account, message.order_ids
        self.after_commit.append(lambda: self._work.cancel_all(account, order_ids))
        self.replies.append((message.reply, None))

    def _on_bulk_cancel_done(self, message: BulkCancelDone) -> None:
        """Settle the orders a cancel-all call was for.

        Done, or unknown: each order's outcome arrives as a report, or
        reconciliation finds it (and re-sends that order's cancel). Refused
        or undelivered: each order still waiting gets a cancel of its own.
        """
        certain_failure = message.error is not None and not message.unresolved
        if certain_failure:
            log.warning(
                "cancel-all of account %s refused (%r); cancelling %d orders one by one",
                message.account,
                message.error,
                len(message.order_ids),
            )
        for order_id in message.order_ids:
            flight = self._inflight.get(order_id)
            if flight is None or not flight.cancelling:
                continue
            flight.cancelling = False
            self._inflight.tidy(order_id)
            order = self._table.get(order_id)
            if (
                certain_failure
                and order is not None
                and (order.status is OrderStatus.PENDING_CANCEL)
            ):
                self._schedule_cancel(order)

    # ------------------------------------------------------ state changes

    def _emit_if(self, event: OrderEvent | None) -> Order | None:
        return None if event is None else self._emit_safely(event)

    def _emit_safely(self, event: OrderEvent) -> Order | None:
        try:
            return self._emit(event)
        except IllegalTransition as exc:
            self.illegal_transitions += 1
            log.error("refused: order %s: %s", event.order_id, exc)
            return None

    def _emit(self, event: OrderEvent) -> Order:
        """Apply ``event`` through the ledger; settle what waited for it."""
        order = self._ledger.emit(event)
        flight = self._inflight.get(order.order_id)
        if flight is not None:
            if flight.waiters is not None and order.status is not OrderStatus.PENDING_NEW:
                for waiter in flight.waiters:
                    self.after_commit.append(functools.partial(_resolve, waiter, order))
                flight.waiters = None
            if order.is_terminal:
                flight.cancel_resends = 0
                flight.reported_missing = False
            self._inflight.tidy(order.order_id)
        return order

    def in_flight(self, order_id: str) -> bool:
        """Whether broker work or a waiter is on ``order_id`` (retention keeps such orders)."""
        return self._inflight.get(order_id) is not None


def _resolve(future: asyncio.Future[Order | None], order: Order | None) -> None:
    if not future.done():
        future.set_result(order)
