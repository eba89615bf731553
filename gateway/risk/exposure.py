"""Open exposure per account: what the risk checks need of the open orders, in O(1).

Kept current by the ledger from every order change (live and replayed), so
a check never walks the open orders: the open-order count per account, and
the quantity still working per (account, symbol, side).
"""

from __future__ import annotations

from decimal import Decimal

from gateway.domain import Order, Side

ZERO = Decimal(0)


class OpenExposure:
    """Open orders per account and working quantity per account, symbol and side."""

    __slots__ = ("_counts", "_leaves")

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._leaves: dict[tuple[str, str, Side], Decimal] = {}

    def track(self, before: Order | None, after: Order) -> None:
        """Account for one order's change from ``before`` (None: new) to ``after``."""
        was_open = before is not None and not before.is_terminal
        is_open = not after.is_terminal
        if not was_open and not is_open:
            return  # a late fill on a terminal order: nothing open moved
        spec = after.spec
        account = spec.account
        if was_open != is_open:
            self._counts[account] = self._counts.get(account, 0) + (1 if is_open else -1)
        moved = after.leaves_quantity - (ZERO if before is None else before.leaves_quantity)
        if moved:
            key = (account, spec.symbol, spec.side)
            self._leaves[key] = self._leaves.get(key, ZERO) + moved

    def open_orders(self, account: str) -> int:
        return self._counts.get(account, 0)

    def working(self, account: str, symbol: str, side: Side) -> Decimal:
        """Quantity still working in the account's open orders for ``symbol`` on ``side``."""
        return self._leaves.get((account, symbol, side), ZERO)
