"""OpenTelemetry traces, opt-in (``--otlp-endpoint``): spans when on, nothing when off.

Owns the tracer the gateway uses. ``enable`` installs a tracer provider (the
OTLP exporter, or any provider a test hands in) and returns the gRPC server
interceptor of ``opentelemetry-instrumentation-grpc``, which continues a
client's trace (W3C ``traceparent``) in the server span of each call.

``span`` is what the rest of the code calls. Off (the default), it returns
one shared no-op context manager: no span object, no attribute dict, no
OpenTelemetry import (the packages are the optional ``otel`` extra). Span
attributes are identifiers only (order ids, client order ids, accounts,
counts), never a token, key or request body.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

_tracer: Any = None
_provider: Any = None
_NO_SPAN = contextlib.nullcontext()
INSTRUMENTATION_NAME = "gateway"


def enabled() -> bool:
    """Tell whether spans are recorded."""
    return _tracer is not None


def span(name: str, attributes: Callable[[], dict[str, Any]] | None = None) -> Any:
    """Return a context manager around a span named ``name`` (a no-op when off).

    ``attributes`` is called only when tracing is on, so building them costs
    nothing otherwise.
    """
    tracer = _tracer
    if tracer is None:
        return _NO_SPAN
    return tracer.start_as_current_span(name, attributes=attributes() if attributes else None)


def enable(endpoint: str | None = None, *, provider: Any = None) -> Any:
    """Start tracing; return the grpc.aio server interceptor that carries client traces.

    ``provider`` (an SDK ``TracerProvider``, e.g. with an in-memory exporter
    in tests) is used as given; otherwise one exporting over OTLP/gRPC to
    ``endpoint`` is made, with the service name from ``OTEL_SERVICE_NAME``
    (default "execution-gateway"). Raise ImportError without the ``otel`` extra.
    """
    global _tracer, _provider
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

    if provider is None:
        provider = _otlp_provider(endpoint)
    _provider = provider
    _tracer = provider.get_tracer(INSTRUMENTATION_NAME)
    # The instrumentation's function carries no annotations.
    return aio_server_interceptor(tracer_provider=provider)  # type: ignore[no-untyped-call]


def shutdown() -> None:
    """Stop recording spans and flush what the exporter still holds."""
    global _tracer, _provider
    provider, _tracer, _provider = _provider, None, None
    if provider is not None:
        provider.shutdown()


def _otlp_provider(endpoint: str | None) -> Any:
    import os

    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    name = os.environ.get("OTEL_SERVICE_NAME", "execution-gateway")
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    # Batched, in a background thread: export never runs on the event loop.
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return provider
