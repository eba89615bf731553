"""Broker adapters behind one protocol; the simulated broker is the default."""

from gateway.brokers.base import (
    Broker,
    BrokerOrderState,
    BulkOrderStates,
    CancelsAll,
    ExecutionReport,
    ReplaceAck,
    Replaces,
    ReportKind,
    SubmitAck,
)
from gateway.brokers.errors import (
    BrokerError,
    BrokerRateLimited,
    BrokerRejected,
    BrokerTimeout,
    BrokerTransientError,
    BrokerUnavailable,
)

__all__ = [
    "Broker",
    "BrokerError",
    "BrokerOrderState",
    "BrokerRateLimited",
    "BrokerRejected",
    "BrokerTimeout",
    "BrokerTransientError",
    "BrokerUnavailable",
    "BulkOrderStates",
    "CancelsAll",
    "ExecutionReport",
    "ReplaceAck",
    "Replaces",
    "ReportKind",
    "SubmitAck",
]
