"""The engine: the order actor and what it owns."""

from gateway.engine.actor import OrderActor
from gateway.engine.config import EngineConfig
from gateway.engine.fanout import SlowSubscriber, Subscriber

__all__ = ["EngineConfig", "OrderActor", "SlowSubscriber", "Subscriber"]
