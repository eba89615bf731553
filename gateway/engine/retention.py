"""Retention: terminal orders leave memory after a window, and come back on demand.

Memory and start-up should follow what is open, not the whole history. So a
terminal order whose last change is older than ``EngineConfig.retention`` is
*evicted*: its ``Order`` and exec_ids leave the table (and so the next
checkpoint); its client key, broker id and place in its account's creation
order stay (``OrderTable``), so it is still found. Its state is in the
journal, and is read back by order id (``Journal.order_events``) and folded
through the same replay code as at start-up (a throwaway ``Ledger``).

Who reads it back, and how:

- reads (``GetOrderStatus``, ``ListOrders``) load it on a worker thread and
  keep it in a bounded LRU cache; the actor is never blocked by them, and
  the order stays evicted;
- a message for the actor that names an evicted order (a retried
  ``PlaceOrder``, a cancel, a late fill report, a broker state) is *parked*:
  the order is read on a worker thread, put back into the table, and the
  message handled then, as if it had never left. Later messages naming an
  order with a parked message wait behind it, so each order's messages keep
  their order; a ``Flush`` waits for everything parked before it.
- replay at start-up meets an evicted order when a late event of it follows
  the checkpoint: it is read back there and then (replay runs on a worker
  thread already).

The sweep (``Sweep``, about once a second) evicts committed terminal orders
with no broker work or waiter on them, oldest first, a bounded number per pass.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Collection, Iterator
from datetime import datetime, timedelta

from gateway.domain import ListOrdersQuery, Order
from gateway.engine.config import EngineConfig
from gateway.engine.ledger import Ledger
from gateway.engine.messages import (
    Absent,
    BrokerOpenOrders,
    BrokerReports,
    BrokerState,
    BulkCancelDone,
    Cancel,
    CancelDone,
    Flush,
    Message,
    Place,
    Reloaded,
    Replace,
    ReplaceDone,
    SubmitDone,
)
from gateway.engine.order_table import OrderTable
from gateway.errors import GatewayError
from gateway.journal import Journal, JournalError

log = logging.getLogger(__name__)

# Evictions per sweep at most: each is a few dict operations on the actor's
# task, so a pass costs at most a few milliseconds however much is due.
SWEEP_LIMIT = 10_000
# Seconds between sweeps.
SWEEP_INTERVAL = 1.0
# A ListOrders round reads at most this many evicted orders in one go.
_SCAN_CHUNK = 512
# Reading an order back from the journal: tries, and the pause between them.
_LOAD_TRIES = 3
_LOAD_PAUSE = 0.5

Loaded = dict[str, tuple[Order, tuple[str, ...]]]


def unreadable(order_ids: Collection[str]) -> GatewayError:
    """The error for orders whose records the journal could not give back (damage)."""
    return GatewayError(
        "the order's history could not be read from the journal; an operator must "
        "check it (gateway journal show / salvage)",
        reason="ORDER_HISTORY_UNREADABLE",
        metadata={"order_ids": ",".join(sorted(order_ids)[:5])},
    )


def load_orders(
    journal: Journal, order_ids: Collection[str], before_sequence: int | None = None
) -> Loaded:
    """Read orders back from the journal: each one's state and exec_ids (blocking).

    Folded by ``Ledger.replay``, the one path replayed records take, so an
    order read back is exactly the order replay would have built. With
    ``before_sequence``, only its records before that sequence count.
    """
    found: Loaded = {}
    for order_id, records in journal.order_events(order_ids).items():
        if before_sequence is not None:
            records = [r for r in records if r.sequence < before_sequence]
        ledger = Ledger()
        ledger.replay(records)
        order = ledger.table.get(order_id)
        if order is not None:
            found[order_id] = (order, ledger.table.exec_ids(order_id))
    return found


class Retention:
    """Evicts terminal orders, reads them back, and parks what waits for them.

    Owned by the actor: ``parks``, ``reloaded`` and ``sweep`` run on its
    task; ``read`` and ``page`` are the reads' (any task on the loop).
    """

    def __init__(
        self,
        ledger: Ledger,
        journal: Journal,
        config: EngineConfig,
        deliver: Callable[[Reloaded], Awaitable[None]],
        in_flight: Callable[[str], bool],
    ) -> None:
        self._ledger = ledger
        self._table: OrderTable = ledger.table
        self._journal = journal
        self._window = timedelta(seconds=config.retention)
        self._cache_size = config.retention_cache
        self._cache: OrderedDict[str, Order] = OrderedDict()
        self._deliver = deliver
        self._in_flight = in_flight
        self._loading: set[str] = set()
        # Messages waiting for evicted orders, in arrival order, each with the
        # ids it names (None: a Flush, which waits for all before it).
        self._parked: deque[tuple[frozenset[str] | None, Message]] = deque()
        self._waiting: set[str] = set()  # every id a parked message names
        self._tasks: set[asyncio.Task[None]] = set()
        self._reinstated = 0  # bumped whenever an order comes back: cached reads may be stale
        self.read_back = 0  # evicted orders read from the journal, since start

    # ---------------------------------------------------- the actor's task

    def parks(self, message: Message) -> bool:
        """Park ``message`` if it must wait for evicted orders; return whether it did."""
        table = self._table
        if not table.evicted_count:
            return False
        if isinstance(message, Flush):
            if not self._parked:
                return False
            self._parked.append((None, message))
            return True
        if not self._waiting:
            # The hot path (a new order, a report about an order in memory):
            # look, without building anything, for an evicted order named.
            if type(message) is Place:
                order_id = table.id_by_key(message.spec.account, message.spec.client_order_id)
                if order_id is None or not table.is_evicted(order_id):
                    return False
            elif not any(table.is_evicted(i) for i in self._names(message)):
                return False
        named = frozenset(self._names(message))
        evicted = {i for i in named if table.is_evicted(i)}
        if not evicted and self._waiting.isdisjoint(named):
            return False
        self._parked.append((named, message))
        self._waiting |= named
        wanted = evicted - self._loading
        if wanted:
            self._loading |= wanted
            self._spawn(self._load(frozenset(wanted)))
        return True

    def reloaded(self, message: Reloaded) -> tuple[list[Message], list[Message]]:
        """Put read-back orders into the table; return the parked messages now
        ready, and those to refuse (their orders could not be read)."""
        table = self._table
        for order_id, (order, exec_ids) in message.orders.items():
            if table.is_evicted(order_id):
                table.reinstate(order, exec_ids)
                self._cache.pop(order_id, None)
                self._reinstated += 1
        self._loading -= message.order_ids
        unreadable = message.order_ids - message.orders.keys()
        if unreadable:
            log.error(
                "orders %s could not be read back from the journal (%s); what waited "
                "for them is refused",
                sorted(unreadable)[:5],
                message.error or "no records",
            )
        ready: list[Message] = []
        refused: list[Message] = []
        still: deque[tuple[frozenset[str] | None, Message]] = deque()
        blocked: set[str] = set()
        for named, parked in self._parked:
            if named is None:
                if still:
                    still.append((named, parked))
                else:
                    ready.append(parked)
                continue
            if not unreadable.isdisjoint(named) and blocked.isdisjoint(named):
                refused.append(parked)
            elif not blocked.isdisjoint(named) or any(table.is_evicted(i) for i in named):
                still.append((named, parked))
                blocked |= named
            else:
                ready.append(parked)
        self._parked = still
        self._waiting = blocked
        # Behind another message, an unreadable order's message waits; try again.
        again = {i for i in blocked if table.is_evicted(i)} - self._loading
        if again:
            self._loading |= again
            self._spawn(self._load(frozenset(again)))
        return ready, refused

    def sweep(self, now: datetime) -> int:
        """Evict terminal orders last changed before the window; return how many."""
        table = self._table
        waiting, in_flight = self._waiting, self._in_flight
        count = 0
        for order in table.due(
            now - self._window, SWEEP_LIMIT, lambda i: i in waiting or in_flight(i)
        ):
            table.evict(order.order_id)
            self._remember(order)
            count += 1
        return count

    def reload_blocking(self, order_id: str, before_sequence: int) -> Order | None:
        """Replay's hook (worker thread): put an evicted order back as of its
        records before ``before_sequence``."""
        loaded = load_orders(self._journal, [order_id], before_sequence).get(order_id)
        if loaded is None:
            return None
        self._table.reinstate(*loaded)
        return loaded[0]

    async def close(self) -> None:
        """Stop reads of evicted orders in progress."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --------------------------------------------------------------- reads

    async def read(self, order_id: str) -> Order | None:
        """The committed state of an order that may be evicted (None: none such)."""
        found = await self.read_many([order_id])
        return found.get(order_id)

    async def read_many(self, order_ids: list[str]) -> dict[str, Order]:
        """The committed state of each of ``order_ids`` (in memory, cached, or read back)."""
        found: dict[str, Order] = {}
        for attempt in range(_LOAD_TRIES):
            missing = self._from_memory(order_ids, found)
            if not missing:
                break
            reinstated = self._reinstated
            try:
                loaded = await asyncio.to_thread(load_orders, self._journal, missing)
            except (JournalError, OSError) as exc:
                log.error("orders %s: reading them back from the journal failed: %r",
                          missing[:5], exc)  # fmt: skip
                raise unreadable(missing) from exc
            self.read_back += len(loaded)
            if reinstated != self._reinstated and attempt < _LOAD_TRIES - 1:
                continue  # an order came back (and may have changed): look again
            for order_id in missing:
                if order_id in loaded and self._table.is_evicted(order_id):
                    order = loaded[order_id][0]
                    found[order_id] = order
                    self._remember(order)
            break
        return found

    async def page(self, query: ListOrdersQuery) -> tuple[list[Order], bool]:
        """One page of ``query`` as of the last commit, evicted orders included."""
        return await page(self._table, query, self._ledger.durable, self.read_many)

    # ----------------------------------------------------------- internals

    def _from_memory(self, order_ids: list[str], found: dict[str, Order]) -> list[str]:
        """Fill ``found`` from the table and the cache; return the ids still to read."""
        table, cache, missing = self._table, self._cache, []
        for order_id in order_ids:
            if order_id in found:
                continue
            current = table.get(order_id)
            if current is not None:
                durable = self._ledger.durable(current)
                if durable is not None:
                    found[order_id] = durable
                continue
            cached = cache.get(order_id)
            if cached is not None:
                cache.move_to_end(order_id)
                found[order_id] = cached
            elif table.is_evicted(order_id):
                missing.append(order_id)
        return missing

    def _remember(self, order: Order) -> None:
        if not self._cache_size:
            return
        self._cache[order.order_id] = order
        self._cache.move_to_end(order.order_id)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _names(self, message: Message) -> Iterator[str]:
        """The ids of the orders ``message`` is about, in memory or evicted."""
        table = self._table
        keys: list[tuple[str, str]] = []
        match message:
            case Place():
                keys.append(message.spec.key)
            case Cancel() | Replace():
                ref = message.ref
                if ref.client_order_id:
                    keys.append((ref.account, ref.client_order_id))
                else:
                    yield ref.order_id
            case SubmitDone() | CancelDone() | ReplaceDone() | Absent():
                yield message.order_id
            case BulkCancelDone():
                yield from message.order_ids
            case BrokerReports():
                for report in message.reports:
                    found = table.id_by_key(report.account, report.client_order_id)
                    if found is None and report.broker_order_id:
                        found = table.id_by_broker_id(report.broker_order_id)
                    if found is not None:
                        yield found
            case BrokerState():
                keys.append((message.state.account, message.state.client_order_id))
            case BrokerOpenOrders():
                keys += ((s.account, s.client_order_id) for s in message.states)
        for account, client_order_id in keys:
            found = table.id_by_key(account, client_order_id)
            if found is not None:
                yield found

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _load(self, order_ids: frozenset[str]) -> None:
        """Read parked messages' orders back and hand them to the actor."""
        error: BaseException | None = None
        loaded: Loaded = {}
        for attempt in range(_LOAD_TRIES):
            try:
                loaded = await asyncio.to_thread(load_orders, self._journal, order_ids)
            except Exception as exc:  # noqa: BLE001 - handed to the actor, which refuses the waiters
                error = exc
                log.warning("reading orders back from the journal failed (try %d): %r",
                            attempt + 1, exc)  # fmt: skip
                await asyncio.sleep(_LOAD_PAUSE)
                continue
            error = None
            break
        self.read_back += len(loaded)
        await self._deliver(Reloaded(order_ids, loaded, error))


