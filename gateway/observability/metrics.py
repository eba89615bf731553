"""Prometheus metrics: what is measured, and the HTTP endpoint that serves it.

Owns the gateway's metric names. Nothing here sits on the actor's hot path:

- RPC counts and latencies come from the server interceptor (``observe_rpc``);
- journal commit latency, order events and fills come from ``MeteredJournal``,
  a wrapper around the journal the actor writes to;
- broker call latency, errors and retries come from ``MeteredBroker``;
- open orders by status, orders in doubt, subscribers, their buffer depth,
  the actor's inbox depth and sequence are read from the actor when
  Prometheus scrapes (``_ActorCollector``), beside the capacities they are
  measured against: the actor's table is the one copy;
- ``process_*`` (start time, CPU, memory, file descriptors) come from
  prometheus_client's process collector, so a restart shows.

Series that alerts compare or count from zero exist from the start (a counter
that appears only at its first increment hides that increment from
``increase()``). deploy/prometheus/alerts.yaml and deploy/grafana use these
names; tests/e2e/test_observability_files.py checks that each one is exported.

Each gateway has its own registry, so tests can run several in one process.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, get_args
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gateway.domain import TERMINAL_STATUSES, OrderEvent, OrderFilled, OrderStatus, OrderUpdate
from gateway.journal import JournalRecord, StoredEvent
from gateway.observability import tracing

if TYPE_CHECKING:
    from gateway.brokers import Broker, BrokerOrderState, ExecutionReport, SubmitAck
    from gateway.domain import OrderSpec
    from gateway.engine import OrderActor
    from gateway.journal import Journal

log = logging.getLogger(__name__)

_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_STREAM = (0.1, 1, 10, 60, 300, 1800, 3600, 4 * 3600, 24 * 3600)
_RECENT_FAILURES = 10_000  # bounded memory for retry detection
# The stream whose RESOURCE_EXHAUSTED ending means "a subscriber was cut off as
# too slow" (API.md fixes these names).
_SUBSCRIBE = ("execution.v1.ExecutionService", "SubscribeUpdates", "server_stream")
_SPAN_ORDER_IDS = 32  # order ids named on one journal.commit span


class GatewayMetrics:
    """Every metric of one gateway, in its own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        rpc = ["grpc_service", "grpc_method", "grpc_type"]
        self.rpc_started = Counter(
            "grpc_server_started_total", "RPCs started on the server.", rpc, registry=r
        )
        self.rpc_handled = Counter(
            "grpc_server_handled_total",
            "RPCs completed on the server, by status code.",
            [*rpc, "grpc_code"],
            registry=r,
        )
        self.rpc_seconds = Histogram(
            "grpc_server_handling_seconds",
            "Time to complete unary RPCs, by status code.",
            [*rpc, "grpc_code"],
            buckets=_LATENCY,
            registry=r,
        )
        self.stream_seconds = Histogram(
            "grpc_server_stream_seconds",
            "Lifetime of server-streaming RPCs (SubscribeUpdates, health Watch).",
            [*rpc, "grpc_code"],
            buckets=_STREAM,
            registry=r,
        )
        self.journal_commit_seconds = Histogram(
            "gateway_journal_commit_seconds",
            "Time of one durable journal commit (one actor batch).",
            buckets=_LATENCY,
            registry=r,
        )
        self.journal_records = Counter(
            "gateway_journal_records_total", "Order events committed to the journal.", registry=r
        )
        self.order_events = Counter(
            "gateway_order_events_total", "Order events, by event type.", ["event"], registry=r
        )
        self.orders_finished = Counter(
            "gateway_orders_finished_total",
            "Orders that reached a terminal status, by status.",
            ["status"],
            registry=r,
        )
        self.fills = Counter("gateway_fills_total", "Fills applied (one per exec_id).", registry=r)
        self.broker_calls = Counter(
            "gateway_broker_calls_total",
            "Broker calls (each attempt), by operation and outcome.",
            ["operation", "outcome"],
            registry=r,
        )
        self.broker_seconds = Histogram(
            "gateway_broker_call_seconds",
            "Broker call latency, by operation.",
            ["operation"],
            buckets=_LATENCY,
            registry=r,
        )
        self.broker_retries = Counter(
            "gateway_broker_retries_total",
            "Broker calls repeated for the same order after a failed attempt.",
            ["operation"],
            registry=r,
        )
        self.broker_up = Gauge(
            "gateway_broker_up", "1 while the broker counts as healthy.", registry=r
        )
        self.serving = Gauge(
            "gateway_serving",
            "1 while the gateway takes new calls (0 starting/draining).",
            registry=r,
        )
        self.inbox_capacity = Gauge(
            "gateway_actor_inbox_capacity",
            "Messages the order actor's inbox holds (--inbox-capacity).",
            registry=r,
        )
        self.subscriber_buffer_capacity = Gauge(
            "gateway_subscriber_buffer_capacity",
            "Updates one subscriber may have waiting before it is cut off (--subscriber-buffer).",
            registry=r,
        )
        self.lease_epoch = Gauge(
            "gateway_lease_epoch",
            "The shard lease's epoch this gateway leads with (0: standby, or no lease).",
            registry=r,
        )
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        # process_start_time_seconds and friends, read from /proc at scrape time.
        ProcessCollector(registry=r)
        # At zero from the start: the alerts count these with increase().
        for event in get_args(OrderEvent):
            self.child(self.order_events, event.__name__)
        self.child(self.rpc_handled, *_SUBSCRIBE, "RESOURCE_EXHAUSTED")

    def watch_actor(self, actor: OrderActor) -> None:
        """Read the actor's gauges at scrape time; its config gives their capacities."""
        config = actor.config
        self.inbox_capacity.set(config.inbox_capacity)
        self.subscriber_buffer_capacity.set(config.subscriber_buffer)
        self.registry.register(_ActorCollector(actor))

    def child(self, metric: Any, *labels: str) -> Any:
        """Return ``metric.labels(*labels)``, remembered: it is asked for on every call.

        prometheus_client looks children up under a lock each time; label
        values here come from small fixed sets (methods, codes, event types).
        """
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def _rpc_labels(self, method: str, kind: str) -> tuple[str, str, str]:
        service, _, name = method.lstrip("/").rpartition("/")
        return (service, name, kind)

    def observe_rpc(
        self, method: str, kind: str, code: str, seconds: float, *, streaming: bool
    ) -> None:
        labels = self._rpc_labels(method, kind)
        self.child(self.rpc_handled, *labels, code).inc()
        histogram = self.stream_seconds if streaming else self.rpc_seconds
        self.child(histogram, *labels, code).observe(seconds)

    def rpc_start(self, method: str, kind: str) -> None:
        self.child(self.rpc_started, *self._rpc_labels(method, kind)).inc()

    def record_events(self, records: Sequence[JournalRecord]) -> None:
        """Account for committed journal records (on the event loop, after each commit)."""
        for record in records:
            event = record.event
            update = record.update
            if not isinstance(update, OrderUpdate):
                self.child(self.order_events, type(event).__name__).inc()
                continue
            order = update.order
            # The update that made an order terminal. A late fill after a cancel
            # keeps it CANCELED (not counted again) unless it completes the
            # order: then the venue did fill it all, and it counts as FILLED too.
            if order.is_terminal and (
                not isinstance(event, OrderFilled) or order.status is OrderStatus.FILLED
            ):
                self.child(self.orders_finished, order.status.name).inc()
            self.child(self.order_events, type(event).__name__).inc()
            if isinstance(event, OrderFilled):
                self.fills.inc()
        self.journal_records.inc(len(records))


