"""Configuration of the simulated exchange and broker: typed, frozen, defaulted."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from decimal import Decimal, InvalidOperation


@dataclass(frozen=True, slots=True)
class SymbolConfig:
    """How one symbol trades on the simulated exchange."""

    price: Decimal = Decimal(100)
    """Starting reference price."""

    tick_size: Decimal = Decimal("0.01")
    """Price grid: random-walk steps and slippage are whole multiples of it."""

    max_step_ticks: int = 5
    """Each exchange tick moves the price by a uniform whole number of ticks in
    ``[-max_step_ticks, max_step_ticks]``; 0 freezes the price."""

    slippage_ticks: int = 2
    """A fill pays up to this many ticks worse than the reference (never past a limit)."""

    liquidity: Decimal | None = None
    """Most quantity one order can fill per match (one submit or one tick);
    None means unlimited. A finite value makes IOC leftovers, FOK misses and
    resting partial fills happen."""

    def __post_init__(self) -> None:
        if not (self.price.is_finite() and self.price > 0):
            raise ValueError(f"price must be positive, got {self.price}")
        if not (self.tick_size.is_finite() and self.tick_size > 0):
            raise ValueError(f"tick_size must be positive, got {self.tick_size}")
        if self.max_step_ticks < 0 or self.slippage_ticks < 0:
            raise ValueError("max_step_ticks and slippage_ticks must not be negative")
        if self.liquidity is not None and not (self.liquidity.is_finite() and self.liquidity > 0):
            raise ValueError(f"liquidity must be positive or None, got {self.liquidity}")


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything the simulated exchange and the in-process broker can be told."""

    seed: int = 0
    """Seed of the exchange's random walk and slippage: same seed, same calls, same reports."""

    symbols: Mapping[str, SymbolConfig] = field(default_factory=dict, hash=False)
    """Per-symbol settings; other symbols use ``default_symbol``."""

    default_symbol: SymbolConfig = field(default_factory=SymbolConfig)
    """Settings of every symbol not listed in ``symbols``."""

    restrict_symbols: bool = False
    """Reject orders for symbols not listed in ``symbols`` ("unknown symbol")."""

    partial_fills: int = 3
    """Fills one match is split into (fewer if the quantity has fewer units)."""

    session_end: time | None = None
    """UTC time of day at which DAY orders expire; None means they never do.
    Off by default so that tests running at any wall-clock time never see a
    DAY order expire under them."""

    max_quantity: Decimal | None = None
    """Largest order quantity the venue accepts; None means no limit."""

    order_id_prefix: str = "SIM"
    """Prefix of broker order ids (``SIM-1``, ``SIM-2``, ...)."""

    tick_interval: float | None = 0.05
    """Seconds between the broker's automatic exchange ticks; None means only
    explicit ``SimulatedBroker.tick()`` calls advance the market."""

    ack_latency: float = 0.001
    """Seconds a submit or cancel travels before it reaches the exchange."""

    report_queue_size: int = 10_000
    """Capacity of the report stream; when full, producers wait (backpressure)."""

    def __post_init__(self) -> None:
        if self.partial_fills < 1:
            raise ValueError(f"partial_fills must be at least 1, got {self.partial_fills}")
        if self.max_quantity is not None and not (
            self.max_quantity.is_finite() and self.max_quantity > 0
        ):
            raise ValueError(f"max_quantity must be positive or None, got {self.max_quantity}")
        if self.tick_interval is not None and self.tick_interval <= 0:
            raise ValueError(f"tick_interval must be positive or None, got {self.tick_interval}")
        if self.ack_latency < 0:
            raise ValueError(f"ack_latency must not be negative, got {self.ack_latency}")
        if self.report_queue_size < 1:
            raise ValueError(f"report_queue_size must be at least 1, got {self.report_queue_size}")

    def symbol(self, symbol: str) -> SymbolConfig:
        """Return the settings of ``symbol``."""
        return self.symbols.get(symbol, self.default_symbol)


_SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9./-]{0,23}")


def parse_symbol_prices(text: str) -> dict[str, Decimal]:
    """Parse ``AAPL=187.25,MSFT=410`` into exact, positive prices by symbol.

    The one parser of the market's starting prices, for the gateway's
    ``--sim-prices`` and the paper venue's ``--prices``.
    """
    prices: dict[str, Decimal] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        symbol, sep, price = item.partition("=")
        try:
            value = Decimal(price)
        except InvalidOperation:
            value = Decimal("NaN")
        if not sep or not _SYMBOL.fullmatch(symbol) or not (value.is_finite() and value > 0):
            raise ValueError(f"bad price {item!r}; expected SYMBOL=PRICE")
        prices[symbol] = value
    return prices
