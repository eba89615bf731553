"""Python SDK for the execution gateway.

``Client`` (blocking) and ``AsyncClient`` (asyncio) place, cancel, look up and
list orders, with ``Decimal`` numbers and safe retries, and subscribe to update
streams that reconnect and resume by themselves. Errors are ``GatewayClientError``
subclasses (``gateway_client.errors``).
"""

from gateway_client._convert import DecimalLike
from gateway_client._models import (
    Event,
    Fill,
    Heartbeat,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    SnapshotComplete,
    TimeInForce,
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
    "Heartbeat",
    "Order",
    "OrderStatus",
    "OrderType",
    "OrderUpdate",
    "ReconnectPolicy",
    "RetryPolicy",
    "Side",
    "SnapshotComplete",
    "Subscription",
    "TimeInForce",
    "TlsConfig",
    "new_client_order_id",
]
