"""The FIX adapter against our fault-injecting acceptor: cuts, gaps, repeats, rejects.

Each test runs the real ``FixBroker`` (and, where the engine's answer matters,
a whole gateway in this process) against ``tests/fix/fault_acceptor.py`` on
loopback. Heartbeats are one second, so silence is noticed quickly.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway._proto.execution.v1 import execution_pb2_grpc as pb_grpc
from gateway.app import SERVICE_NAME, Gateway
from gateway.brokers.base import ExecutionReport, ReportKind
from gateway.brokers.errors import BrokerRejected, BrokerUnavailable
from gateway.brokers.fix import FixBroker, FixConfig, FixTls, SessionSchedule
from gateway.brokers.testing import each_report
from gateway.domain import OrderFilled, OrderSpec, OrderType, Side, TimeInForce
from gateway.journal import MemoryJournal
from tests.conftest import gateway_test_config
from tests.fix.fault_acceptor import FaultAcceptor
from tests.ops_support import make_ca, make_cert
from tests.support import eventually, place_request

if TYPE_CHECKING:
    from gateway._proto.execution.v1.execution_pb2_grpc import ExecutionServiceAsyncStub

ACCOUNT = "main"


def fix_config(port: int, **changes: Any) -> FixConfig:
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "sender_comp_id": "GATEWAY",
        "target_comp_id": "VENUE",
        "accounts": {ACCOUNT: "ACC-1"},
        "heartbeat_interval": 1,
        "logon_timeout": 2.0,
        "reconnect_backoff": 0.05,
        "reconnect_backoff_max": 0.2,
        "request_timeout": 3.0,
    }
    settings.update(changes)
    return FixConfig(**settings)


def market(client_order_id: str, quantity: str = "9") -> OrderSpec:
    return OrderSpec(
        ACCOUNT,
        client_order_id,
        "AAPL",
        Side.BUY,
        OrderType.MARKET,
        Decimal(quantity),
        TimeInForce.DAY,
    )


@pytest.fixture
async def venue() -> AsyncIterator[FaultAcceptor]:
    acceptor = FaultAcceptor()
    await acceptor.start()
    try:
        yield acceptor
    finally:
        await acceptor.stop()


@pytest.fixture
async def broker(venue: FaultAcceptor, tmp_path: Path) -> AsyncIterator[FixBroker]:
    fix = FixBroker(fix_config(venue.port), tmp_path / "fix.sqlite")
    await fix.connect()
    assert fix.logged_on, fix.last_error
    try:
        yield fix
    finally:
        await fix.close()


class Collector:
    """Every report the broker streams, read by a background task."""

    def __init__(self, broker: FixBroker) -> None:
        self.reports: list[ExecutionReport] = []
        self._task = asyncio.create_task(self._read(broker))

    async def _read(self, broker: FixBroker) -> None:
        async for report in each_report(broker.reports()):
            self.reports.append(report)

    def fills(self) -> Counter[str]:
        return Counter(r.fill.exec_id for r in self.reports if r.fill is not None)

    def filled(self, client_order_id: str) -> Decimal:
        return sum(
            (
                r.fill.quantity
                for r in self.reports
                if r.fill is not None and r.client_order_id == client_order_id
            ),
            Decimal(0),
        )

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def test_connection_cut_mid_fills_is_healed_by_resend_each_fill_once(
    venue: FaultAcceptor, broker: FixBroker
) -> None:
    venue.fills_per_order, venue.drop_after_fill = 3, 1
    reports = Collector(broker)
    # The New ack is written before the cut: the submit is answered.
    assert (await broker.submit(market("cut-1"))).broker_order_id == "O-cut-1"
    await eventually(
        lambda: reports.filled("cut-1"),
        lambda q: q == Decimal(9),
        what="all three fills after the reconnect",
    )
    assert broker.logons == 2
    assert venue.resend_requests >= 1  # the gateway asked for what it missed
    assert list(reports.fills().values()) == [1, 1, 1]
    assert venue.count("D")["cut-1"] == 1
    await reports.stop()


async def test_gap_in_a_live_session_is_filled_in_order(
    venue: FaultAcceptor, broker: FixBroker
) -> None:
    venue.skip_next = True  # the New ack is numbered but never written
    reports = Collector(broker)
    ack = await broker.submit(market("gap-1"))  # the fill behind the gap answers it
    assert ack.broker_order_id == "O-gap-1"
    await eventually(lambda: len(reports.reports), lambda n: n >= 2, what="both reports")
    assert [r.kind for r in reports.reports] == [ReportKind.ACCEPTED, ReportKind.FILL]
    assert venue.resend_requests == 1
    await reports.stop()


async def test_repeated_reports_with_poss_dup_or_poss_resend_are_applied_once(
    venue: FaultAcceptor, broker: FixBroker
) -> None:
    venue.fills_per_order, venue.duplicate_fills = 3, True
    reports = Collector(broker)
    await broker.submit(market("dup-1"))
    await eventually(
        lambda: reports.filled("dup-1"), lambda q: q == Decimal(9), what="the three fills"
    )
    # Give the repeats (already written before the last fill) a chance to arrive.
    await eventually(lambda: broker.store.next_in, lambda n: n >= 1 + 1 + 1 + 3 * 2 + 1)
    assert list(reports.fills().values()) == [1, 1, 1]
    assert reports.filled("dup-1") == Decimal(9)
    await reports.stop()


async def test_status_and_mass_status_answer_for_our_orders(
    venue: FaultAcceptor, tmp_path: Path
) -> None:
    venue.fill_orders = False
    fix = FixBroker(fix_config(venue.port, mass_status=True), tmp_path / "fix.sqlite")
    await fix.connect()
    try:
        await fix.submit(market("st-1", "4"))
        state = await fix.order_status(ACCOUNT, "st-1")
        assert state is not None
        assert (state.broker_order_id, state.filled_quantity) == ("O-st-1", Decimal(0))
        assert await fix.order_status(ACCOUNT, "never-sent") is None
        assert [s.client_order_id for s in await fix.open_orders()] == ["st-1"]
        assert venue.count("H")["st-1"] == 1
        assert len([m for m in venue.received if m.msg_type == "AF"]) == 1
    finally:
        await fix.close()


async def test_orders_for_unmapped_accounts_and_without_a_session_are_refused(
    venue: FaultAcceptor, broker: FixBroker
) -> None:
    other = OrderSpec(
        "other", "x-1", "AAPL", Side.BUY, OrderType.MARKET, Decimal(1), TimeInForce.DAY
    )
    with pytest.raises(BrokerRejected, match="not traded"):
        await broker.submit(other)
    venue.refuse_logon = "not now"
    venue.hang_up()
    await eventually(lambda: broker.logged_on, lambda up: not up)
    with pytest.raises(BrokerUnavailable):
        await broker.submit(market("x-2"))
    assert venue.count("D") == Counter()


# --- a whole gateway ----------------------------------------------------------


@pytest.fixture
async def gateway(venue: FaultAcceptor, tmp_path: Path) -> AsyncIterator[Gateway]:
    fix = FixBroker(fix_config(venue.port), tmp_path / "fix.sqlite")
    gw = Gateway(gateway_test_config(tmp_path), broker=fix, journal=MemoryJournal())
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop(grace=0.5)


async def order(stub: ExecutionServiceAsyncStub, client_order_id: str) -> pb.Order:
    response = await stub.GetOrderStatus(
        pb.GetOrderStatusRequest(account=ACCOUNT, client_order_id=client_order_id)
    )
    return response.order


async def test_cancel_reject_leaves_the_order_working_with_the_reason(
    venue: FaultAcceptor, gateway: Gateway
) -> None:
    venue.fill_orders, venue.reject_cancels = False, True
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        stub: ExecutionServiceAsyncStub = pb_grpc.ExecutionServiceStub(channel)
        await stub.PlaceOrder(place_request("cr-1", account=ACCOUNT, quantity="5"))
        await eventually(
            lambda: order(stub, "cr-1"), lambda o: o.status == pb.ORDER_STATUS_ACCEPTED
        )
        await stub.CancelOrder(pb.CancelOrderRequest(account=ACCOUNT, client_order_id="cr-1"))
        settled = await eventually(
            lambda: order(stub, "cr-1"),
            lambda o: o.status == pb.ORDER_STATUS_ACCEPTED and "too late" in o.reject_reason,
            what="the cancel reject",
        )
    assert settled.filled_quantity == "0"
    assert [m.get(41) for m in venue.received if m.msg_type == "F"] == ["cr-1"]


async def test_refused_logon_serves_reads_and_reports_not_serving(
    venue: FaultAcceptor, tmp_path: Path
) -> None:
    venue.refuse_logon = "unknown SenderCompID GATEWAY"
    fix = FixBroker(fix_config(venue.port), tmp_path / "fix.sqlite")
    gw = Gateway(gateway_test_config(tmp_path), broker=fix, journal=MemoryJournal())
    await gw.start()
    try:
        assert "unknown SenderCompID GATEWAY" in fix.last_error
        async with grpc.aio.insecure_channel(gw.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            answer = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
            assert answer.status == health_pb2.HealthCheckResponse.NOT_SERVING
            stub = pb_grpc.ExecutionServiceStub(channel)
            listed = await stub.ListOrders(pb.ListOrdersRequest(account=ACCOUNT))
            assert list(listed.orders) == []
            # An order is refused with the session's reason, and never reaches the venue.
            placed = await stub.PlaceOrder(place_request("r-1", account=ACCOUNT))
            assert placed.order.status == pb.ORDER_STATUS_REJECTED
            assert "unknown SenderCompID GATEWAY" in placed.order.reject_reason
    finally:
        await gw.stop(grace=0.5)
    assert venue.count("D") == Counter()


class FakeClock:
    """The adapter's clock, moved by the test (the session's timers follow it)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def test_schedule_logs_out_at_the_end_and_resets_at_the_next_start(
    venue: FaultAcceptor, tmp_path: Path
) -> None:
    clock = FakeClock(datetime(2026, 1, 5, 16, 59, 50, tzinfo=UTC))
    schedule = SessionSchedule(start=time(9, 0), end=time(17, 0))
    fix = FixBroker(fix_config(venue.port, schedule=schedule), tmp_path / "fix.sqlite", clock=clock)
    await fix.connect()
    try:
        assert fix.logged_on
        await fix.submit(market("day-1"))
        first_day_numbers = fix.store.next_out
        assert first_day_numbers > 2
        clock.now = datetime(2026, 1, 5, 17, 0, 1, tzinfo=UTC)
        await eventually(lambda: fix.logged_on, lambda up: not up, what="logout at the end")
        logout = next(m for m in venue.received if m.msg_type == "5")
        assert logout.get(58) == "end of session"
        assert venue.logons == 1  # and it stays away overnight
        clock.now = datetime(2026, 1, 6, 9, 0, 1, tzinfo=UTC)
        await eventually(lambda: fix.logged_on, what="logon at the next start")
        second = [m for m in venue.received if m.msg_type == "A"][-1]
        assert (second.seq_num, second.get(141)) == (1, "Y")
    finally:
        await fix.close()


