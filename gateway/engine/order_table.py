"""The order table: every order the gateway knows, with its lookup indexes.

Owned by the actor (one task): no locks, no awaits. Holds the idempotency
index on (account, client_order_id) and the exec_ids applied per order.

Every order the gateway ever saw stays in the indexes, so they are shaped for
memory: nested dicts rather than tuple keys, creation order per account as a
machine-integer array beside a list of ids, and exec_ids as small tuples
(an order has a handful of fills; a set costs 216 bytes before its first).

Terminal orders past the retention window are *evicted* (see
``gateway.engine.retention``): their ``Order`` and exec_ids leave memory,
their ids stay in the indexes (client key, broker id, account order) and in
``evicted``, so they are still found and read back from the journal on
demand. ``get``, ``by_key`` and ``by_broker_id`` see orders in memory only.
"""

from __future__ import annotations

import bisect
import itertools
import sys
from array import array
from collections import deque
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import cast

from gateway.domain import Order, OrderRef
from gateway.journal.order_index import AccountIndex


class _AccountOrders:
    """One account's orders in creation order: sequences and ids, index-aligned.

    ``clients`` and ``brokers`` are aligned too: an evicted order's client and
    broker ids (None while it is in memory). They are the checkpoint's index
    as it is stored, so a checkpoint copies them and start-up takes them
    whole: no step per order on either side.
    """

    __slots__ = ("brokers", "clients", "order_ids", "sequences")

    def __init__(self) -> None:
        self.sequences = array("q")
        self.order_ids: list[str] = []
        self.clients: list[str | None] = []
        self.brokers: list[str | None] = []

    def add(self, created_sequence: int, order_id: str) -> None:
        if not self.sequences or created_sequence > self.sequences[-1]:
            self.sequences.append(created_sequence)  # the usual case: newest last
            self.order_ids.append(order_id)
            self.clients.append(None)
            self.brokers.append(None)
            return
        at = bisect.bisect_right(self.sequences, created_sequence)
        self.sequences.insert(at, created_sequence)
        self.order_ids.insert(at, order_id)
        self.clients.insert(at, None)
        self.brokers.insert(at, None)

    def mark(self, order: Order, evicted: bool) -> None:
        """Record (or clear) an order's keys as evicted, at its place."""
        at = bisect.bisect_left(self.sequences, order.created_sequence)
        while self.order_ids[at] != order.order_id:  # equal created sequences: rare
            at += 1
        self.clients[at] = order.spec.client_order_id if evicted else None
        self.brokers[at] = order.broker_order_id if evicted else None

    def index(self, account: str) -> AccountIndex:
        """This account's part of a checkpoint: copies, taken in C."""
        return AccountIndex(
            account,
            _int64_le(self.sequences),
            list(self.order_ids),
            list(self.clients),
            list(self.brokers),
        )

    @classmethod
    def restored(cls, index: AccountIndex) -> _AccountOrders:
        entries = cls()
        entries.sequences = _int64_array(index.sequences)
        entries.order_ids = index.order_ids
        entries.clients = index.client_order_ids
        entries.brokers = index.broker_order_ids
        return entries


def _int64_le(sequences: array[int]) -> bytes:
    if sys.byteorder == "little":
        return sequences.tobytes()
    swapped = array("q", sequences)
    swapped.byteswap()
    return swapped.tobytes()


def _int64_array(data: bytes) -> array[int]:
    sequences = array("q")
    sequences.frombytes(data)
    if sys.byteorder != "little":
        sequences.byteswap()
    return sequences


