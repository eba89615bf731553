"""A reload of the principals file ends the streams it no longer allows.

A removed (or rotated) token ends its open streams with UNAUTHENTICATED; a
principal whose grants were narrowed loses the streams that show an account
it may no longer see, with PERMISSION_DENIED. Streams still allowed carry on,
and nothing of a revoked account is sent after the reload.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway._proto.execution.v1 import execution_pb2_grpc as pb_grpc
from gateway.app import Gateway
from gateway.auth import TokenStore, hash_token
from gateway.brokers.testing import RecordingBroker
from gateway.journal import MemoryJournal
from tests.conftest import gateway_test_config
from tests.ops_support import GRANTS, TOKENS, bearer
from tests.support import STREAM_END, error_metadata, error_reason, eventually, resting_buy


def table(grants: dict[str, tuple[str, str]]) -> str:
    return "".join(
        f"{name} {hash_token(TOKENS[name])} {accounts} {mode}\n"
        for name, (accounts, mode) in grants.items()
    )


@dataclasses.dataclass
class Secured:
    gateway: Gateway
    tokens_file: Path
    stub: Any

    def rewrite(self, grants: dict[str, tuple[str, str]]) -> None:
        self.tokens_file.write_text(table(grants))
        # A stamp the store has not seen, even within one clock tick.
        os.utime(self.tokens_file, ns=(1, 1))


@pytest.fixture
async def secured(tmp_path: Path, broker: RecordingBroker) -> AsyncIterator[Secured]:
    tokens_file = tmp_path / "tokens"
    tokens_file.write_text(table(GRANTS))
    config = dataclasses.replace(
        gateway_test_config(tmp_path),
        tokens=TokenStore.load(tokens_file),
        auth_reload_interval=0.05,
    )
    gw = Gateway(config, broker=broker, journal=MemoryJournal())
    await gw.start()
    try:
        async with grpc.aio.insecure_channel(gw.address) as channel:
            yield Secured(gw, tokens_file, pb_grpc.ExecutionServiceStub(channel))
    finally:
        await gw.stop(grace=0.5)


async def opened(stub: Any, caller: str, accounts: list[str]) -> Any:
    call = stub.SubscribeUpdates(
        pb.SubscribeUpdatesRequest(accounts=accounts), metadata=bearer(caller), timeout=20
    )
    first = await call.read()
    assert first is not STREAM_END
    assert first.HasField("heartbeat")
    return call


async def ending(call: Any) -> grpc.aio.AioRpcError:
    """Read ``call`` until it fails; return the error. Updates on the way are refused."""
    try:
        async with asyncio.timeout(10):
            while True:
                message = await call.read()
                assert message is not STREAM_END, "the stream ended OK"
                assert not message.HasField("update"), f"sent after revocation: {message}"
    except grpc.aio.AioRpcError as error:
        return error


async def test_a_removed_token_ends_its_streams_unauthenticated(secured: Secured) -> None:
    alice = await opened(secured.stub, "alice", ["acct-a"])
    bob = await opened(secured.stub, "bob", ["acct-b"])
    assert secured.gateway.actor.subscriber_count == 2
    secured.rewrite({k: v for k, v in GRANTS.items() if k != "alice"})
    error = await ending(alice)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_reason(error) == "CREDENTIAL_REVOKED"
    assert error_metadata(error)["principal"] == "alice"
    # Bob's stream is untouched: an order in his account still reaches him.
    await secured.stub.PlaceOrder(resting_buy("b-1", account="acct-b"), metadata=bearer("bob"))
    async with asyncio.timeout(10):
        while not (message := await bob.read()).HasField("update"):
            pass
    assert message.update.order.client_order_id == "b-1"
    await eventually(
        lambda: secured.gateway.actor.subscriber_count,
        lambda n: n == 1,
        what="alice's subscriber released",
    )
    assert secured.gateway.streams.count("alice") == 0
    bob.cancel()


async def test_a_narrowed_principal_loses_the_streams_of_the_account_it_lost(
    secured: Secured,
) -> None:
    everything = await opened(secured.stub, "ops", [])  # every account
    only_b = await opened(secured.stub, "ops", ["acct-b"])
    only_a = await opened(secured.stub, "ops", ["acct-a"])
    secured.rewrite({**GRANTS, "ops": ("acct-b", "rw")})
    for call, lost in ((everything, "*"), (only_a, "acct-a")):
        error = await ending(call)
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert error_reason(error) == "ACCOUNT_NOT_GRANTED"
        assert error_metadata(error)["account"] == lost
        assert "last_sequence" in error_metadata(error)
    # The stream of the account still granted carries on.
    await secured.stub.PlaceOrder(resting_buy("b-2", account="acct-b"), metadata=bearer("ops"))
    async with asyncio.timeout(10):
        while not (message := await only_b.read()).HasField("update"):
            pass
    assert message.update.order.client_order_id == "b-2"
    assert secured.gateway.streams.count("ops") == 1
    only_b.cancel()


async def test_a_revoked_stream_is_sent_nothing_of_the_account_after_the_reload(
    secured: Secured,
) -> None:
    alice = await opened(secured.stub, "alice", ["acct-a"])
    secured.rewrite({k: v for k, v in GRANTS.items() if k != "alice"})
    tokens = secured.gateway.config.tokens
    assert tokens is not None
    await eventually(
        lambda: tokens.generation,
        lambda generation: generation >= 1,
        what="the reload",
    )
    # Ops trades in acct-a right after the reload; alice's stream must not show it.
    await secured.stub.PlaceOrder(resting_buy("a-1", account="acct-a"), metadata=bearer("ops"))
    error = await ending(alice)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
