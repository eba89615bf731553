"""The order actor without gRPC: overload, slow subscribers, duplicate reports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from gateway.brokers import BrokerOrderState, ExecutionReport, ReportKind
from gateway.brokers.simulated import SimConfig, SimulatedBroker
from gateway.brokers.testing import RecordingBroker
from gateway.domain import (
    Fill,
    ListOrdersQuery,
    OrderRef,
    OrderSpec,
    OrderStatus,
    OrderType,
    Side,
    SubscriptionFilter,
    TimeInForce,
)
from gateway.engine import EngineConfig, OrderActor, SlowSubscriber
from gateway.errors import NotFound, ResourceExhausted
from gateway.journal import JournalRecord, MemoryJournal
from tests.support import eventually, order_updates


class GatedJournal(MemoryJournal):
    """A memory journal whose commits wait at a gate: stalls the actor on purpose."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.gate.set()
        self.commits = 0

    async def append(self, records: Sequence[JournalRecord]) -> None:
        self.commits += 1
        await self.gate.wait()
        await super().append(records)


def spec(client_order_id: str, *, limit: str | None = "0.01", quantity: str = "10") -> OrderSpec:
    return OrderSpec(
        account="acct-1",
        client_order_id=client_order_id,
        symbol="AAPL",
        side=Side.BUY,
        order_type=OrderType.LIMIT if limit else OrderType.MARKET,
        quantity=Decimal(quantity),
        time_in_force=TimeInForce.GTC if limit else TimeInForce.DAY,
        limit_price=Decimal(limit) if limit else None,
    )


async def delivered(broker: RecordingBroker, actor: OrderActor) -> None:
    """Wait until the actor took every frame the broker streamed and committed it."""
    await eventually(lambda: broker.unread_frames, lambda n: n == 0, what="frames read")
    await actor.flush()


async def reconciled(actor: OrderActor) -> None:
    """Run one reconciliation pass and wait until what it learned is committed."""
    target = actor.reconcile_passes + 1
    actor.request_reconcile()
    await eventually(
        lambda: actor.reconcile_passes,
        lambda n: n >= target,
        what="a reconciliation pass",
    )
    await actor.flush()


@pytest.fixture
def broker() -> RecordingBroker:
    return RecordingBroker(SimulatedBroker(SimConfig(seed=1, tick_interval=None)))


async def started(actor: OrderActor, broker: RecordingBroker) -> OrderActor:
    await broker.connect()
    await actor.start()
    return actor


@pytest.fixture
async def journal() -> GatedJournal:
    return GatedJournal()


@pytest.fixture
async def actor(broker: RecordingBroker, journal: GatedJournal) -> AsyncIterator[OrderActor]:
    config = EngineConfig(inbox_capacity=4, subscriber_buffer=3, max_batch=3, ack_wait=1.0)
    actor = await started(OrderActor(broker, journal, config), broker)
    yield actor
    journal.gate.set()
    await actor.stop()
    await broker.close()


async def test_a_full_inbox_answers_resource_exhausted(
    actor: OrderActor, journal: GatedJournal
) -> None:
    journal.gate.clear()
    first = asyncio.ensure_future(actor.place_order(spec("o-0")))
    await eventually(lambda: journal.commits, lambda n: n >= 1, what="actor stalled")
    queued = [asyncio.ensure_future(actor.place_order(spec(f"o-{i}"))) for i in range(1, 5)]
    await asyncio.sleep(0)
    with pytest.raises(ResourceExhausted) as caught:
        await actor.place_order(spec("o-overflow"))
    assert caught.value.reason == "GATEWAY_OVERLOADED"
    journal.gate.set()
    orders = await asyncio.gather(first, *queued)
    assert [o.spec.client_order_id for o in orders] == [f"o-{i}" for i in range(5)]
    assert actor.order_count == 5  # the refused request changed nothing