async def test_tls_session_verifies_the_counterparty(tmp_path: Path) -> None:
    ca, stranger = make_ca("fix-ca"), make_ca("other-ca")
    cert, key = make_cert(ca, "venue", server=True).write(tmp_path, "venue")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    venue = FaultAcceptor(tls=server)
    await venue.start()
    ca_file, _ = ca.write(tmp_path, "ca")
    wrong_ca, _ = stranger.write(tmp_path, "stranger")
    trusted = FixBroker(
        fix_config(venue.port, tls=FixTls(ca_file=ca_file)), tmp_path / "trusted.sqlite"
    )
    untrusted = FixBroker(
        fix_config(venue.port, tls=FixTls(ca_file=wrong_ca), logon_timeout=1.0),
        tmp_path / "untrusted.sqlite",
    )
    try:
        await trusted.connect()
        assert trusted.logged_on, trusted.last_error
        assert (await trusted.submit(market("tls-1"))).broker_order_id == "O-tls-1"
        await untrusted.connect()
        assert not untrusted.logged_on
        assert "CERTIFICATE_VERIFY_FAILED" in untrusted.last_error
    finally:
        await trusted.close()
        await untrusted.close()
        await venue.stop()
    assert venue.logons == 1


async def test_business_reject_of_a_cancel_is_a_cancel_reject(
    venue: FaultAcceptor, broker: FixBroker
) -> None:
    venue.fill_orders, venue.business_reject = False, frozenset({"F"})
    reports = Collector(broker)
    await broker.submit(market("bj-1", "2"))
    await broker.cancel(ACCOUNT, "bj-1", "")
    rejected = await eventually(
        lambda: [r for r in reports.reports if r.kind is ReportKind.CANCEL_REJECTED],
        what="the cancel reject",
    )
    assert (rejected[0].client_order_id, rejected[0].reason) == ("bj-1", "F not supported")
    await reports.stop()