async def page(
    table: OrderTable,
    query: ListOrdersQuery,
    view: Callable[[Order], Order | None],
    read_back: Callable[[list[str]], Awaitable[dict[str, Order]]],
) -> tuple[list[Order], bool]:
    """Return one page of ``query`` and whether more orders match after it.

    Oldest first, by created sequence. ``view`` maps an order in memory to the
    version to list (None: leave it out); ``read_back`` reads evicted ones
    (terminal: an ``open_only`` page never needs them).
    """
    found: list[Order] = []
    cursor = query.after_created_sequence
    # Bounded: each round moves the cursor past at least one order of the account.
    while True:
        want = max(query.page_size + 1 - len(found), 1)
        entries = table.scan(query.account, cursor, min(want, _SCAN_CHUNK))
        if not entries:
            return found, False
        cursor = entries[-1][0]
        evicted = [i for _, i, order in entries if order is None]
        loaded = await read_back(evicted) if evicted and not query.open_only else {}
        for order in _in_order(entries, loaded, table, view):
            if query.open_only and order.is_terminal:
                continue
            if query.symbols and order.spec.symbol not in query.symbols:
                continue
            if len(found) == query.page_size:
                return found, True
            found.append(order)


def _in_order(
    entries: list[tuple[int, str, Order | None]],
    loaded: dict[str, Order],
    table: OrderTable,
    durable: Callable[[Order], Order | None],
) -> Iterator[Order]:
    """The orders of a scanned stretch as of the last commit, where they are now."""
    for _, order_id, _ in entries:
        current = table.get(order_id)  # looked up again: the read may have awaited
        order = durable(current) if current is not None else loaded.get(order_id)
        if order is not None:
            yield order