class _ActorCollector(Collector):
    """Gauges read from the actor's public properties when scraped."""

    def __init__(self, actor: OrderActor) -> None:
        self._actor = actor

    def collect(self) -> Iterator[GaugeMetricFamily]:
        actor = self._actor
        yield GaugeMetricFamily(
            "gateway_orders", "Orders in the order table.", value=actor.order_count
        )
        yield GaugeMetricFamily(
            "gateway_orders_evicted",
            "Terminal orders past --retention: out of memory, read from the journal on demand.",
            value=actor.evicted_count,
        )
        yield GaugeMetricFamily(
            "gateway_orders_read_back",
            "Evicted orders read back from the journal since start.",
            value=actor.orders_read_back,
        )
        family = GaugeMetricFamily(
            "gateway_open_orders", "Orders not yet terminal, by status.", labels=["status"]
        )
        counts = actor.open_orders_by_status
        for status in OrderStatus:
            if status not in TERMINAL_STATUSES:
                family.add_metric([status.name], counts.get(status, 0))
        yield family
        yield GaugeMetricFamily(
            "gateway_last_sequence", "Newest durable update sequence.", value=actor.last_sequence
        )
        in_doubt, oldest = actor.orders_in_doubt()
        yield GaugeMetricFamily(
            "gateway_orders_in_doubt",
            "Orders waiting on the broker's answer (PENDING_NEW or PENDING_CANCEL).",
            value=in_doubt,
        )
        yield GaugeMetricFamily(
            "gateway_oldest_in_doubt_seconds",
            "Seconds since the oldest order in doubt last changed (0 if none).",
            value=oldest,
        )
        yield GaugeMetricFamily(
            "gateway_subscribers", "Open SubscribeUpdates streams.", value=actor.subscriber_count
        )
        depths = actor.subscriber_buffer_depths()
        yield GaugeMetricFamily(
            "gateway_subscriber_buffer_depth_max",
            "Updates waiting in the fullest subscriber buffer.",
            value=max(depths, default=0),
        )
        yield GaugeMetricFamily(
            "gateway_subscriber_buffer_depth_total",
            "Updates waiting in all subscriber buffers.",
            value=sum(depths),
        )
        yield GaugeMetricFamily(
            "gateway_actor_inbox_depth",
            "Messages waiting in the order actor's inbox.",
            value=actor.inbox_depth,
        )
        yield GaugeMetricFamily(
            "gateway_illegal_transitions",
            "Broker reports refused by the state machine since start.",
            value=actor.illegal_transitions,
        )
        yield GaugeMetricFamily(
            "gateway_unknown_reports",
            "Broker reports for orders the gateway does not know, since start.",
            value=actor.unknown_reports,
        )


