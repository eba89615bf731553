"""The order actor: one asyncio task that owns the order table.

Everything that reads or changes orders is a message in one bounded inbox,
handled in batches by one task, so there are no locks and no races between
a cancel, a fill and a status read. Per batch the actor:

1. applies every message to the order table, collecting events;
2. appends the batch's events to the journal in one durable commit;
3. only then answers the callers, streams the updates and starts broker calls
   (so the intent to submit is durable before the broker sees the order).

Broker calls run as separate tasks whose results come back as messages; the
actor never awaits broker I/O, so one slow broker call delays nobody.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from gateway.brokers import (
    Broker,
    BrokerError,
    BrokerOrderState,
    BrokerRejected,
    BrokerUnavailable,
    ExecutionReport,
    ReportKind,
)
from gateway.domain import (
    CancelRejected,
    CancelRequested,
    Fill,
    IllegalTransition,
    ListOrdersQuery,
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderCreated,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRef,
    OrderRejected,
    OrderSpec,
    OrderStatus,
    OrderUpdate,
    SubscriptionFilter,
    apply_event,
)
from gateway.domain.order import AVERAGE_PRICE_QUANTUM
from gateway.engine import broker_calls
from gateway.engine.breaker import BrokerHealth
from gateway.engine.config import EngineConfig
from gateway.engine.fanout import Fanout, Subscriber
from gateway.engine.ids import new_order_id
from gateway.engine.messages import (
    Absent,
    BrokerOpenOrders,
    BrokerReport,
    BrokerState,
    Cancel,
    CancelDone,
    Flush,
    Message,
    OpenOrders,
    Place,
    PlaceOutcome,
    SubmitDone,
    Subscribe,
    Unsubscribe,
)
from gateway.engine.order_table import OrderTable
from gateway.engine.reconcile import Reconciler
from gateway.errors import (
    AlreadyExists,
    FailedPrecondition,
    GatewayError,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from gateway.journal import Journal, JournalRecord

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
# Journal records past which a recovered table is frozen out of the cyclic
# collector's reach (smaller ones cost it little; tests start many actors).
_FREEZE_AFTER = 50_000


def utc_now() -> datetime:
    return datetime.now(UTC)


def _not_found(ref: OrderRef) -> NotFound:
    which = ref.order_id or ref.client_order_id
    return NotFound(
        f"no order {which!r} in account {ref.account!r}",
        metadata={"account": ref.account, "order": which},
    )


def _shutting_down(last_sequence: int) -> Unavailable:
    return Unavailable(
        "gateway shutting down; reconnect and resume with after_sequence",
        reason="GATEWAY_SHUTTING_DOWN",
        metadata={"last_sequence": str(last_sequence)},
    )


class OrderActor:
    """The single owner of the order table; its public methods are thread-safe
    only in the sense that matters here: any number of RPC tasks may call them."""

    def __init__(
        self,
        broker: Broker,
        journal: Journal,
        config: EngineConfig | None = None,
        *,
        clock: Clock = utc_now,
        new_id: Callable[[], str] = new_order_id,
    ) -> None:
        self._broker = broker
        self._journal = journal
        self._config = config or EngineConfig()
        self._clock = clock
        self._new_id = new_id
        self._inbox: asyncio.Queue[Message] = asyncio.Queue(self._config.inbox_capacity)
        self._table = OrderTable()
        self._fanout = Fanout()
        self._sequence = 0  # last assigned
        self._committed = 0  # last durable
        # Orders changed since the last commit, as they were at it (None: new).
        self._before_commit: dict[str, Order | None] = {}
        self._running = False
        self._loop_task: asyncio.Task[None] | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._broker_tasks: set[asyncio.Task[Any]] = set()
        self._submitting: set[str] = set()
        self._cancel_after_submit: set[str] = set()
        self._settled: dict[str, asyncio.Future[Order]] = {}
        # Work of the batch in progress, carried out after its commit.
        self._records: list[JournalRecord] = []
        self._replies: list[tuple[asyncio.Future[Any], Any]] = []
        self._after_commit: list[Callable[[], None]] = []
        self._health = BrokerHealth(self._config.broker_failure_threshold)
        self._reconciler = Reconciler(broker, self._config, self._health, self._deliver_state)
        self._reconcile_now = asyncio.Event()
        self._reconcile_task: asyncio.Task[None] | None = None
        # An unhealthy broker is probed often: wake the loop to switch pace.
        self._health.subscribe(self._on_health_change)
        self._foreign_seen: set[tuple[str, str]] = set()
        # Terminal orders whose fills may be incomplete (a report was lost
        # before the one that ended them): asked about until the broker answers.
        self._unverified: set[str] = set()
        # Cancels at the broker now, and how often each order's was re-sent.
        self._cancelling: set[str] = set()
        self._cancel_resends: dict[str, int] = {}
        self._missing_seen: set[str] = set()
        self.illegal_transitions = 0
        self.unknown_reports = 0
        self.foreign_orders = 0
        self.failure: BaseException | None = None
        self._failed = asyncio.Event()

    # ----------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Recover the order table from the journal, then start serving."""
        self._recover()
        self._running = True
        self._loop_task = asyncio.create_task(self._run(), name="order-actor")
        self._reader_task = asyncio.create_task(self._read_reports(), name="broker-reports")
        self._reconcile_task = asyncio.create_task(self._reconcile_loop(), name="reconcile")
        for order in self._table.open_orders():
            if order.status is OrderStatus.PENDING_NEW:
                # An earlier process may or may not have sent it: ask, then send.
                self._spawn_submit(order, ask_first=True)

    async def stop(self) -> None:
        """Stop taking commands, end every stream, stop tasks, close the journal."""
        self._running = False
        tasks = [
            t for t in (self._reconcile_task, self._reader_task, self._loop_task) if t is not None
        ]
        tasks += list(self._broker_tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._fanout.close_all(_shutting_down)
        while not self._inbox.empty():
            message = self._inbox.get_nowait()
            reply = getattr(message, "reply", None)
            if reply is not None and not reply.done():
                reply.set_exception(_shutting_down(self._committed))
        await self._journal.close()

    @property
    def last_sequence(self) -> int:
        """The newest durable sequence."""
        return self._committed

    @property
    def broker_healthy(self) -> bool:
        """False while the circuit breaker refuses new orders."""
        return self._health.healthy

    def on_broker_health(self, listener: Callable[[bool], None]) -> None:
        """Call ``listener(healthy)`` whenever broker health flips."""
        self._health.subscribe(listener)

    def _on_health_change(self, healthy: bool) -> None:
        if not healthy:
            self._reconcile_now.set()

    def request_reconcile(self) -> None:
        """Run a reconciliation pass soon (e.g. after the broker reconnected)."""
        self._reconcile_now.set()

    @property
    def reconcile_passes(self) -> int:
        return self._reconciler.passes

    @property
    def subscriber_count(self) -> int:
        return len(self._fanout)

    @property
    def order_count(self) -> int:
        return len(self._table)

    # Read-only hooks for metrics (read at scrape time, never on the hot path).
    @property
    def inbox_depth(self) -> int:
        """Messages waiting in the inbox."""
        return self._inbox.qsize()

    def subscriber_buffer_depths(self) -> list[int]:
        """Updates waiting in each live subscriber's buffer."""
        return self._fanout.buffer_depths()

    # ---------------------------------------------------------- client API

    async def place_order(self, spec: OrderSpec, ack_wait: float | None = None) -> Order:
        """Place ``spec`` idempotently; return once the broker answered or the wait ran out.

        The wait is the configured ``ack_wait``, shortened to ``ack_wait`` if given
        (the caller's remaining deadline).
        """
        deadline = None if ack_wait is None else time.monotonic() + ack_wait
        outcome: PlaceOutcome = await self._ask(lambda f: Place(spec, f, deadline))
        if outcome.settled is None:
            return outcome.order
        wait = self._config.ack_wait if ack_wait is None else min(ack_wait, self._config.ack_wait)
        try:
            async with asyncio.timeout(wait):
                return await asyncio.shield(outcome.settled)
        except TimeoutError:
            return await self.get_order(OrderRef(spec.account, order_id=outcome.order.order_id))

    async def cancel_order(self, ref: OrderRef) -> Order:
        """Request a cancel; return the order in PENDING_CANCEL (or already CANCELED)."""
        order: Order = await self._ask(lambda f: Cancel(ref, f))
        return order

    # Reads do not queue in the inbox behind commands (a backlog of PlaceOrder
    # must not delay a status read): they read the table directly, as of the
    # last commit. The actor's task is the only writer and this runs on the
    # same event loop, so nothing changes during a read; changes not yet
    # committed are hidden by ``_durable``.

    async def get_order(self, ref: OrderRef) -> Order:
        """Return the order ``ref`` names, as of the last commit."""
        self._check_serving()
        found = self._table.find(ref)
        order = None if found is None else self._durable(found)
        if order is None:
            raise _not_found(ref)
        return order

    async def list_orders(self, query: ListOrdersQuery) -> tuple[list[Order], bool]:
        """Return one page of orders (as of the last commit) and whether more follow."""
        self._check_serving()
        return self._table.page(query, self._durable)

    async def flush(self) -> None:
        """Return once every command queued before this call is handled and durable.

        Reads never wait for commands; this is how a caller (a test, a drain)
        waits until what it asked for is visible.
        """
        await self._ask(Flush)

    def _durable(self, order: Order) -> Order | None:
        """``order`` as of the last commit: None if it was created since."""
        if order.last_sequence <= self._committed:
            return order
        return self._before_commit[order.order_id]

    async def subscribe(
        self, filter_: SubscriptionFilter, capacity: int | None = None
    ) -> Subscriber:
        """Register a subscriber; updates after its ``live_after`` arrive in its buffer.

        Updates from ``filter_.after_sequence`` up to ``live_after`` are in the
        journal: read them with ``replay``.
        """
        subscriber = Subscriber(filter_, capacity or self._config.subscriber_buffer)
        live_after: int = await self._ask(lambda f: Subscribe(subscriber, f))
        subscriber.live_after = live_after
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Release ``subscriber``; safe to call more than once and after stop."""
        if self._running:
            with contextlib.suppress(asyncio.QueueFull):
                self._inbox.put_nowait(Unsubscribe(subscriber))
                return
        self._fanout.remove(subscriber)

    async def replay(
        self, filter_: SubscriptionFilter, after: int, up_to: int, limit: int = 500
    ) -> tuple[list[OrderUpdate], int]:
        """Return matching journaled updates in (after, up_to] and where the read stopped."""
        records = await self._journal.read(after, up_to, limit)
        if not records:
            return [], up_to
        updates = [
            r.update
            for r in records
            if filter_.matches(r.update.order.spec.account, r.update.order.spec.symbol)
        ]
        return updates, records[-1].sequence

    def _check_serving(self) -> None:
        if not self._running:
            raise Unavailable("gateway is not serving", reason="GATEWAY_NOT_SERVING")

    async def _ask(self, make: Callable[[asyncio.Future[Any]], Message]) -> Any:
        self._check_serving()
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        try:
            self._inbox.put_nowait(make(reply))
        except asyncio.QueueFull:
            raise ResourceExhausted(
                "gateway overloaded: too many requests queued; retry with backoff",
                reason="GATEWAY_OVERLOADED",
            ) from None
        return await reply

    # ------------------------------------------------------------ the loop

    async def _run(self) -> None:
        while True:
            batch = [await self._inbox.get()]
            while len(batch) < self._config.max_batch and not self._inbox.empty():
                batch.append(self._inbox.get_nowait())
            for message in batch:
                self._handle(message)
            await self._commit()

    def _handle(self, message: Message) -> None:
        reply = getattr(message, "reply", None)
        try:
            match message:
                case Place():
                    self._on_place(message)
                case Cancel():
                    self._on_cancel(message)
                case Subscribe():
                    self._after_commit.append(functools.partial(self._register, message))
                case Unsubscribe():
                    self._fanout.remove(message.subscriber)
                case Flush():
                    self._replies.append((message.reply, None))
                case SubmitDone():
                    self._on_submit_done(message)
                case CancelDone():
                    self._on_cancel_done(message)
                case BrokerReport():
                    self._health.record(None)  # a report proves the broker is alive
                    self._on_report(message.report)
                case BrokerState():
                    self._on_broker_state(message.state)
                case OpenOrders():
                    open_orders = [
                        o for o in self._table.open_orders() if o.order_id not in self._submitting
                    ]
                    open_orders += [
                        order
                        for order_id in sorted(self._unverified)
                        if (order := self._table.get(order_id)) is not None and order.is_terminal
                    ]
                    self._replies.append((message.reply, open_orders))
                case Absent():
                    self._on_absent(message.order_id)
                case BrokerOpenOrders():
                    self._on_broker_open_orders(message.states)
        except GatewayError as exc:
            if reply is not None:
                self._replies.append((reply, exc))
        except Exception as exc:
            # A bug must not take the actor (and every order) down with it.
            log.exception("actor failed to handle %s", type(message).__name__)
            if reply is not None:
                self._replies.append((reply, GatewayError(f"internal error: {exc}")))

    async def _commit(self) -> None:
        records, self._records = self._records, []
        replies, self._replies = self._replies, []
        actions, self._after_commit = self._after_commit, []
        if records:
            try:
                await self._journal.append(records)
            except Exception as exc:
                self._fail(exc, replies)
                raise
            self._committed = records[-1].sequence
            self._before_commit.clear()
            for record in records:
                self._fanout.publish(record.update)
        for future, value in replies:
            if future.done():  # the caller gave up (deadline, disconnect)
                continue
            if isinstance(value, BaseException):
                future.set_exception(value)
            else:
                future.set_result(value)
        for action in actions:
            action()

    def _fail(self, error: Exception, replies: list[tuple[asyncio.Future[Any], Any]]) -> None:
        """Stop for good after a failed journal write.

        The table now holds changes the journal does not: nothing of them may
        be acknowledged or streamed. Callers get UNAVAILABLE (safe to retry
        against the restarted gateway, which recovers from the journal).
        """
        log.critical("journal write failed; the gateway must restart: %r", error)
        self._running = False
        self.failure = error
        unavailable = Unavailable(
            "journal write failed; the gateway is restarting, retry shortly",
            reason="JOURNAL_FAILED",
        )
        for future, _ in replies:
            if not future.done():
                future.set_exception(unavailable)
        self._failed.set()

    async def wait_failed(self) -> BaseException:
        """Return once the actor has failed for good (it never returns otherwise)."""
        await self._failed.wait()
        assert self.failure is not None
        return self.failure

    def _register(self, message: Subscribe) -> None:
        """Add a subscriber between batches: everything up to now is in the journal."""
        subscriber = message.subscriber
        if message.reply.done():
            return  # the stream went away while queued
        if subscriber.filter.snapshot:
            subscriber.snapshot = sorted(
                (
                    order
                    for order in self._table.open_orders()
                    if subscriber.filter.matches(order.spec.account, order.spec.symbol)
                ),
                key=lambda order: order.last_sequence,
            )
        self._fanout.add(subscriber)
        message.reply.set_result(self._committed)

    # ------------------------------------------------------------ handlers

    def _find(self, ref: OrderRef) -> Order:
        order = self._table.find(ref)
        if order is None:
            raise _not_found(ref)
        return order

    def _on_place(self, message: Place) -> None:
        spec = message.spec
        existing = self._table.by_key(*spec.key)
        if existing is not None:
            if existing.spec != spec:
                raise AlreadyExists(
                    f"client_order_id {spec.client_order_id!r} already names a different "
                    f"order in account {spec.account!r}",
                    metadata={"order_id": existing.order_id},
                )
            self._replies.append((message.reply, PlaceOutcome(existing, self._settle(existing))))
            return
        if not self._health.healthy:
            # Fail fast, before the order exists: the client retries later with
            # the same client_order_id and nothing is stuck in between.
            raise Unavailable(
                f"broker unavailable ({self._health.last_error}); retry later",
                reason="BROKER_UNAVAILABLE",
            )
        order = self._emit(OrderCreated(self._new_id(), spec, self._clock()))
        assert order is not None
        self._submitting.add(order.order_id)
        deadline = message.deadline
        self._after_commit.append(lambda: self._spawn_submit(order, deadline=deadline))
        self._replies.append((message.reply, PlaceOutcome(order, self._settle(order))))

    def _settle(self, order: Order) -> asyncio.Future[Order] | None:
        """Return the future settled when ``order`` leaves PENDING_NEW (None if it has)."""
        if order.status is not OrderStatus.PENDING_NEW:
            return None
        future = self._settled.get(order.order_id)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._settled[order.order_id] = future
        return future

    def _on_cancel(self, message: Cancel) -> None:
        order = self._find(message.ref)
        if order.is_terminal:
            raise FailedPrecondition(
                f"order {order.order_id} is already {order.status.name}; nothing to cancel",
                reason="ORDER_ALREADY_TERMINAL",
                metadata={"order_id": order.order_id, "status": order.status.name},
            )
        if order.status is OrderStatus.PENDING_CANCEL:
            self._replies.append((message.reply, order))  # already on its way
            return
        updated = self._emit(CancelRequested(order.order_id, self._clock()))
        assert updated is not None
        if order.order_id in self._submitting:
            # The broker may not know the order yet: cancel once the submit returns.
            self._cancel_after_submit.add(order.order_id)
        else:
            self._after_commit.append(lambda: self._spawn_cancel(updated))
        self._replies.append((message.reply, updated))

    def _on_submit_done(self, message: SubmitDone) -> None:
        order_id = message.order_id
        self._submitting.discard(order_id)
        order = self._table.get(order_id)
        if order is None:
            return
        now = self._clock()
        error = message.error
        if message.ack is not None:
            ack = self._ack_event(order, message.ack.broker_order_id, now)
            if ack is not None:
                self._emit_safely(ack)
        elif isinstance(error, BrokerRejected):
            self._emit_safely(OrderRejected(order_id, error.reason, now))
        elif isinstance(error, BrokerUnavailable):
            # Certain it never reached the broker: a rejection is the truth.
            self._emit_safely(OrderRejected(order_id, f"broker unavailable: {error}", now))
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
            self._after_commit.append(lambda: self._spawn_recheck(order))
        if order_id in self._cancel_after_submit:
            self._cancel_after_submit.discard(order_id)
            current = self._table.get(order_id)
            if current is not None and not current.is_terminal:
                self._after_commit.append(lambda: self._spawn_cancel(current))

    def _on_cancel_done(self, message: CancelDone) -> None:
        self._cancelling.discard(message.order_id)
        if message.error is None or message.unresolved:
            return  # the outcome arrives as a report, or reconciliation finds it
        order = self._table.get(message.order_id)
        if order is None or order.status is not OrderStatus.PENDING_CANCEL:
            return
        reason = (
            message.error.reason
            if isinstance(message.error, BrokerRejected)
            else f"cancel not confirmed by the broker: {message.error}"
        )
        self._emit_safely(CancelRejected(order.order_id, reason, self._clock()))

    def _on_broker_state(self, state: BrokerOrderState) -> None:
        """Bring one order in line with the broker's view of it."""
        order = self._table.by_key(state.account, state.client_order_id)
        if order is None:
            self.unknown_reports += 1
            log.warning("state for unknown order %s/%s", state.account, state.client_order_id)
            return
        order_id, now = order.order_id, self._clock()
        self._unverified.discard(order_id)
        if state.status is not OrderStatus.REJECTED:
            ack = self._ack_event(order, state.broker_order_id, now)
            if ack is not None:
                self._emit_safely(ack)
        for fill in state.fills:
            if not self._table.has_exec(order_id, fill.exec_id):
                self._emit_safely(OrderFilled(order_id, fill, fill.time, state.broker_order_id))
        self._catch_up_fills(state)
        current = self._table.get(order_id)
        if current is None or current.is_terminal:
            return
        terminal: OrderEvent | None = None
        if state.status is OrderStatus.CANCELED:
            terminal = OrderCanceled(order_id, now, state.reason)
        elif state.status is OrderStatus.EXPIRED:
            terminal = OrderExpired(order_id, now)
        elif state.status is OrderStatus.REJECTED:
            terminal = OrderRejected(order_id, state.reason or "rejected by broker", now)
        if terminal is not None:
            self._emit_safely(terminal)
        elif current.status is OrderStatus.PENDING_CANCEL:
            self._retry_unconfirmed_cancel(current)

    def _retry_unconfirmed_cancel(self, order: Order) -> None:
        """The broker still has an order we asked to cancel, and no cancel is on
        its way: the last one's outcome was lost. Send it again (cancels are
        idempotent); after a few tries, report the cancel as not confirmed."""
        if order.order_id in self._cancelling or order.order_id in self._submitting:
            return
        tries = self._cancel_resends.get(order.order_id, 0)
        if tries >= self._config.broker_attempts:
            self._cancel_resends.pop(order.order_id, None)
            reason = f"cancel not confirmed by the broker after {tries + 1} tries"
            self._emit_safely(CancelRejected(order.order_id, reason, self._clock()))
            return
        self._cancel_resends[order.order_id] = tries + 1
        log.warning(
            "order %s: cancel unconfirmed, still open at the broker; re-sending", order.order_id
        )
        self._after_commit.append(lambda: self._spawn_cancel(order))

    def _catch_up_fills(self, state: BrokerOrderState) -> None:
        """Book fills the broker counts but never itemised to us, as one fill.

        Its exec_id names the broker's total, so the same catch-up is never
        booked twice; its price is what makes our average match the broker's.
        """
        order = self._table.by_key(state.account, state.client_order_id)
        if order is None or state.filled_quantity <= order.filled_quantity:
            return
        missing = state.filled_quantity - order.filled_quantity
        if state.average_fill_price is None:
            log.error(
                "order %s: broker reports %s filled, we know %s, and no price to book it at",
                order.order_id,
                state.filled_quantity,
                order.filled_quantity,
            )
            return
        notional = state.average_fill_price * state.filled_quantity - order.fill_notional
        price = (notional / missing).quantize(AVERAGE_PRICE_QUANTUM)
        if price <= 0:
            price = state.average_fill_price
        exec_id = f"reconciled:{state.broker_order_id}:{state.filled_quantity}"
        if self._table.has_exec(order.order_id, exec_id):
            return
        now = self._clock()
        log.warning(
            "order %s: booking %s missed fill quantity at %s from the broker's totals",
            order.order_id,
            missing,
            price,
        )
        fill = Fill(exec_id, missing, price, now)
        self._emit_safely(OrderFilled(order.order_id, fill, now, state.broker_order_id))

    def _on_absent(self, order_id: str) -> None:
        self._unverified.discard(order_id)  # nothing there to complete it from
        order = self._table.get(order_id)
        if order is None or order.is_terminal or order_id in self._submitting:
            return
        if order.status is not OrderStatus.PENDING_NEW:
            if order_id not in self._missing_seen:
                self._missing_seen.add(order_id)
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
            )
        )

    def _on_broker_open_orders(self, states: list[BrokerOrderState]) -> None:
        for state in states:
            key = (state.account, state.client_order_id)
            if self._table.by_key(*key) is not None or key in self._foreign_seen:
                continue
            self._foreign_seen.add(key)
            self.foreign_orders += 1
            log.warning(
                "broker holds open order %s/%s (broker id %s) that this gateway did not "
                "place; reported, not adopted",
                state.account,
                state.client_order_id,
                state.broker_order_id,
            )

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
        event = self._event_for(order, report)
        if event is not None:
            self._emit_safely(event)
        self._check_completeness(order.order_id, report)

    def _check_completeness(self, order_id: str, report: ExecutionReport) -> None:
        """Ask the broker about an order whose fills we may have missed.

        Reconciliation covers open orders; this covers the order a lost fill
        report and then a cancel or expiry ended: the end says nothing about
        the fills before it, unless the venue sends its cumulative total.
        """
        order = self._table.get(order_id)
        if order is None:
            return
        behind = (
            report.filled_quantity is not None and report.filled_quantity > order.filled_quantity
        )
        unknown = report.filled_quantity is None and report.kind in (
            ReportKind.CANCELED,
            ReportKind.EXPIRED,
        )
        if (behind or unknown) and order_id not in self._unverified:
            self._unverified.add(order_id)
            self._after_commit.append(lambda: self._spawn(self._verify(order)))

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

    @staticmethod
    def _ack_event(order: Order, broker_order_id: str, time: datetime) -> OrderAccepted | None:
        """Return the ack to apply, or None when it only echoes what is known.

        Acks arrive twice (submit reply and report stream) and may trail the
        fills; only the first one matters, or one that brings the broker id.
        """
        if order.status is OrderStatus.PENDING_NEW:
            return OrderAccepted(order.order_id, broker_order_id, time)
        if order.is_terminal or order.broker_order_id or not broker_order_id:
            return None
        return OrderAccepted(order.order_id, broker_order_id, time)

    def _event_for(self, order: Order, report: ExecutionReport) -> OrderEvent | None:
        order_id, time = order.order_id, report.time
        match report.kind:
            case ReportKind.ACCEPTED:
                return self._ack_event(order, report.broker_order_id, time)
            case ReportKind.REJECTED:
                if order.status is OrderStatus.REJECTED:
                    return None
                return OrderRejected(order_id, report.reason or "rejected by broker", time)
            case ReportKind.FILL:
                if report.fill is None or self._table.has_exec(order_id, report.fill.exec_id):
                    return None  # a duplicate report: each exec_id is applied once
                return OrderFilled(order_id, report.fill, time, report.broker_order_id)
            case ReportKind.CANCELED:
                if order.status is OrderStatus.CANCELED:
                    return None  # the echo of a cancel already applied
                return OrderCanceled(order_id, time, report.reason)
            case ReportKind.CANCEL_REJECTED:
                if order.status is not OrderStatus.PENDING_CANCEL:
                    return None
                return CancelRejected(order_id, report.reason or "cancel rejected", time)
            case ReportKind.EXPIRED:
                if order.status is OrderStatus.EXPIRED:
                    return None
                return OrderExpired(order_id, time)
        return None

    # ------------------------------------------------------ state changes

    def _emit_safely(self, event: OrderEvent) -> Order | None:
        try:
            return self._emit(event)
        except IllegalTransition as exc:
            self.illegal_transitions += 1
            log.error("refused: order %s: %s", event.order_id, exc)
            return None

    def _emit(self, event: OrderEvent) -> Order | None:
        """Apply ``event``, give it the next sequence and queue it for the journal."""
        before = self._table.get(event.order_id)
        after = apply_event(before, event, self._sequence + 1)
        if (
            before is not None
            # A new status or fill is a change: the full comparison (a copy and
            # thirteen fields) only runs when neither moved.
            and after.status is before.status
            and after.filled_quantity == before.filled_quantity
            and before
            == after.evolve(updated_at=before.updated_at, last_sequence=before.last_sequence)
        ):
            return before  # nothing changed (a duplicate ack): no event, no update
        self._before_commit.setdefault(event.order_id, before)  # what reads see until the commit
        self._sequence += 1
        fill = event.fill if isinstance(event, OrderFilled) else None
        record = JournalRecord(event, OrderUpdate(self._sequence, after, event.time, fill))
        self._apply(record)
        self._records.append(record)
        return after

    def _apply(self, record: JournalRecord) -> None:
        """Put a record's result into the table: the one path for live and replay."""
        order = record.update.order
        self._table.put(order)
        if isinstance(record.event, OrderFilled):
            self._table.add_exec(order.order_id, record.event.fill.exec_id)
        if order.is_terminal:
            self._cancel_resends.pop(order.order_id, None)
        if order.status is not OrderStatus.PENDING_NEW:
            settled = self._settled.pop(order.order_id, None)
            if settled is not None:
                self._after_commit.append(functools.partial(self._resolve_settled, settled, order))

    @staticmethod
    def _resolve_settled(future: asyncio.Future[Order], order: Order) -> None:
        if not future.done():
            future.set_result(order)

    def _recover(self) -> None:
        """Rebuild the table, indexes and sequence by re-applying the journal."""
        # Replay allocates millions of objects that all stay alive: the cyclic
        # collector would walk the growing table again and again for nothing.
        # Off while replaying; afterwards the recovered table is frozen out of
        # its reach, so later full collections do not walk it either.
        collecting = gc.isenabled()
        gc.disable()
        try:
            count = self._replay_journal()
        finally:
            if collecting:
                gc.enable()
        if count >= _FREEZE_AFTER:
            gc.freeze()

    def _replay_journal(self) -> int:
        """Re-apply every journal record; return how many there were."""
        count = 0
        for record in self._journal.replay():
            before = self._table.get(record.event.order_id)
            try:
                order = apply_event(before, record.event, record.sequence)
            except IllegalTransition as exc:
                # Only a bug writes such a record, and refusing to start over it
                # would be a crash loop. The record's snapshot is what clients
                # were told, so that is the state kept.
                log.error(
                    "journal record %d does not replay (%s); kept as stored", record.sequence, exc
                )
                order = record.update.order
            if order != record.update.order:
                log.warning("journal record %d disagrees with its replay", record.sequence)
            update = OrderUpdate(record.sequence, order, record.update.time, record.update.fill)
            self._apply(JournalRecord(record.event, update))
            self._sequence = record.sequence
            count += 1
        # Numbers a recovery reserved (records it had to drop) are never reused.
        self._sequence = max(self._sequence, self._journal.last_sequence)
        self._committed = self._sequence
        self._after_commit.clear()
        if count:
            log.info("recovered %d orders from %d journal events", len(self._table), count)
        return count

    # ------------------------------------------------------- broker tasks

    def _spawn(self, coro: Coroutine[Any, Any, Message | None]) -> None:
        async def run() -> None:
            message = await coro
            if message is not None:
                await self._inbox.put(message)

        task = asyncio.create_task(run())
        self._broker_tasks.add(task)
        task.add_done_callback(self._broker_tasks.discard)

    def _spawn_submit(
        self, order: Order, *, ask_first: bool = False, deadline: float | None = None
    ) -> None:
        self._submitting.add(order.order_id)
        self._spawn(
            broker_calls.submit_order(
                self._broker,
                self._config,
                self._health,
                order.order_id,
                order.spec,
                self._deliver_state,
                ask_first=ask_first,
                deadline=deadline,
            )
        )

    def _spawn_recheck(self, order: Order) -> None:
        self._spawn(
            broker_calls.recheck_submit(
                self._broker,
                self._config,
                self._health,
                order.order_id,
                order.spec,
                self._deliver_state,
            )
        )

    def _spawn_cancel(self, order: Order) -> None:
        self._cancelling.add(order.order_id)
        self._spawn(
            broker_calls.cancel_order(
                self._broker,
                self._config,
                self._health,
                order.order_id,
                order.spec.account,
                order.spec.client_order_id,
                order.broker_order_id,
                self._deliver_state,
            )
        )

    async def _deliver_report(self, report: ExecutionReport) -> None:
        await self._inbox.put(BrokerReport(report))

    async def _deliver_state(self, state: BrokerOrderState) -> None:
        await self._inbox.put(BrokerState(state))

    async def _read_reports(self) -> None:
        """Feed the broker's report stream into the inbox, reconnecting on errors.

        ``put`` waits when the inbox is full: backpressure on the broker
        stream, never a dropped report.
        """
        delay = self._config.broker_backoff
        while True:
            try:
                async for report in self._broker.reports():
                    await self._inbox.put(BrokerReport(report))
                    delay = self._config.broker_backoff
                if not self._running:
                    return
                log.warning("broker report stream ended; reconnecting in %.2fs", delay)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("broker report stream failed; reconnecting in %.2fs", delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._config.broker_backoff_max)
            # Reports may have been missed while the stream was down.
            self.request_reconcile()

    async def _reconcile_loop(self) -> None:
        """Reconcile at start, on request, periodically; soon again after a pass
        the broker could not fully answer, and often while it is unhealthy."""
        self._reconcile_now.set()
        complete = True
        while True:
            interval = (
                self._config.reconcile_interval
                if self._health.healthy and complete
                else self._config.unhealthy_probe_interval
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval or None):
                    await self._reconcile_now.wait()
            self._reconcile_now.clear()
            if not self._running:
                return
            try:
                complete = await self._reconcile_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                complete = False
                log.exception("reconciliation pass failed")

    async def _reconcile_once(self) -> bool:
        """Run one pass; return whether the broker answered every question."""
        open_orders: list[Order] = await self._ask(OpenOrders)
        result = await self._reconciler.run(
            open_orders,
            lambda order_id: self._inbox.put(Absent(order_id)),
            lambda states: self._inbox.put(BrokerOpenOrders(states)),
        )
        log.log(
            logging.INFO if result.absent or result.errors else logging.DEBUG,
            "reconciled %d open orders: %d found, %d absent, %d unanswered",
            len(open_orders),
            result.found,
            len(result.absent),
            result.errors,
        )
        return result.errors == 0
