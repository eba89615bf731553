"""The ledger without asyncio: sequences, no-op events, the durable view, replay."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from gateway.domain import (
    CancelRequested,
    Fill,
    IllegalTransition,
    ListOrdersQuery,
    Order,
    OrderAccepted,
    OrderCreated,
    OrderFilled,
    OrderRef,
    OrderSpec,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
)
from gateway.engine import retention as pages
from gateway.engine.ledger import Ledger
from gateway.journal import JournalRecord
from tests.support import update_of

T0 = datetime(2026, 1, 2, 14, 30, tzinfo=UTC)
LATER = T0 + timedelta(seconds=1)


def spec(client_order_id: str) -> OrderSpec:
    return OrderSpec(
        "acct-1", client_order_id, "AAPL", Side.BUY, OrderType.LIMIT, Decimal(10),
        TimeInForce.GTC, limit_price=Decimal("100.5"),
    )  # fmt: skip


async def nothing_evicted(order_ids: list[str]) -> dict[str, Order]:
    raise AssertionError(f"no order is evicted here, yet {order_ids} were asked for")


def ledger_with(*client_order_ids: str) -> Ledger:
    """A ledger holding one accepted order per key (o-<key>), all committed."""
    ledger = Ledger()
    for key in client_order_ids:
        ledger.emit(OrderCreated(f"o-{key}", spec(key), T0))
        ledger.emit(OrderAccepted(f"o-{key}", f"B-{key}", T0))
    ledger.take_pending()
    ledger.committed_through(ledger.sequence)
    return ledger


def test_each_change_takes_the_next_sequence_and_one_record() -> None:
    ledger = Ledger()
    created = ledger.emit(OrderCreated("o-1", spec("c-1"), T0))
    accepted = ledger.emit(OrderAccepted("o-1", "B-1", LATER))

    assert (created.last_sequence, accepted.last_sequence) == (1, 2)
    records = ledger.take_pending()
    assert [r.sequence for r in records] == [1, 2]
    assert update_of(records[1]).order == accepted
    assert ledger.take_pending() == []  # handed over once


def test_an_event_that_changes_nothing_gets_no_sequence() -> None:
    ledger = ledger_with("c-1")
    again = ledger.emit(OrderAccepted("o-c-1", "B-c-1", LATER))  # the echo of an ack

    assert again.last_sequence == 2
    assert ledger.sequence == 2
    assert ledger.take_pending() == []


def test_an_illegal_event_changes_nothing() -> None:
    ledger = ledger_with("c-1")
    with pytest.raises(IllegalTransition):
        ledger.emit(OrderCreated("o-c-1", spec("c-1"), LATER))

    assert ledger.sequence == 2
    assert ledger.take_pending() == []


def test_reads_see_the_last_commit_only() -> None:
    ledger = ledger_with("c-1")
    ledger.emit(CancelRequested("o-c-1", LATER))
    ledger.emit(OrderCreated("o-new", spec("new"), LATER))
    ref = OrderRef("acct-1", order_id="o-c-1")

    durable = ledger.find_durable(ref)
    assert durable is not None
    assert durable.status is OrderStatus.ACCEPTED
    assert ledger.find_durable(OrderRef("acct-1", client_order_id="new")) is None
    query = ListOrdersQuery("acct-1", page_size=10)
    page, more = asyncio.run(pages.page(ledger.table, query, ledger.durable, nothing_evicted))
    assert [o.order_id for o in page] == ["o-c-1"]
    assert not more

    ledger.committed_through(ledger.take_pending()[-1].sequence)
    now = ledger.find_durable(ref)
    assert now is not None
    assert now.status is OrderStatus.PENDING_CANCEL
    assert ledger.find_durable(OrderRef("acct-1", client_order_id="new")) is not None


def test_reads_never_cross_accounts() -> None:
    ledger = ledger_with("c-1")
    assert ledger.find_durable(OrderRef("acct-2", order_id="o-c-1")) is None
    assert ledger.find_durable(OrderRef("acct-2", client_order_id="c-1")) is None


def test_executions_are_booked_per_order() -> None:
    ledger = ledger_with("c-1", "c-2")
    ledger.emit(OrderFilled("o-c-1", Fill("x-1", Decimal(4), Decimal(100), LATER), LATER))

    assert ledger.booked("o-c-1", "x-1")
    assert not ledger.booked("o-c-2", "x-1")


def test_replay_rebuilds_the_same_table_and_resumes_numbering_above_the_floor() -> None:
    live = Ledger()
    live.emit(OrderCreated("o-1", spec("c-1"), T0))
    live.emit(OrderAccepted("o-1", "B-1", T0))
    live.emit(OrderFilled("o-1", Fill("x-1", Decimal(4), Decimal(100), LATER), LATER))
    records = live.take_pending()

    replayed = Ledger()
    assert replayed.replay(records, floor=10) == 4  # the fill's position change is a record
    assert replayed.table.get("o-1") == live.table.get("o-1")
    assert replayed.controls.position("acct-1", "AAPL") == live.controls.position("acct-1", "AAPL")
    assert replayed.booked("o-1", "x-1")
    assert (replayed.sequence, replayed.committed) == (10, 10)
    next_order = replayed.emit(OrderCreated("o-2", spec("c-2"), LATER))
    assert next_order.last_sequence == 11


def test_replay_keeps_a_record_that_does_not_apply_as_stored() -> None:
    live = Ledger()
    live.emit(OrderCreated("o-1", spec("c-1"), T0))
    created = live.take_pending()
    twice = Ledger()
    twice.emit(OrderCreated("o-1", spec("c-1"), T0))
    # A second creation of o-1 (only a bug writes one) with its own snapshot.
    bad = twice.take_pending()[0]
    stored = JournalRecord(bad.event, OrderUpdate(2, update_of(bad).order, T0))
    replayed = Ledger()
    assert replayed.replay([*created, stored]) == 2
    assert replayed.table.get("o-1") == update_of(bad).order
    assert replayed.sequence == 2
