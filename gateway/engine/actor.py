"""The order actor: one asyncio task that owns the order table.

Everything that changes orders is a message, handled in batches by one task,
so there are no locks and no races between a cancel, a fill and a status
read. The actor is the loop around synchronous layers:

- ``ledger``: the table, sequence numbers and the durable view reads use;
- ``desk``: the order logic per message, with one in-flight record per order
  (``inflight``) of what is asked of the broker;
- ``interpret``: pure functions from broker reports and states to events,
  which the desk applies.

Around them: ``broker_tasks`` runs broker calls, ``checkpointer`` writes the
table's checkpoints off the loop, ``retention`` takes terminal orders out of
memory and reads them back on demand, and ``fanout`` streams updates.

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
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from gateway.brokers import (
    Broker,
    BrokerOrderState,
)
from gateway.brokers.base import ReferencePrices
from gateway.domain import (
    ListOrdersQuery,
    Order,
    OrderRef,
    OrderSpec,
    OrderStatus,
    ReplaceTerms,
    Side,
    SubscriptionFilter,
)
from gateway.domain.controls import AnyUpdate, Position, TradingHalt, TradingMode
from gateway.engine.breaker import BrokerHealth
from gateway.engine.broker_tasks import BrokerTasks
from gateway.engine.checkpointer import Checkpointer
from gateway.engine.config import EngineConfig
from gateway.engine.desk import OrderDesk, not_found
from gateway.engine.fanout import Fanout, Subscriber, update_matches
from gateway.engine.ids import new_order_id
from gateway.engine.ledger import Ledger
from gateway.engine.mailbox import Mailbox, MailboxFull
from gateway.engine.messages import (
    Absent,
    BrokerOpenOrders,
    BrokerReports,
    BrokerState,
    BulkCancel,
    Cancel,
    CancelAll,
    Command,
    Flush,
    OpenOrders,
    Place,
    PlaceOutcome,
    Reloaded,
    Replace,
    Result,
    Subscribe,
    Sweep,
)
from gateway.engine.reconcile import Reconciler
from gateway.engine.retention import SWEEP_INTERVAL, SWEEP_LIMIT, Retention, unreadable
from gateway.engine.trading_controls import Halt, HaltOutcome, Resume, TradingControls
from gateway.errors import (
    GatewayError,
    ResourceExhausted,
    Unavailable,
)
from gateway.journal import Journal, StoredEvent
from gateway.observability import tracing
from gateway.risk import RiskChecker, RiskLimits

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
# Journal records past which a recovered table is frozen out of the cyclic
# collector's reach (smaller ones cost it little; tests start many actors).
_FREEZE_AFTER = 50_000


def utc_now() -> datetime:
    return datetime.now(UTC)


def _shutting_down(last_sequence: int) -> Unavailable:
    return Unavailable(
        "gateway shutting down; reconnect and resume with after_sequence",
        reason="GATEWAY_SHUTTING_DOWN",
        metadata={"last_sequence": str(last_sequence)},
    )


# Orders one CancelAll command handles: small enough that a mass cancel of a
# large account never holds the actor (and everyone's orders) for long.
CANCEL_ALL_BATCH = 256


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
        self._checkpointer = Checkpointer(journal, self._ledger, self._config.checkpoint_every)
        self._fanout = Fanout()
        self._running = False
        self._loop_task: asyncio.Task[None] | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._health = BrokerHealth(self._config.broker_failure_threshold)
        self._tasks = BrokerTasks(
            broker, self._config, self._health, self._mailbox, self._deliver_state
        )
        self._desk = OrderDesk(
            self._ledger,
            self._config,
            self._health,
            self._tasks,
            clock=clock,
            new_id=new_id,
            new_future=self._future,
        )
        prices = broker.reference_price if isinstance(broker, ReferencePrices) else None
        self._risk = RiskChecker(self._ledger.exposure, self._position_quantity, prices)
        self._controls = TradingControls(
            self._ledger, self._risk, self._desk.request_cancel, clock=clock, new_id=new_id
        )
        self._desk.screen = self._controls.screen
        self._desk.screen_replace = self._controls.screen_replace
        self._reconciler = Reconciler(broker, self._config, self._health, self._deliver_state)
        deliver = self._mailbox.result_when_room
        self._retention = Retention(
            self._ledger, journal, self._config, deliver, self._desk.in_flight
        )
        self._ledger.reload = self._retention.reload_blocking
        self._sweep_task: asyncio.Task[None] | None = None
        self._reconcile_now = asyncio.Event()
        self._reconcile_task: asyncio.Task[None] | None = None
        # An unhealthy broker is probed often: wake the loop to switch pace.
        self._health.subscribe(self._on_health_change)
        self.failure: BaseException | None = None
        self._failed = asyncio.Event()

    # ----------------------------------------------------------- lifecycle

    async def start(self, *, recovered: bool = False) -> None:
        """Recover the order table from the journal, then start serving.

        Recovery runs on a worker thread, so the event loop keeps answering
        (health: NOT_SERVING; reads: UNAVAILABLE) until the table is ready.
        Nothing else touches the ledger before ``_running`` is set.
        ``recovered``: the table is loaded already (``recover`` and
        ``catch_up``, as a standby does).
        """
        if not recovered:
            await asyncio.to_thread(self.recover)
        self._running = True
        self._loop_task = asyncio.create_task(self._run(), name="order-actor")
        self._reader_task = asyncio.create_task(self._read_reports(), name="broker-reports")
        self._reconcile_task = asyncio.create_task(self._reconcile_loop(), name="reconcile")
        self._sweep_task = asyncio.create_task(self._sweep_loop(), name="retention-sweep")
        for order in self._table.open_orders():
            if order.status is OrderStatus.PENDING_NEW:
                self._desk.resume(order)

    async def stop(self) -> None:
        """Stop taking commands, end every stream, stop tasks, close the journal."""
        self._running = False
        tasks: list[asyncio.Task[Any]] = [
            t
            for t in (self._sweep_task, self._reconcile_task, self._reader_task, self._loop_task)
            if t is not None
        ]
        tasks += self._tasks.running
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._retention.close()
        # A clean stop leaves a checkpoint of everything: the next start replays nothing.
        await self._checkpointer.close(final=self.failure is None)
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
            started = time.perf_counter()
            checkpoint = self._journal.load_checkpoint()
            after = 0
            if checkpoint is not None:
                self._ledger.restore(checkpoint)
                self._checkpointer.loaded(checkpoint.sequence)
                after = checkpoint.sequence
            loaded = time.perf_counter()
            records = self._journal.replay(after)
            count = self._ledger.replay(records, self._journal.last_sequence)
        finally:
            if collecting:
                gc.enable()
        if count or checkpoint is not None:
            log.info(
                "recovered %d orders: checkpoint at sequence %d in %.2fs, then %d journal "
                "events in %.2fs",
                len(self._table),
                after,
                loaded - started,
                count,
                time.perf_counter() - loaded,
            )
        if len(self._table) >= _FREEZE_AFTER // 2:
            gc.freeze()
        return count

    def catch_up(self, records: Iterable[StoredEvent]) -> int:
        """Apply records another gateway committed after ``recover``; return how many.

        A standby's way of following the journal; never while running (the
        table would move under the actor). Blocking: run off the event loop.
        """
        if self._running:
            raise RuntimeError("catch_up is for an actor that is not running")
        return self._ledger.replay(records)

    def halt(self, error: Exception) -> None:
        """Stop taking commands for good (e.g. leadership lost): as a failed journal write does.

        Calls already queued are answered UNAVAILABLE by the commit the
        journal then refuses; ``wait_failed`` returns, and the gateway exits.
        """
        if self.failure is not None:
            return
        log.critical("the actor stops: %s", error)
        self._running = False
        self.failure = error
        self._refuse_queued(Unavailable(f"{error}; retry shortly", reason="GATEWAY_NOT_SERVING"))
        self._failed.set()

    @property
    def config(self) -> EngineConfig:
        """The limits and timings this actor runs with."""
        return self._config

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

    def orders_in_doubt(self) -> tuple[int, float]:
        """Orders waiting on the broker (PENDING_NEW, PENDING_CANCEL, PENDING_REPLACE)
        as of the last commit, and the seconds since the oldest of them last
        changed (0 if none).

        Read at scrape time: it walks the open orders, never the history.
        """
        waiting = (
            OrderStatus.PENDING_NEW,
            OrderStatus.PENDING_CANCEL,
            OrderStatus.PENDING_REPLACE,
        )
        count, oldest = 0, None
        for order in self.open_orders():
            if order.status in waiting:
                count += 1
                if oldest is None or order.updated_at < oldest:
                    oldest = order.updated_at
        age = 0.0 if oldest is None else max(0.0, (self._clock() - oldest).total_seconds())
        return count, age

    @property
    def order_count(self) -> int:
        return len(self._table)

    @property
    def in_flight_count(self) -> int:
        """Orders with broker work outstanding (submit, cancel, verification)."""
        return self._desk.in_flight_count

    @property
    def illegal_transitions(self) -> int:
        """Events the state machine refused (each logged): a broker and we disagree."""
        return self._desk.illegal_transitions

    @property
    def unknown_reports(self) -> int:
        """Reports and states about orders this gateway does not know."""
        return self._desk.unknown_reports

    @property
    def foreign_orders(self) -> int:
        """Open broker orders seen that this gateway did not place."""
        return self._desk.foreign_orders

    @property
    def adopted_orders(self) -> int:
        """Open broker orders of ours, missing from the table, taken back by reconciliation."""
        return self._desk.adopted_orders

    # Read-only hooks for metrics (read at scrape time, never on the hot path).
    @property
    def inbox_depth(self) -> int:
        """Commands and broker results waiting for the actor."""
        return len(self._mailbox)

    @property
    def open_orders_by_status(self) -> dict[OrderStatus, int]:
        """Non-terminal orders (committed or not) by status; for a metrics scrape thread."""
        # The loop may change the open set while another thread walks it; a
        # scrape that loses that race walks again rather than the hot path locking.
        while True:
            try:
                return dict(Counter(o.status for o in self._table.open_orders()))
            except RuntimeError:
                continue

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
        place = Place(spec, self._future(), deadline, tracing.caller())
        outcome: PlaceOutcome = await self._ask(place)
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

    async def replace_order(self, ref: OrderRef, terms: ReplaceTerms) -> Order:
        """Request a replace (idempotent on ``terms.replace_id``); return the order,
        PENDING_REPLACE (or as it is now, for a retry)."""
        order: Order = await self._ask(Replace(ref, terms, self._future()))
        return order

    async def cancel_all(
        self, account: str, symbol: str | None = None, side: Side | None = None
    ) -> list[Order]:
        """Request the cancel of every open order of ``account`` (of ``symbol``/``side``).

        Return them PENDING_CANCEL, oldest first. Asked in batches of
        ``CANCEL_ALL_BATCH`` orders, each its own command: other callers'
        commands run between them, however many orders the account holds.
        """
        # Every open order of the account: one broker call may cancel them all.
        bulk = symbol is None and side is None and self._tasks.supports_cancel_all
        asked: list[Order] = []
        after: int | None = 0
        while after is not None:
            command = CancelAll(
                account, symbol, side, after, CANCEL_ALL_BATCH, self._future(), bulk=bulk
            )
            batch, after = await self._ask(command)
            asked += batch
        if bulk and asked:
            await self._ask(BulkCancel(account, [o.order_id for o in asked], self._future()))
        return asked

    # Reads do not queue behind commands (a backlog of PlaceOrder must not
    # delay a status read): they read the ledger directly, as of the last
    # commit. The actor's task is the only writer and this runs on the same
    # event loop, so nothing changes during a read.

    async def get_order(self, ref: OrderRef) -> Order:
        """Return the order ``ref`` names, as of the last commit."""
        self._check_serving()
        order = self._ledger.find_durable(ref)
        if order is None:
            evicted = self._table.evicted_ref(ref)
            if evicted is not None:
                order = await self._retention.read(evicted)
            if order is None or order.spec.account != ref.account:
                raise not_found(ref)
        return order

    async def list_orders(self, query: ListOrdersQuery) -> tuple[list[Order], bool]:
        """Return one page of orders (as of the last commit) and whether more follow."""
        self._check_serving()
        return await self._retention.page(query)

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
            running = self._tasks.running
            if not running and not len(self._mailbox):
                return
            if running:
                await asyncio.wait(set(running))

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
    ) -> tuple[list[AnyUpdate], int]:
        """Return matching journaled updates in (after, up_to] and where the read stopped."""
        records = await self._journal.read(after, up_to, limit)
        if not records:
            return [], up_to
        updates = [r.update for r in records if update_matches(filter_, r.update)]
        return updates, records[-1].sequence

    # ------------------------------------------------------ trading controls

    async def halt_trading(
        self,
        scope: str,
        mode: TradingMode,
        reason: str,
        principal: str,
        *,
        cancel_open_orders: bool = False,
    ) -> HaltOutcome:
        """Halt ``scope`` ("" = every account); return once the halt is durable.

        From then on no new order of the scope reaches the broker.
        """
        message = Halt(scope, mode, reason, principal, cancel_open_orders, self._future())
        outcome: HaltOutcome = await self._ask(message)
        return outcome

    async def resume_trading(self, scope: str, reason: str, principal: str) -> list[TradingHalt]:
        """Lift the halt of ``scope``; return the halts still in force, once durable."""
        halts: list[TradingHalt] = await self._ask(Resume(scope, reason, principal, self._future()))
        return halts

    def trading_state(self) -> list[TradingHalt]:
        """The halts in force as of the last commit, the gateway-wide one first."""
        self._check_serving()
        return self._ledger.controls.durable_halts()

    def trading_modes(self) -> list[TradingHalt]:
        """The halts in force, for a metrics scrape (no serving check)."""
        return self._ledger.controls.durable_halts()

    async def get_positions(self, account: str, symbols: frozenset[str]) -> list[Position]:
        """``account``'s positions as of the last commit, by symbol."""
        self._check_serving()
        return self._ledger.controls.durable_positions(account, symbols)

    def use_limits(self, limits: RiskLimits) -> None:
        """Check new orders against ``limits`` from the next one on."""
        self._risk.use(limits)

    @property
    def risk_limits(self) -> RiskLimits:
        """The limits new orders are checked against."""
        return self._risk.limits

    @property
    def risk_refusals(self) -> dict[str, int]:
        """New orders refused before the broker, by limit (or trading mode)."""
        return dict(self._risk.refusals)

    def _position_quantity(self, account: str, symbol: str) -> Decimal:
        return self._controls.position(account, symbol)

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
            if tracing.enabled():
                await self._traced_batch(results, commands)
                continue
            for result in results:
                self._handle(result)
            for command in commands:
                self._handle(command)
            await self._commit()

    async def _traced_batch(self, results: list[Result], commands: list[Command]) -> None:
        """One batch in an ``actor.batch`` span, linked to the callers it serves.

        Its journal commit is a child span; each caller's trace links here
        (links, not parents: one batch serves many callers).
        """
        places = [c for c in commands if isinstance(c, Place)]
        with tracing.span(
            "actor.batch",
            lambda: _batch_attributes(results, commands, places),
            lambda: [p.trace for p in places if p.trace is not None],
        ):
            for result in results:
                self._handle(result)
            for command in commands:
                self._handle(command)
            await self._commit()

    def _handle(self, message: Command | Result) -> None:
        match message:
            case Subscribe():
                self._desk.after_commit.append(functools.partial(self._register, message))
            case Flush():
                if not self._retention.parks(message):
                    self._desk.replies.append((message.reply, None))
            case OpenOrders():
                self._desk.replies.append((message.reply, self._desk.orders_to_reconcile()))
            case Halt() | Resume():
                self._handle_control(message)
            case Sweep():
                # After the commit: only committed orders leave memory.
                self._desk.after_commit.append(functools.partial(self._sweep, message))
            case Reloaded():
                ready, refused = self._retention.reloaded(message)
                for parked in refused:
                    reply = getattr(parked, "reply", None)
                    if reply is not None:
                        self._desk.replies.append((reply, unreadable(message.order_ids)))
                for parked in ready:
                    self._handle(parked)
            case _:
                if not self._retention.parks(message):
                    self._desk.handle(message)

    def _sweep(self, message: Sweep) -> None:
        count = self._retention.sweep(self._clock())
        if message.reply is not None and not message.reply.done():
            message.reply.set_result(count)

    def _handle_control(self, message: Halt | Resume) -> None:
        outcome: object
        try:
            if isinstance(message, Halt):
                outcome = self._controls.halt(message)
            else:
                outcome = self._controls.resume(message)
        except Exception as exc:  # a bug must not take the actor down
            log.exception("failed to handle %s", type(message).__name__)
            outcome = GatewayError(f"internal error: {exc}")
        self._desk.replies.append((message.reply, outcome))

    async def _commit(self) -> None:
        records = self._ledger.take_pending()
        desk = self._desk
        replies, desk.replies = desk.replies, []
        actions, desk.after_commit = desk.after_commit, []
        if records:
            try:
                await self._journal.append(records)
            except Exception as exc:
                self._fail(exc, replies)
                raise
            self._ledger.committed_through(records[-1].sequence)
            self._checkpointer.after_commit()
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
        self._refuse_queued(unavailable)
        self._failed.set()

    def _refuse_queued(self, error: Unavailable) -> None:
        """Answer the commands still queued, now: the loop that would have taken them is gone.

        Otherwise they would wait for the gateway's stop (after the drain's
        grace), and their callers would see their deadline pass instead.
        """
        for message in self._mailbox.drain_commands():
            reply = getattr(message, "reply", None)
            if reply is not None and not reply.done():
                reply.set_exception(error)

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

    async def _sweep_loop(self) -> None:
        """Ask for a retention sweep about once a second (it evicts only what is due).

        A pass that hit its limit (a backlog: a start-up on a long history)
        is followed by the next at once; each is its own batch, so commands
        still get their turn between them.
        """
        while self._running:
            sweep = Sweep(self._future())
            await self._mailbox.result_when_room(sweep)
            assert sweep.reply is not None
            if await sweep.reply < SWEEP_LIMIT:
                await asyncio.sleep(SWEEP_INTERVAL)

    async def evict_terminal(self) -> int:
        """Run a retention sweep now; return how many orders left memory.

        The sweep runs by itself about once a second; this is for tests and tools.
        """
        self._check_serving()
        sweep = Sweep(self._future())
        await self._mailbox.result_when_room(sweep)
        assert sweep.reply is not None
        return await sweep.reply

    @property
    def orders_read_back(self) -> int:
        """Evicted orders read from the journal since start (reads, retries, late fills)."""
        return self._retention.read_back

    @property
    def evicted_count(self) -> int:
        """Orders out of memory (terminal, past the retention window): read from the journal."""
        return self._table.evicted_count

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


# Client order ids named on a batch span at most: a batch holds up to max_batch.
_SPAN_ORDERS = 16


def _batch_attributes(
    results: list[Result], commands: list[Command], places: list[Place]
) -> dict[str, Any]:
    return {
        "gateway.results": len(results),
        "gateway.commands": len(commands),
        "gateway.client_order_ids": [p.spec.client_order_id for p in places[:_SPAN_ORDERS]],
    }