class OrderTable:
    """Orders by id, by client key, by broker id, and per account in creation order."""

    def __init__(self) -> None:
        self._by_id: dict[str, Order] = {}
        self._by_key: dict[str, dict[str, str]] = {}  # account -> client_order_id -> id
        self._by_broker_id: dict[str, str] = {}
        self._by_account: dict[str, _AccountOrders] = {}
        self._exec_ids: dict[str, tuple[str, ...]] = {}
        self._open: set[str] = set()
        self._evicted: set[str] = set()
        # Ids of orders as they were put terminal, oldest first: the retention
        # sweep's queue (an order changed again is queued again).
        self._terminal: deque[str] = deque()

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, order_id: str) -> Order | None:
        return self._by_id.get(order_id)

    def by_key(self, account: str, client_order_id: str) -> Order | None:
        order_id = self._by_key.get(account, {}).get(client_order_id)
        return None if order_id is None else self._by_id.get(order_id)

    def trades(self, account: str) -> bool:
        """Whether any order of ``account`` is in the table (the gateway trades it)."""
        return account in self._by_key

    def by_broker_id(self, broker_order_id: str) -> Order | None:
        order_id = self._by_broker_id.get(broker_order_id)
        return None if order_id is None else self._by_id.get(order_id)

    def find(self, ref: OrderRef) -> Order | None:
        """Return the order ``ref`` names, only if it belongs to ``ref.account``."""
        if ref.client_order_id:
            return self.by_key(ref.account, ref.client_order_id)
        order = self._by_id.get(ref.order_id)
        if order is None or order.spec.account != ref.account:
            return None
        return order

    def put(self, order: Order) -> None:
        """Insert or replace ``order``, keeping every index current."""
        previous = self._by_id.get(order.order_id)
        self._by_id[order.order_id] = order
        if previous is None:
            account = order.spec.account
            keys = self._by_key.get(account)
            if keys is None:
                keys = self._by_key[account] = {}
            keys[order.spec.client_order_id] = order.order_id
            orders = self._by_account.get(account)
            if orders is None:
                orders = self._by_account[account] = _AccountOrders()
            orders.add(order.created_sequence, order.order_id)
        if order.broker_order_id and (
            previous is None or previous.broker_order_id != order.broker_order_id
        ):
            self._by_broker_id[order.broker_order_id] = order.order_id
        if order.is_terminal:
            self._open.discard(order.order_id)
            self._terminal.append(order.order_id)
        else:
            self._open.add(order.order_id)

    def has_exec(self, order_id: str, exec_id: str) -> bool:
        return exec_id in self._exec_ids.get(order_id, ())

    def add_exec(self, order_id: str, exec_id: str) -> None:
        self._exec_ids[order_id] = (*self._exec_ids.get(order_id, ()), exec_id)

    def snapshot(self) -> tuple[list[Order], dict[str, tuple[str, ...]], list[AccountIndex]]:
        """The orders in memory, their exec_ids and the index of the evicted: a
        checkpoint's content.

        Shallow copies (orders are immutable), so a worker thread may encode
        them while the table moves on; the index is copies of each account's
        columns (C-speed, no step per order). Empty when nothing is evicted.
        """
        orders, exec_ids = list(self._by_id.values()), dict(self._exec_ids)
        if not self._evicted:
            return orders, exec_ids, []
        return orders, exec_ids, [e.index(a) for a, e in self._by_account.items()]

    def restore(
        self,
        orders: list[Order],
        exec_ids: dict[str, tuple[str, ...]],
        accounts: list[AccountIndex] | None = None,
    ) -> None:
        """Load a checkpoint's orders (and its index of evicted ones) into this (empty) table.

        ``put`` with its checks hoisted: this runs for every order at start.
        With ``accounts``, each account's creation order comes whole from it
        (it lists the orders in memory too), and the evicted orders' keys
        are bulk-loaded.
        """
        if self._by_id or self._evicted:
            raise RuntimeError("restore into an empty table only")
        by_id, by_key, by_broker_id = self._by_id, self._by_key, self._by_broker_id
        by_account, open_ids = self._by_account, self._open
        # Bulk, in C: an order in memory has None in the key columns (its keys
        # come from the order below), an evicted one its ids.
        # (A None key, from the orders in memory, is dropped once each dict is filled.)
        for index in accounts or ():
            by_account[index.account] = _AccountOrders.restored(index)
            clients = cast("dict[str | None, str]", by_key.setdefault(index.account, {}))
            clients.update(zip(index.client_order_ids, index.order_ids, strict=True))
            clients.pop(None, None)
            brokers = cast("dict[str | None, str]", by_broker_id)
            brokers.update(zip(index.broker_order_ids, index.order_ids, strict=True))
            self._evicted.update(itertools.compress(index.order_ids, index.client_order_ids))
        cast("dict[str | None, str]", by_broker_id).pop(None, None)
        by_broker_id.pop("", None)  # evicted orders the broker never acknowledged
        indexed = {index.account for index in accounts or ()}
        for order in orders:
            order_id, spec = order.order_id, order.spec
            by_id[order_id] = order
            account = spec.account
            keys = by_key.get(account)
            if keys is None:
                keys = by_key[account] = {}
                by_account[account] = _AccountOrders()
            keys[spec.client_order_id] = order_id
            if account not in indexed:
                by_account[account].add(order.created_sequence, order_id)
            if order.broker_order_id:
                by_broker_id[order.broker_order_id] = order_id
            if not order.status.is_terminal:
                open_ids.add(order_id)
        # The retention sweep's queue, oldest first.
        terminal = [o for o in orders if o.status.is_terminal]
        terminal.sort(key=lambda o: o.updated_at)
        self._terminal.extend(o.order_id for o in terminal)
        # Taken as it is (the checkpoint's own dict): a copy of a million entries
        # would leave its freed memory behind in the process's RSS.
        self._exec_ids = exec_ids

    def open_orders(self) -> list[Order]:
        """Every non-terminal order, oldest first."""
        orders = [self._by_id[i] for i in self._open]
        return sorted(orders, key=lambda o: o.created_sequence)

    def open_page(
        self, account: str, after_created_sequence: int, limit: int, symbol: str | None = None
    ) -> tuple[list[Order], bool]:
        """Up to ``limit`` of ``account``'s open orders created after a sequence,
        oldest first, and whether more follow. O(open orders): never walks the
        account's history (open orders are never evicted)."""
        by_id = self._by_id
        matching = sorted(
            (
                order
                for order in (by_id[i] for i in self._open)
                if order.spec.account == account
                and order.created_sequence > after_created_sequence
                and (symbol is None or order.spec.symbol == symbol)
            ),
            key=lambda o: o.created_sequence,
        )
        return matching[:limit], len(matching) > limit

    # ------------------------------------------------------------ eviction

    @property
    def evicted_count(self) -> int:
        """Orders known by their index only (their state is in the journal)."""
        return len(self._evicted)

    def is_evicted(self, order_id: str) -> bool:
        return order_id in self._evicted

    def id_by_key(self, account: str, client_order_id: str) -> str | None:
        """The id under this client key, in memory or evicted."""
        return self._by_key.get(account, {}).get(client_order_id)

    def id_by_broker_id(self, broker_order_id: str) -> str | None:
        return self._by_broker_id.get(broker_order_id)

    def exec_ids(self, order_id: str) -> tuple[str, ...]:
        """The executions booked on an order in memory."""
        return self._exec_ids.get(order_id, ())

    def evicted_by_key(self, account: str, client_order_id: str) -> str | None:
        """The id of the evicted order under this client key (None: none, or in memory)."""
        order_id = self._by_key.get(account, {}).get(client_order_id)
        return order_id if order_id is not None and order_id in self._evicted else None

    def evicted_by_broker_id(self, broker_order_id: str) -> str | None:
        order_id = self._by_broker_id.get(broker_order_id)
        return order_id if order_id is not None and order_id in self._evicted else None

    def evicted_ref(self, ref: OrderRef) -> str | None:
        """The id of the evicted order ``ref`` may name (its account is checked once read)."""
        if ref.client_order_id:
            return self.evicted_by_key(ref.account, ref.client_order_id)
        return ref.order_id if ref.order_id in self._evicted else None

    def evict(self, order_id: str) -> Order:
        """Drop a terminal order's state from memory, keeping its index entries."""
        order = self._by_id.pop(order_id)
        if not order.is_terminal:
            self._by_id[order_id] = order
            raise ValueError(f"order {order_id} is open; only terminal orders are evicted")
        self._exec_ids.pop(order_id, None)
        self._evicted.add(order_id)
        self._by_account[order.spec.account].mark(order, evicted=True)
        return order

    def reinstate(self, order: Order, exec_ids: tuple[str, ...]) -> None:
        """Take an evicted order back into memory, as read from the journal."""
        order_id = order.order_id
        if order_id not in self._evicted:
            raise ValueError(f"order {order_id} is not evicted")
        self._evicted.discard(order_id)
        self._by_account[order.spec.account].mark(order, evicted=False)
        self._by_id[order_id] = order
        if exec_ids:
            self._exec_ids[order_id] = exec_ids
        if order.broker_order_id:
            self._by_broker_id[order.broker_order_id] = order_id
        if order.is_terminal:
            self._terminal.append(order_id)
        else:
            self._open.add(order_id)

    def due(self, cutoff: datetime, limit: int, keep: Callable[[str], bool]) -> Iterator[Order]:
        """Yield up to ``limit`` terminal orders last changed at or before ``cutoff``.

        Oldest first, from the sweep's queue; stops at the first order not
        yet due. ``keep(order_id)`` true: not now (it is queued again).
        """
        queue, by_id = self._terminal, self._by_id
        for _ in range(limit):
            if not queue:
                return
            order = by_id.get(queue[0])
            if order is None or not order.is_terminal:
                queue.popleft()  # evicted already, or queued twice
                continue
            if order.updated_at > cutoff:
                return
            queue.popleft()
            if keep(order.order_id):
                queue.append(order.order_id)
                continue
            yield order

    def scan(
        self, account: str, after_created_sequence: int, limit: int
    ) -> list[tuple[int, str, Order | None]]:
        """Up to ``limit`` of ``account``'s orders after a created sequence, oldest
        first: (created sequence, id, the order in memory or None if evicted)."""
        entries = self._by_account.get(account)
        if entries is None:
            return []
        start = bisect.bisect_right(entries.sequences, after_created_sequence)
        stop = start + limit
        by_id = self._by_id
        return [
            (sequence, order_id, by_id.get(order_id))
            for sequence, order_id in zip(
                entries.sequences[start:stop], entries.order_ids[start:stop], strict=True
            )
        ]
