"""Replace and cancel-all below the service: validation, the exchange, interpretation, the desk."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway.brokers import (
    BrokerOrderState,
    BrokerRejected,
    BrokerTimeout,
    BrokerUnavailable,
    CancelsAll,
    ExecutionReport,
    ReplaceAck,
    Replaces,
    ReportKind,
    SubmitAck,
)
from gateway.brokers.faults import CallFaults, FaultConfig, FaultyBroker
from gateway.brokers.simulated import SimConfig, SimulatedBroker, SimulatedExchange
from gateway.domain import (
    OrderCanceled,
    OrderRef,
    OrderReplaced,
    OrderStatus,
    RejectCode,
    ReplaceRejected,
    ReplaceTerms,
    Side,
)
from gateway.engine import interpret
from gateway.engine.ledger import Ledger
from gateway.engine.messages import (
    BrokerState,
    BulkCancel,
    BulkCancelDone,
    CancelAll,
    Replace,
    ReplaceDone,
    SubmitDone,
)
from gateway.errors import AlreadyExists, FailedPrecondition, InvalidArgument
from gateway.journal import MemoryJournal
from gateway.journal.checkpoint import Checkpoint, decode, encode
from gateway.journal.inspect import format_jsonl, format_table
from gateway.service.validation import cancel_all_from_proto, replace_order_from_proto
from tests.unit.test_desk import Desk, place, spec

T0 = datetime(2026, 1, 2, 14, 30, tzinfo=UTC)
TERMS = ReplaceTerms("r-1", quantity=Decimal(20), limit_price=Decimal(99))


def future() -> asyncio.Future[Any]:
    return asyncio.get_running_loop().create_future()


# ------------------------------------------------------------- validation


def test_replace_request_becomes_a_ref_and_terms() -> None:
    ref, terms = replace_order_from_proto(
        pb.ReplaceOrderRequest(
            account="acct-1", client_order_id="c-1", replace_id="r:1", limit_price="187.5"
        )
    )
    assert ref == OrderRef("acct-1", client_order_id="c-1")
    assert terms == ReplaceTerms("r:1", limit_price=Decimal("187.5"))


def test_replace_request_reports_every_problem_at_once() -> None:
    with pytest.raises(InvalidArgument) as caught:
        replace_order_from_proto(pb.ReplaceOrderRequest(replace_id="r 1", stop_price="0"))
    assert [v.field for v in caught.value.violations] == [
        "replace_id",
        "stop_price",
        "account",
        "order_id",
    ]
    with pytest.raises(InvalidArgument) as empty:
        replace_order_from_proto(
            pb.ReplaceOrderRequest(account="acct-1", order_id="o-1", replace_id="r-1")
        )
    assert [v.field for v in empty.value.violations] == ["quantity"]


def test_cancel_all_request_filters_are_optional() -> None:
    assert cancel_all_from_proto(pb.CancelAllOrdersRequest(account="a")) == ("a", None, None)
    assert cancel_all_from_proto(
        pb.CancelAllOrdersRequest(account="a", symbol="MSFT", side=pb.SIDE_SELL)
    ) == ("a", "MSFT", Side.SELL)


# ------------------------------------------------------- simulated venue


def resting(exchange: SimulatedExchange) -> None:
    exchange.submit(spec("c-1"), T0)  # a buy limit at 100, below the venue's price


def test_exchange_replace_amends_in_place_and_may_trade_at_once() -> None:
    exchange = SimulatedExchange(SimConfig(seed=1))
    exchange.set_price("AAPL", Decimal(101), T0)
    resting(exchange)
    new = msgspec.structs.replace(spec("c-1"), quantity=Decimal(12), limit_price=Decimal(101))
    ack, reports = exchange.replace("acct-1", "c-1", new, T0)
    assert reports[0].kind is ReportKind.REPLACED
    assert sum(r.fill.quantity for r in reports if r.fill) == Decimal(12)  # now marketable
    state = exchange.order_status("acct-1", "c-1")
    assert state is not None
    assert (state.broker_order_id, state.status, state.spec) == (
        ack.broker_order_id,
        OrderStatus.FILLED,
        new,
    )
    # The same terms again is a repeat; a finished order refuses.
    with pytest.raises(BrokerRejected, match="already filled"):
        exchange.replace("acct-1", "c-1", new, T0)


def test_exchange_replace_refuses_what_a_venue_would() -> None:
    exchange = SimulatedExchange(SimConfig(seed=1))
    exchange.set_price("AAPL", Decimal(101), T0)
    resting(exchange)
    base = spec("c-1")
    for changed, why in (
        (msgspec.structs.replace(base, side=Side.SELL), "only quantity and prices"),
        (msgspec.structs.replace(base, limit_price=None), "needs a positive limit"),
    ):
        with pytest.raises(BrokerRejected, match=why):
            exchange.replace("acct-1", "c-1", changed, T0)
    with pytest.raises(BrokerRejected, match="unknown order"):
        exchange.replace("acct-1", "nope", base, T0)
    ack, reports = exchange.replace("acct-1", "c-1", base, T0)  # a repeat: acked, no reports
    assert reports == []
    assert ack.broker_order_id


# --------------------------------------------------------- interpretation


async def accepted_pending(**config: Any) -> tuple[Desk, str]:
    desk = Desk(**config)
    order = await place(desk, "c-1")
    desk.batch(SubmitDone(order.order_id, ack=SubmitAck("B-1")))
    (pending,) = desk.batch(Replace(OrderRef("acct-1", order_id=order.order_id), TERMS, future()))
    assert pending.status is OrderStatus.PENDING_REPLACE
    return desk, order.order_id


def report(kind: ReportKind, broker_order_id: str = "B-2", reason: str = "") -> ExecutionReport:
    return ExecutionReport(kind, "acct-1", "c-1", T0, broker_order_id, reason=reason)


async def test_replace_reports_settle_the_pending_replace_once() -> None:
    desk, order_id = await accepted_pending()
    order = desk.order(order_id)
    booked = desk.ledger.booked
    assert interpret.report_event(order, report(ReportKind.REPLACED), booked) == OrderReplaced(
        order_id, TERMS, T0, "B-2"
    )
    refused = interpret.report_event(
        order, report(ReportKind.REPLACE_REJECTED, reason="no"), booked
    )
    assert refused == ReplaceRejected(order_id, "no", T0)
    settled = desk.ledger.emit(OrderReplaced(order_id, TERMS, T0, "B-2"))
    assert interpret.report_event(settled, report(ReportKind.REPLACED), booked) is None  # echo


async def test_the_broker_terms_settle_a_replace_whose_answer_was_lost() -> None:
    desk, order_id = await accepted_pending()
    order = desk.order(order_id)

    def state(terms: Any) -> BrokerOrderState:
        return BrokerOrderState(
            "acct-1", "c-1", "B-1", OrderStatus.ACCEPTED, Decimal(0), spec=terms
        )

    new = TERMS.applied_to(order.spec)
    assert isinstance(interpret.replace_outcome(order, state(new), T0), OrderReplaced)
    assert isinstance(interpret.replace_outcome(order, state(order.spec), T0), ReplaceRejected)
    assert interpret.replace_outcome(order, state(None), T0) is None  # no evidence
    other = msgspec.structs.replace(new, quantity=Decimal(7))
    assert interpret.replace_outcome(order, state(other), T0) is None


# ------------------------------------------------------------------ desk


async def test_the_replace_starts_only_after_it_is_durable_and_its_ack_settles_it() -> None:
    desk, order_id = await accepted_pending()
    assert desk.work.calls[-1] == ("replace", order_id)
    desk.batch(ReplaceDone(order_id, ack=ReplaceAck("B-2")))
    order = desk.order(order_id)
    assert (order.status, order.spec.quantity, order.broker_order_id) == (
        OrderStatus.ACCEPTED,
        Decimal(20),
        "B-2",
    )
    # Reports for the old and the new broker id both find the order.
    assert desk.ledger.table.by_broker_id("B-1") is order
    assert desk.ledger.table.by_broker_id("B-2") is order
    assert desk.desk.in_flight_count == 0


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (BrokerRejected("price band"), "price band"),
        (BrokerUnavailable("down"), "broker unavailable: down"),
    ],
)
async def test_a_refused_or_undelivered_replace_keeps_the_old_terms(
    error: Exception, reason: str
) -> None:
    desk, order_id = await accepted_pending()
    desk.batch(ReplaceDone(order_id, error=error))
    order = desk.order(order_id)
    assert (order.status, order.spec.quantity, order.reject_reason) == (
        OrderStatus.ACCEPTED,
        Decimal(10),
        reason,
    )


async def test_an_unknown_replace_outcome_waits_for_the_broker_state() -> None:
    desk, order_id = await accepted_pending()
    desk.batch(ReplaceDone(order_id, error=BrokerTimeout("?")))
    assert desk.order(order_id).status is OrderStatus.PENDING_REPLACE  # never assumed
    new = TERMS.applied_to(desk.order(order_id).spec)
    state = BrokerOrderState("acct-1", "c-1", "B-1", OrderStatus.ACCEPTED, Decimal(0), spec=new)
    desk.batch(ReplaceDone(order_id, unresolved=True, state=state))
    assert desk.order(order_id).spec == new
    assert desk.order(order_id).status is OrderStatus.ACCEPTED


async def test_a_broker_without_replace_refuses_before_recording_anything() -> None:
    desk = Desk()
    desk.work.supports_replace = False
    order = await place(desk, "c-1")
    desk.batch(SubmitDone(order.order_id, ack=SubmitAck("B-1")))
    before = desk.ledger.sequence
    reply = future()
    desk.desk.handle(Replace(OrderRef("acct-1", order_id=order.order_id), TERMS, reply))
    ((_, refusal),) = desk.desk.replies
    assert isinstance(refusal, FailedPrecondition)
    assert refusal.reason == "REPLACE_NOT_SUPPORTED"
    assert desk.ledger.sequence == before


async def test_replace_ids_are_per_account_and_survive_a_checkpoint() -> None:
    desk, order_id = await accepted_pending()
    again = desk.batch(Replace(OrderRef("acct-1", order_id=order_id), TERMS, future()))
    assert again[0].order_id == order_id  # a retry: the order, nothing sent again
    assert [c for c in desk.work.calls if c[0] == "replace"] == [("replace", order_id)]
    changed = ReplaceTerms("r-1", quantity=Decimal(30))
    desk.desk.handle(Replace(OrderRef("acct-1", order_id=order_id), changed, future()))
    assert isinstance(desk.desk.replies.pop()[1], AlreadyExists)

    snapshot = desk.ledger.snapshot()
    assert snapshot is not None
    sequence, orders, exec_ids, accounts = snapshot
    restored = Ledger()
    restored.restore(decode(encode(Checkpoint(sequence, 0, orders, exec_ids, list(accounts)))))
    assert restored.replace_request("acct-1", "r-1") == (order_id, TERMS)
    assert restored.table.get(order_id) == desk.order(order_id)


async def test_cancel_all_goes_in_batches_and_honours_the_side() -> None:
    desk = Desk()
    for i in range(5):
        order = await place(desk, f"c-{i}")
        desk.batch(SubmitDone(order.order_id, ack=SubmitAck(f"B-{i}")))
    ((first, after),) = desk.batch(CancelAll("acct-1", None, None, 0, 2, future()))
    assert [o.order_id for o in first] == ["o-1", "o-2"]
    assert after is not None
    ((rest, done),) = desk.batch(CancelAll("acct-1", "AAPL", None, after, 10, future()))
    assert [o.order_id for o in rest] == ["o-3", "o-4", "o-5"]
    assert done is None
    assert all(o.status is OrderStatus.PENDING_CANCEL for o in first + rest)
    ((sells, _),) = desk.batch(CancelAll("acct-1", None, Side.SELL, 0, 10, future()))
    assert sells == []


async def test_an_unfiltered_cancel_all_is_one_broker_call_where_the_broker_has_it() -> None:
    desk = Desk()
    desk.work.supports_cancel_all = True
    for i in range(3):
        order = await place(desk, f"c-{i}")
        desk.batch(SubmitDone(order.order_id, ack=SubmitAck(f"B-{i}")))
    ((asked, _),) = desk.batch(CancelAll("acct-1", None, None, 0, 10, future(), bulk=True))
    ids = [o.order_id for o in asked]
    assert not [c for c in desk.work.calls if c[0] == "cancel"]  # none one by one
    desk.batch(BulkCancel("acct-1", ids, future()))
    assert desk.work.calls[-1] == ("cancel_all", "acct-1")
    # Refused: each order still waiting is cancelled on its own instead.
    desk.batch(BulkCancelDone("acct-1", ids, error=BrokerRejected("not now")))
    assert [c for c in desk.work.calls if c[0] == "cancel"] == [("cancel", i) for i in ids]
    assert desk.desk.in_flight_count == 3  # those cancels are in flight


async def test_a_cancel_all_of_unknown_outcome_is_left_to_reconciliation() -> None:
    desk = Desk()
    desk.work.supports_cancel_all = True
    order = await place(desk, "c-1")
    desk.batch(SubmitDone(order.order_id, ack=SubmitAck("B-1")))
    desk.batch(CancelAll("acct-1", None, None, 0, 10, future(), bulk=True))
    desk.batch(
        BulkCancelDone("acct-1", [order.order_id], error=BrokerTimeout("?"), unresolved=True)
    )
    assert desk.order(order.order_id).status is OrderStatus.PENDING_CANCEL
    assert not [c for c in desk.work.calls if c[0] == "cancel"]
    assert desk.desk.in_flight_count == 0


async def test_a_replace_nobody_here_asked_for_ends_the_order() -> None:
    desk = Desk()
    order = await place(desk, "c-1")
    desk.batch(SubmitDone(order.order_id, ack=SubmitAck("B-1")))
    accepted = desk.order(order.order_id)
    booked = desk.ledger.booked
    # Replaced at the venue by its own UI: the order lives on there, not here.
    ended = interpret.report_event(accepted, report(ReportKind.REPLACED, "B-9"), booked)
    assert isinstance(ended, OrderCanceled)
    assert "B-9" in ended.reason
    # The echo of a replace the gateway applied (same broker id) is nothing.
    assert interpret.report_event(accepted, report(ReportKind.REPLACED, "B-1"), booked) is None


async def test_the_journal_inspector_shows_replaces() -> None:
    desk, order_id = await accepted_pending()
    desk.batch(ReplaceDone(order_id, ack=ReplaceAck("B-2")))
    replay = Ledger()
    journal = MemoryJournal()
    await journal.append(desk.journaled)
    events = [r.event for r in journal.replay()]
    rows = list(format_table(journal.replay()))[1:]
    assert [row.split()[3:5] for row in rows][-2:] == [
        ["replace_requested", "PENDING_REPLACE"],
        ["replaced", "ACCEPTED"],
    ]
    assert rows[-1].endswith("replace_id=r-1 quantity=20 limit=99 broker_order_id=B-2")
    exported = [json.loads(line) for line in format_jsonl(journal.replay())]
    assert exported[-1]["event"]["type"] == "replaced"
    assert replay.replay(journal.replay()) == len(events)
    assert replay.table.get(order_id) == desk.order(order_id)


async def test_after_a_restart_a_pending_replace_is_settled_by_the_broker_terms() -> None:
    """A replace journaled but with no call running (the process died): the
    next state of the order, from reconciliation, says whether it happened."""
    for terms_at_broker, status, quantity in (
        ("new", OrderStatus.ACCEPTED, Decimal(20)),
        ("old", OrderStatus.ACCEPTED, Decimal(10)),
    ):
        desk, order_id = await accepted_pending(absence_grace=0)
        desk.batch(ReplaceDone(order_id, unresolved=True))  # as after a restart: none in flight
        order = desk.order(order_id)
        spec = TERMS.applied_to(order.spec) if terms_at_broker == "new" else order.spec
        state = BrokerOrderState(
            "acct-1", "c-1", "B-1", OrderStatus.ACCEPTED, Decimal(0), spec=spec
        )
        desk.batch(BrokerState(state))
        settled = desk.order(order_id)
        assert (settled.status, settled.spec.quantity) == (status, quantity)
        assert settled.pending_replace is None


async def test_a_reconciliation_state_waits_out_the_grace_before_settling_a_replace() -> None:
    """It may have been asked for before the replace reached the broker."""
    desk, order_id = await accepted_pending()  # absence_grace 60s, the clock stands still
    desk.batch(ReplaceDone(order_id, unresolved=True))
    old = desk.order(order_id).spec
    state = BrokerOrderState("acct-1", "c-1", "B-1", OrderStatus.ACCEPTED, Decimal(0), spec=old)
    desk.batch(BrokerState(state))
    assert desk.order(order_id).status is OrderStatus.PENDING_REPLACE


async def test_the_fault_injector_passes_replace_through_and_faults_it_as_a_cancel() -> None:
    inner = SimulatedBroker(SimConfig(seed=1, ack_latency=0, tick_interval=None))
    faulty = FaultyBroker(inner, FaultConfig(cancel=CallFaults(error_rate=1.0)))
    assert isinstance(faulty, Replaces)
    assert not isinstance(faulty, CancelsAll)  # the simulated broker has no cancel-all
    await faulty.connect()
    try:
        await inner.set_price("AAPL", Decimal(101))  # the buy at 100 rests
        ack = await faulty.submit(spec("c-1"))
        new = msgspec.structs.replace(spec("c-1"), quantity=Decimal(20))
        with pytest.raises(BrokerUnavailable, match="injected"):
            await faulty.replace("acct-1", "c-1", ack.broker_order_id, new, "r-1")
        faulty.enabled = False
        replaced = await faulty.replace("acct-1", "c-1", ack.broker_order_id, new, "r-1")
        assert replaced.broker_order_id == ack.broker_order_id
    finally:
        await faulty.close()


async def test_a_checkpoint_keeps_replaced_terms_and_reject_codes() -> None:
    desk, order_id = await accepted_pending()
    desk.batch(ReplaceDone(order_id, ack=ReplaceAck("B-2")))
    rejected = await place(desk, "c-2")
    desk.batch(SubmitDone(rejected.order_id, error=BrokerUnavailable("down")))
    snapshot = desk.ledger.snapshot()
    assert snapshot is not None
    sequence, orders, exec_ids, accounts = snapshot
    loaded = {
        o.order_id: o
        for o in decode(encode(Checkpoint(sequence, 0, orders, exec_ids, list(accounts)))).orders
    }
    assert loaded == {o.order_id: o for o in orders}
    replaced = loaded[order_id]
    assert (replaced.spec.quantity, replaced.placed.quantity) == (Decimal(20), Decimal(10))
    assert loaded[rejected.order_id].reject_code is RejectCode.NOT_DELIVERED
