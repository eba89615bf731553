"""The order actor: one asyncio task that owns the order table.

Everything that changes orders is a message, handled in batches by one task,
so there are no locks and no races between a cancel, a fill and a status
read. The actor is the loop around three synchronous layers:

- ``ledger``: the table, sequence numbers and the durable view reads use;
- ``interpret``: pure functions from broker reports and states to events;
- ``inflight``: one record per order of what is asked of the broker.

Per batch the actor takes broker results first, then client commands
(``mailbox``), applies them through the ledger, appends the batch's events
to the journal in one durable commit, and only then answers the callers,
streams the updates and starts broker calls (so the intent to submit is
durable before the broker sees the order).

Broker calls run as separate tasks whose outcomes come back as results; the
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
)
from gateway.domain import (
    CancelRejected,
    CancelRequested,
    IllegalTransition,
    ListOrdersQuery,
    Order,
    OrderCreated,
    OrderEvent,
    OrderRef,
    OrderRejected,
    OrderSpec,
    OrderStatus,
    OrderUpdate,
    SubscriptionFilter,
)
from gateway.engine import broker_calls, interpret
from gateway.engine.breaker import BrokerHealth
from gateway.engine.config import EngineConfig
from gateway.engine.fanout import Fanout, Subscriber
from gateway.engine.ids import new_order_id
from gateway.engine.inflight import InFlightOrders
from gateway.engine.ledger import Ledger
from gateway.engine.mailbox import Mailbox, MailboxFull
from gateway.engine.messages import (
    Absent,
    BrokerOpenOrders,
    BrokerReports,
    BrokerState,
    Cancel,
    CancelDone,
    Command,
    Flush,
    OpenOrders,
    Place,
    PlaceOutcome,
    Result,
    SubmitDone,
    Subscribe,
)
from gateway.engine.reconcile import Reconciler
from gateway.errors import (
    AlreadyExists,
    FailedPrecondition,
    GatewayError,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from gateway.journal import Journal

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


def _overloaded() -> ResourceExhausted:
    return ResourceExhausted(
        "gateway overloaded: too many requests queued; retry with backoff",
        reason="GATEWAY_OVERLOADED",
    )


class OrderActor:
    """The single owner of the order table; any number of RPC tasks may call it."""

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
        capacity = self._config.inbox_capacity
        self._mailbox: Mailbox[Command, Result] = Mailbox(capacity, capacity)
        self._ledger = Ledger()
        self._table = self._ledger.table
        self._inflight = InFlightOrders()
        self._fanout = Fanout()
        self._running = False
        self._loop_task: asyncio.Task[None] | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._broker_tasks: set[asyncio.Task[Any]] = set()
        # Work of the batch in progress, carried out after its commit.
        self._replies: list[tuple[asyncio.Future[Any], Any]] = []
        self._after_commit: list[Callable[[], None]] = []
        self._health = BrokerHealth(self._config.broker_failure_threshold)
        self._reconciler = Reconciler(broker, self._config, self._health, self._deliver_state)
        self._reconcile_now = asyncio.Event()
        self._reconcile_task: asyncio.Task[None] | None = None
        # An unhealthy broker is probed often: wake the loop to switch pace.
        self._health.subscribe(self._on_health_change)
        # Open orders at the broker that this gateway did not place, as of the
        # last pass: each is reported once while it stays open, and the set
        # holds only what is open there now.
        self._foreign_open: set[tuple[str, str]] = set()
        self.illegal_transitions = 0
        self.unknown_reports = 0
        self.foreign_orders = 0
        self.failure: BaseException | None = None
        self._failed = asyncio.Event()

    # ----------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Recover the order table from the journal, then start serving."""
        self.recover()
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
        for message in self._mailbox.drain_commands():
            reply = getattr(message, "reply", None)
            if reply is not None and not reply.done():
                reply.set_exception(_shutting_down(self._ledger.committed))
        await self._journal.close()

    def recover(self) -> int:
        """Rebuild the table and sequence from the journal; return the records read.

        ``start`` does this; call it alone to load a journal without serving.
        """
        # Replay allocates millions of objects that all stay alive: the cyclic
        # collector would walk the growing table again and again for nothing.
        # Off while replaying; afterwards the recovered table is frozen out of
        # its reach, so later full collections do not walk it either.
        collecting = gc.isenabled()
        gc.disable()
        try:
            count = self._ledger.replay(self._journal.replay(), self._journal.last_sequence)
        finally:
            if collecting:
                gc.enable()
        if count:
            log.info("recovered %d orders from %d journal events", len(self._table), count)
        if count >= _FREEZE_AFTER:
            gc.freeze()
        return count

    @property
    def last_sequence(self) -> int:
        """The newest durable sequence."""
        return self._ledger.committed

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

    @property
    def in_flight_count(self) -> int:
        """Orders with broker work outstanding (submit, cancel, verification)."""
        return len(self._inflight)

    # Read-only hooks for metrics (read at scrape time, never on the hot path).
    @property
    def inbox_depth(self) -> int:
        """Commands and broker results waiting for the actor."""
        return len(self._mailbox)

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
        outcome: PlaceOutcome = await self._ask(Place(spec, self._future(), deadline))
        if outcome.settled is None:
            return outcome.order
        wait = self._config.ack_wait if ack_wait is None else min(ack_wait, self._config.ack_wait)
        # The future is this call's own (a retry of the same order waits on
        # another), so a timer can end the wait without shield or a timeout scope.
        timer = asyncio.get_running_loop().call_later(wait, _resolve, outcome.settled, None)
        try:
            settled = await outcome.settled
        finally:
            timer.cancel()
        if settled is not None:
            return settled
        return await self.get_order(OrderRef(spec.account, order_id=outcome.order.order_id))

    async def cancel_order(self, ref: OrderRef) -> Order:
        """Request a cancel; return the order in PENDING_CANCEL (or already CANCELED)."""
        order: Order = await self._ask(Cancel(ref, self._future()))
        return order

    # Reads do not queue behind commands (a backlog of PlaceOrder must not
    # delay a status read): they read the ledger directly, as of the last
    # commit. The actor's task is the only writer and this runs on the same
    # event loop, so nothing changes during a read.

    async def get_order(self, ref: OrderRef) -> Order:
        """Return the order ``ref`` names, as of the last commit."""
        self._check_serving()
        order = self._ledger.find_durable(ref)
        if order is None:
            raise _not_found(ref)
        return order

    async def list_orders(self, query: ListOrdersQuery) -> tuple[list[Order], bool]:
        """Return one page of orders (as of the last commit) and whether more follow."""
        self._check_serving()
        return self._ledger.page(query)

    def open_orders(self) -> list[Order]:
        """Every open order as of the last commit, oldest first."""
        durable = (self._ledger.durable(o) for o in self._table.open_orders())
        return [o for o in durable if o is not None]

    async def flush(self) -> None:
        """Return once every command and result queued before this call is handled
        and durable.

        Reads never wait for commands; this is how a caller (a test, a drain)
        waits until what it asked for is visible.
        """
        await self._ask(Flush(self._future()))

    async def idle(self) -> None:
        """Return once nothing is queued, no broker call runs and all is durable.

        The barrier for tests and tools that drive the engine through a
        scripted broker: after it, every consequence of what was sent so far
        (acks, fills, retries, verifications) is applied and committed.
        """
        while True:
            await self.flush()
            if not self._broker_tasks and not len(self._mailbox):
                return
            if self._broker_tasks:
                await asyncio.wait(set(self._broker_tasks))

    async def subscribe(
        self, filter_: SubscriptionFilter, capacity: int | None = None
    ) -> Subscriber:
        """Register a subscriber; updates after its ``live_after`` arrive in its buffer.

        Updates from ``filter_.after_sequence`` up to ``live_after`` are in the
        journal: read them with ``replay``.
        """
        subscriber = Subscriber(filter_, capacity or self._config.subscriber_buffer)
        live_after: int = await self._ask(Subscribe(subscriber, self._future()))
        subscriber.live_after = live_after
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Release ``subscriber``; safe to call more than once and after stop."""
        # Publishing is synchronous on this loop, so removing here never races it.
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

    @staticmethod
    def _future() -> asyncio.Future[Any]:
        return asyncio.get_running_loop().create_future()

    async def _ask(self, command: Command) -> Any:
        self._check_serving()
        try:
            self._mailbox.command(command)
        except MailboxFull:
            raise _overloaded() from None
        return await command.reply

    # ------------------------------------------------------------ the loop

    async def _run(self) -> None:
        take = self._mailbox.take
        limit = self._config.max_batch
        while True:
            results, commands = await take(limit)
            for result in results:
                self._handle(result)
            for command in commands:
                self._handle(command)
            await self._commit()

    def _handle(self, message: Command | Result) -> None:
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
                case Subscribe():
                    self._after_commit.append(functools.partial(self._register, message))
                case Flush():
                    self._replies.append((message.reply, None))
                case BrokerState():
                    self._on_broker_state(message.state)
                case OpenOrders():
                    self._replies.append((message.reply, self._orders_to_reconcile()))
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
        records = self._ledger.take_pending()
        replies, self._replies = self._replies, []
        actions, self._after_commit = self._after_commit, []
        if records:
            try:
                await self._journal.append(records)
            except Exception as exc:
                self._fail(exc, replies)
                raise
            self._ledger.committed_through(records[-1].sequence)
            publish = self._fanout.publish
            for record in records:
                publish(record.update)
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
        message.reply.set_result(self._ledger.committed)

    def _orders_to_reconcile(self) -> list[Order]:
        """Open orders not being submitted, then terminal ones still unverified."""
        inflight = self._inflight
        orders = [o for o in self._table.open_orders() if not inflight.submitting(o.order_id)]
        for order_id in inflight.unverified():
            order = self._table.get(order_id)
            if order is not None and order.is_terminal:
                orders.append(order)
        return orders

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
        self._inflight.of(order.order_id).submitting = True
        deadline = message.deadline
        self._after_commit.append(lambda: self._spawn_submit(order, deadline=deadline))
        self._replies.append((message.reply, PlaceOutcome(order, self._settle(order))))

    def _settle(self, order: Order) -> asyncio.Future[Order | None] | None:
        """Return a new future settled when ``order`` leaves PENDING_NEW (None if it has)."""
        if order.status is not OrderStatus.PENDING_NEW:
            return None
        flight = self._inflight.of(order.order_id)
        waiter: asyncio.Future[Order | None] = self._future()
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
        if order.status is OrderStatus.PENDING_CANCEL:
            self._replies.append((message.reply, order))  # already on its way
            return
        updated = self._emit(CancelRequested(order.order_id, self._clock()))
        if self._inflight.submitting(order.order_id):
            # The broker may not know the order yet: cancel once the submit returns.
            self._inflight.of(order.order_id).cancel_after_submit = True
        else:
            self._after_commit.append(lambda: self._spawn_cancel(updated))
        self._replies.append((message.reply, updated))

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
        if cancel_after:
            current = self._table.get(order_id)
            if current is not None and not current.is_terminal:
                self._after_commit.append(lambda: self._spawn_cancel(current))

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

    def _on_broker_state(self, state: BrokerOrderState) -> None:
        """Bring one order in line with the broker's view of it."""
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
        catch_up = interpret.catch_up_fill(order, state, booked, now)
        if catch_up is not None:
            log.warning(
                "order %s: booking %s missed fill quantity at %s from the broker's totals",
                order_id,
                catch_up.fill.quantity,
                catch_up.fill.price,
            )
            order = self._emit_safely(catch_up) or order
        elif state.filled_quantity > order.filled_quantity and state.average_fill_price is None:
            log.error(
                "order %s: broker reports %s filled, we know %s, and no price to book it at",
                order_id,
                state.filled_quantity,
                order.filled_quantity,
            )
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
        self._after_commit.append(lambda: self._spawn_cancel(order))

    def _on_absent(self, order_id: str) -> None:
        flight = self._inflight.get(order_id)
        if flight is not None and flight.unverified:
            flight.unverified = False  # nothing there to complete it from
            self._inflight.tidy(order_id)
        order = self._table.get(order_id)
        if order is None or order.is_terminal or self._inflight.submitting(order_id):
            return
        if order.status is not OrderStatus.PENDING_NEW:
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
            )
        )

    def _on_broker_open_orders(self, states: list[BrokerOrderState]) -> None:
        foreign: set[tuple[str, str]] = set()
        for state in states:
            key = (state.account, state.client_order_id)
            if self._table.by_key(*key) is not None:
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
        if interpret.may_have_missed_fills(order, report):
            flight = self._inflight.of(order.order_id)
            if not flight.unverified:
                flight.unverified = True
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
                    self._after_commit.append(functools.partial(_resolve, waiter, order))
                flight.waiters = None
            if order.is_terminal:
                flight.cancel_resends = 0
                flight.reported_missing = False
            self._inflight.tidy(order.order_id)
        return order

    # ------------------------------------------------------- broker tasks

    def _spawn(self, coro: Coroutine[Any, Any, Result | None]) -> None:
        task = asyncio.create_task(coro)
        self._broker_tasks.add(task)
        task.add_done_callback(self._broker_task_done)

    def _broker_task_done(self, task: asyncio.Task[Result | None]) -> None:
        """Hand a broker task's outcome to the actor (its functions never raise)."""
        self._broker_tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("broker task failed: %r", error, exc_info=error)
            return
        message = task.result()
        if message is not None:
            self._mailbox.result(message)

    def _spawn_submit(
        self, order: Order, *, ask_first: bool = False, deadline: float | None = None
    ) -> None:
        self._inflight.of(order.order_id).submitting = True
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
        self._inflight.of(order.order_id).cancelling = True
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

    async def _deliver_state(self, state: BrokerOrderState) -> None:
        await self._mailbox.result_when_room(BrokerState(state))

    async def _ask_internal(self, query: OpenOrders) -> list[Order]:
        """Ask the actor from inside the engine: queued as a result, never refused."""
        self._check_serving()
        await self._mailbox.result_when_room(query)
        orders: list[Order] = await query.reply
        return orders

    async def _read_reports(self) -> None:
        """Feed the broker's report stream to the actor, reconnecting on errors.

        Each frame is one message. The put waits while the result queue is
        full: backpressure on the broker stream, never a dropped report.
        """
        delay = self._config.broker_backoff
        put = self._mailbox.result_when_room
        while True:
            try:
                async for reports in self._broker.reports():
                    await put(BrokerReports(reports))
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
        open_orders = await self._ask_internal(OpenOrders(self._future()))
        put = self._mailbox.result_when_room
        result = await self._reconciler.run(
            open_orders,
            lambda order_id: put(Absent(order_id)),
            lambda states: put(BrokerOpenOrders(states)),
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


def _resolve(future: asyncio.Future[Order | None], order: Order | None) -> None:
    if not future.done():
        future.set_result(order)
