"""The order table: every order the gateway knows, with its lookup indexes.

Owned by the actor (one task): no locks, no awaits. Holds the idempotency
index on (account, client_order_id) and the exec_ids applied per order.

Every order the gateway ever saw stays here, so the indexes are shaped for
memory: nested dicts rather than tuple keys, creation order per account as a
machine-integer array beside a list of ids, and exec_ids as small tuples
(an order has a handful of fills; a set costs 216 bytes before its first).
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Callable

from gateway.domain import ListOrdersQuery, Order, OrderRef


class _AccountOrders:
    """One account's orders in creation order: sequences and ids, index-aligned."""

    __slots__ = ("order_ids", "sequences")

    def __init__(self) -> None:
        self.sequences = array("q")
        self.order_ids: list[str] = []

    def add(self, created_sequence: int, order_id: str) -> None:
        if not self.sequences or created_sequence > self.sequences[-1]:
            self.sequences.append(created_sequence)  # the usual case: newest last
            self.order_ids.append(order_id)
            return
        at = bisect.bisect_right(self.sequences, created_sequence)
        self.sequences.insert(at, created_sequence)
        self.order_ids.insert(at, order_id)


class OrderTable:
    """Orders by id, by client key, by broker id, and per account in creation order."""

    def __init__(self) -> None:
        self._by_id: dict[str, Order] = {}
        self._by_key: dict[str, dict[str, str]] = {}  # account -> client_order_id -> id
        self._by_broker_id: dict[str, str] = {}
        self._by_account: dict[str, _AccountOrders] = {}
        self._exec_ids: dict[str, tuple[str, ...]] = {}
        self._open: set[str] = set()

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, order_id: str) -> Order | None:
        return self._by_id.get(order_id)

    def by_key(self, account: str, client_order_id: str) -> Order | None:
        order_id = self._by_key.get(account, {}).get(client_order_id)
        return None if order_id is None else self._by_id[order_id]

    def trades(self, account: str) -> bool:
        """Whether any order of ``account`` is in the table (the gateway trades it)."""
        return account in self._by_key

    def by_broker_id(self, broker_order_id: str) -> Order | None:
        order_id = self._by_broker_id.get(broker_order_id)
        return None if order_id is None else self._by_id[order_id]

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
        else:
            self._open.add(order.order_id)

    def has_exec(self, order_id: str, exec_id: str) -> bool:
        return exec_id in self._exec_ids.get(order_id, ())

    def add_exec(self, order_id: str, exec_id: str) -> None:
        self._exec_ids[order_id] = (*self._exec_ids.get(order_id, ()), exec_id)

    def snapshot(self) -> tuple[list[Order], dict[str, tuple[str, ...]]]:
        """Every order and the exec_ids booked per order: a checkpoint's content.

        Shallow copies (orders are immutable), so a worker thread may encode
        them while the table moves on.
        """
        return list(self._by_id.values()), dict(self._exec_ids)

    def restore(self, orders: list[Order], exec_ids: dict[str, tuple[str, ...]]) -> None:
        """Load a checkpoint's orders into this (empty) table.

        ``put`` with its checks hoisted: this runs for every order at start.
        """
        if self._by_id:
            raise RuntimeError("restore into an empty table only")
        by_id, by_key, by_broker_id = self._by_id, self._by_key, self._by_broker_id
        by_account, open_ids = self._by_account, self._open
        for order in orders:
            order_id, spec = order.order_id, order.spec
            by_id[order_id] = order
            account = spec.account
            keys = by_key.get(account)
            if keys is None:
                keys = by_key[account] = {}
                by_account[account] = _AccountOrders()
            keys[spec.client_order_id] = order_id
            by_account[account].add(order.created_sequence, order_id)
            if order.broker_order_id:
                by_broker_id[order.broker_order_id] = order_id
            if not order.status.is_terminal:
                open_ids.add(order_id)
        # Taken as it is (the checkpoint's own dict): a copy of a million entries
        # would leave its freed memory behind in the process's RSS.
        self._exec_ids = exec_ids

    def open_orders(self) -> list[Order]:
        """Every non-terminal order, oldest first."""
        orders = [self._by_id[i] for i in self._open]
        return sorted(orders, key=lambda o: o.created_sequence)

    def page(
        self, query: ListOrdersQuery, view: Callable[[Order], Order | None] | None = None
    ) -> tuple[list[Order], bool]:
        """Return one page of ``query`` and whether more orders match after it.

        ``view`` maps each order to the version to list (None: leave it out).
        """
        entries = self._by_account.get(query.account)
        if entries is None:
            return [], False
        start = bisect.bisect_right(entries.sequences, query.after_created_sequence)
        found: list[Order] = []
        for order_id in entries.order_ids[start:]:
            order = self._by_id[order_id] if view is None else view(self._by_id[order_id])
            if order is None:
                continue
            if query.open_only and order.is_terminal:
                continue
            if query.symbols and order.spec.symbol not in query.symbols:
                continue
            if len(found) == query.page_size:
                return found, True
            found.append(order)
        return found, False