async def test_an_unsupported_message_is_answered_with_a_business_reject(
    venue: FaultAcceptor, broker: FixBroker
) -> None:
    venue.send("B", [(148, "headline")])  # News: not something the gateway reads
    answer = await eventually(
        lambda: [m for m in venue.received if m.msg_type == "j"], what="a BusinessMessageReject"
    )
    assert (answer[0].get(372), answer[0].get(380)) == ("B", "3")
    assert broker.logged_on


async def test_a_resend_request_is_answered_by_replaying_the_order(
    venue: FaultAcceptor, broker: FixBroker
) -> None:
    venue.lose_next = True
    first = asyncio.create_task(broker.submit(market("lost-1")))
    await eventually(lambda: venue.received[-1].get(11), lambda cid: cid == "lost-1")
    # The next order shows the venue a gap: it asks, and the first D comes again.
    assert (await broker.submit(market("next-1"))).broker_order_id == "O-next-1"
    assert (await first).broker_order_id == "O-lost-1"
    replayed = [m for m in venue.received if m.msg_type == "D" and m.get(11) == "lost-1"]
    assert [m.poss_dup for m in replayed] == [False, True]
    assert replayed[0].seq_num == replayed[1].seq_num
    assert list(venue.orders) == ["next-1", "lost-1"]  # one order each


