"""What the gateway tells operators: Prometheus metrics, structured logs (``logs``)
and traces (``tracing``).

The metrics names load on first use: the engine imports ``tracing`` (a no-op
when off) without pulling in prometheus_client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.observability.metrics import (
        GatewayMetrics,
        MeteredBroker,
        MeteredJournal,
        serve_metrics,
    )

__all__ = ["GatewayMetrics", "MeteredBroker", "MeteredJournal", "serve_metrics"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("gateway.observability.metrics"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
