"""Python SDK for the execution gateway.

``Client`` (blocking) and ``AsyncClient`` (asyncio) place, amend, cancel, look
up and list orders and read positions, with ``Decimal`` numbers and safe
retries, and subscribe to update streams that reconnect and resume by
themselves. An operator's token also halts and resumes trading and reads the
risk limits. Errors are ``GatewayClientError``
subclasses (``gateway_client.errors``).
"""

from gateway_client._convert import DecimalLike
from gateway_client._models import (
    Event,
    Fill,
    HaltResult,
    Heartbeat,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Position,
    PositionUpdate,
    RejectCode,
    RiskLimits,
    RiskLimitsReport,
    Side,
    SnapshotComplete,
    TimeInForce,
    TradingHalt,
    TradingMode,
    TradingState,
    TradingStateUpdate,
    UpdateKind,
)
from gateway_client._options import Backoff, ReconnectPolicy, RetryPolicy, TlsConfig
from gateway_client.aio import AsyncClient, AsyncSubscription, new_client_order_id
from gateway_client.errors import GatewayClientError
from gateway_client.sync import Client, Subscription

__all__ = [
    "AsyncClient",
    "AsyncSubscription",
    "Backoff",
    "Client",
    "DecimalLike",
    "Event",
    "Fill",
    "GatewayClientError",
    "HaltResult",
    "Heartbeat",
    "Order",
    "OrderStatus",
    "OrderType",
    "OrderUpdate",
    "Position",
    "PositionUpdate",
    "ReconnectPolicy",
    "RejectCode",
    "RetryPolicy",
    "RiskLimits",
    "RiskLimitsReport",
    "Side",
    "SnapshotComplete",
    "Subscription",
    "TimeInForce",
    "TlsConfig",
    "TradingHalt",
    "TradingMode",
    "TradingState",
    "TradingStateUpdate",
    "UpdateKind",
    "new_client_order_id",
]
