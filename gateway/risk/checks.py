"""The pre-trade checks: a new order against the trading mode and the limits.

The actor runs them on every new order before it can reach the broker,
against its own state (positions, open orders). A refusal names the limit,
the limit's value and the order's value; the order is then recorded
REJECTED with the refusal's code, like any order, and never sent.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_UP, Decimal

from gateway.domain import OrderSpec, OrderType, Side, decimal_to_str
from gateway.domain.controls import TradingMode
from gateway.domain.enums import RejectCode
from gateway.risk.bucket import TokenBucket
from gateway.risk.exposure import OpenExposure
from gateway.risk.limits import NO_LIMITS, AccountLimits, RiskLimits

ZERO = Decimal(0)
HUNDRED = Decimal(100)
_PERCENT_QUANTUM = Decimal("0.000001")
_PRICED_BY_REFERENCE = (OrderType.MARKET, OrderType.STOP)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a new order may not go to the broker."""

    code: RejectCode
    limit: str
    """The limit's name (``max_order_quantity``, ``trading_halted``...): the metric's label."""
    reason: str


def _refuse(limit: str, limit_value: object, what: str, order_value: object) -> Refusal:
    return Refusal(
        RejectCode.RISK_LIMIT,
        limit,
        f"risk limit {limit} is {_text(limit_value)}; the order's {what} is {_text(order_value)}",
    )


def _shown(percent: Decimal) -> Decimal:
    """A percentage for a message: rounded away from the limit, so "over" never reads "equal"."""
    if percent.as_tuple().exponent >= -6:  # type: ignore[operator]  # finite here: int exponent
        return percent
    return percent.quantize(_PERCENT_QUANTUM, rounding=ROUND_UP)


def _text(value: object) -> str:
    return decimal_to_str(value) if isinstance(value, Decimal) else str(value)


