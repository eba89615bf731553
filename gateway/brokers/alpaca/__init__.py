"""The Alpaca adapter: Trading API v2 over REST, order events over ``trade_updates``."""

from gateway.brokers.alpaca.adapter import AlpacaBroker
from gateway.brokers.alpaca.config import (
    ALLOW_LIVE_ENV,
    LIVE_URL,
    PAPER_URL,
    AlpacaConfig,
    LiveTradingRefused,
    check_live_gate,
)

__all__ = [
    "ALLOW_LIVE_ENV",
    "LIVE_URL",
    "PAPER_URL",
    "AlpacaBroker",
    "AlpacaConfig",
    "LiveTradingRefused",
    "check_live_gate",
]
