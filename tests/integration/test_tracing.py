"""Traces (--otlp-endpoint): a client's trace continues through the gateway.

Recorded with the OpenTelemetry SDK's in-memory exporter; the packages are
the ``otel`` extra, which ``make setup`` installs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway._proto.execution.v1 import execution_pb2_grpc as pb_grpc
from gateway.app import Gateway
from gateway.brokers.simulated import SimConfig, SimulatedBroker
from gateway.journal import MemoryJournal
from gateway.observability import tracing
from tests.conftest import gateway_test_config
from tests.support import eventually, resting_buy

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"


@pytest.fixture
async def traced(tmp_path: Path) -> AsyncIterator[tuple[Gateway, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    gateway = Gateway(
        gateway_test_config(tmp_path),
        broker=SimulatedBroker(SimConfig(seed=3, tick_interval=0.01)),
        journal=MemoryJournal(),
        tracer_provider=provider,
    )
    await gateway.start()
    try:
        yield gateway, exporter
    finally:
        await gateway.stop()
    assert not tracing.enabled()


def named(spans: tuple[ReadableSpan, ...], prefix: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name.startswith(prefix)]


async def test_a_clients_trace_continues_into_the_gateway_and_its_broker_and_journal(
    traced: tuple[Gateway, InMemorySpanExporter],
) -> None:
    gateway, exporter = traced
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        stub = pb_grpc.ExecutionServiceStub(channel)
        placed = await stub.PlaceOrder(
            resting_buy("traced-1"),
            metadata=(("traceparent", TRACEPARENT), ("authorization", "Bearer not-a-secret")),
        )
    order_id = placed.order.order_id
    spans = await eventually(
        exporter.get_finished_spans,
        lambda found: bool(named(found, "broker.submit")) and bool(named(found, "journal.commit")),
        what="broker and journal spans",
    )
    (server,) = [s for s in spans if s.name.endswith("/PlaceOrder")]
    assert server.context is not None
    assert server.parent is not None
    assert format(server.context.trace_id, "032x") == TRACE_ID  # the client's trace
    assert format(server.parent.span_id, "016x") == PARENT_SPAN_ID

    commits = named(spans, "journal.commit")
    committed = [str((s.attributes or {}).get("gateway.order_ids")) for s in commits]
    assert any(order_id in ids for ids in committed)
    (submit,) = named(spans, "broker.submit")
    assert (submit.attributes or {})["gateway.client_order_id"] == "traced-1"
    assert server.context is not None
    server_span_id = server.context.span_id

    # Validation runs inside the call's server span.
    (validate,) = named(spans, "validate.PlaceOrder")
    assert validate.parent is not None
    assert validate.parent.span_id == server_span_id
    assert (validate.attributes or {})["gateway.client_order_id"] == "traced-1"

    # The batch that took the order links to the caller (a batch serves many),
    # and its journal commit is the batch's child.
    batches = [
        b for b in named(spans, "actor.batch")
        if any(link.context.span_id == server_span_id for link in b.links)
    ]  # fmt: skip
    assert len(batches) == 1
    (batch,) = batches
    assert batch.context is not None
    assert "traced-1" in list((batch.attributes or {})["gateway.client_order_ids"])  # type: ignore[arg-type]
    assert any(c.parent is not None and c.parent.span_id == batch.context.span_id for c in commits)

    # The order's broker call belongs to the client's trace, under its server span.
    assert submit.context is not None
    assert submit.parent is not None
    assert format(submit.context.trace_id, "032x") == TRACE_ID
    assert submit.parent.span_id == server_span_id
    # Identifiers only: nothing a caller sent as a credential is recorded.
    for span in spans:
        for value in (span.attributes or {}).values():
            assert "not-a-secret" not in str(value)


def test_off_no_span_is_built() -> None:
    assert not tracing.enabled()

    def never() -> dict[str, object]:
        raise AssertionError("attributes built while tracing is off")

    first = tracing.span("journal.commit", never)
    assert first is tracing.span("broker.submit", never)  # one shared no-op
    with first:
        pass


def test_off_a_traced_function_is_only_called_and_nothing_is_carried() -> None:
    assert not tracing.enabled()

    def never(_: int) -> dict[str, object]:
        raise AssertionError("attributes built while tracing is off")

    double = tracing.traced("validate.test", lambda x: 2 * x, never)
    assert double(21) == 42
    assert tracing.caller() is None
    ran: list[bool] = []
    tracing.within(object(), lambda: ran.append(True))  # no parent to attach when off
    assert ran == [True]
