"""Metrics of the trading controls, read at scrape time: halts, risk refusals, limits file.

- ``gateway_trading_halts``: halts in force (0 when trading is active everywhere);
- ``gateway_trading_mode{scope}``: per halt, 1 REDUCING, 2 HALTED (scope "*":
  the gateway-wide one);
- ``gateway_risk_refusals_total{limit}``: new orders refused before the broker;
- ``gateway_risk_limits_file_ok``, ``gateway_risk_limits_reload_failures_total``,
  ``gateway_risk_limits_loaded_timestamp_seconds``: the limits file's state.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from gateway.domain.controls import TradingMode

if TYPE_CHECKING:
    from gateway.engine import OrderActor
    from gateway.risk import LimitsFile

_MODE_VALUE = {TradingMode.ACTIVE: 0, TradingMode.REDUCING: 1, TradingMode.HALTED: 2}
# Listed at zero from the start, so alerts can take increase() of each.
LIMIT_NAMES = (
    "trading_halted",
    "trading_reducing",
    "allowed_symbols",
    "denied_symbols",
    "max_order_quantity",
    "max_order_notional",
    "price_collar_percent",
    "max_open_orders",
    "max_position",
    "max_order_rate",
)


class ControlCollector(Collector):
    """The trading controls' metrics (see the module docstring)."""

    def __init__(self, actor: OrderActor, limits_file: LimitsFile | None) -> None:
        self._actor = actor
        self._limits_file = limits_file

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        halts = self._actor.trading_modes()
        yield GaugeMetricFamily(
            "gateway_trading_halts", "Trading halts in force (0: active everywhere).", len(halts)
        )
        modes = GaugeMetricFamily(
            "gateway_trading_mode",
            "Per halt in force: 1 REDUCING, 2 HALTED; scope '*' is gateway-wide.",
            labels=["scope"],
        )
        for halt in halts:
            modes.add_metric([halt.scope_account or "*"], _MODE_VALUE[halt.mode])
        yield modes
        refusals = CounterMetricFamily(
            "gateway_risk_refusals",
            "New orders refused before the broker, by limit (or trading mode).",
            labels=["limit"],
        )
        counted = self._actor.risk_refusals
        for name in sorted({*LIMIT_NAMES, *counted}):
            refusals.add_metric([name], counted.get(name, 0))
        yield refusals
        source = self._limits_file
        # Present without a limits file too (1 and 0), so alerts always find them.
        yield GaugeMetricFamily(
            "gateway_risk_limits_file_ok",
            "1 while the limits in force are the risk limits file's latest version.",
            1 if source is None else int(source.healthy),
        )
        yield CounterMetricFamily(
            "gateway_risk_limits_reload_failures",
            "Versions of the risk limits file refused (the last good limits stayed).",
            0 if source is None else source.failures,
        )
        if source is not None and source.loaded_at is not None:
            yield GaugeMetricFamily(
                "gateway_risk_limits_loaded_timestamp_seconds",
                "When the limits in force were loaded (Unix time).",
                source.loaded_at.timestamp(),
            )