async def test_gateway_books_each_fill_once_across_a_cut_and_a_resend(
    venue: FaultAcceptor, gateway: Gateway
) -> None:
    venue.fills_per_order, venue.drop_after_fill = 3, 2
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        stub: ExecutionServiceAsyncStub = pb_grpc.ExecutionServiceStub(channel)
        await stub.PlaceOrder(place_request("gcut-1", account=ACCOUNT, quantity="9"))
        filled = await eventually(
            lambda: order(stub, "gcut-1"),
            lambda o: o.status == pb.ORDER_STATUS_FILLED,
            what="the order filled after the reconnect",
        )
        assert (filled.filled_quantity, Decimal(filled.average_fill_price)) == (
            "9",
            Decimal("100.25"),
        )
    # The journal: each of the venue's executions booked exactly once.
    journal = gateway.journal
    assert isinstance(journal, MemoryJournal)
    fills = [
        r.event.fill.exec_id
        for r in journal.replay()
        if isinstance(r.event, OrderFilled) and r.event.order_id == filled.order_id
    ]
    assert sorted(fills) == sorted(set(fills))
    assert len(fills) == 3
    assert venue.resend_requests >= 1


async def test_reconnect_reconciles_with_one_mass_status_request(
    venue: FaultAcceptor, tmp_path: Path
) -> None:
    venue.fill_orders = False
    fix = FixBroker(fix_config(venue.port, mass_status=True), tmp_path / "fix.sqlite")
    gw = Gateway(
        # No periodic pass: only the start and the reconnect reconcile.
        gateway_test_config(tmp_path, reconcile_interval=0.0),
        broker=fix,
        journal=MemoryJournal(),
    )
    await gw.start()
    try:
        async with grpc.aio.insecure_channel(gw.address) as channel:
            stub: ExecutionServiceAsyncStub = pb_grpc.ExecutionServiceStub(channel)
            for n in range(3):
                await stub.PlaceOrder(place_request(f"rc-{n}", account=ACCOUNT, quantity="1"))
            await eventually(lambda: len(venue.orders), lambda n: n == 3)
            before = sum(venue.count("AF").values())  # the start's pass, with no orders yet
            venue.hang_up()
            await eventually(lambda: fix.logons, lambda n: n == 2, what="the reconnect")
            await eventually(
                lambda: sum(venue.count("AF").values()), lambda n: n > before, what="an AF"
            )
    finally:
        await gw.stop(grace=0.5)
    assert venue.count("H") == Counter()  # the bulk answers covered every open order