async def test_a_slow_subscriber_is_cut_off_and_others_keep_up(actor: OrderActor) -> None:
    slow = await actor.subscribe(SubscriptionFilter())
    healthy = await actor.subscribe(SubscriptionFilter())
    received: list[int] = []

    async def drain() -> None:
        while (update := await healthy.next(idle_after=5)) is not None:
            received.append(update.update.sequence)
            if len(received) == 10:
                return

    reader = asyncio.ensure_future(drain())
    for i in range(5):
        await actor.place_order(spec(f"s-{i}"))
    await asyncio.wait_for(reader, 5)
    assert received == list(range(1, 11))

    # Cut off at once: its buffer is freed, and it learns where to resume.
    with pytest.raises(SlowSubscriber) as caught:
        await slow.next(idle_after=1)
    assert caught.value.metadata["last_sequence"] == "0"
    assert actor.subscriber_count == 1  # only the healthy one is left


async def test_duplicate_and_early_reports_are_applied_once(
    actor: OrderActor, broker: RecordingBroker
) -> None:
    order = await actor.place_order(spec("dup-fill"))
    assert order.status is OrderStatus.ACCEPTED
    now = datetime.now(UTC)
    fill = Fill("exec-1", Decimal(4), Decimal("0.01"), now)
    report = ExecutionReport(
        ReportKind.FILL, "acct-1", "dup-fill", now, order.broker_order_id, fill
    )
    for _ in range(3):
        broker.send(report)  # the broker repeats itself
    status = await eventually(
        lambda: actor.get_order(OrderRef("acct-1", order_id=order.order_id)),
        lambda o: o.filled_quantity > 0,
        what="the fill applied",
    )
    broker.send(report)
    await delivered(broker, actor)
    after = await actor.get_order(OrderRef("acct-1", order_id=order.order_id))
    assert status.filled_quantity == after.filled_quantity == Decimal(4)
    assert after.status is OrderStatus.PARTIALLY_FILLED


async def test_reports_for_unknown_orders_are_counted_not_adopted(
    actor: OrderActor, broker: RecordingBroker
) -> None:
    now = datetime.now(UTC)
    broker.send(ExecutionReport(ReportKind.ACCEPTED, "acct-1", "placed-elsewhere", now, "B-9"))
    await eventually(lambda: actor.unknown_reports, lambda n: n == 1, what="report counted")
    assert actor.order_count == 0


async def test_fills_known_only_as_broker_totals_are_booked_once_at_the_right_price(
    actor: OrderActor, broker: RecordingBroker
) -> None:
    order = await actor.place_order(spec("totals", quantity="10"))
    now = datetime.now(UTC)
    ref = OrderRef("acct-1", order_id=order.order_id)
    first = Fill("exec-a", Decimal(4), Decimal("100"), now)
    broker.send(
        ExecutionReport(ReportKind.FILL, "acct-1", "totals", now, order.broker_order_id, first)
    )
    await delivered(broker, actor)
    # The venue says 10 filled at an average of 101 but lists no fills (Alpaca).
    totals = BrokerOrderState(
        "acct-1",
        "totals",
        order.broker_order_id,
        OrderStatus.FILLED,
        Decimal(10),
        average_fill_price=Decimal("101"),
    )
    broker.answer_status(totals)
    for _ in range(2):  # reconciliation may see the same totals twice
        await reconciled(actor)
    done = await eventually(
        lambda: actor.get_order(ref),
        lambda o: o.status is OrderStatus.FILLED,
        what="FILLED from the broker's totals",
    )
    assert done.filled_quantity == Decimal(10)
    # 4 @ 100 known, so the missing 6 must be @ 101.666666667 for a 101 average.
    assert done.average_fill_price == Decimal("101.0000000")
    await actor.flush()
    again = await actor.get_order(ref)
    assert again.last_sequence == done.last_sequence  # the repeat booked nothing


