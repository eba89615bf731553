"""Requests that name or select orders, as the engine understands them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class OrderRef:
    """One order of one account, by the gateway's id or the client's id.

    Exactly one of ``order_id`` and ``client_order_id`` is non-empty.
    """

    account: str
    order_id: str = ""
    client_order_id: str = ""


@dataclass(frozen=True, slots=True)
class ListOrdersQuery:
    """A page of an account's orders, oldest first.

    ``after_created_sequence`` is where the previous page ended (0: from the
    start); ``symbols`` empty means every symbol.
    """

    account: str
    page_size: int
    open_only: bool = False
    symbols: frozenset[str] = frozenset()
    after_created_sequence: int = 0


@dataclass(frozen=True, slots=True)
class SubscriptionFilter:
    """Which updates a subscriber gets; empty sets mean "all"."""

    accounts: frozenset[str] = frozenset()
    symbols: frozenset[str] = frozenset()
    after_sequence: int | None = None
    snapshot: bool = False

    def matches(self, account: str, symbol: str) -> bool:
        return (not self.accounts or account in self.accounts) and (
            not self.symbols or symbol in self.symbols
        )