class RiskChecker:
    """Checks new orders; keeps the order-rate buckets and counts refusals by limit."""

    def __init__(
        self,
        exposure: OpenExposure,
        position: Callable[[str, str], Decimal],
        reference_price: Callable[[str], Decimal | None] | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._exposure = exposure
        self._position = position
        self._reference_price = reference_price
        self._monotonic = monotonic
        self.limits: RiskLimits = NO_LIMITS
        self._checking = False  # any limit at all (worked out per reload, not per order)
        self._buckets: dict[str, TokenBucket] = {}
        self.refusals: Counter[str] = Counter()

    def use(self, limits: RiskLimits) -> None:
        """Check against ``limits`` from now on (a reload); rate buckets start afresh."""
        self.limits = limits
        self._checking = not limits.is_empty
        self._buckets.clear()

    def check(self, spec: OrderSpec, mode: TradingMode) -> Refusal | None:
        """Return why ``spec`` may not be sent, or None if it may."""
        refusal = None
        if mode is not TradingMode.ACTIVE:
            refusal = self._check_mode(spec, mode)
        if refusal is None and self._checking:
            refusal = self._check_limits(spec, self.limits.for_account(spec.account))
        if refusal is not None:
            self.refusals[refusal.limit] += 1
        return refusal

    def check_replace(
        self, current: OrderSpec, leaves: Decimal, new: OrderSpec, mode: TradingMode
    ) -> Refusal | None:
        """Return why an open order (``current`` terms, ``leaves`` still working)
        may not take the ``new`` terms, or None if it may.

        Halted: no replace. Reducing: only one that does not add quantity.
        The limits apply to the new terms as to a new order (quantity, notional,
        price collar, the position projected with the order's new leaves in
        place of its old), not the open-order count or the order rate: it
        stays one order.
        """
        refusal = None
        grows = new.quantity > current.quantity
        if mode is TradingMode.HALTED or (mode is TradingMode.REDUCING and grows):
            refusal = Refusal(
                RejectCode.TRADING_HALTED,
                "trading_halted" if mode is TradingMode.HALTED else "trading_reducing",
                f"trading is {'halted' if mode is TradingMode.HALTED else 'reducing-only'} "
                f"for account {new.account!r}; "
                + (
                    "no replaces"
                    if mode is TradingMode.HALTED
                    else "a replace may not add quantity"
                ),
            )
        elif self._checking:
            refusal = self._check_replace_limits(
                new, leaves + new.quantity - current.quantity, leaves,
                self.limits.for_account(new.account),
            )  # fmt: skip
        if refusal is not None:
            self.refusals[refusal.limit] += 1
        return refusal

    def _check_replace_limits(
        self, new: OrderSpec, new_leaves: Decimal, old_leaves: Decimal, limits: AccountLimits
    ) -> Refusal | None:
        if limits.max_order_quantity is not None and new.quantity > limits.max_order_quantity:
            return _refuse(
                "max_order_quantity", limits.max_order_quantity, "quantity", new.quantity
            )
        refusal = self._check_prices(new, limits)
        if refusal is not None:
            return refusal
        if limits.max_position is not None:
            held = self._position(new.account, new.symbol)
            working = self._exposure.working(new.account, new.symbol, new.side)
            step = working - old_leaves + new_leaves
            projected = held + step if new.side is Side.BUY else held - step
            if abs(projected) > limits.max_position:
                return _refuse("max_position", limits.max_position, "projected position", projected)
        return None

    def _check_mode(self, spec: OrderSpec, mode: TradingMode) -> Refusal | None:
        if mode is TradingMode.HALTED:
            return Refusal(
                RejectCode.TRADING_HALTED,
                "trading_halted",
                f"trading is halted for account {spec.account!r}; no new orders",
            )
        # REDUCING: only an order that brings the position towards zero without
        # crossing it, counting the orders already working on the same side.
        held = self._position(spec.account, spec.symbol)
        working = self._exposure.working(spec.account, spec.symbol, spec.side)
        if spec.side is Side.BUY:
            reduces = held < ZERO and held + working + spec.quantity <= ZERO
        else:
            reduces = held > ZERO and held - working - spec.quantity >= ZERO
        if reduces:
            return None
        return Refusal(
            RejectCode.TRADING_HALTED,
            "trading_reducing",
            f"trading is reducing-only for account {spec.account!r}: position "
            f"{decimal_to_str(held)} {spec.symbol} with {decimal_to_str(working)} working on "
            f"the {spec.side.value} side; a {spec.side.value} of "
            f"{decimal_to_str(spec.quantity)} would not reduce it without flipping it",
        )

    def _check_limits(self, spec: OrderSpec, limits: AccountLimits) -> Refusal | None:
        symbol = spec.symbol
        if limits.allowed_symbols is not None and symbol not in limits.allowed_symbols:
            return _refuse(
                "allowed_symbols", ",".join(sorted(limits.allowed_symbols)), "symbol", symbol
            )
        if limits.denied_symbols is not None and symbol in limits.denied_symbols:
            return _refuse(
                "denied_symbols", ",".join(sorted(limits.denied_symbols)), "symbol", symbol
            )
        if limits.max_order_quantity is not None and spec.quantity > limits.max_order_quantity:
            return _refuse(
                "max_order_quantity", limits.max_order_quantity, "quantity", spec.quantity
            )
        refusal = self._check_prices(spec, limits)
        if refusal is not None:
            return refusal
        if limits.max_open_orders is not None:
            open_orders = self._exposure.open_orders(spec.account)
            if open_orders + 1 > limits.max_open_orders:
                return _refuse(
                    "max_open_orders",
                    limits.max_open_orders,
                    "open orders with it",
                    open_orders + 1,
                )
        if limits.max_position is not None:
            held = self._position(spec.account, symbol)
            working = self._exposure.working(spec.account, symbol, spec.side)
            step = working + spec.quantity
            projected = held + step if spec.side is Side.BUY else held - step
            if abs(projected) > limits.max_position:
                return _refuse("max_position", limits.max_position, "projected position", projected)
        if limits.max_order_rate is not None:
            bucket = self._buckets.get(spec.account)
            now = self._monotonic()
            if bucket is None:
                bucket = self._buckets[spec.account] = TokenBucket(
                    limits.max_order_rate, limits.order_rate_burst, now
                )
            if not bucket.take(now):
                return _refuse(
                    "max_order_rate",
                    f"{_text(limits.max_order_rate)}/s (burst {bucket.burst})",
                    "rate",
                    "over it",
                )
        return None

    def _check_prices(self, spec: OrderSpec, limits: AccountLimits) -> Refusal | None:
        notional_limit, collar = limits.max_order_notional, limits.price_collar_percent
        if notional_limit is None and collar is None:
            return None
        reference = None if self._reference_price is None else self._reference_price(spec.symbol)
        if notional_limit is not None:
            price = reference if spec.order_type in _PRICED_BY_REFERENCE else spec.limit_price
            if price is None:
                # Fail closed: an order that cannot be priced is not known to be within it.
                return _refuse(
                    "max_order_notional", notional_limit, "notional", "unknown (no reference price)"
                )
            notional = spec.quantity * price
            if notional > notional_limit:
                return _refuse("max_order_notional", notional_limit, "notional", notional)
        if collar is not None and spec.limit_price is not None:
            if reference is None or reference <= ZERO:
                return _refuse(
                    "price_collar_percent",
                    collar,
                    "limit price distance",
                    "unknown (no reference price)",
                )
            distance = abs(spec.limit_price - reference) * HUNDRED / reference
            if distance > collar:
                return _refuse(
                    "price_collar_percent",
                    f"{_text(collar)}%",
                    f"limit price {_text(spec.limit_price)} distance from {_text(reference)}",
                    f"{_text(_shown(distance))}%",
                )
        return None