async def test_reads_see_the_last_commit_and_never_wait_behind_commands(
    actor: OrderActor, journal: GatedJournal
) -> None:
    resting = await actor.place_order(spec("r-1"))
    assert resting.status is OrderStatus.ACCEPTED
    # The journal stalls: a cancel and a new order are applied to the table,
    # but not durable, and more commands queue behind them.
    journal.gate.clear()
    commits = journal.commits
    cancel = asyncio.ensure_future(
        actor.cancel_order(OrderRef("acct-1", order_id=resting.order_id))
    )
    new = asyncio.ensure_future(actor.place_order(spec("r-2")))
    await eventually(lambda: journal.commits, lambda n: n > commits, what="actor stalled")
    queued = asyncio.ensure_future(actor.place_order(spec("r-3")))
    await asyncio.sleep(0)

    # Answered at once, with what is durable: the order as acknowledged, no r-2.
    async with asyncio.timeout(1):
        seen = await actor.get_order(OrderRef("acct-1", order_id=resting.order_id))
        assert seen == resting
        with pytest.raises(NotFound):
            await actor.get_order(OrderRef("acct-1", client_order_id="r-2"))
        page, more = await actor.list_orders(ListOrdersQuery("acct-1", 10))
    assert (page, more) == ([resting], False)

    journal.gate.set()
    canceled, placed, _ = await asyncio.gather(cancel, new, queued)
    after = await actor.get_order(OrderRef("acct-1", order_id=resting.order_id))
    assert after.status is not OrderStatus.ACCEPTED
    assert after == canceled or after.last_sequence > canceled.last_sequence
    assert await actor.get_order(OrderRef("acct-1", client_order_id="r-2")) == placed
    page, _ = await actor.list_orders(ListOrdersQuery("acct-1", 10))
    assert [o.spec.client_order_id for o in page] == ["r-1", "r-2", "r-3"]


async def test_broker_reports_go_ahead_of_queued_commands(
    actor: OrderActor, journal: GatedJournal, broker: RecordingBroker
) -> None:
    resting = await actor.place_order(spec("early"))
    assert resting.status is OrderStatus.ACCEPTED
    # The journal stalls on the next commit, and client commands queue behind it.
    journal.gate.clear()
    commits = journal.commits
    first = asyncio.ensure_future(actor.place_order(spec("q-0")))
    await eventually(lambda: journal.commits, lambda n: n > commits, what="actor stalled")
    queued = [asyncio.ensure_future(actor.place_order(spec(f"q-{i}"))) for i in range(1, 4)]
    await asyncio.sleep(0)
    # The venue reports a fill of the resting order after those commands queued.
    now = datetime.now(UTC)
    fill = Fill("exec-early", Decimal(2), Decimal("0.01"), now)
    broker.send(
        ExecutionReport(ReportKind.FILL, "acct-1", "early", now, resting.broker_order_id, fill)
    )
    await eventually(lambda: broker.unread_frames, lambda n: n == 0, what="frame read")

    journal.gate.set()
    await asyncio.gather(first, *queued)
    filled = await actor.get_order(OrderRef("acct-1", order_id=resting.order_id))
    assert filled.filled_quantity == Decimal(2)
    created = [
        u for u in order_updates(journal.records) if u.order.spec.client_order_id.startswith("q-")
    ]
    first_of_queued = min(u.sequence for u in created if u.order.spec.client_order_id != "q-0")
    # Applied in the first batch after the stall, before any command queued ahead of it.
    assert filled.last_sequence < first_of_queued


async def test_orders_waiting_on_the_broker_are_counted_with_the_oldest_age(
    actor: OrderActor, broker: RecordingBroker
) -> None:
    assert actor.orders_in_doubt() == (0, 0.0)
    broker.hold_submits()
    pending = await actor.place_order(spec("held"), ack_wait=0.01)
    assert pending.status is OrderStatus.PENDING_NEW

    count, age = actor.orders_in_doubt()
    assert count == 1
    assert age >= 0.0
    broker.release_submits()
    await actor.idle()
    assert actor.orders_in_doubt() == (0, 0.0)


async def test_a_rejection_after_the_ack_ends_the_order(
    actor: OrderActor, broker: RecordingBroker
) -> None:
    order = await actor.place_order(spec("checked-later"))
    assert order.status is OrderStatus.ACCEPTED
    # The venue answered the submit, then its own checks refused the order.
    broker.send(
        ExecutionReport(
            ReportKind.REJECTED,
            "acct-1",
            "checked-later",
            datetime.now(UTC),
            order.broker_order_id,
            reason="risk check failed",
        )
    )
    await delivered(broker, actor)

    rejected = await actor.get_order(OrderRef("acct-1", order_id=order.order_id))
    assert rejected.status is OrderStatus.REJECTED
    assert rejected.reject_reason == "risk check failed"
    assert actor.illegal_transitions == 0
