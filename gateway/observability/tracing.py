"""OpenTelemetry traces, opt-in (``--otlp-endpoint``): spans when on, nothing when off.

Owns the tracer the gateway uses. ``enable`` installs a tracer provider (the
OTLP exporter, or any provider a test hands in) and returns the gRPC server
interceptor of ``opentelemetry-instrumentation-grpc``, which continues a
client's trace (W3C ``traceparent``) in the server span of each call.

``span`` (and ``traced`` around a function) is what the rest of the code
calls. Off (the default), it returns one shared no-op context manager: no
span object, no attribute dict, no OpenTelemetry import (the packages are the
optional ``otel`` extra). Span attributes are identifiers only (order ids,
client order ids, accounts, counts), never a token, key or request body.

A client's trace reaches work done later, elsewhere: ``caller()`` takes the
current span's context (the RPC's server span) to carry on a command, the
actor's batch span *links* to every caller it serves (one batch, many
traces), and ``within`` makes the broker call for one caller's order a child
of that caller's span (one order, one trace).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

A = TypeVar("A")
R = TypeVar("R")

_tracer: Any = None
_provider: Any = None
_otel: Any = None  # the opentelemetry.trace module, once enabled
_NO_SPAN = contextlib.nullcontext()
INSTRUMENTATION_NAME = "gateway"


def enabled() -> bool:
    """Tell whether spans are recorded."""
    return _tracer is not None


def span(
    name: str,
    attributes: Callable[[], dict[str, Any]] | None = None,
    links: Callable[[], Iterable[Any]] | None = None,
) -> Any:
    """Return a context manager around a span named ``name`` (a no-op when off).

    ``attributes`` and ``links`` (span contexts from ``caller()``) are called
    only when tracing is on, so building them costs nothing otherwise.
    """
    tracer = _tracer
    if tracer is None:
        return _NO_SPAN
    return tracer.start_as_current_span(
        name,
        attributes=attributes() if attributes else None,
        links=[_otel.Link(context) for context in links()] if links else None,
    )


def traced(
    name: str, func: Callable[[A], R], attributes: Callable[[A], dict[str, Any]]
) -> Callable[[A], R]:
    """Return ``func`` wrapped in a span named ``name``, attributes taken from its argument.

    Off, the wrapper only calls ``func``: no span, no attribute dict, no closure.
    """

    def call(argument: A) -> R:
        tracer = _tracer
        if tracer is None:
            return func(argument)
        with tracer.start_as_current_span(name, attributes=attributes(argument)):
            return func(argument)

    return call


def caller() -> Any:
    """The current span's context, to carry on a command; None when off or outside a span."""
    if _tracer is None:
        return None
    context = _otel.get_current_span().get_span_context()
    return context if context.is_valid else None


def within(parent: Any, call: Callable[[], None]) -> None:
    """Run ``call`` with ``parent`` (from ``caller()``) as the current span.

    Spans it opens, and tasks it starts (they copy the context), are children
    of ``parent``. When tracing went off meanwhile, just run ``call``.
    """
    otel = _otel
    if otel is None or _tracer is None:
        call()
        return
    from opentelemetry import context

    token = context.attach(otel.set_span_in_context(otel.NonRecordingSpan(parent)))
    try:
        call()
    finally:
        context.detach(token)


def enable(endpoint: str | None = None, *, provider: Any = None) -> Any:
    """Start tracing; return the grpc.aio server interceptor that carries client traces.

    ``provider`` (an SDK ``TracerProvider``, e.g. with an in-memory exporter
    in tests) is used as given; otherwise one exporting over OTLP/gRPC to
    ``endpoint`` is made, with the service name from ``OTEL_SERVICE_NAME``
    (default "execution-gateway"). Raise ImportError without the ``otel`` extra.
    """
    global _tracer, _provider, _otel
    from opentelemetry import trace
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

    if provider is None:
        provider = _otlp_provider(endpoint)
    _otel = trace
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
