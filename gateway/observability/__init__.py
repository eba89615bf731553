"""What the gateway tells operators: Prometheus metrics and structured logs (``logs``)."""

from gateway.observability.metrics import (
    GatewayMetrics,
    MeteredBroker,
    MeteredJournal,
    serve_metrics,
)

__all__ = ["GatewayMetrics", "MeteredBroker", "MeteredJournal", "serve_metrics"]
