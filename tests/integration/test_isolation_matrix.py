"""Tokens x accounts x RPCs: nobody sees or touches an account they were not granted.

A real gateway with four principals (alice: acct-a; bob: acct-b; auditor:
acct-a read-only; ops: every account), driven through the generated stubs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway._proto.execution.v1 import execution_pb2_grpc as pb_grpc
from gateway.app import Gateway
from gateway.brokers.testing import RecordingBroker
from gateway.journal import MemoryJournal
from tests.conftest import gateway_test_config
from tests.ops_support import GRANTS, TOKENS, bearer, token_store
from tests.support import STREAM_END, error_reason, resting_buy

ACCOUNTS = ("acct-a", "acct-b")
CALLERS = ("nobody", "forged", *TOKENS)  # no token, an unknown token, each principal
OK, DENIED, UNAUTH = grpc.StatusCode.OK, grpc.StatusCode.PERMISSION_DENIED, "UNAUTH"
Stub = Any


def metadata(caller: str) -> tuple[tuple[str, str], ...]:
    if caller == "nobody":
        return ()
    if caller == "forged":
        return (("authorization", "Bearer forged-token-0123456789abcdef"),)
    return bearer(caller)


def expected(caller: str, account: str, *, write: bool) -> grpc.StatusCode:
    if caller in ("nobody", "forged"):
        return grpc.StatusCode.UNAUTHENTICATED
    accounts, mode = GRANTS[caller]
    if accounts != "*" and account not in accounts.split(","):
        return DENIED
    if write and mode == "ro":
        return DENIED
    return OK


@pytest.fixture
async def secured(tmp_path: Path, broker: RecordingBroker) -> AsyncIterator[Gateway]:
    config = dataclasses.replace(gateway_test_config(tmp_path), tokens=token_store())
    gw = Gateway(config, broker=broker, journal=MemoryJournal())
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop(grace=0.5)


@pytest.fixture
async def stub(secured: Gateway) -> AsyncIterator[Stub]:
    async with grpc.aio.insecure_channel(secured.address) as channel:
        yield pb_grpc.ExecutionServiceStub(channel)


async def code_of(call: Awaitable[Any]) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error.code()
    return OK


async def first_message_code(stub: Stub, caller: str, account: str) -> grpc.StatusCode:
    """Open a replaying stream; OK once its first message arrives."""
    request = pb.SubscribeUpdatesRequest(accounts=[account], after_sequence=0)
    call = stub.SubscribeUpdates(request, metadata=metadata(caller), timeout=10)
    try:
        message = await call.read()
        assert message is not STREAM_END
        return OK
    except grpc.aio.AioRpcError as error:
        return error.code()
    finally:
        call.cancel()


async def seed(stub: Stub) -> dict[str, pb.Order]:
    """One resting order per account, placed by ops."""
    orders = {}
    for account in ACCOUNTS:
        request = resting_buy(f"seed-{account}", account=account)
        response = await stub.PlaceOrder(request, metadata=bearer("ops"), timeout=10)
        orders[account] = response.order
    return orders


async def test_every_caller_account_and_rpc_gets_exactly_its_grant(
    stub: Stub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await seed(stub)
    rpcs: dict[str, tuple[bool, Callable[[str, str, int], Awaitable[grpc.StatusCode]]]] = {
        "PlaceOrder": (
            True,
            lambda caller, account, n: code_of(
                stub.PlaceOrder(
                    resting_buy(f"m-{caller}-{n}", account=account),
                    metadata=metadata(caller),
                    timeout=10,
                )
            ),
        ),
        # An unknown order: authorized callers get NOT_FOUND, others are stopped first.
        "CancelOrder": (
            True,
            lambda caller, account, n: code_of(
                stub.CancelOrder(
                    pb.CancelOrderRequest(account=account, client_order_id="no-such-order"),
                    metadata=metadata(caller),
                    timeout=10,
                )
            ),
        ),
        # Unknown, like the cancel: NOT_FOUND once authorized (a write: ro is refused).
        "ReplaceOrder": (
            True,
            lambda caller, account, n: code_of(
                stub.ReplaceOrder(
                    pb.ReplaceOrderRequest(
                        account=account,
                        client_order_id="no-such-order",
                        replace_id=f"r-{caller}-{n}",
                        quantity="5",
                    ),
                    metadata=metadata(caller),
                    timeout=10,
                )
            ),
        ),
        "GetOrderStatus": (
            False,
            lambda caller, account, n: code_of(
                stub.GetOrderStatus(
                    pb.GetOrderStatusRequest(account=account, client_order_id=f"seed-{account}"),
                    metadata=metadata(caller),
                    timeout=10,
                )
            ),
        ),
        "ListOrders": (
            False,
            lambda caller, account, n: code_of(
                stub.ListOrders(
                    pb.ListOrdersRequest(account=account),
                    metadata=metadata(caller),
                    timeout=10,
                )
            ),
        ),
        "SubscribeUpdates": (
            False,
            lambda caller, account, n: first_message_code(stub, caller, account),
        ),
        # Last: it cancels the seeded orders the reads above look at.
        "CancelAllOrders": (
            True,
            lambda caller, account, n: code_of(
                stub.CancelAllOrders(
                    pb.CancelAllOrdersRequest(account=account),
                    metadata=metadata(caller),
                    timeout=10,
                )
            ),
        ),
    }
    wrong = []
    checked = 0
    for rpc, (write, call) in rpcs.items():
        for caller in CALLERS:
            for n, account in enumerate(ACCOUNTS):
                got = await call(caller, account, n)
                want = expected(caller, account, write=write)
                if rpc in ("CancelOrder", "ReplaceOrder") and want is OK:
                    want = grpc.StatusCode.NOT_FOUND
                checked += 1
                if got != want:
                    wrong.append(f"{rpc:16} {caller:8} {account}: got {got.name}, want {want.name}")
    assert not wrong, "\n".join(wrong)
    assert checked == len(rpcs) * len(CALLERS) * len(ACCOUNTS)
    for token in TOKENS.values():
        assert token not in caplog.text


async def test_refusals_carry_a_stable_reason(stub: Stub) -> None:
    cases = [
        ((), "MISSING_TOKEN", grpc.StatusCode.UNAUTHENTICATED),
        (
            (("authorization", "Bearer forged-token-0123456789abcdef"),),
            "INVALID_TOKEN",
            grpc.StatusCode.UNAUTHENTICATED,
        ),
        ((("authorization", "Basic dXNlcjpwYXNz"),), "MALFORMED_AUTHORIZATION", None),
        (bearer("bob"), "ACCOUNT_NOT_GRANTED", grpc.StatusCode.PERMISSION_DENIED),
        (bearer("auditor"), "READ_ONLY_PRINCIPAL", grpc.StatusCode.PERMISSION_DENIED),
    ]
    for meta, reason, code in cases:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.PlaceOrder(resting_buy("r-1", account="acct-a"), metadata=meta, timeout=10)
        assert error_reason(caught.value) == reason
        assert caught.value.code() == (code or grpc.StatusCode.UNAUTHENTICATED)


async def test_another_accounts_order_id_is_not_found_under_your_own_account(
    stub: Stub,
) -> None:
    orders = await seed(stub)
    theirs = orders["acct-b"].order_id
    for request in (
        pb.GetOrderStatusRequest(account="acct-a", order_id=theirs),
        pb.CancelOrderRequest(account="acct-a", order_id=theirs),
        pb.ReplaceOrderRequest(account="acct-a", order_id=theirs, replace_id="x", quantity="5"),
    ):
        method = {
            pb.GetOrderStatusRequest: stub.GetOrderStatus,
            pb.CancelOrderRequest: stub.CancelOrder,
            pb.ReplaceOrderRequest: stub.ReplaceOrder,
        }[type(request)]
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await method(request, metadata=bearer("alice"), timeout=10)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    listed = await stub.ListOrders(
        pb.ListOrdersRequest(account="acct-a"), metadata=bearer("alice"), timeout=10
    )
    assert {o.account for o in listed.orders} == {"acct-a"}


async def test_own_cancel_works_and_read_only_cannot_cancel(stub: Stub) -> None:
    placed = await stub.PlaceOrder(
        resting_buy("to-cancel", account="acct-a"), metadata=bearer("alice"), timeout=10
    )
    cancel = pb.CancelOrderRequest(account="acct-a", order_id=placed.order.order_id)
    assert await code_of(stub.CancelOrder(cancel, metadata=bearer("auditor"), timeout=10)) is (
        DENIED
    )
    answer = await stub.CancelOrder(cancel, metadata=bearer("alice"), timeout=10)
    assert answer.order.status in (pb.ORDER_STATUS_PENDING_CANCEL, pb.ORDER_STATUS_CANCELED)


async def test_an_empty_account_filter_streams_only_the_callers_accounts(stub: Stub) -> None:
    await seed(stub)
    call = stub.SubscribeUpdates(
        pb.SubscribeUpdatesRequest(after_sequence=0), metadata=bearer("alice"), timeout=20
    )
    seen: list[str] = []
    try:
        # After the seeds, bob and then alice place an order; alice's arriving
        # proves bob's (placed first, so sequenced first) was filtered out.
        await stub.PlaceOrder(
            resting_buy("live-b", account="acct-b"), metadata=bearer("bob"), timeout=10
        )
        await stub.PlaceOrder(
            resting_buy("live-a", account="acct-a"), metadata=bearer("alice"), timeout=10
        )
        async with asyncio.timeout(15):
            while True:
                message = await call.read()
                assert message is not STREAM_END
                if message.HasField("update"):
                    order = message.update.order
                    seen.append(order.account)
                    if order.client_order_id == "live-a":
                        break
    finally:
        call.cancel()
    assert seen
    assert set(seen) == {"acct-a"}, seen


async def test_a_filter_naming_an_ungranted_account_is_refused(stub: Stub) -> None:
    call = stub.SubscribeUpdates(
        pb.SubscribeUpdatesRequest(accounts=["acct-a", "acct-b"], after_sequence=0),
        metadata=bearer("alice"),
        timeout=10,
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call.read()
    assert caught.value.code() == DENIED
    assert error_reason(caught.value) == "ACCOUNT_NOT_GRANTED"


async def test_health_is_open_and_reflection_is_open_by_default(secured: Gateway) -> None:
    async with grpc.aio.insecure_channel(secured.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        assert await list_services(channel) is OK


async def test_reflection_can_require_a_token(tmp_path: Path, broker: RecordingBroker) -> None:
    config = dataclasses.replace(
        gateway_test_config(tmp_path), tokens=token_store(), reflection_requires_auth=True
    )
    gw = Gateway(config, broker=broker, journal=MemoryJournal())
    await gw.start()
    try:
        async with grpc.aio.insecure_channel(gw.address) as channel:
            assert await reflection_refusal(channel) == grpc.StatusCode.UNAUTHENTICATED
            assert await list_services(channel, bearer("auditor")) is OK
            health = health_pb2_grpc.HealthStub(channel)
            await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
    finally:
        await gw.stop(grace=0.5)


async def reflection_refusal(channel: grpc.aio.Channel) -> grpc.StatusCode:
    """The status of a reflection call that carries no token, without writing to it.

    The gateway refuses before reading the first request. A client write that
    races that refusal can replace the server's status with INTERNAL in the
    grpc.aio client (grpc/grpc#36066), so this waits for the status instead.
    """
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = stub.ServerReflectionInfo(timeout=5)
    try:
        code: grpc.StatusCode = await call.code()
        return code
    finally:
        call.cancel()


async def list_services(
    channel: grpc.aio.Channel, meta: tuple[tuple[str, str], ...] = ()
) -> grpc.StatusCode:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = stub.ServerReflectionInfo(metadata=meta, timeout=5)
    try:
        await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
        response = await call.read()
        await call.done_writing()
        assert response is not STREAM_END
        names = {s.name for s in response.list_services_response.service}
        assert "execution.v1.ExecutionService" in names
        return OK
    except grpc.aio.AioRpcError as error:
        return error.code()
    finally:
        call.cancel()
