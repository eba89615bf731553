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

    __slots__ = ("_buys", "_counts", "_sells")

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        # By side in two dicts: a tuple key holding the Side enum would hash it
        # in Python on every event.
        self._buys: dict[tuple[str, str], Decimal] = {}
        self._sells: dict[tuple[str, str], Decimal] = {}

    def track(self, before: Order | None, after: Order) -> None:
        """Account for one order's change from ``before`` (None: new) to ``after``.

        Runs for every event, live and replayed: most (acks, cancel requests)
        move nothing, and leave after two identity tests and a comparison.
        """
        is_open = not after.status.is_terminal
        if before is None:
            if not is_open:
                return
            was_open, was_working = False, ZERO
        else:
            was_open = not before.status.is_terminal
            if was_open is is_open and (
                not is_open
                or (
                    before.filled_quantity == after.filled_quantity
                    and before.spec.quantity == after.spec.quantity
                )
            ):
                return  # nothing open moved (or a late fill on a terminal order)
            was_working = before.spec.quantity - before.filled_quantity if was_open else ZERO
        spec = after.spec
        account = spec.account
        if was_open is not is_open:
            self._counts[account] = self._counts.get(account, 0) + (1 if is_open else -1)
        working = spec.quantity - after.filled_quantity if is_open else ZERO
        moved = working - was_working
        if moved:
            by_side = self._buys if spec.side is Side.BUY else self._sells
            key = (account, spec.symbol)
            by_side[key] = by_side.get(key, ZERO) + moved

    def open_orders(self, account: str) -> int:
        return self._counts.get(account, 0)

    def working(self, account: str, symbol: str, side: Side) -> Decimal:
        """Quantity still working in the account's open orders for ``symbol`` on ``side``."""
        by_side = self._buys if side is Side.BUY else self._sells
        return by_side.get((account, symbol), ZERO)
