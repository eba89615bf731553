"""A gateway serving one shard: other shards' accounts are refused before the actor.

A real server on port 0 with a shard map; the recording broker shows that a
refused call reached nothing behind the interceptor.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway._proto.execution.v1 import execution_pb2_grpc as pb_grpc
from gateway.app import Gateway, StartupError
from gateway.auth import TokenStore, hash_token, parse_table
from gateway.brokers.testing import RecordingBroker
from gateway.journal import MemoryJournal
from gateway.shards import ACCOUNT_METADATA, ShardMap
from tests.conftest import gateway_test_config
from tests.support import (
    error_metadata,
    error_reason,
    eventually,
    resting_buy,
    violated_fields,
)

if TYPE_CHECKING:
    from gateway._proto.execution.v1.execution_pb2_grpc import (
        ExecutionServiceAsyncStub as Stub,
    )

FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
SHARDS = ShardMap.from_mapping(
    {
        "shards": {
            "a": {"address": "127.0.0.1:50061", "accounts": ["acct-1", "acct-2"]},
            "b": {"address": "127.0.0.1:50062", "accounts": ["acct-3"]},
        }
    }
)
CAROL = "carol-token-0123456789abcdef"  # granted accounts on both shards


async def start(tmp_path: Path, broker: RecordingBroker, **settings: object) -> Gateway:
    config = dataclasses.replace(gateway_test_config(tmp_path), **settings)  # type: ignore[arg-type]
    gw = Gateway(config, broker=broker, journal=MemoryJournal())
    await gw.start()
    return gw


@pytest.fixture
async def shard_a(tmp_path: Path, broker: RecordingBroker) -> AsyncIterator[Gateway]:
    gw = await start(tmp_path, broker, shard="a", shard_map=SHARDS)
    try:
        yield gw
    finally:
        await gw.stop(grace=0.5)


@pytest.fixture
async def stub(shard_a: Gateway) -> AsyncIterator[Stub]:
    async with grpc.aio.insecure_channel(shard_a.address) as channel:
        yield pb_grpc.ExecutionServiceStub(channel)


def assert_wrong_shard(error: grpc.aio.AioRpcError, account: str) -> None:
    assert error.code() == FAILED_PRECONDITION, error
    assert error_reason(error) == "WRONG_SHARD"
    assert error_metadata(error) == {
        "account": account,
        "shard": "b",
        "address": "127.0.0.1:50062",
        "this_shard": "a",
    }


async def test_own_accounts_are_served_and_others_refused_with_their_shard(
    stub: Stub, broker: RecordingBroker
) -> None:
    placed = await stub.PlaceOrder(resting_buy("mine"), timeout=10)
    assert placed.order.account == "acct-1"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.PlaceOrder(resting_buy("theirs", account="acct-3"), timeout=10)
    assert_wrong_shard(refused.value, "acct-3")
    assert [spec.account for spec in broker.submitted] == ["acct-1"]  # never reached the broker


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.CancelOrder(
            pb.CancelOrderRequest(account="acct-3", order_id="o-1"), timeout=10
        ),
        lambda s: s.GetOrderStatus(
            pb.GetOrderStatusRequest(account="acct-3", client_order_id="c-1"), timeout=10
        ),
        lambda s: s.ListOrders(pb.ListOrdersRequest(account="acct-3"), timeout=10),
    ],
    ids=["CancelOrder", "GetOrderStatus", "ListOrders"],
)
async def test_every_unary_rpc_naming_another_shards_account_is_refused(
    stub: Stub, call: object
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call(stub)  # type: ignore[operator]
    assert_wrong_shard(refused.value, "acct-3")


async def test_a_subscription_naming_another_shards_account_is_refused(
    stub: Stub,
) -> None:
    stream = stub.SubscribeUpdates(pb.SubscribeUpdatesRequest(accounts=["acct-1", "acct-3"]))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stream.read()
    assert_wrong_shard(refused.value, "acct-3")


async def test_an_account_in_no_shard_is_refused_as_unknown(
    stub: Stub, broker: RecordingBroker
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.PlaceOrder(resting_buy("nobody", account="acct-99"), timeout=10)
    assert refused.value.code() == FAILED_PRECONDITION
    assert error_reason(refused.value) == "UNKNOWN_ACCOUNT"
    assert error_metadata(refused.value)["account"] == "acct-99"
    assert broker.submitted == []


@pytest.mark.parametrize("account", ["", "not an account", "x" * 65])
async def test_a_malformed_account_is_still_invalid_argument(stub: Stub, account: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.PlaceOrder(resting_buy("malformed", account=account), timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "account" in violated_fields(refused.value)
    stream = stub.SubscribeUpdates(pb.SubscribeUpdatesRequest(accounts=["acct-1", account]))
    with pytest.raises(grpc.aio.AioRpcError) as in_filter:
        await stream.read()
    assert in_filter.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(in_filter.value) == {"accounts[1]"}


async def test_the_account_metadata_must_agree_with_the_body(
    stub: Stub, broker: RecordingBroker
) -> None:
    agreed = await stub.PlaceOrder(
        resting_buy("agreed"), metadata=((ACCOUNT_METADATA, "acct-1"),), timeout=10
    )
    assert agreed.order.account == "acct-1"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.PlaceOrder(
            resting_buy("disagreed", account="acct-2"),
            metadata=((ACCOUNT_METADATA, "acct-1"),),
            timeout=10,
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(refused.value) == {"account"}
    stream = stub.SubscribeUpdates(
        pb.SubscribeUpdatesRequest(accounts=["acct-1", "acct-2"]),
        metadata=((ACCOUNT_METADATA, "acct-3"),),
    )
    with pytest.raises(grpc.aio.AioRpcError) as not_named:
        await stream.read()
    assert violated_fields(not_named.value) == {"accounts"}
    assert [spec.client_order_id for spec in broker.submitted] == ["agreed"]


async def test_without_a_map_the_metadata_is_checked_and_every_account_served(
    tmp_path: Path, broker: RecordingBroker
) -> None:
    gw = await start(tmp_path, broker)
    try:
        async with grpc.aio.insecure_channel(gw.address) as channel:
            stub: Stub = pb_grpc.ExecutionServiceStub(channel)
            placed = await stub.PlaceOrder(
                resting_buy("any", account="acct-3"),
                metadata=((ACCOUNT_METADATA, "acct-3"),),
                timeout=10,
            )
            assert placed.order.account == "acct-3"
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.PlaceOrder(
                    resting_buy("other", account="acct-3"),
                    metadata=((ACCOUNT_METADATA, "acct-1"),),
                    timeout=10,
                )
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        await gw.stop(grace=0.5)


async def test_a_subscription_to_every_granted_account_sees_this_shards_only(
    tmp_path: Path, broker: RecordingBroker
) -> None:
    table = f"carol {hash_token(CAROL)} acct-1,acct-3 rw\nlonely {hash_token(CAROL[::-1])} acct-3"
    tokens = TokenStore(parse_table(table, source="test"))
    gw = await start(tmp_path, broker, shard="a", shard_map=SHARDS, tokens=tokens)
    carol = (("authorization", f"Bearer {CAROL}"),)
    try:
        async with grpc.aio.insecure_channel(gw.address) as channel:
            stub: Stub = pb_grpc.ExecutionServiceStub(channel)
            stream = stub.SubscribeUpdates(pb.SubscribeUpdatesRequest(), metadata=carol)
            first = await stream.read()
            assert isinstance(first, pb.SubscribeUpdatesResponse)
            assert first.HasField("heartbeat")
            await stub.PlaceOrder(resting_buy("seen"), metadata=carol, timeout=10)
            update = await eventually(
                stream.read,
                lambda m: not isinstance(m, pb.SubscribeUpdatesResponse) or m.HasField("update"),
                what="an update",
            )
            assert isinstance(update, pb.SubscribeUpdatesResponse)
            assert update.update.order.client_order_id == "seen"
            stream.cancel()
            # Granted nothing on this shard: pointed at the shard that has its account.
            lonely = (("authorization", f"Bearer {CAROL[::-1]}"),)
            refused_stream = stub.SubscribeUpdates(pb.SubscribeUpdatesRequest(), metadata=lonely)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await refused_stream.read()
            assert_wrong_shard(refused.value, "acct-3")
            # Not granted: PERMISSION_DENIED comes first, the shard layout is not told.
            with pytest.raises(grpc.aio.AioRpcError) as denied:
                await stub.PlaceOrder(
                    resting_buy("x", account="acct-2"), metadata=lonely, timeout=10
                )
            assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        await gw.stop(grace=0.5)


async def test_a_map_without_this_gateways_shard_does_not_start(
    tmp_path: Path, broker: RecordingBroker
) -> None:
    with pytest.raises(StartupError, match="'c' is not in the shard map"):
        await start(tmp_path, broker, shard="c", shard_map=SHARDS)
    with pytest.raises(StartupError, match="needs this gateway's shard"):
        await start(tmp_path / "2", broker, shard_map=SHARDS)
