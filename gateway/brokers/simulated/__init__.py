"""The simulated broker: an in-process, deterministic venue, the gateway's default."""

from gateway.brokers.simulated.broker import SimulatedBroker
from gateway.brokers.simulated.config import SimConfig, SymbolConfig
from gateway.brokers.simulated.exchange import SimulatedExchange

__all__ = ["SimConfig", "SimulatedBroker", "SimulatedExchange", "SymbolConfig"]
