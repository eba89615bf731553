"""Terminal orders out of memory: every order is still found, the same, whatever is evicted.

The actor runs with ``retention=0`` (every committed terminal order may
leave memory) over a real SQLite journal; ``evict_terminal`` runs the sweep
at a known point. Each test compares what clients see before and after.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import threading
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import grpc
import pytest

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway._proto.execution.v1 import execution_pb2_grpc as pb_grpc
from gateway.app import Gateway as App
from gateway.brokers import ExecutionReport, ReportKind
from gateway.brokers.simulated import SimConfig, SimulatedBroker
from gateway.brokers.testing import RecordingBroker
from gateway.domain import (
    Fill,
    ListOrdersQuery,
    Order,
    OrderRef,
    OrderSpec,
    OrderStatus,
    OrderType,
    ReplaceTerms,
    Side,
    TimeInForce,
)
from gateway.engine import EngineConfig, OrderActor
from gateway.errors import AlreadyExists, FailedPrecondition, GatewayError, NotFound
from gateway.journal import JournalRecord, SqliteJournal, StoredEvent
from gateway.journal import checkpoint as checkpoints
from tests.conftest import gateway_test_config
from tests.support import error_reason, eventually, resting_buy

ACCOUNT = "acct-1"
CONFIG = EngineConfig(retention=0, reconcile_interval=0, ack_wait=1.0)


def spec(client_order_id: str, symbol: str = "AAPL", quantity: str = "10") -> OrderSpec:
    return OrderSpec(
        ACCOUNT, client_order_id, symbol, Side.BUY, OrderType.LIMIT, Decimal(quantity),
        TimeInForce.GTC, limit_price=Decimal("0.01"),
    )  # fmt: skip


@dataclass
class Gateway:
    actor: OrderActor
    broker: RecordingBroker
    journal: SqliteJournal


async def start(path: Path, config: EngineConfig = CONFIG) -> Gateway:
    broker = RecordingBroker(SimulatedBroker(SimConfig(seed=1, tick_interval=None)))
    journal = SqliteJournal.open(path)
    actor = OrderActor(broker, journal, config)
    await broker.connect()
    await actor.start()
    return Gateway(actor, broker, journal)


async def stop(gateway: Gateway) -> None:
    await gateway.actor.stop()
    await gateway.broker.close()


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    started = await start(tmp_path / "journal.db")
    yield started
    await stop(started)


async def trade(actor: OrderActor) -> list[Order]:
    """Twelve resting orders over two symbols; eight of them canceled (terminal)."""
    placed = [
        await actor.place_order(spec(f"c-{i}", "AAPL" if i % 3 else "MSFT")) for i in range(12)
    ]
    for order in placed[:8]:
        await actor.cancel_order(OrderRef(ACCOUNT, order_id=order.order_id))
    await actor.idle()
    return placed


async def answers(actor: OrderActor, placed: list[Order]) -> dict[str, object]:
    """Everything a client can ask about these orders, as plain values."""
    seen: dict[str, object] = {}
    for order in placed:
        by_id = await actor.get_order(OrderRef(ACCOUNT, order_id=order.order_id))
        key = OrderRef(ACCOUNT, client_order_id=order.spec.client_order_id)
        by_key = await actor.get_order(key)
        assert by_id == by_key
        seen[order.order_id] = by_id
    for size in (1, 3, 5, 50):
        for open_only in (False, True):
            for symbols in (frozenset(), frozenset({"MSFT"})):
                pages, after = [], 0
                for _ in range(20):  # bounded: at most 12 orders, one per page
                    query = ListOrdersQuery(ACCOUNT, size, open_only, symbols, after)
                    page, more = await actor.list_orders(query)
                    pages.append(page)
                    if not more:
                        break
                    after = page[-1].created_sequence
                seen[f"list {size} {open_only} {sorted(symbols)}"] = pages
    return seen


async def test_evicted_orders_answer_as_they_did_in_memory(gateway: Gateway) -> None:
    actor = gateway.actor
    placed = await trade(actor)
    before = await answers(actor, placed)
    assert await actor.evict_terminal() == 8
    assert actor.evicted_count == 8
    assert actor.order_count == 4  # only the open ones are still Orders in memory
    assert await answers(actor, placed) == before
    assert actor.orders_read_back == 0  # every one of them came from the cache
    with pytest.raises(NotFound):  # another account's evicted order stays invisible
        await actor.get_order(OrderRef("acct-2", order_id=placed[0].order_id))
    with pytest.raises(NotFound):
        await actor.get_order(OrderRef("acct-2", client_order_id="c-0"))


async def test_a_retried_place_of_an_evicted_order_returns_it_and_sends_nothing(
    gateway: Gateway,
) -> None:
    actor, broker = gateway.actor, gateway.broker
    placed = await trade(actor)
    await actor.evict_terminal()
    again = await actor.place_order(spec("c-0", "MSFT"))
    assert again == await actor.get_order(OrderRef(ACCOUNT, order_id=placed[0].order_id))
    assert again.status is OrderStatus.CANCELED
    assert broker.submit_count(ACCOUNT, "c-0") == 1
    await actor.evict_terminal()
    with pytest.raises(AlreadyExists):
        await actor.place_order(spec("c-1", quantity="11"))  # other terms, same key
    with pytest.raises(FailedPrecondition):
        await actor.cancel_order(OrderRef(ACCOUNT, client_order_id="c-2"))
    assert broker.submit_count(ACCOUNT, "c-1") == 1


async def test_a_replace_of_an_evicted_order_is_held_then_answered_as_in_memory(
    gateway: Gateway,
) -> None:
    actor, broker = gateway.actor, gateway.broker
    placed = await actor.place_order(spec("c-r"))
    ref = OrderRef(ACCOUNT, order_id=placed.order_id)
    amended = await actor.replace_order(ref, ReplaceTerms("r-1", quantity=Decimal(12)))
    await actor.idle()
    assert (await actor.get_order(ref)).spec.quantity == Decimal(12)
    await actor.cancel_order(ref)
    await actor.idle()
    assert await actor.evict_terminal() == 1
    # The retry of the replace that was taken returns the order, read back.
    again = await actor.replace_order(ref, ReplaceTerms("r-1", quantity=Decimal(12)))
    assert again.order_id == amended.order_id
    assert again.status is OrderStatus.CANCELED
    # A new replace of the (terminal) evicted order is refused as in memory.
    await actor.evict_terminal()
    with pytest.raises(FailedPrecondition):
        await actor.replace_order(ref, ReplaceTerms("r-2", quantity=Decimal(11)))
    assert [replace_id for replace_id, _ in broker.replaced] == ["r-1"]


async def test_a_late_fill_of_an_evicted_order_is_applied(gateway: Gateway) -> None:
    actor, broker = gateway.actor, gateway.broker
    placed = await trade(actor)
    await actor.evict_terminal()
    canceled = placed[3]
    now = datetime.now(UTC)
    fill = Fill("late-1", Decimal(4), Decimal("0.01"), now)
    broker.send(
        ExecutionReport(ReportKind.FILL, ACCOUNT, "c-3", now, canceled.broker_order_id, fill)
    )
    ref = OrderRef(ACCOUNT, order_id=canceled.order_id)
    filled = await eventually(
        lambda: actor.get_order(ref), lambda o: o.filled_quantity == 4, what="the late fill"
    )
    assert filled.status is OrderStatus.CANCELED
    assert actor.evicted_count == 7  # read back into memory to take the fill
    broker.send(
        ExecutionReport(ReportKind.FILL, ACCOUNT, "c-3", now, canceled.broker_order_id, fill)
    )
    await eventually(lambda: broker.unread_frames, lambda n: n == 0, what="frames read")
    await actor.flush()
    assert (await actor.get_order(ref)).filled_quantity == 4  # booked once


async def test_a_restart_loads_only_what_memory_held_and_finds_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    first = await start(path)
    placed = await trade(first.actor)
    await first.actor.evict_terminal()
    before = await answers(first.actor, placed)
    await stop(first)  # a clean stop writes a checkpoint
    saved = checkpoints.read(checkpoints.checkpoint_path(path))
    assert saved is not None
    assert len(saved.orders) == 4
    assert sum(c is not None for index in saved.accounts for c in index.client_order_ids) == 8

    second = await start(path)
    try:
        assert second.actor.order_count == 4
        assert second.actor.evicted_count == 8
        assert await answers(second.actor, placed) == before
        assert second.actor.orders_read_back == 8  # each read once, then cached
        again = await second.actor.place_order(spec("c-5", "AAPL"))
        assert again.order_id == placed[5].order_id
        assert second.broker.submit_count(ACCOUNT, "c-5") == 0
    finally:
        await stop(second)


async def test_a_late_fill_after_the_checkpoint_replays_onto_the_evicted_order(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.db"
    first = await start(path)
    placed = await trade(first.actor)
    await first.actor.evict_terminal()
    await first.actor._checkpointer.close(final=True)  # a checkpoint with the orders evicted
    now = datetime.now(UTC)
    canceled = placed[1]
    fill = Fill("late-2", Decimal(3), Decimal("0.01"), now)
    first.broker.send(
        ExecutionReport(ReportKind.FILL, ACCOUNT, "c-1", now, canceled.broker_order_id, fill)
    )
    ref = OrderRef(ACCOUNT, order_id=canceled.order_id)
    expected = await eventually(
        lambda: first.actor.get_order(ref), lambda o: o.filled_quantity == 3, what="late fill"
    )
    # The files as a kill -9 now leaves them: the fill is in the journal's tail only.
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    for name in ("journal.db", "journal.db-wal", "journal.db.checkpoint"):
        if (tmp_path / name).exists():
            shutil.copyfile(tmp_path / name, crashed / name)
    await stop(first)

    second = await start(crashed / "journal.db", EngineConfig(reconcile_interval=0))
    try:
        assert await second.actor.get_order(ref) == expected
        assert second.actor.evicted_count == 7
    finally:
        await stop(second)


async def test_an_unreadable_history_is_an_error_for_its_order_only(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    # No cache: evicted orders are read from the file (a cached one would still answer).
    gateway = await start(path, EngineConfig(retention=0, retention_cache=0, reconcile_interval=0))
    try:
        actor = gateway.actor
        placed = await trade(actor)
        await actor.evict_terminal()
        damaged = placed[2]
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE events SET crc = crc + 1 WHERE order_id = ?", (damaged.order_id,))
        with pytest.raises(GatewayError) as read:
            await actor.get_order(OrderRef(ACCOUNT, order_id=damaged.order_id))
        assert read.value.reason == "ORDER_HISTORY_UNREADABLE"
        with pytest.raises(GatewayError) as retried:
            await actor.place_order(spec("c-2", "AAPL"))
        assert retried.value.reason == "ORDER_HISTORY_UNREADABLE"
        assert gateway.broker.submit_count(ACCOUNT, "c-2") == 1  # never sent again
        # Every other order still answers, and the actor still takes orders.
        other = await actor.get_order(OrderRef(ACCOUNT, order_id=placed[4].order_id))
        assert (other.spec, other.status) == (placed[4].spec, OrderStatus.CANCELED)
        assert (await actor.place_order(spec("new"))).status is OrderStatus.ACCEPTED
    finally:
        await stop(gateway)


async def test_over_grpc_evicted_orders_answer_and_page_in_order(tmp_path: Path) -> None:
    """The real server, its own SQLite journal, and the sweep on its timer (no test hook)."""
    config = gateway_test_config(tmp_path, retention=0.0, reconcile_interval=0.0)
    server = App(config, broker=RecordingBroker(SimulatedBroker(SimConfig(seed=7))))
    await server.start()
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = pb_grpc.ExecutionServiceStub(channel)
            placed = [(await stub.PlaceOrder(resting_buy(f"g-{i}"))).order for i in range(5)]
            for order in placed[:3]:
                await stub.CancelOrder(
                    pb.CancelOrderRequest(account=ACCOUNT, order_id=order.order_id)
                )

            async def everything() -> tuple[list[pb.Order], list[list[str]]]:
                """Each order's status by client key, and every page of two."""
                statuses = [
                    (await stub.GetOrderStatus(
                        pb.GetOrderStatusRequest(account=ACCOUNT, client_order_id=o.client_order_id)
                    )).order
                    for o in placed
                ]  # fmt: skip
                pages, token = [], ""
                for _ in range(10):  # bounded: five orders, two a page
                    listed = await stub.ListOrders(
                        pb.ListOrdersRequest(account=ACCOUNT, page_size=2, page_token=token)
                    )
                    pages.append([o.order_id for o in listed.orders])
                    token = listed.next_page_token
                    if not token:
                        break
                return statuses, pages

            await eventually(lambda: server.actor.evicted_count, lambda n: n == 3, what="evicted")
            statuses, pages = await everything()
            assert [(o.order_id, o.status) for o in statuses] == [
                (o.order_id, pb.ORDER_STATUS_CANCELED if i < 3 else pb.ORDER_STATUS_ACCEPTED)
                for i, o in enumerate(placed)
            ]
            assert [o.client_order_id for o in statuses] == [f"g-{i}" for i in range(5)]
            ids = [o.order_id for o in placed]
            assert pages == [ids[:2], ids[2:4], ids[4:]]  # oldest first, tokens across evictions
            again = await stub.PlaceOrder(resting_buy("g-1"))
            assert again.order.order_id == placed[1].order_id
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.PlaceOrder(resting_buy("g-2", quantity="11"))
            assert caught.value.code() is grpc.StatusCode.ALREADY_EXISTS
            assert error_reason(caught.value) == "CLIENT_ORDER_ID_REUSED"
    finally:
        await server.stop(grace=0.5)


