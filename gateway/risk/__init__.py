"""Pre-trade risk: the limits, their file, and the checks the actor runs.

- ``limits``: the limits model (defaults and per-account overrides);
- ``loader``: the TOML limits file, strictly validated;
- ``watcher``: reloads the file when it changes, keeping the last good limits;
- ``bucket``: the token bucket behind the order-rate limit;
- ``checks``: the checks themselves, and the trading mode's (REDUCING).
"""

from gateway.risk.checks import Refusal, RiskChecker
from gateway.risk.limits import AccountLimits, RiskLimits
from gateway.risk.loader import LimitsFileError, load_limits, parse_limits
from gateway.risk.watcher import LimitsFile

__all__ = [
    "AccountLimits",
    "LimitsFile",
    "LimitsFileError",
    "Refusal",
    "RiskChecker",
    "RiskLimits",
    "load_limits",
    "parse_limits",
]