def resting_limit(client_order_id: str, quantity: str, price: str) -> OrderSpec:
    return OrderSpec(
        ACCOUNT,
        client_order_id,
        "AAPL",
        Side.BUY,
        OrderType.LIMIT,
        Decimal(quantity),
        TimeInForce.DAY,
        limit_price=Decimal(price),
    )


async def test_replace_gives_new_terms_and_later_messages_follow_the_new_clordid(
    venue: FaultAcceptor, broker: FixBroker
) -> None:
    venue.fill_orders = False
    reports = Collector(broker)
    await broker.submit(resting_limit("rp-1", "10", "99"))
    ack = await broker.replace(ACCOUNT, "rp-1", "", resting_limit("rp-1", "6", "98.5"), "r1")
    assert ack.broker_order_id == "O-rp-1"
    (request,) = [m for m in venue.received if m.msg_type == "G"]
    assert (request.get(41), request.get(11), request.get(38), request.get(44)) == (
        "rp-1",
        "rp-1-Rr1",
        "6",
        "98.5",
    )
    venue.fill_now("rp-1", Decimal(2))  # reported under the replace's ClOrdID
    await eventually(lambda: reports.filled("rp-1"), lambda q: q == Decimal(2))
    assert [r.kind for r in reports.reports] == [
        ReportKind.ACCEPTED,
        ReportKind.REPLACED,
        ReportKind.FILL,
    ]
    # The next replace names the order as the venue knows it now; a retry sends nothing.
    await broker.replace(ACCOUNT, "rp-1", "", resting_limit("rp-1", "5", "98.5"), "r2")
    await broker.replace(ACCOUNT, "rp-1", "", resting_limit("rp-1", "5", "98.5"), "r2")
    assert [m.get(41) for m in venue.received if m.msg_type == "G"] == ["rp-1", "rp-1-Rr1"]
    await broker.cancel(ACCOUNT, "rp-1", "")
    await eventually(
        lambda: reports.reports[-1].kind, lambda k: k is ReportKind.CANCELED, what="cancel"
    )
    (cancel,) = [m for m in venue.received if m.msg_type == "F"]  # answered: it arrived
    assert (cancel.get(41), cancel.get(38)) == ("rp-1-Rr2", "5")
    assert reports.reports[-1].client_order_id == "rp-1"
    await reports.stop()