async def test_a_flush_waits_for_messages_parked_behind_an_evicted_order(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    actor, broker, journal = gateway.actor, gateway.broker, gateway.journal
    placed = await trade(actor)
    await actor.evict_terminal()
    # Reading orders back waits at a gate, so the test decides when it finishes.
    entered, gate = threading.Event(), threading.Event()
    read = journal.order_events

    def gated(order_ids: Collection[str]) -> dict[str, list[StoredEvent | JournalRecord]]:
        entered.set()
        gate.wait(timeout=10)
        return read(order_ids)

    monkeypatch.setattr(journal, "order_events", gated)
    canceled = placed[4]
    now = datetime.now(UTC)
    fill = Fill("late-3", Decimal(2), Decimal("0.01"), now)
    broker.send(
        ExecutionReport(ReportKind.FILL, ACCOUNT, "c-4", now, canceled.broker_order_id, fill)
    )
    await eventually(entered.is_set, what="the report parked, its order being read")
    flushed = asyncio.ensure_future(actor.flush())
    # A command queued after the flush is answered: the actor is past the flush.
    await actor.place_order(spec("after-the-flush"))
    assert not flushed.done()  # it waits for the parked report
    gate.set()
    await flushed
    ref = OrderRef(ACCOUNT, order_id=canceled.order_id)
    assert (await actor.get_order(ref)).filled_quantity == 2
