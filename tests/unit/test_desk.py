"""The order desk without the actor: what each message does, and what it asks of the broker."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec

from gateway.brokers import BrokerTimeout, ExecutionReport, ReportKind, SubmitAck
from gateway.brokers.base import BrokerOrderState
from gateway.domain import (
    Fill,
    Order,
    OrderRef,
    OrderSpec,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from gateway.engine import EngineConfig
from gateway.engine.breaker import BrokerHealth
from gateway.engine.desk import OrderDesk
from gateway.engine.ledger import Ledger
from gateway.engine.messages import (
    Absent,
    BrokerOpenOrders,
    BrokerReports,
    BrokerState,
    Cancel,
    CancelDone,
    Place,
    SubmitDone,
)
from gateway.journal import JournalRecord

T0 = datetime(2026, 1, 2, 14, 30, tzinfo=UTC)


@dataclass
class Work:
    """Records what the desk asks of the broker (the actor would start tasks)."""

    calls: list[tuple[str, str]] = field(default_factory=list)
    supports_replace: bool = True
    supports_cancel_all: bool = False

    def submit(
        self, order: Order, *, ask_first: bool = False, deadline: float | None = None
    ) -> None:
        self.calls.append(("submit", order.order_id))

    def recheck(self, order: Order) -> None:
        self.calls.append(("recheck", order.order_id))

    def cancel(self, order: Order) -> None:
        self.calls.append(("cancel", order.order_id))

    def verify(self, order: Order) -> None:
        self.calls.append(("verify", order.order_id))

    def replace(self, order: Order) -> None:
        self.calls.append(("replace", order.order_id))

    def cancel_all(self, account: str, order_ids: list[str]) -> None:
        self.calls.append(("cancel_all", account))


def spec(key: str) -> OrderSpec:
    return OrderSpec(
        "acct-1", key, "AAPL", Side.BUY, OrderType.LIMIT, Decimal(10), TimeInForce.GTC,
        limit_price=Decimal(100),
    )  # fmt: skip


class Desk:
    """A desk with its ledger, run batch by batch as the actor would."""

    def __init__(self, **config: Any) -> None:
        self.ledger = Ledger()
        self.journaled: list[JournalRecord] = []  # every record committed, in order
        self.work = Work()
        ids = (f"o-{n}" for n in itertools.count(1))
        loop = asyncio.get_running_loop()
        self.desk = OrderDesk(
            self.ledger,
            EngineConfig(**config),
            BrokerHealth(5),
            self.work,
            clock=lambda: T0,
            new_id=lambda: next(ids),
            new_future=loop.create_future,
        )

    def batch(self, *messages: Any) -> list[Any]:
        """Handle ``messages`` as one batch, commit, run the after-commit work."""
        for message in messages:
            self.desk.handle(message)
        pending = self.ledger.take_pending()
        self.journaled += pending
        if pending:
            self.ledger.committed_through(pending[-1].sequence)
        replies, self.desk.replies = self.desk.replies, []
        actions, self.desk.after_commit = self.desk.after_commit, []
        for action in actions:
            action()
        return [value for _, value in replies]

    def order(self, order_id: str) -> Order:
        order = self.ledger.table.get(order_id)
        assert order is not None
        return order


async def place(desk: Desk, key: str) -> Order:
    (outcome,) = desk.batch(Place(spec(key), asyncio.get_running_loop().create_future()))
    order: Order = outcome.order
    return order


async def test_the_submit_starts_only_after_the_order_is_durable() -> None:
    desk = Desk()
    desk.desk.handle(Place(spec("c-1"), asyncio.get_running_loop().create_future()))
    assert desk.work.calls == []  # nothing reaches the broker before the commit

    desk.batch()
    assert desk.work.calls == [("submit", "o-1")]


async def test_a_cancel_during_the_submit_is_sent_once_the_submit_returns() -> None:
    desk = Desk()
    order = await place(desk, "c-1")
    future = asyncio.get_running_loop().create_future()
    (cancelling,) = desk.batch(Cancel(OrderRef("acct-1", order_id=order.order_id), future))
    assert cancelling.status is OrderStatus.PENDING_CANCEL
    assert desk.work.calls == [("submit", "o-1")]  # held back: the broker may not know it

    desk.batch(SubmitDone("o-1", ack=SubmitAck("B-1")))
    assert desk.work.calls == [("submit", "o-1"), ("cancel", "o-1")]
    assert desk.order("o-1").broker_order_id == "B-1"


async def test_an_unknown_submit_outcome_stays_pending_and_is_asked_about() -> None:
    desk = Desk()
    await place(desk, "c-1")
    desk.batch(SubmitDone("o-1", error=BrokerTimeout("no answer")))

    assert desk.order("o-1").status is OrderStatus.PENDING_NEW  # never assumed rejected
    assert desk.work.calls[-1] == ("recheck", "o-1")


async def test_the_caller_waits_until_the_order_leaves_pending_new() -> None:
    desk = Desk()
    (outcome,) = desk.batch(Place(spec("c-1"), asyncio.get_running_loop().create_future()))
    assert outcome.settled is not None
    assert not outcome.settled.done()

    desk.batch(SubmitDone("o-1", ack=SubmitAck("B-1")))
    settled = outcome.settled.result()
    assert settled is not None
    assert settled.status is OrderStatus.ACCEPTED
    assert desk.desk.in_flight_count == 0  # nothing left in flight: no record kept


async def test_an_unconfirmed_cancel_is_resent_then_reported_not_confirmed() -> None:
    desk = Desk(broker_attempts=2)
    order = await place(desk, "c-1")
    desk.batch(SubmitDone("o-1", ack=SubmitAck("B-1")))
    future = asyncio.get_running_loop().create_future()
    desk.batch(Cancel(OrderRef("acct-1", order_id=order.order_id), future))
    desk.batch(CancelDone("o-1", unresolved=True))
    still_open = BrokerOrderState("acct-1", "c-1", "B-1", OrderStatus.ACCEPTED, Decimal(0))

    for _ in range(2):
        desk.batch(BrokerState(still_open))
        desk.batch(CancelDone("o-1", unresolved=True))
    assert [c for c in desk.work.calls if c[0] == "cancel"] == [("cancel", "o-1")] * 3

    desk.batch(BrokerState(still_open))
    assert desk.order("o-1").status is OrderStatus.ACCEPTED  # the cancel was refused
    assert "not confirmed" in desk.order("o-1").reject_reason
    assert desk.desk.in_flight_count == 0


async def test_foreign_orders_are_reported_once_while_open_and_forgotten_after() -> None:
    desk = Desk()
    foreign = BrokerOrderState("acct-1", "elsewhere", "B-9", OrderStatus.ACCEPTED, Decimal(0))
    desk.batch(BrokerOpenOrders([foreign]))
    desk.batch(BrokerOpenOrders([foreign]))
    assert desk.desk.foreign_orders == 1
    desk.batch(BrokerOpenOrders([]))
    desk.batch(BrokerOpenOrders([foreign]))  # open again after it was gone: reported again
    assert desk.desk.foreign_orders == 2


async def test_an_open_broker_order_of_ours_missing_here_is_adopted_with_terms_and_fills() -> None:
    desk = Desk()
    await place(desk, "kept")  # the account is one this gateway trades
    lost = spec("lost")
    fill = Fill("E-1", Decimal(4), Decimal("99.5"), T0)
    state = BrokerOrderState(
        "acct-1", "lost", "B-7", OrderStatus.PARTIALLY_FILLED, Decimal(4), (fill,), spec=lost
    )
    desk.batch(BrokerOpenOrders([state]))
    desk.batch(BrokerOpenOrders([state]))  # the next pass finds it in the table

    adopted = desk.ledger.table.by_key("acct-1", "lost")
    assert adopted is not None
    assert adopted.order_id == "o-2"
    assert adopted.spec == lost
    assert adopted.status is OrderStatus.PARTIALLY_FILLED
    assert adopted.broker_order_id == "B-7"
    assert (adopted.filled_quantity, adopted.average_fill_price) == (Decimal(4), Decimal("99.5"))
    assert (desk.desk.adopted_orders, desk.desk.foreign_orders) == (1, 0)
    assert desk.work.calls == [("submit", "o-1")]  # nothing sent for the adopted order


async def test_broker_orders_without_terms_or_in_an_account_never_traded_are_not_adopted() -> None:
    desk = Desk()
    await place(desk, "kept")
    no_terms = BrokerOrderState("acct-1", "x-1", "B-8", OrderStatus.ACCEPTED, Decimal(0))
    elsewhere = msgspec.structs.replace(spec("x-2"), account="acct-9")
    other = BrokerOrderState(
        "acct-9", "x-2", "B-9", OrderStatus.ACCEPTED, Decimal(0), spec=elsewhere
    )
    desk.batch(BrokerOpenOrders([no_terms, other]))
    assert (desk.desk.adopted_orders, desk.desk.foreign_orders) == (0, 2)
    assert desk.ledger.table.by_key("acct-1", "x-1") is None
    assert desk.ledger.table.by_key("acct-9", "x-2") is None


async def test_an_order_cancelled_in_doubt_that_never_arrived_is_rejected_after_the_grace() -> None:
    desk = Desk(absence_grace=0)
    order = await place(desk, "c-1")
    desk.batch(SubmitDone("o-1", error=BrokerTimeout("no answer")))
    future = asyncio.get_running_loop().create_future()
    desk.batch(Cancel(OrderRef("acct-1", order_id=order.order_id), future))
    assert desk.order("o-1").status is OrderStatus.PENDING_CANCEL

    desk.batch(Absent("o-1"))  # the broker has no such order
    assert desk.order("o-1").status is OrderStatus.REJECTED
    assert "never arrived" in desk.order("o-1").reject_reason


async def test_an_order_that_ends_on_older_totals_asks_the_broker_once_for_its_final_ones() -> None:
    # 4 booked from the broker's totals (their executions lost), then 6 more
    # itemised: FILLED, with a provisional part priced at the older average.
    desk = Desk()
    order = await place(desk, "c-1")
    desk.batch(SubmitDone(order.order_id, ack=SubmitAck("B-1")))
    state = BrokerOrderState(
        "acct-1", "c-1", "B-1", OrderStatus.PARTIALLY_FILLED, Decimal(4),
        average_fill_price=Decimal("99.333333333"),
    )  # fmt: skip
    desk.batch(BrokerState(state))
    fill = Fill("x-5", Decimal(6), Decimal(99), T0)
    report = ExecutionReport(
        ReportKind.FILL, "acct-1", "c-1", T0, "B-1", fill, filled_quantity=Decimal(10)
    )
    desk.batch(BrokerReports([report]))
    ended = desk.order(order.order_id)
    assert ended.status is OrderStatus.FILLED
    assert [c for c in desk.work.calls if c[0] == "verify"] == [("verify", order.order_id)]
    # The broker's final totals re-book the provisional part: its average stands.
    final = dataclasses.replace(
        state, status=OrderStatus.FILLED, filled_quantity=Decimal(10),
        average_fill_price=Decimal("99.133333333"),
    )  # fmt: skip
    desk.batch(BrokerState(final))
    assert desk.order(order.order_id).average_fill_price == Decimal("99.133333333")
    desk.batch(BrokerReports([report]))  # a repeat changes nothing and asks nothing more
    assert [c for c in desk.work.calls if c[0] == "verify"] == [("verify", order.order_id)]
