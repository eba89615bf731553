"""The risk limits file (TOML), read strictly.

::

    [defaults]                      # every account
    max_order_quantity = 1000
    max_order_notional = "250000"   # numbers or decimal strings; read exactly
    denied_symbols = ["GME"]

    [accounts.acct-1]               # this account: these fields over the defaults
    max_order_quantity = 100

Numbers are exact: TOML floats are read as decimals, never as binary
floats. An unknown table or key, a value of the wrong kind, a negative,
zero or non-finite number is an error naming the key: a typo must never
silently lift a limit.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from gateway.risk.limits import AccountLimits, RiskLimits

_DECIMALS = frozenset(
    {
        "max_order_quantity",
        "max_order_notional",
        "max_position",
        "max_order_rate",
        "price_collar_percent",
    }
)
_COUNTS = frozenset({"max_open_orders", "order_rate_burst"})
_SYMBOLS = frozenset({"allowed_symbols", "denied_symbols"})
_KEYS = _DECIMALS | _COUNTS | _SYMBOLS
# Large enough for any real limit, small enough that a typo in digits shows.
_MAX_DIGITS = 30


class LimitsFileError(ValueError):
    """The limits file cannot be used; the message says where and why."""


def load_limits(path: Path) -> RiskLimits:
    """Read and check the limits file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LimitsFileError(f"{path}: unreadable: {exc}") from None
    return parse_limits(text, str(path))


def parse_limits(text: str, source: str = "<limits>") -> RiskLimits:
    """Parse limits from TOML ``text`` (``source`` names it in errors)."""
    try:
        document = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise LimitsFileError(f"{source}: not valid TOML: {exc}") from None
    unknown = set(document) - {"defaults", "accounts"}
    if unknown:
        raise LimitsFileError(
            f"{source}: unknown table(s) {sorted(unknown)}; expected [defaults] and [accounts.NAME]"
        )
    defaults = _account_limits(document.get("defaults", {}), f"{source}: [defaults]")
    accounts_table = document.get("accounts", {})
    if not isinstance(accounts_table, dict):
        raise LimitsFileError(f"{source}: accounts must be tables, [accounts.NAME]")
    accounts: dict[str, AccountLimits] = {}
    for account, table in accounts_table.items():
        where = f"{source}: [accounts.{account}]"
        if not account:
            raise LimitsFileError(f"{where}: the account name is empty")
        accounts[account] = _account_limits(table, where).over(defaults)
    return RiskLimits(defaults, accounts)


def _account_limits(table: Any, where: str) -> AccountLimits:
    if not isinstance(table, dict):
        raise LimitsFileError(f"{where}: must be a table of limits")
    unknown = set(table) - _KEYS
    if unknown:
        raise LimitsFileError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(_KEYS)}")
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key in _DECIMALS:
            values[key] = _positive_decimal(value, f"{where} {key}")
        elif key in _COUNTS:
            values[key] = _positive_count(value, f"{where} {key}")
        else:
            values[key] = _symbols(value, f"{where} {key}")
    return AccountLimits(**values)


def _positive_decimal(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise LimitsFileError(f"{where}: expected a number, got {type(value).__name__}")
    try:
        number = Decimal(value) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise LimitsFileError(f"{where}: {value!r} is not a decimal number") from None
    if not number.is_finite() or number <= 0:
        raise LimitsFileError(f"{where}: must be a positive finite number, got {value}")
    if len(number.as_tuple().digits) > _MAX_DIGITS:
        raise LimitsFileError(f"{where}: more than {_MAX_DIGITS} digits")
    return number


def _positive_count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise LimitsFileError(f"{where}: expected a positive whole number, got {value!r}")
    if value >= 1 << 32:
        raise LimitsFileError(f"{where}: {value} is too large")
    return value


def _symbols(value: Any, where: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(s, str) and s for s in value):
        raise LimitsFileError(f"{where}: expected a list of symbol strings")
    return frozenset(value)
