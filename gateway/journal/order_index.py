"""The order index a checkpoint carries once terminal orders have left memory.

An evicted order (terminal, past the retention window; see
``gateway.engine.retention``) is no longer an ``Order`` in the table or in
the checkpoint. What stays is what finding it again needs: its client key
(idempotency: a retried ``PlaceOrder`` must find it), its broker id (a late
report may name only that) and its place in its account's creation order
(``ListOrders`` pages by it). Its state is read back from the journal, by
order id, when someone asks.

Stored per account as columns, so start-up rebuilds the indexes with bulk
operations (``dict.update(zip(...))``, ``array`` from a list) rather than
a Python step per order.
"""

from __future__ import annotations

import msgspec


class AccountIndex(msgspec.Struct, array_like=True, gc=False, frozen=True):
    """One account's orders in creation order, and the keys of its evicted ones.

    ``sequences`` and ``order_ids`` list every order of the account (in
    memory or not), oldest first; the other three columns are aligned with
    each other and describe only the evicted orders.
    """

    account: str
    sequences: list[int]
    order_ids: list[str]
    evicted_ids: list[str]
    client_order_ids: list[str]
    broker_order_ids: list[str]
    """The broker's id of each evicted order ("": it never had one)."""
