"""The Prometheus endpoint: scraped over HTTP while orders fill and a stream is open."""

from __future__ import annotations

import asyncio
import dataclasses
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway._proto.execution.v1 import execution_pb2_grpc as pb_grpc
from gateway.app import Gateway
from gateway.brokers.simulated import SimConfig, SimulatedBroker
from gateway.journal import MemoryJournal
from tests.conftest import gateway_test_config
from tests.ops_support import bearer, token_store
from tests.support import eventually, place_request, resting_buy

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
async def metered(tmp_path: Path) -> AsyncIterator[Gateway]:
    config = dataclasses.replace(
        gateway_test_config(tmp_path), metrics_listen="127.0.0.1:0", tokens=token_store()
    )
    gw = Gateway(
        config,
        broker=SimulatedBroker(SimConfig(seed=7, tick_interval=0.01)),
        journal=MemoryJournal(),
    )
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop(grace=0.5)


async def scrape(gw: Gateway) -> Samples:
    url = f"http://127.0.0.1:{gw.metrics_port}/metrics"

    def fetch() -> str:
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    text = await asyncio.to_thread(fetch)
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """Sum of ``name``'s samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


async def test_rpcs_orders_fills_journal_and_streams_are_measured(metered: Gateway) -> None:
    async with grpc.aio.insecure_channel(metered.address) as channel:
        stub = pb_grpc.ExecutionServiceStub(channel)
        stream = stub.SubscribeUpdates(
            pb.SubscribeUpdatesRequest(accounts=["acct-a"]), metadata=bearer("alice")
        )
        await stream.read()
        await stub.PlaceOrder(place_request("m-1", account="acct-a"), metadata=bearer("alice"))
        await stub.PlaceOrder(resting_buy("m-2", account="acct-a"), metadata=bearer("alice"))
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.PlaceOrder(place_request("m-3", account="acct-b"), metadata=bearer("alice"))
        samples = await eventually(
            lambda: scrape(metered),
            lambda s: (
                value(s, "gateway_fills_total") > 0
                and value(s, "gateway_orders_finished_total", status="FILLED") == 1
            ),
            what="the market order's fills counted",
        )
        stream.cancel()
    placed = {"grpc_method": "PlaceOrder", "grpc_service": "execution.v1.ExecutionService"}
    assert value(samples, "grpc_server_handled_total", **placed, grpc_code="OK") == 2
    assert value(samples, "grpc_server_handled_total", **placed, grpc_code="PERMISSION_DENIED") == 1
    assert value(samples, "grpc_server_handling_seconds_count", **placed) == 3
    assert value(samples, "gateway_journal_commit_seconds_count") > 0
    assert value(samples, "gateway_order_events_total", event="OrderCreated") == 2
    assert value(samples, "gateway_open_orders", status="ACCEPTED") == 1
    assert value(samples, "gateway_broker_calls_total", operation="submit", outcome="ok") == 2
    assert value(samples, "gateway_broker_call_seconds_count", operation="submit") == 2
    assert value(samples, "gateway_subscribers") == 1
    exported = {name for name, _ in samples}
    assert {"gateway_subscriber_buffer_depth_max", "gateway_actor_inbox_depth"} <= exported
    # One series per non-terminal status, from the actor's table (zeros included).
    open_series = {dict(ls)["status"] for n, ls in samples if n == "gateway_open_orders"}
    assert open_series == {
        "PENDING_NEW",
        "ACCEPTED",
        "PARTIALLY_FILLED",
        "PENDING_CANCEL",
        "PENDING_REPLACE",
    }
    assert value(samples, "gateway_broker_up") == 1
    assert value(samples, "gateway_serving") == 1
    assert value(samples, "gateway_last_sequence") == metered.actor.last_sequence


async def test_a_scrape_holds_no_token(metered: Gateway) -> None:
    async with grpc.aio.insecure_channel(metered.address) as channel:
        stub = pb_grpc.ExecutionServiceStub(channel)
        await stub.ListOrders(pb.ListOrdersRequest(account="acct-a"), metadata=bearer("alice"))
    url = f"http://127.0.0.1:{metered.metrics_port}/metrics"

    def fetch() -> str:
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    text = await asyncio.to_thread(fetch)
    assert "alice-token" not in text
    assert "grpc_server_started_total" in text
