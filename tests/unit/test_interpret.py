"""Broker reports and states to events: echoes ignored, each execution once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from gateway.brokers import BrokerOrderState, ExecutionReport, ReportKind
from gateway.domain import (
    CancelRejected,
    CancelRequested,
    Fill,
    FillsReconciled,
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderCreated,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderSpec,
    OrderStatus,
    OrderType,
    RejectCode,
    Side,
    TimeInForce,
    apply_event,
)
from gateway.engine import interpret

T0 = datetime(2026, 1, 2, 14, 30, tzinfo=UTC)
LATER = T0 + timedelta(seconds=1)
SPEC = OrderSpec(
    "acct-1", "c-1", "AAPL", Side.BUY, OrderType.LIMIT, Decimal(10), TimeInForce.GTC,
    limit_price=Decimal(100),
)  # fmt: skip


def nothing_booked(order_id: str, exec_id: str) -> bool:
    return False


def pending() -> Order:
    return apply_event(None, OrderCreated("o-1", SPEC, T0), 1)


def accepted(broker_order_id: str = "B-1") -> Order:
    return apply_event(pending(), OrderAccepted("o-1", broker_order_id, T0), 2)


def filled(quantity: str, price: str = "100") -> Order:
    fill = Fill("x-1", Decimal(quantity), Decimal(price), T0)
    return apply_event(accepted(), OrderFilled("o-1", fill, T0), 3)


def report(kind: ReportKind, **fields: object) -> ExecutionReport:
    return ExecutionReport(kind, "acct-1", "c-1", LATER, "B-1", **fields)  # type: ignore[arg-type]


def state(status: OrderStatus, quantity: str, **fields: object) -> BrokerOrderState:
    return BrokerOrderState("acct-1", "c-1", "B-1", status, Decimal(quantity), **fields)  # type: ignore[arg-type]


def test_the_first_ack_counts_and_its_echo_does_not() -> None:
    assert interpret.ack_event(pending(), "B-1", LATER) == OrderAccepted("o-1", "B-1", LATER)
    assert interpret.ack_event(accepted(), "B-1", LATER) is None
    # An ack that trails the fills still brings a broker id we lacked.
    assert interpret.ack_event(accepted(""), "B-1", LATER) == OrderAccepted("o-1", "B-1", LATER)
    assert interpret.ack_event(accepted(""), "", LATER) is None


def test_a_fill_is_applied_once_by_exec_id() -> None:
    fill = Fill("x-9", Decimal(2), Decimal(100), LATER)
    fresh = interpret.report_event(accepted(), report(ReportKind.FILL, fill=fill), nothing_booked)
    assert fresh == OrderFilled("o-1", fill, LATER, "B-1")

    def booked(order_id: str, exec_id: str) -> bool:
        return (order_id, exec_id) == ("o-1", "x-9")

    assert interpret.report_event(accepted(), report(ReportKind.FILL, fill=fill), booked) is None


def test_echoes_of_terminal_reports_are_ignored() -> None:
    canceled = apply_event(accepted(), OrderCanceled("o-1", T0), 3)
    assert interpret.report_event(canceled, report(ReportKind.CANCELED), nothing_booked) is None
    expired = apply_event(accepted(), OrderExpired("o-1", T0), 3)
    assert interpret.report_event(expired, report(ReportKind.EXPIRED), nothing_booked) is None
    rejected = apply_event(pending(), OrderRejected("o-1", "no", T0), 2)
    assert interpret.report_event(rejected, report(ReportKind.REJECTED), nothing_booked) is None


def test_a_cancel_rejection_matters_only_while_a_cancel_is_pending() -> None:
    refused = report(ReportKind.CANCEL_REJECTED, reason="too late")
    assert interpret.report_event(accepted(), refused, nothing_booked) is None
    cancelling = apply_event(accepted(), CancelRequested("o-1", T0), 3)
    event = interpret.report_event(cancelling, refused, nothing_booked)
    assert event == CancelRejected("o-1", "too late", LATER)


def test_missed_fills_are_suspected_from_totals_or_an_end_without_them() -> None:
    assert interpret.may_have_missed_fills(
        accepted(), report(ReportKind.CANCELED, filled_quantity=Decimal(3))
    )
    assert not interpret.may_have_missed_fills(
        filled("3"), report(ReportKind.CANCELED, filled_quantity=Decimal(3))
    )
    assert interpret.may_have_missed_fills(accepted(), report(ReportKind.EXPIRED))
    assert not interpret.may_have_missed_fills(accepted(), report(ReportKind.ACCEPTED))


def test_itemised_fills_skip_what_is_booked() -> None:
    one = Fill("x-1", Decimal(4), Decimal(100), T0)
    two = Fill("x-2", Decimal(1), Decimal(101), T0)
    venue = state(OrderStatus.PARTIALLY_FILLED, "5", fills=(one, two))

    def booked(order_id: str, exec_id: str) -> bool:
        return exec_id == "x-1"

    assert interpret.itemised_fills(filled("4"), venue, booked) == [
        OrderFilled("o-1", two, T0, "B-1")
    ]


def test_totals_ahead_of_the_executions_are_booked_as_the_brokers() -> None:
    venue = state(OrderStatus.FILLED, "10", average_fill_price=Decimal(101))
    event = interpret.catch_up(filled("4", "100"), venue, LATER)

    assert event == FillsReconciled("o-1", Decimal(10), Decimal(101), LATER, "B-1")
    done = apply_event(filled("4", "100"), event, 4)
    assert done.filled_quantity == Decimal(10)
    assert done.average_fill_price == Decimal("101.000000000")
    assert done.provisional is not None
    assert done.provisional.quantity == Decimal(6)  # until its executions arrive


def test_no_catch_up_without_a_gap_a_price_or_a_fresh_answer() -> None:
    venue = state(OrderStatus.FILLED, "4", average_fill_price=Decimal(100))
    assert interpret.catch_up(filled("4"), venue, LATER) is None
    no_price = state(OrderStatus.FILLED, "10")
    assert interpret.catch_up(filled("4"), no_price, LATER) is None
    # The stream already said 8 were filled: an answer of 6 is older than that.
    told = apply_event(accepted(), fill_report_event("x-2", "2", "8"), 3)
    stale = state(OrderStatus.PARTIALLY_FILLED, "6", average_fill_price=Decimal(100))
    assert interpret.catch_up(told, stale, LATER) is None
    # Booked once, the same totals are no news.
    once = state(OrderStatus.PARTIALLY_FILLED, "6", average_fill_price=Decimal(100))
    event = interpret.catch_up(accepted(), once, LATER)
    assert event is not None
    assert interpret.catch_up(apply_event(accepted(), event, 3), once, LATER) is None


def fill_report_event(exec_id: str, quantity: str, cumulative: str) -> OrderFilled:
    fill = Fill(exec_id, Decimal(quantity), Decimal(100), LATER)
    return OrderFilled("o-1", fill, LATER, "B-1", cumulative_quantity=Decimal(cumulative))


def test_a_fill_carries_the_brokers_cumulative_and_is_known_by_it() -> None:
    fill = Fill("x-9", Decimal(2), Decimal(100), LATER)
    fresh = report(ReportKind.FILL, fill=fill, filled_quantity=Decimal(6))
    event = interpret.report_event(accepted(), fresh, nothing_booked)
    assert event == OrderFilled("o-1", fill, LATER, "B-1", cumulative_quantity=Decimal(6))

    def booked(order_id: str, key: str) -> bool:
        return key == interpret.execution_key(Decimal("6.0"))

    # The same execution under another id is still the same execution.
    assert interpret.report_event(accepted(), fresh, booked) is None
    # A cumulative below the fill's own quantity is no evidence: not used.
    odd = report(ReportKind.FILL, fill=fill, filled_quantity=Decimal(1))
    unplaced = interpret.report_event(accepted(), odd, nothing_booked)
    assert isinstance(unplaced, OrderFilled)
    assert unplaced.cumulative_quantity is None


def test_the_broker_ending_an_order_ends_it_here_once() -> None:
    assert interpret.terminal_event(accepted(), state(OrderStatus.CANCELED, "0"), LATER) == (
        OrderCanceled("o-1", LATER, "")
    )
    assert interpret.terminal_event(accepted(), state(OrderStatus.EXPIRED, "0"), LATER) == (
        OrderExpired("o-1", LATER)
    )
    rejected = interpret.terminal_event(pending(), state(OrderStatus.REJECTED, "0"), LATER)
    assert rejected == OrderRejected("o-1", "rejected by broker", LATER, RejectCode.BROKER)
    assert interpret.terminal_event(accepted(), state(OrderStatus.ACCEPTED, "0"), LATER) is None
    canceled = apply_event(accepted(), OrderCanceled("o-1", T0), 3)
    assert interpret.terminal_event(canceled, state(OrderStatus.CANCELED, "0"), LATER) is None