class MeteredJournal:
    """A journal that times commits and counts what they hold; delegates the rest."""

    def __init__(self, inner: Journal, metrics: GatewayMetrics) -> None:
        self._inner = inner
        self._metrics = metrics

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def replay(self, after_sequence: int = 0) -> Iterable[StoredEvent | JournalRecord]:
        # Replayed records were counted by the process that committed them;
        # what is open now is the actor's to say (gateway_open_orders).
        return self._inner.replay(after_sequence)

    async def append(self, records: Sequence[JournalRecord]) -> None:
        started = time.perf_counter()
        with tracing.span("journal.commit", lambda: _commit_attributes(records)):
            await self._inner.append(records)
        self._metrics.journal_commit_seconds.observe(time.perf_counter() - started)
        self._metrics.record_events(records)

    async def read(self, after_sequence: int, up_to: int, limit: int) -> list[JournalRecord]:
        return await self._inner.read(after_sequence, up_to, limit)

    @property
    def last_sequence(self) -> int:
        return self._inner.last_sequence

    async def close(self) -> None:
        await self._inner.close()


def _commit_attributes(records: Sequence[JournalRecord]) -> dict[str, Any]:
    # A batch can hold thousands of records: name a bounded number of orders.
    order_ids = list(dict.fromkeys(r.event.order_id for r in records))
    return {
        "gateway.records": len(records),
        "gateway.order_ids": order_ids[:_SPAN_ORDER_IDS],
        "gateway.last_sequence": records[-1].sequence if records else 0,
    }


