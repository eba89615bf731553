"""The order index a checkpoint carries once terminal orders have left memory.

An evicted order (terminal, past the retention window; see
``gateway.engine.retention``) is no longer an ``Order`` in the table or in
the checkpoint. What stays is what finding it again needs: its client key
(idempotency: a retried ``PlaceOrder`` must find it), its broker id (a late
report may name only that) and its place in its account's creation order
(``ListOrders`` pages by it). Its state is read back from the journal, by
order id, when someone asks.

Stored per account as columns aligned with the account's creation order,
as the table keeps them, so a checkpoint copies them and start-up rebuilds
the indexes with bulk operations (``dict.update(zip(...))``, an ``array``
from bytes) rather than a Python step per order.
"""

from __future__ import annotations

import msgspec


class AccountIndex(msgspec.Struct, array_like=True, gc=False, frozen=True):
    """One account's orders in creation order, with the keys of its evicted ones.

    The columns are index-aligned and list every order of the account,
    oldest first. For an order in memory (it is in the checkpoint's
    orders) the two key columns hold None; for an evicted one, its ids.
    """

    account: str
    sequences: bytes
    """Each order's created sequence, as little-endian int64s (8 bytes each)."""
    order_ids: list[str]
    client_order_ids: list[str | None]
    broker_order_ids: list[str | None]
    """The broker's id of each evicted order ("": it never had one)."""
