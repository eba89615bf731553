"""Risk limits: per-account values over gateway-wide defaults.

Every limit is optional (None: no limit). An account's limits are the
defaults with its override's set fields on top.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class AccountLimits:
    """The limits one order of one account is checked against."""

    max_order_quantity: Decimal | None = None
    """Largest quantity of one order."""
    max_order_notional: Decimal | None = None
    """Largest quantity times price (the limit price, or the reference price)."""
    max_open_orders: int | None = None
    """Most open orders of the account at once."""
    max_position: Decimal | None = None
    """Largest absolute position per symbol, with the open orders on the order's side."""
    max_order_rate: Decimal | None = None
    """Most new orders per second, on average (a token bucket)."""
    order_rate_burst: int | None = None
    """How many orders the bucket lets through at once (default: the rate, rounded up)."""
    price_collar_percent: Decimal | None = None
    """Largest distance of a limit price from the reference price, in percent of it."""
    allowed_symbols: frozenset[str] | None = None
    """Only these symbols may be traded (None: every symbol)."""
    denied_symbols: frozenset[str] | None = None
    """These symbols may not be traded."""

    def over(self, defaults: AccountLimits) -> AccountLimits:
        """These limits on top of ``defaults``: a field set here wins."""
        changes = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) is not None
        }
        return dataclasses.replace(defaults, **changes)

    @property
    def is_empty(self) -> bool:
        return self == _NO_LIMITS


_NO_LIMITS = AccountLimits()


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """The limits in force: defaults, and each overridden account's merged limits."""

    defaults: AccountLimits = _NO_LIMITS
    accounts: dict[str, AccountLimits] = field(default_factory=dict)

    def for_account(self, account: str) -> AccountLimits:
        """The limits ``account``'s orders are checked against."""
        return self.accounts.get(account, self.defaults)

    @property
    def is_empty(self) -> bool:
        """No limit anywhere: the checks can be skipped altogether."""
        return self.defaults.is_empty and all(a.is_empty for a in self.accounts.values())


NO_LIMITS = RiskLimits()
