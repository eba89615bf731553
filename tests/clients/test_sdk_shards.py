"""gateway_client.shards against in-process gateways: the header, and redirects bounded to one.

Two gateways on port 0 whose shard maps disagree (each says the other owns
acct-3) show that a client follows a WRONG_SHARD refusal once and then
reports it, instead of bouncing between them.
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from gateway_client import AsyncClient, Side
from gateway_client._proto.execution.v1 import execution_pb2 as cpb
from gateway_client._proto.execution.v1 import execution_pb2_grpc as cpb_grpc
from gateway_client.errors import FailedPrecondition, InvalidArgument, from_rpc_error
from gateway_client.shards import ACCOUNT_METADATA, ShardMap, ShardMapError, with_account

from gateway.app import Gateway
from gateway.brokers.simulated import SimConfig, SimulatedBroker
from gateway.brokers.testing import RecordingBroker
from gateway.journal import MemoryJournal
from gateway.shards import ShardMap as GatewayShardMap
from tests.conftest import gateway_test_config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def map_of(owner_of_acct_3: str, addresses: dict[str, str]) -> GatewayShardMap:
    other = "y" if owner_of_acct_3 == "x" else "x"
    return GatewayShardMap.from_mapping(
        {
            "shards": {
                owner_of_acct_3: {"address": addresses[owner_of_acct_3], "accounts": ["acct-3"]},
                other: {"address": addresses[other], "accounts": ["acct-1"]},
            }
        }
    )


@dataclasses.dataclass
class Pair:
    addresses: dict[str, str]
    brokers: dict[str, RecordingBroker]


@pytest.fixture
async def disagreeing(tmp_path: Path) -> AsyncIterator[Pair]:
    """Gateways x and y, each believing the other owns acct-3."""
    addresses = {name: f"127.0.0.1:{free_port()}" for name in ("x", "y")}
    brokers: dict[str, RecordingBroker] = {}
    gateways: list[Gateway] = []
    try:
        for name, believes in (("x", "y"), ("y", "x")):
            brokers[name] = RecordingBroker(SimulatedBroker(SimConfig(seed=7, tick_interval=0.01)))
            config = dataclasses.replace(
                gateway_test_config(tmp_path / name),
                listen=addresses[name],
                shard=name,
                shard_map=map_of(believes, addresses),
            )
            gateway = Gateway(config, broker=brokers[name], journal=MemoryJournal())
            gateways.append(gateway)
            await gateway.start()
        yield Pair(addresses, brokers)
    finally:
        for gateway in gateways:
            await gateway.stop(grace=0.5)


async def test_a_redirect_is_followed_once_then_the_refusal_is_reported(
    disagreeing: Pair,
) -> None:
    async with AsyncClient(disagreeing.addresses["x"], follow_shard_redirects=True) as client:
        with pytest.raises(FailedPrecondition) as refused:
            await client.place_order("acct-3", "AAPL", Side.BUY, "1")
    # x sent it to y, y refused it pointing back at x: reported, not followed again.
    assert refused.value.reason == "WRONG_SHARD"
    assert refused.value.metadata["this_shard"] == "y"
    assert refused.value.metadata["address"] == disagreeing.addresses["x"]
    assert disagreeing.brokers["x"].submitted == []
    assert disagreeing.brokers["y"].submitted == []
    # A stream too: reopened once on y, whose refusal is then reported.
    async with AsyncClient(disagreeing.addresses["x"], follow_shard_redirects=True) as client:
        with pytest.raises(FailedPrecondition) as stream_refused:
            await client.subscribe(["acct-3"]).open()
    assert stream_refused.value.metadata["this_shard"] == "y"


async def test_the_sdk_always_names_the_account_and_the_gateway_checks_it(
    disagreeing: Pair,
) -> None:
    async with AsyncClient(disagreeing.addresses["x"]) as client:
        placed = await client.place_order("acct-1", "AAPL", Side.BUY, "1")
    assert placed.account == "acct-1"
    # The metadata the SDK adds, sent with a body that names another account.
    async with grpc.aio.insecure_channel(disagreeing.addresses["x"]) as channel:
        stub = cpb_grpc.ExecutionServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetOrderStatus(
                cpb.GetOrderStatusRequest(account="acct-1", order_id=placed.order_id),
                metadata=with_account((), "acct-2"),
                timeout=10,
            )
    error = from_rpc_error(caught.value)
    assert isinstance(error, InvalidArgument)
    assert [v.field for v in error.field_violations] == ["account"]


def test_with_account_adds_the_routing_entry_only_for_an_account() -> None:
    token = (("authorization", "Bearer t"),)
    assert with_account(token, "acct-1") == (*token, (ACCOUNT_METADATA, "acct-1"))
    assert with_account(token, None) == token
    assert with_account(token, "") == token


def test_the_sdk_reads_the_gateways_shard_map_format(tmp_path: Path) -> None:
    path = tmp_path / "shards.toml"
    path.write_text(
        'default_shard = "b"\n[shards.a]\naddress = "h-a:1"\naccounts = ["acct-1"]\n'
        '[shards.b]\naddress = "h-b:1"\naccounts = []\n'
    )
    shard_map = ShardMap.load(path)
    assert shard_map.owner("acct-1").address == "h-a:1"  # type: ignore[union-attr]
    assert shard_map.owner("anyone").address == "h-b:1"  # type: ignore[union-attr]
    path.write_text(
        '[shards.a]\naddress = "h:1"\naccounts = ["x"]\n[shards.b]\naddress = "h:2"\n'
        'accounts = ["x"]\n'
    )
    with pytest.raises(ShardMapError, match="listed by two shards"):
        ShardMap.load(path)
    with pytest.raises(ShardMapError, match=r"missing\.toml"):
        ShardMap.load(tmp_path / "missing.toml")
