"""Two shards for real: two gateway processes (SQLite journals) behind nginx.

nginx runs deploy/shards/nginx.conf, pointed at the two gateways, and routes
each call by its x-gateway-account metadata. Each account's orders must land
on its own shard; a call sent straight to the other shard is refused
WRONG_SHARD; the Python SDK reaches the right shard from the shard map, or
by following the refusal once.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest
from gateway_client import AsyncClient, Client, OrderType, Side, TimeInForce
from gateway_client.errors import WrongShard

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway._proto.execution.v1 import execution_pb2_grpc as pb_grpc
from gateway.shards import ACCOUNT_METADATA
from tests.e2e.test_nginx_proxy import Nginx, free_port, nginx_binary
from tests.processes import GATEWAY_READY, REPO_ROOT, Service, clean_env, start
from tests.support import error_metadata, error_reason, eventually, resting_buy

if TYPE_CHECKING:
    from gateway._proto.execution.v1.execution_pb2_grpc import (
        ExecutionServiceAsyncStub as Stub,
    )

pytestmark = pytest.mark.e2e

SAMPLE = REPO_ROOT / "deploy" / "shards" / "nginx.conf"
SAMPLE_ADDRESSES = {
    "a": "gateway-a.trading.svc.cluster.local:50051",
    "b": "gateway-b.trading.svc.cluster.local:50051",
}
# The accounts of deploy/shards/shards.toml, whose routes the nginx sample holds.
ACCOUNTS = {"acct-1": "a", "acct-2": "a", "acct-3": "b"}
WRAPPER = """
daemon off;
master_process off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {routes};
}}
"""


@dataclass
class Shards:
    addresses: dict[str, str]
    map_file: Path
    nginx: Nginx


def shard_map(addresses: dict[str, str]) -> str:
    return (
        'default_shard = "b"\n'
        f'[shards.a]\naddress = "{addresses["a"]}"\naccounts = ["acct-1", "acct-2"]\n'
        f'[shards.b]\naddress = "{addresses["b"]}"\naccounts = ["acct-3"]\n'
    )


def start_nginx_with_sample(directory: Path, addresses: dict[str, str]) -> Nginx:
    """Run the deploy sample, its upstreams and listen port swapped for the test's."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    routes = SAMPLE.read_text()
    for shard, sample_address in SAMPLE_ADDRESSES.items():
        assert sample_address in routes
        routes = routes.replace(sample_address, addresses[shard])
    routes, swapped = re.subn(r"listen 8080 http2;", f"listen 127.0.0.1:{port} http2;", routes)
    assert swapped == 1
    (directory / "routes.conf").write_text(routes)
    conf = directory / "nginx.conf"
    conf.write_text(WRAPPER.format(tmp=directory, routes=directory / "routes.conf"))
    process = subprocess.Popen(
        [nginx_binary(), "-p", str(directory), "-c", str(conf), "-e", str(directory / "error.log")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return Nginx(f"127.0.0.1:{port}", process, directory)


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shards]:
    tmp = tmp_path_factory.mktemp("shards")
    addresses = {shard: f"127.0.0.1:{free_port()}" for shard in ("a", "b")}
    map_file = tmp / "shards.toml"
    map_file.write_text(shard_map(addresses))
    gateways: list[Service] = []
    nginx: Nginx | None = None
    try:
        for shard, address in addresses.items():
            gateways.append(
                start(
                    [
                        "gateway",
                        f"--listen={address}",
                        f"--data-dir={tmp / shard}",
                        f"--shard={shard}",
                        f"--shard-map={map_file}",
                        "--sim-seed=7",
                    ],
                    GATEWAY_READY,
                    clean_env(PYTHONUNBUFFERED="1"),
                )
            )
        nginx = start_nginx_with_sample(tmp / "nginx", addresses)
        yield Shards(addresses, map_file, nginx)
    finally:
        if nginx is not None:
            nginx.process.terminate()
            nginx.process.wait(timeout=10)
        for gateway in gateways:
            assert gateway.stop() == 0, gateway.log()


@pytest.fixture
async def proxied(shards: Shards) -> AsyncIterator[Stub]:
    async with grpc.aio.insecure_channel(shards.nginx.address) as channel:
        stub: Stub = pb_grpc.ExecutionServiceStub(channel)

        async def answering() -> bool:
            assert shards.nginx.process.poll() is None, shards.nginx.error_log()
            try:
                await stub.ListOrders(
                    pb.ListOrdersRequest(account="acct-1"),
                    metadata=((ACCOUNT_METADATA, "acct-1"),),
                    timeout=2,
                )
            except grpc.aio.AioRpcError:
                return False
            return True

        await eventually(answering, lambda ok: ok, what="nginx proxying to shard a", within=15)
        yield stub


async def orders_on(address: str, account: str) -> list[str]:
    """The client_order_ids of ``account``'s orders on the gateway at ``address``."""
    async with grpc.aio.insecure_channel(address) as channel:
        listed = await pb_grpc.ExecutionServiceStub(channel).ListOrders(
            pb.ListOrdersRequest(account=account), timeout=10
        )
    return [order.client_order_id for order in listed.orders]


async def test_nginx_routes_each_accounts_orders_to_its_shard(
    shards: Shards, proxied: Stub
) -> None:
    for account, shard in ACCOUNTS.items():
        placed = await proxied.PlaceOrder(
            resting_buy(f"via-nginx-{account}", account=account),
            metadata=((ACCOUNT_METADATA, account),),
            timeout=10,
        )
        assert placed.order.account == account
        assert f"via-nginx-{account}" in await orders_on(shards.addresses[shard], account)
    # An unlisted account goes to the default shard (b), in the map and in nginx.
    await proxied.PlaceOrder(
        resting_buy("via-nginx-unlisted", account="acct-new"),
        metadata=((ACCOUNT_METADATA, "acct-new"),),
        timeout=10,
    )
    assert await orders_on(shards.addresses["b"], "acct-new") == ["via-nginx-unlisted"]


async def test_a_call_sent_straight_to_the_wrong_shard_is_refused(shards: Shards) -> None:
    async with grpc.aio.insecure_channel(shards.addresses["a"]) as channel:
        stub: Stub = pb_grpc.ExecutionServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.PlaceOrder(resting_buy("lost", account="acct-3"), timeout=10)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(refused.value) == "WRONG_SHARD"
    assert error_metadata(refused.value) == {
        "account": "acct-3",
        "shard": "b",
        "address": shards.addresses["b"],
        "this_shard": "a",
    }
    assert "lost" not in await orders_on(shards.addresses["b"], "acct-3")


async def test_the_sdk_sends_the_account_so_nginx_routes_it(shards: Shards) -> None:
    async with AsyncClient(shards.nginx.address) as client:
        order = await client.place_order(
            "acct-3",
            "AAPL",
            Side.BUY,
            "1",
            order_type=OrderType.LIMIT,
            limit_price="0.01",
            time_in_force=TimeInForce.GTC,
        )
        assert order.client_order_id in await orders_on(shards.addresses["b"], "acct-3")
        async with client.subscribe(["acct-3"], after_sequence=0) as updates:
            async with asyncio.timeout(15):
                async for update in updates:
                    if update.order.client_order_id == order.client_order_id:
                        break


async def test_the_sdk_routes_from_the_shard_map(shards: Shards) -> None:
    # Pointed at shard a, but holding the map: acct-3's call goes to shard b directly.
    async with AsyncClient(shards.addresses["a"], shard_map=shards.map_file) as client:
        order = await client.place_order("acct-3", "AAPL", Side.BUY, "1")
        found = await client.get_order("acct-3", client_order_id=order.client_order_id)
        assert found.order_id == order.order_id
    assert order.client_order_id in await orders_on(shards.addresses["b"], "acct-3")


async def test_the_sdk_follows_a_wrong_shard_refusal_once(shards: Shards) -> None:
    async with AsyncClient(shards.addresses["a"], follow_shard_redirects=True) as client:
        order = await client.place_order("acct-3", "AAPL", Side.BUY, "1", client_order_id="hop-1")
        assert order.account == "acct-3"
        orders = await client.list_orders("acct-3")
        assert [o.client_order_id for o in orders].count("hop-1") == 1
        # A stream refused by shard a reopens on shard b, from the start.
        async with client.subscribe(["acct-3"], after_sequence=0) as updates:
            async with asyncio.timeout(15):
                async for update in updates:
                    if update.order.client_order_id == "hop-1":
                        break
    # Without following, the refusal reaches the caller, typed, with the owner's address.
    async with AsyncClient(shards.addresses["a"]) as plain:
        with pytest.raises(WrongShard) as refused:
            await plain.place_order("acct-3", "AAPL", Side.BUY, "1")
    assert refused.value.reason == "WRONG_SHARD"
    assert refused.value.metadata["address"] == shards.addresses["b"]


def test_the_blocking_sdk_routes_and_follows_too(shards: Shards) -> None:
    with Client(shards.addresses["b"], shard_map=shards.map_file) as client:
        routed = client.place_order("acct-1", "AAPL", Side.BUY, "1")
        assert client.get_order("acct-1", order_id=routed.order_id).account == "acct-1"
    with Client(shards.addresses["b"], follow_shard_redirects=True) as client:
        followed = client.place_order("acct-2", "AAPL", Side.BUY, "1")
        assert [o.order_id for o in client.list_orders("acct-2")].count(followed.order_id) == 1
    with Client(shards.addresses["b"], follow_shard_redirects=True) as client:
        with client.subscribe(["acct-2"], after_sequence=0) as updates:
            # Bounded: the replay from sequence 0 holds the order's updates.
            seen = next(
                u for u in itertools.islice(updates, 1000) if u.order.order_id == followed.order_id
            )
        assert seen.order.account == "acct-2"
