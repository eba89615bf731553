"""The Alpaca mapping against recorded Alpaca shapes (tests/fixtures/alpaca).

The fixtures are written from the examples in Alpaca's public Trading API
reference, not from what our venue sends, so these tests pin the adapter to
Alpaca itself.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.brokers.alpaca.mapping import (
    error_from_response,
    gateway_client_order_id,
    is_duplicate_client_order_id,
    loads,
    order_matches_spec,
    order_request,
    order_state,
    order_status,
    parse_time,
    replace_request,
    replacement_client_order_id,
    report_from_trade_update,
    retry_after,
    to_decimal,
    transport_error,
)
from gateway.brokers.base import ReportKind
from gateway.brokers.errors import (
    BrokerRateLimited,
    BrokerRejected,
    BrokerTimeout,
    BrokerTransientError,
    BrokerUnavailable,
)
from gateway.domain import OrderSpec, OrderStatus, OrderType, Side, TimeInForce

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "alpaca"
ACCOUNT = "alpaca"


def fixture(name: str) -> Any:
    return loads((FIXTURES / name).read_text())


def trade_updates() -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = fixture("trade_updates.json")
    return [m["data"] for m in messages]


def error_case(name: str) -> tuple[int, dict[str, str], str]:
    case = fixture("errors.json")[name]
    body = case["body"]
    return case["status"], case["headers"], body if isinstance(body, str) else json.dumps(body)


# ------------------------------------------------------------ events


EXPECTED_KINDS = {
    "pending_new": None,
    "new": ReportKind.ACCEPTED,
    "partial_fill": ReportKind.FILL,
    "fill": ReportKind.FILL,
    "pending_cancel": None,
    "canceled": ReportKind.CANCELED,
    "done_for_day": None,
    "expired": ReportKind.EXPIRED,
    "rejected": ReportKind.REJECTED,
    "replaced": ReportKind.REPLACED,
    "order_cancel_rejected": ReportKind.CANCEL_REJECTED,
    "pending_replace": None,
    "order_replace_rejected": ReportKind.REPLACE_REJECTED,
}


@pytest.mark.parametrize("data", trade_updates(), ids=lambda d: str(d["event"]))
def test_every_recorded_event_maps_to_its_report_kind(data: dict[str, Any]) -> None:
    report = report_from_trade_update(data, ACCOUNT)
    expected = EXPECTED_KINDS[data["event"]]
    if expected is None:
        assert report is None
        return
    assert report is not None
    assert report.kind is expected
    assert report.account == ACCOUNT
    assert report.client_order_id == data["order"]["client_order_id"]
    if expected is ReportKind.REPLACED:
        # The order's id from now on: its replacement's.
        assert report.broker_order_id == data["order"]["replaced_by"]
    else:
        assert report.broker_order_id == data["order"]["id"]
    assert report.time.tzinfo is not None
    assert (report.fill is not None) == (expected is ReportKind.FILL)


def test_fills_are_exact_decimals_with_alpacas_execution_id() -> None:
    order_id = "61e69015-8549-4bfd-b9c3-01e75843f47d"
    partial, full = (
        d
        for d in trade_updates()
        if d["event"] in ("partial_fill", "fill") and d["order"]["id"] == order_id
    )
    first = report_from_trade_update(partial, ACCOUNT)
    second = report_from_trade_update(full, ACCOUNT)
    assert first is not None
    assert first.fill is not None
    assert second is not None
    assert second.fill is not None
    assert first.fill.exec_id == "0d1f3a4c-3b7f-4e39-8a2b-2c3a4b5c6d01"
    assert (first.fill.quantity, first.fill.price) == (Decimal("40"), Decimal("107.00"))
    assert (second.fill.quantity, second.fill.price) == (Decimal("60"), Decimal("106.98"))
    notional = sum(f.quantity * f.price for f in (first.fill, second.fill))
    # Exact: the fills reproduce Alpaca's average to the last digit.
    assert notional / 100 == Decimal(full["order"]["filled_avg_price"])
    assert first.fill.time == datetime(2021, 3, 16, 18, 38, 2, 101515, tzinfo=UTC)


def test_a_legacy_fill_without_qty_or_execution_id_is_derived_from_the_order() -> None:
    legacy = next(d for d in trade_updates() if d["order"]["client_order_id"] == "g-legacy-fill")
    report = report_from_trade_update(legacy, ACCOUNT, filled_before=Decimal("4"))
    assert report is not None
    assert report.fill is not None
    assert report.fill.quantity == Decimal("6")
    assert report.fill.price == Decimal("131.355")
    # The cumulative quantity names the fill, so a replay yields the same id.
    assert report.fill.exec_id == f"{legacy['order']['id']}:10"
    # 14:38:03.250001123-04:00, nanoseconds cut to microseconds.
    assert report.fill.time == datetime(2021, 3, 16, 18, 38, 3, 250001, tzinfo=UTC)


def test_terminal_events_carry_a_reason() -> None:
    by_event = {d["event"]: d for d in trade_updates()}
    replaced = report_from_trade_update(by_event["replaced"], ACCOUNT)
    assert replaced is not None
    assert "3c4d5e6f-7081-4923-8b4c-5d6e7f809102" in replaced.reason
    rejected = report_from_trade_update(by_event["rejected"], ACCOUNT)
    assert rejected is not None
    assert rejected.reason


def test_a_replacement_maps_back_to_the_gateways_order() -> None:
    name = replacement_client_order_id("strat:42", "amend-7")
    assert name == "strat:42~amend-7"
    assert gateway_client_order_id(name) == "strat:42"
    assert gateway_client_order_id("strat:42") == "strat:42"
    new = dict(fixture("order_new.json"), client_order_id=name)
    state = order_state(new, ACCOUNT)
    assert state.client_order_id == "strat:42"
    assert state.spec is not None
    assert state.spec.client_order_id == "strat:42"
    fill = next(d for d in trade_updates() if d["event"] == "partial_fill")
    report = report_from_trade_update(
        dict(fill, order=dict(fill["order"], client_order_id=name)), ACCOUNT
    )
    assert report is not None
    assert report.client_order_id == "strat:42"


def test_a_replace_request_sends_the_new_terms_and_the_replacements_name() -> None:
    spec = OrderSpec(
        ACCOUNT, "c-1", "AAPL", Side.BUY, OrderType.STOP_LIMIT, Decimal("12.5"),
        TimeInForce.GTC, limit_price=Decimal("101.25"), stop_price=Decimal(100),
    )  # fmt: skip
    assert replace_request(spec, "c-1~r-1") == {
        "qty": "12.5",
        "time_in_force": "gtc",
        "client_order_id": "c-1~r-1",
        "limit_price": "101.25",
        "stop_price": "100",
    }


def test_a_replace_refusal_carries_a_reason() -> None:
    refused = next(d for d in trade_updates() if d["event"] == "order_replace_rejected")
    report = report_from_trade_update(refused, ACCOUNT)
    assert report is not None
    assert report.reason == "alpaca rejected the replace"


# ------------------------------------------------------------ orders


def test_a_resting_order_object_becomes_an_accepted_state() -> None:
    state = order_state(fixture("order_new.json"), ACCOUNT)
    assert state.status is OrderStatus.ACCEPTED
    assert state.broker_order_id == "61e69015-8549-4bfd-b9c3-01e75843f47d"
    assert state.client_order_id == "eb9e2aaa-f71a-4f51-b5b4-52a6c565dad4"
    assert state.filled_quantity == Decimal(0)
    assert state.fills == ()


def test_an_order_object_carries_its_terms_for_adoption() -> None:
    state = order_state(fixture("order_new.json"), ACCOUNT)
    assert state.spec == OrderSpec(
        account=ACCOUNT,
        client_order_id="eb9e2aaa-f71a-4f51-b5b4-52a6c565dad4",
        symbol="AAPL",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        quantity=Decimal(100),
        time_in_force=TimeInForce.GTC,
        limit_price=Decimal("107.00"),
    )


@pytest.mark.parametrize(
    "change",
    [{"type": "trailing_stop", "order_type": "trailing_stop"}, {"qty": None, "notional": "500"},
     {"order_class": "bracket"}, {"time_in_force": "opg"}],
)  # fmt: skip
def test_an_order_we_could_not_have_placed_carries_no_terms(change: dict[str, Any]) -> None:
    state = order_state({**fixture("order_new.json"), **change}, ACCOUNT)
    assert state.spec is None


def test_a_filled_fractional_order_keeps_its_exact_quantity() -> None:
    state = order_state(fixture("order_filled.json"), ACCOUNT)
    assert state.status is OrderStatus.FILLED
    assert state.filled_quantity == Decimal("0.1")
    assert str(state.filled_quantity) == "0.1"
    assert state.reason == ""


@pytest.mark.parametrize(
    ("status", "filled", "expected"),
    [
        ("new", "0", OrderStatus.ACCEPTED),
        ("accepted", "0", OrderStatus.ACCEPTED),
        ("pending_new", "0", OrderStatus.ACCEPTED),
        ("held", "0", OrderStatus.ACCEPTED),
        ("partially_filled", "40", OrderStatus.PARTIALLY_FILLED),
        ("done_for_day", "40", OrderStatus.PARTIALLY_FILLED),
        ("filled", "100", OrderStatus.FILLED),
        ("pending_cancel", "0", OrderStatus.PENDING_CANCEL),
        ("canceled", "40", OrderStatus.CANCELED),
        ("expired", "0", OrderStatus.EXPIRED),
        ("rejected", "0", OrderStatus.REJECTED),
        ("replaced", "0", OrderStatus.CANCELED),
        ("some_future_status", "0", OrderStatus.ACCEPTED),
    ],
)
def test_order_statuses_map_onto_ours(status: str, filled: str, expected: OrderStatus) -> None:
    order = {**fixture("order_new.json"), "status": status, "filled_qty": filled}
    assert order_status(order) is expected


def spec_of_order_new(**changes: Any) -> OrderSpec:
    fields: dict[str, Any] = {
        "account": ACCOUNT,
        "client_order_id": "eb9e2aaa-f71a-4f51-b5b4-52a6c565dad4",
        "symbol": "AAPL",
        "side": Side.BUY,
        "order_type": OrderType.LIMIT,
        "quantity": Decimal("100"),
        "time_in_force": TimeInForce.GTC,
        "limit_price": Decimal("107"),
    }
    fields.update(changes)
    return OrderSpec(**fields)


def test_an_order_request_uses_alpacas_words_and_string_numbers() -> None:
    body = order_request(spec_of_order_new(quantity=Decimal("0.5"), limit_price=Decimal("1E+2")))
    assert body == {
        "symbol": "AAPL",
        "qty": "0.5",
        "side": "buy",
        "type": "limit",
        "time_in_force": "gtc",
        "client_order_id": "eb9e2aaa-f71a-4f51-b5b4-52a6c565dad4",
        "limit_price": "100",
    }


def test_an_existing_order_matches_only_the_same_spec() -> None:
    order = fixture("order_new.json")
    # "107.00" at Alpaca and 107 here are the same price.
    assert order_matches_spec(order, spec_of_order_new())
    assert not order_matches_spec(order, spec_of_order_new(quantity=Decimal("101")))
    assert not order_matches_spec(order, spec_of_order_new(side=Side.SELL))


def test_numbers_never_pass_through_float() -> None:
    assert loads('{"price": 0.1}')["price"] == Decimal("0.1")
    assert to_decimal("131.355") == Decimal("131.355")
    assert to_decimal(None) is None
    with pytest.raises(ValueError, match="not a number"):
        to_decimal("NaN")


def test_timestamps_with_nanoseconds_and_offsets_parse() -> None:
    assert parse_time("2021-03-16T18:38:01.942282624Z") == datetime(
        2021, 3, 16, 18, 38, 1, 942282, tzinfo=UTC
    )
    assert parse_time(None) is None


# ------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("invalid_qty", BrokerRejected),
        ("not_cancelable", BrokerRejected),
        ("not_found", BrokerRejected),
        ("unauthorized", BrokerRejected),
        ("insufficient_buying_power", BrokerRejected),
        ("rate_limited", BrokerRateLimited),
        ("internal", BrokerTimeout),
        ("gateway_html", BrokerTimeout),
        ("service_unavailable", BrokerUnavailable),
    ],
)
def test_errors_map_to_permanent_or_transient(case: str, expected: type[Exception]) -> None:
    status, headers, body = error_case(case)
    error = error_from_response(status, headers, body, now=1679411600.0)
    assert type(error) is expected
    assert str(status) in str(error)


def test_429_waits_until_the_rate_limit_reset() -> None:
    status, headers, body = error_case("rate_limited")
    error = error_from_response(status, headers, body, now=1679411600.5)
    assert isinstance(error, BrokerTransientError)
    assert error.retry_after == pytest.approx(16.5)
    # A reset already past means: go now, not a negative wait.
    assert retry_after(headers, now=1679411700.0) == 0.0


def test_503_honours_retry_after() -> None:
    status, headers, body = error_case("service_unavailable")
    error = error_from_response(status, headers, body, now=0.0)
    assert isinstance(error, BrokerTransientError)
    assert error.retry_after == 2.0


def test_only_the_unique_client_order_id_422_is_a_duplicate() -> None:
    assert is_duplicate_client_order_id(*error_case("duplicate_client_order_id")[::2])
    assert not is_duplicate_client_order_id(*error_case("invalid_qty")[::2])
    assert not is_duplicate_client_order_id(*error_case("not_cancelable")[::2])


def test_error_messages_come_through() -> None:
    status, headers, body = error_case("insufficient_buying_power")
    error = error_from_response(status, headers, body, now=0.0)
    assert isinstance(error, BrokerRejected)
    assert "insufficient buying power" in error.reason
    assert "40310000" in error.reason


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (TimeoutError(), BrokerTimeout),
        (ConnectionResetError(), BrokerTimeout),
        (aiohttp.ServerDisconnectedError(), BrokerTimeout),
        (aiohttp.ConnectionTimeoutError(), BrokerUnavailable),
    ],
)
def test_transport_failures_are_unknown_outcomes_unless_never_sent(
    exc: BaseException, expected: type[Exception]
) -> None:
    assert type(transport_error(exc)) is expected