def _broker_attributes(key: tuple[str, str]) -> dict[str, Any]:
    account, client_order_id = key
    return {"gateway.account": account, "gateway.client_order_id": client_order_id}


# Optional broker calls, by method name: the operation label is the name.
_OPTIONAL_CALLS = frozenset({"replace", "cancel_all_orders"})


class MeteredBroker:
    """A broker that times every call and counts failures and retries; delegates the rest."""

    def __init__(self, inner: Broker, metrics: GatewayMetrics) -> None:
        self._inner = inner
        self._metrics = metrics
        self.name = inner.name
        # Keys whose last call failed: a new call for one of them is a retry.
        self._failed: OrderedDict[tuple[str, str, str], None] = OrderedDict()

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._inner, name)
        if name in _OPTIONAL_CALLS:
            # An optional port (Replaces, CancelsAll): timed like the required
            # calls, and present here exactly when the broker has it.
            return functools.partial(self._optional, name, found)
        return found

    async def _optional(self, operation: str, call: Callable[..., Any], *args: Any) -> Any:
        # Their first arguments are the account and (replace) the client_order_id.
        key = (str(args[0]), str(args[1]) if len(args) > 1 else "")
        return await self._timed(operation, key, lambda: call(*args))

    async def _timed(self, operation: str, key: tuple[str, str], call: Callable[[], Any]) -> Any:
        full_key = (operation, *key)
        if full_key in self._failed:
            self._metrics.child(self._metrics.broker_retries, operation).inc()
        started = time.perf_counter()
        outcome = "ok"
        try:
            with tracing.span(f"broker.{operation}", lambda: _broker_attributes(key)):
                result = await call()
        except Exception as exc:
            outcome = type(exc).__name__
            self._failed[full_key] = None
            while len(self._failed) > _RECENT_FAILURES:
                self._failed.popitem(last=False)
            raise
        else:
            self._failed.pop(full_key, None)
            return result
        finally:
            metrics = self._metrics
            metrics.child(metrics.broker_seconds, operation).observe(time.perf_counter() - started)
            metrics.child(metrics.broker_calls, operation, outcome).inc()

    async def connect(self) -> None:
        await self._timed("connect", ("", ""), self._inner.connect)

    async def close(self) -> None:
        await self._inner.close()

    async def submit(self, spec: OrderSpec) -> SubmitAck:
        key = (spec.account, spec.client_order_id)
        ack: SubmitAck = await self._timed("submit", key, lambda: self._inner.submit(spec))
        return ack

    async def cancel(self, account: str, client_order_id: str, broker_order_id: str) -> None:
        await self._timed(
            "cancel",
            (account, client_order_id),
            lambda: self._inner.cancel(account, client_order_id, broker_order_id),
        )

    def reports(self) -> AsyncIterator[Sequence[ExecutionReport]]:
        return self._inner.reports()

    async def order_status(self, account: str, client_order_id: str) -> BrokerOrderState | None:
        state: BrokerOrderState | None = await self._timed(
            "order_status",
            (account, client_order_id),
            lambda: self._inner.order_status(account, client_order_id),
        )
        return state

    async def open_orders(self, account: str | None = None) -> list[BrokerOrderState]:
        states: list[BrokerOrderState] = await self._timed(
            "open_orders", (account or "", ""), lambda: self._inner.open_orders(account)
        )
        return states


def serve_metrics(metrics: GatewayMetrics, listen: str) -> tuple[WSGIServer, int]:
    """Serve ``/metrics`` on ``listen`` (HOST:PORT; port 0 picks one) in a thread."""
    host, _, port = listen.rpartition(":")
    server, _thread = start_http_server(int(port), addr=host.strip("[]"), registry=metrics.registry)
    return server, int(server.server_port)
