"""Value types for command-line flags, shared by every flag table.

Each parser raises ValueError on a bad value; its ``__name__`` is what
argparse shows ("invalid positive number value: '-1'").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import TypeVar

_T = TypeVar("_T")


def _named(name: str) -> Callable[[Callable[[str], _T]], Callable[[str], _T]]:
    def rename(parser: Callable[[str], _T]) -> Callable[[str], _T]:
        parser.__name__ = name
        return parser

    return rename


@_named("non-negative number")
def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:  # also refuses NaN
        raise ValueError(text)
    return value


@_named("positive number")
def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(text)
    return value


@_named("non-negative integer")
def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


@_named("positive integer")
def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(text)
    return value


@_named("HOST:PORT")
def host_port(text: str) -> str:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(text)
    return text


_SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9./-]{0,23}")


@_named("SYMBOL=PRICE list")
def symbol_prices(text: str) -> dict[str, Decimal]:
    """Parse ``AAPL=187.25,MSFT=410`` into exact, positive prices by symbol."""
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
