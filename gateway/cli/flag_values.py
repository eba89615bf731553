"""Value types for command-line flags, shared by every flag table.

Each parser raises ValueError on a bad value; its ``__name__`` is what
argparse shows ("invalid positive number value: '-1'").
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TypeVar

from gateway.brokers.simulated.config import parse_symbol_prices

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


@_named("SYMBOL=PRICE list")
def symbol_prices(text: str) -> dict[str, Decimal]:
    return parse_symbol_prices(text)
