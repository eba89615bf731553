"""The order table: every order the gateway knows, with its lookup indexes.

Owned by the actor (one task): no locks, no awaits. Holds the idempotency
index on (account, client_order_id) and the set of applied exec_ids.
"""

from __future__ import annotations

import bisect
from collections import defaultdict

from gateway.domain import ListOrdersQuery, Order, OrderRef


class OrderTable:
    """Orders by id, by client key, by broker id, and per account in creation order."""

    def __init__(self) -> None:
        self._by_id: dict[str, Order] = {}
        self._by_key: dict[tuple[str, str], str] = {}
        self._by_broker_id: dict[str, str] = {}
        # Per account: (created_sequence, order_id), sorted; appends are in order.
        self._by_account: dict[str, list[tuple[int, str]]] = defaultdict(list)
        self._exec_ids: dict[str, set[str]] = defaultdict(set)
        self._open: set[str] = set()

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, order_id: str) -> Order | None:
        return self._by_id.get(order_id)

    def by_key(self, account: str, client_order_id: str) -> Order | None:
        order_id = self._by_key.get((account, client_order_id))
        return None if order_id is None else self._by_id[order_id]

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
            self._by_key[order.spec.key] = order.order_id
            bisect.insort(
                self._by_account[order.spec.account], (order.created_sequence, order.order_id)
            )
        if order.broker_order_id:
            self._by_broker_id[order.broker_order_id] = order.order_id
        if order.is_terminal:
            self._open.discard(order.order_id)
        else:
            self._open.add(order.order_id)

    def has_exec(self, order_id: str, exec_id: str) -> bool:
        return exec_id in self._exec_ids[order_id]

    def add_exec(self, order_id: str, exec_id: str) -> None:
        self._exec_ids[order_id].add(exec_id)

    def open_orders(self) -> list[Order]:
        """Every non-terminal order, oldest first."""
        orders = [self._by_id[i] for i in self._open]
        return sorted(orders, key=lambda o: o.created_sequence)

    def page(self, query: ListOrdersQuery) -> tuple[list[Order], bool]:
        """Return one page of ``query`` and whether more orders match after it."""
        entries = self._by_account.get(query.account, [])
        start = bisect.bisect_right(entries, (query.after_created_sequence, "\uffff"))
        found: list[Order] = []
        for _, order_id in entries[start:]:
            order = self._by_id[order_id]
            if query.open_only and order.is_terminal:
                continue
            if query.symbols and order.spec.symbol not in query.symbols:
                continue
            if len(found) == query.page_size:
                return found, True
            found.append(order)
        return found, False
