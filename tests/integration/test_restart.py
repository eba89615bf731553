"""A gateway restarted on the same data dir: state, sequences and streams carry on."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway._proto.execution.v1 import execution_pb2_grpc as pb_grpc
from gateway.app import Gateway, JournalNeedsSalvage, StartupError
from gateway.brokers.simulated import SimConfig, SimulatedBroker
from gateway.domain import Order, OrderRef, OrderSpec, OrderType, Side, TimeInForce
from gateway.journal import SqliteJournal, checkpoint
from gateway.journal.datadir import JOURNAL_FILE
from tests.conftest import gateway_test_config
from tests.support import change_sequence, eventually, place_request, resting_buy

if TYPE_CHECKING:
    from gateway._proto.execution.v1.execution_pb2_grpc import ExecutionServiceAsyncStub


async def run_gateway(tmp_path: Path, *, salvage: bool = False) -> Gateway:
    # A fresh simulated venue each time: what matters here is our own state.
    broker = SimulatedBroker(SimConfig(seed=1, tick_interval=0.01))
    config = dataclasses.replace(gateway_test_config(tmp_path), salvage_journal=salvage)
    gw = Gateway(config, broker=broker)
    await gw.start()
    return gw


async def changes(
    stub: ExecutionServiceAsyncStub, after: int, until: int
) -> list[pb.SubscribeUpdatesResponse]:
    """Every change streamed after ``after`` up to ``until``: orders' and positions'."""
    stream = stub.SubscribeUpdates(pb.SubscribeUpdatesRequest(after_sequence=after))
    seen: list[pb.SubscribeUpdatesResponse] = []
    try:
        async with asyncio.timeout(10):
            async for message in stream:
                sequence = change_sequence(message)
                if sequence is None:
                    continue
                seen.append(message)
                if sequence >= until:
                    return seen
    finally:
        stream.cancel()
    return seen


async def updates(stub: ExecutionServiceAsyncStub, after: int, until: int) -> list[pb.OrderUpdate]:
    """The order updates among ``changes``."""
    return [m.update for m in await changes(stub, after, until) if m.HasField("update")]


async def test_orders_sequences_and_streams_survive_a_restart(tmp_path: Path) -> None:
    first = await run_gateway(tmp_path)
    async with grpc.aio.insecure_channel(first.address) as channel:
        stub: ExecutionServiceAsyncStub = pb_grpc.ExecutionServiceStub(channel)
        resting = (await stub.PlaceOrder(resting_buy("before-1"))).order
        market = (await stub.PlaceOrder(place_request("before-2"))).order
        await eventually(
            lambda: stub.GetOrderStatus(
                pb.GetOrderStatusRequest(account="acct-1", order_id=market.order_id)
            ),
            lambda r: r.order.status == pb.ORDER_STATUS_FILLED,
            what="FILLED",
        )
        before = await changes(stub, 0, first.actor.last_sequence)
    last_before = first.actor.last_sequence
    await first.stop()
    assert (tmp_path / "data" / JOURNAL_FILE).exists()

    second = await run_gateway(tmp_path)
    try:
        assert second.actor.last_sequence == last_before
        async with grpc.aio.insecure_channel(second.address) as channel:
            stub = pb_grpc.ExecutionServiceStub(channel)
            # The idempotency index survived: same key, same order, no new one.
            again = (await stub.PlaceOrder(resting_buy("before-1"))).order
            assert again.order_id == resting.order_id
            status = await stub.GetOrderStatus(
                pb.GetOrderStatusRequest(account="acct-1", client_order_id="before-2")
            )
            assert status.order.status == pb.ORDER_STATUS_FILLED
            assert status.order.filled_quantity == "10"

            # A subscriber resuming from before the restart misses nothing.
            resume_from = last_before - 3
            new = (await stub.PlaceOrder(resting_buy("after-1"))).order
            assert new.order_id not in (resting.order_id, market.order_id)
            resumed = await changes(stub, resume_from, last_before + 2)
            assert [change_sequence(m) for m in resumed] == list(
                range(resume_from + 1, last_before + 3)
            )
            assert resumed[:3] == before[-3:]  # orders' and positions' changes alike
            assert {m.update.order.client_order_id for m in resumed[3:]} == {"after-1"}
    finally:
        await second.stop()


async def test_numbers_of_records_lost_to_damage_are_never_reused(tmp_path: Path) -> None:
    first = await run_gateway(tmp_path)
    async with grpc.aio.insecure_channel(first.address) as channel:
        stub: ExecutionServiceAsyncStub = pb_grpc.ExecutionServiceStub(channel)
        await stub.PlaceOrder(resting_buy("before-1"))
        await stub.PlaceOrder(resting_buy("before-2"))
        # A subscriber saw everything, up to the record the disk will lose.
        seen = await updates(stub, 0, first.actor.last_sequence)
    last_seen = seen[-1].sequence
    await first.stop()
    with sqlite3.connect(tmp_path / "data" / JOURNAL_FILE) as conn:
        conn.execute("UPDATE events SET crc = crc + 1 WHERE sequence = ?", (last_seen,))
    conn.close()

    with pytest.raises(JournalNeedsSalvage):
        await run_gateway(tmp_path)
    second = await run_gateway(tmp_path, salvage=True)
    try:
        assert isinstance(second.journal, SqliteJournal)
        recovery = second.journal.recovery
        assert recovery is not None
        assert recovery.last_good_sequence == last_seen - 1
        assert second.actor.last_sequence == recovery.sequence_floor > last_seen
        async with grpc.aio.insecure_channel(second.address) as channel:
            stub = pb_grpc.ExecutionServiceStub(channel)
            # Resuming from the lost number is accepted, and what follows is new.
            await stub.PlaceOrder(resting_buy("after-1"))
            resumed = await updates(stub, last_seen, second.actor.last_sequence)
            assert resumed, "the resumed stream delivered nothing"
            assert all(u.sequence > recovery.sequence_floor for u in resumed)
            # (before-2's lost acknowledgement is settled by reconciliation too,
            # as new updates with new numbers.)
            assert "after-1" in {u.order.client_order_id for u in resumed}
    finally:
        await second.stop()


async def test_a_second_gateway_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    first = await run_gateway(tmp_path)
    try:
        with pytest.raises(StartupError, match="in use by another gateway"):
            await run_gateway(tmp_path)
    finally:
        await first.stop()


async def start_with(tmp_path: Path, **engine: object) -> Gateway:
    broker = SimulatedBroker(SimConfig(seed=1, tick_interval=0.01))
    gw = Gateway(gateway_test_config(tmp_path, **engine), broker=broker)
    await gw.start()
    return gw


async def orders_of(gw: Gateway) -> dict[str, Order]:
    found: dict[str, Order] = {}
    for i in range(12):
        ref = OrderRef("acct-1", client_order_id=f"cp-{i}")
        found[ref.client_order_id] = await gw.actor.get_order(ref)
    return found


async def test_checkpoints_are_written_in_the_background_and_start_up_uses_them(
    tmp_path: Path,
) -> None:
    first = await start_with(tmp_path, checkpoint_every=5)
    stored = tmp_path / "data" / f"{JOURNAL_FILE}.checkpoint"
    for i in range(12):
        await first.actor.place_order(resting_spec(f"cp-{i}"))
    await first.actor.flush()
    await eventually(stored.exists, bool, what="a checkpoint")
    before, last = await orders_of(first), first.actor.last_sequence
    await first.stop()  # a clean stop checkpoints everything
    written = checkpoint.read(stored)
    assert written is not None
    assert written.sequence == last

    second = await start_with(tmp_path, checkpoint_every=5)
    try:
        assert second.actor.last_sequence == last
        assert await orders_of(second) == before
        again = await second.actor.place_order(resting_spec("cp-3"))  # idempotency survived
        assert again.order_id == before["cp-3"].order_id
    finally:
        await second.stop()

    # A torn checkpoint is refused: the journal alone rebuilds the same table.
    stored.write_bytes(stored.read_bytes()[:-7])
    third = await start_with(tmp_path, checkpoint_every=0)
    try:
        assert await orders_of(third) == before
    finally:
        await third.stop()


def resting_spec(client_order_id: str) -> OrderSpec:
    return OrderSpec(
        "acct-1", client_order_id, "AAPL", Side.BUY, OrderType.LIMIT, Decimal(10),
        TimeInForce.GTC, limit_price=Decimal("0.01"),
    )  # fmt: skip
