"""Broker adapters behind one protocol; the simulated broker is the default."""

from gateway.brokers.base import (
    Broker,
    BrokerOrderState,
    ExecutionReport,
    ReportKind,
    SubmitAck,
)
from gateway.brokers.errors import (
    BrokerError,
    BrokerRejected,
    BrokerTimeout,
    BrokerTransientError,
    BrokerUnavailable,
)

__all__ = [
    "Broker",
    "BrokerError",
    "BrokerOrderState",
    "BrokerRejected",
    "BrokerTimeout",
    "BrokerTransientError",
    "BrokerUnavailable",
    "ExecutionReport",
    "ReportKind",
    "SubmitAck",
]