async def test_a_refused_replace_keeps_the_old_terms(
    venue: FaultAcceptor, broker: FixBroker
) -> None:
    venue.fill_orders, venue.reject_replaces = False, True
    reports = Collector(broker)
    await broker.submit(resting_limit("rr-1", "10", "99"))
    with pytest.raises(BrokerRejected, match="cannot replace now"):
        await broker.replace(ACCOUNT, "rr-1", "", resting_limit("rr-1", "6", "99"), "r1")
    refused = await eventually(
        lambda: [r for r in reports.reports if r.kind is ReportKind.REPLACE_REJECTED]
    )
    assert refused[0].client_order_id == "rr-1"
    venue.reject_replaces = False
    await broker.cancel(ACCOUNT, "rr-1", "")
    (cancel,) = await eventually(lambda: [m for m in venue.received if m.msg_type == "F"])
    assert (cancel.get(41), cancel.get(38)) == ("rr-1", "10")  # the old terms
    await reports.stop()


async def test_replace_order_through_the_gateway(venue: FaultAcceptor, gateway: Gateway) -> None:
    venue.fill_orders = False
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        stub: ExecutionServiceAsyncStub = pb_grpc.ExecutionServiceStub(channel)
        await stub.PlaceOrder(
            place_request(
                "gr-1",
                account=ACCOUNT,
                order_type=pb.ORDER_TYPE_LIMIT,
                quantity="10",
                limit_price="99",
            )
        )
        await eventually(
            lambda: order(stub, "gr-1"), lambda o: o.status == pb.ORDER_STATUS_ACCEPTED
        )
        await stub.ReplaceOrder(
            pb.ReplaceOrderRequest(
                account=ACCOUNT,
                client_order_id="gr-1",
                replace_id="r1",
                quantity="4",
                limit_price="98",
            )
        )
        replaced = await eventually(
            lambda: order(stub, "gr-1"),
            lambda o: o.quantity == "4" and o.status == pb.ORDER_STATUS_ACCEPTED,
            what="the new terms",
        )
        assert replaced.limit_price == "98"
        venue.fill_now("gr-1", Decimal(4))
        filled = await eventually(
            lambda: order(stub, "gr-1"), lambda o: o.status == pb.ORDER_STATUS_FILLED
        )
    assert filled.filled_quantity == "4"
    assert [m.get(11) for m in venue.received if m.msg_type == "G"] == ["gr-1-Rr1"]


async def test_a_replace_whose_answer_is_lost_is_settled_by_a_status_request(
    venue: FaultAcceptor, gateway: Gateway
) -> None:
    venue.fill_orders, venue.hold_replaces = False, True
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        stub: ExecutionServiceAsyncStub = pb_grpc.ExecutionServiceStub(channel)
        await stub.PlaceOrder(
            place_request(
                "lr-1",
                account=ACCOUNT,
                order_type=pb.ORDER_TYPE_LIMIT,
                quantity="10",
                limit_price="99",
            )
        )
        await eventually(
            lambda: order(stub, "lr-1"), lambda o: o.status == pb.ORDER_STATUS_ACCEPTED
        )
        await stub.ReplaceOrder(
            pb.ReplaceOrderRequest(
                account=ACCOUNT,
                client_order_id="lr-1",
                replace_id="r1",
                quantity="7",
                limit_price="99",
            )
        )
        # No Replaced report: the adapter times out, the engine asks (H), and the
        # venue's terms (under the replace's ClOrdID) show the replace took.
        replaced = await eventually(
            lambda: order(stub, "lr-1"),
            lambda o: o.quantity == "7" and o.status == pb.ORDER_STATUS_ACCEPTED,
            within=20,
            what="the replace settled by a status request",
        )
    assert replaced.limit_price == "99"
    assert venue.count("H")["lr-1"] >= 1
    assert [m.get(11) for m in venue.received if m.msg_type == "G"] == ["lr-1-Rr1"]
