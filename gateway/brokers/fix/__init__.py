"""The FIX 4.4 broker adapter (``--broker fix``): an initiator session to a broker.

``FixConfig`` (the config file), ``FixBroker`` (the ``Broker``), and below them
the session state machine, its store, the mapping and the transport.
"""

from gateway.brokers.fix.adapter import FixBroker
from gateway.brokers.fix.config import FixConfig, FixTls, SessionSchedule

__all__ = ["FixBroker", "FixConfig", "FixTls", "SessionSchedule"]
