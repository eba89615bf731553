"""What the gateway tells operators: Prometheus metrics (logs live in ``gateway.logs``)."""

from gateway.observability.metrics import (
    GatewayMetrics,
    MeteredBroker,
    MeteredJournal,
    serve_metrics,
)

__all__ = ["GatewayMetrics", "MeteredBroker", "MeteredJournal", "serve_metrics"]
