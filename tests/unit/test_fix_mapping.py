"""FIX 4.4 messages <-> domain values: ExecType/OrdStatus, fills, rejects, config file."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.brokers.base import ReportKind
from gateway.brokers.fix import FixConfig
from gateway.brokers.fix.codec import Field, Framer, GarbledMessage, Message, encode
from gateway.brokers.fix.config import SessionSchedule
from gateway.brokers.fix.mapping import (
    UnmappableMessage,
    cancel_reject,
    execution_report,
    new_order,
    order_state,
    replace_request,
)
from gateway.domain import OrderSpec, OrderStatus, OrderType, Side, TimeInForce

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def message(kind: str, body: list[Field]) -> Message:
    (msg,) = Framer().feed(encode(kind, 7, "VENUE", "GATEWAY", T0, body))
    return msg


def report(exec_type: str, status: str, *extra: Field) -> Message:
    return message(
        "8",
        [(37, "O1"), (11, "c1"), (17, "E1"), (150, exec_type), (39, status), (14, "3"), *extra],
    )


@pytest.mark.parametrize(
    ("exec_type", "kind"),
    [
        ("0", ReportKind.ACCEPTED),
        ("4", ReportKind.CANCELED),
        ("8", ReportKind.REJECTED),
        ("C", ReportKind.EXPIRED),
    ],
)
def test_exec_type_maps_onto_report_kinds(exec_type: str, kind: ReportKind) -> None:
    mapped = execution_report(report(exec_type, "0"), "acct", T0)
    assert mapped is not None
    assert (mapped.kind, mapped.client_order_id, mapped.broker_order_id) == (kind, "c1", "O1")
    assert mapped.filled_quantity == Decimal("3")


@pytest.mark.parametrize("exec_type", ["F", "1", "2"])  # FIX 4.4 Trade; 4.2's fills
def test_trades_carry_a_fill_from_last_qty_and_last_px(exec_type: str) -> None:
    msg = report(exec_type, "1", (32, "1.5"), (31, "187.2500"), (60, "20260105-09:00:01.250"))
    mapped = execution_report(msg, "acct", T0)
    assert mapped is not None
    assert mapped.fill is not None
    assert mapped.kind is ReportKind.FILL
    assert (mapped.fill.exec_id, mapped.fill.quantity, mapped.fill.price) == (
        "E1",
        Decimal("1.5"),
        Decimal("187.2500"),
    )
    assert mapped.fill.time == datetime(2026, 1, 5, 9, 0, 1, 250000, tzinfo=UTC)


def test_pending_states_change_nothing_and_busts_are_refused() -> None:
    assert execution_report(report("A", "A"), "acct", T0) is None
    assert execution_report(report("6", "6"), "acct", T0) is None
    with pytest.raises(UnmappableMessage, match="ExecType 'H'"):
        execution_report(report("H", "1"), "acct", T0)


def test_a_trade_without_a_price_or_with_a_bad_number_is_refused() -> None:
    with pytest.raises(UnmappableMessage):
        execution_report(report("F", "1", (32, "1")), "acct", T0)
    with pytest.raises(UnmappableMessage):
        execution_report(report("F", "1", (32, "NaN"), (31, "1")), "acct", T0)


def test_reports_after_a_cancel_request_belong_to_the_original_order() -> None:
    msg = message("8", [(37, "O1"), (11, "c1-X9"), (41, "c1"), (17, "E2"), (150, "4"), (39, "4")])
    mapped = execution_report(msg, "acct", T0)
    assert mapped is not None
    assert mapped.client_order_id == "c1"


def test_status_answers_map_ord_status_and_unknown_orders_to_none() -> None:
    state = order_state(report("I", "1", (6, "10.5")), "acct")
    assert state is not None
    assert (state.status, state.filled_quantity, state.average_fill_price) == (
        OrderStatus.PARTIALLY_FILLED,
        Decimal("3"),
        Decimal("10.5"),
    )
    assert order_state(report("I", "8", (103, "5")), "acct") is None


def test_cancel_reject_names_the_original_order_and_the_reason() -> None:
    msg = message("9", [(37, "O1"), (11, "c1-X4"), (41, "c1"), (39, "2"), (434, "1"), (58, "late")])
    mapped = cancel_reject(msg, "acct", T0)
    assert (mapped.kind, mapped.client_order_id, mapped.reason) == (
        ReportKind.CANCEL_REJECTED,
        "c1",
        "late",
    )


def test_new_order_single_carries_decimal_strings_and_the_account() -> None:
    spec = OrderSpec(
        "main",
        "c1",
        "AAPL",
        Side.SELL,
        OrderType.LIMIT,
        Decimal("10"),
        TimeInForce.DAY,
        limit_price=Decimal("187.25"),
    )
    body = dict(new_order(spec, "ACC-1", T0))
    assert body[1] == "ACC-1"
    assert body[54] == "2"
    assert body[40] == "2"
    assert body[59] == "0"
    assert (body[38], body[44]) == ("10", "187.25")


def test_a_garbled_checksum_is_refused() -> None:
    data = bytearray(encode("0", 1, "VENUE", "GATEWAY", T0, []))
    data[-3] = ord("9") if data[-3] != ord("9") else ord("8")
    with pytest.raises(GarbledMessage):
        list(Framer().feed(bytes(data)))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fix.toml"
    path.write_text(text)
    return path


def test_config_file_round_trip(tmp_path: Path) -> None:
    config = FixConfig.from_toml(
        write(
            tmp_path,
            'host = "127.0.0.1"\nport = 9878\nsender_comp_id = "GW"\ntarget_comp_id = "B"\n'
            'heartbeat_interval = 5\n[accounts]\nmain = "ACC-1"\n'
            '[schedule]\nstart = "22:00"\nend = "21:00"\n[tls]\nca_file = "ca.pem"\n',
        )
    )
    assert (config.port, config.heartbeat_interval, config.fix_account("main")) == (
        9878,
        5,
        "ACC-1",
    )
    assert config.gateway_account("ACC-1") == "main"
    assert config.gateway_account("X") is None
    assert config.tls is not None
    assert config.tls.ca_file == tmp_path / "ca.pem"
    with pytest.raises(KeyError):
        config.fix_account("other")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('host = "h"\nport = 1\nsender_comp_id = "A"\n', "missing key 'target_comp_id'"),
        ('host = "h"\nport = 0\nsender_comp_id = "A"\ntarget_comp_id = "B"\n', "not a TCP port"),
        ('host = "h"\nport = true\nsender_comp_id = "A"\ntarget_comp_id = "B"\n', "wrong type"),
        ('host = "h"\nport = 1\nsender_comp_id = "A"\ntarget_comp_id = "B"\nhb = 1\n', "unknown"),
        ('host = "h"\nport = 1\nsender_comp_id = ""\ntarget_comp_id = "B"\n', "non-empty"),
        ("port = [", "FIX config"),
    ],
)
def test_config_file_errors_name_the_problem(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        FixConfig.from_toml(write(tmp_path, text))


def test_schedule_spanning_midnight() -> None:
    schedule = SessionSchedule(start=datetime(1, 1, 1, 22).time(), end=datetime(1, 1, 1, 21).time())
    assert schedule.is_open(datetime(2026, 1, 5, 23, 0, tzinfo=UTC))
    assert schedule.is_open(datetime(2026, 1, 5, 20, 59, tzinfo=UTC))
    assert not schedule.is_open(datetime(2026, 1, 5, 21, 30, tzinfo=UTC))
    assert schedule.seconds_until_open(datetime(2026, 1, 5, 21, 30, tzinfo=UTC)) == 1800
    start = schedule.session_start(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    assert start == datetime(2026, 1, 4, 22, 0, tzinfo=UTC)


def test_status_answers_carry_the_order_terms_when_the_venue_states_them() -> None:
    msg = report("I", "0", (55, "AAPL"), (54, "2"), (38, "10"), (40, "2"), (44, "187.25"))
    state = order_state(msg, "acct")
    assert state is not None
    assert state.spec == OrderSpec(
        "acct",
        "c1",
        "AAPL",
        Side.SELL,
        OrderType.LIMIT,
        Decimal(10),
        TimeInForce.DAY,
        limit_price=Decimal("187.25"),
    )
    # A limit order without its price: no terms rather than wrong ones.
    bare = order_state(report("I", "0", (55, "AAPL"), (54, "2"), (38, "10"), (40, "2")), "acct")
    assert bare is not None
    assert bare.spec is None


def test_the_example_in_docs_brokers_md_is_a_valid_config(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "brokers.md").read_text()
    section = text[text.index("## FIX 4.4") :]
    example = section[
        section.index("```toml\n") + 8 : section.index("```\n", section.index("```toml"))
    ]
    config = FixConfig.from_toml(write(tmp_path, example))
    assert (config.sender_comp_id, config.fix_account("main")) == ("ACME-GW", "ACC-0001")
    assert config.schedule is not None
    assert config.tls is not None


def test_replace_request_carries_the_whole_new_terms_under_a_new_clordid() -> None:
    spec = OrderSpec(
        "main",
        "c1",
        "AAPL",
        Side.BUY,
        OrderType.LIMIT,
        Decimal("6"),
        TimeInForce.DAY,
        limit_price=Decimal("98.5"),
    )
    body = replace_request("c1-Rr1", "c1", "O1", "ACC-1", spec, T0)
    assert body[:3] == [(41, "c1"), (11, "c1-Rr1"), (37, "O1")]
    fields = dict(body)
    assert (fields[38], fields[44], fields[40], fields[1]) == ("6", "98.5", "2", "ACC-1")
    assert [tag for tag, _ in body].count(11) == 1


def test_replaced_and_replace_rejects_map_onto_their_kinds() -> None:
    replaced = execution_report(report("5", "0", (41, "c0")), "acct", T0, "c0")
    assert replaced is not None
    assert (replaced.kind, replaced.client_order_id) == (ReportKind.REPLACED, "c0")
    msg = message("9", [(37, "O1"), (11, "c1-Rr1"), (41, "c1"), (39, "0"), (434, "2")])
    refused = cancel_reject(msg, "acct", T0, "c1")
    assert (refused.kind, refused.client_order_id) == (ReportKind.REPLACE_REJECTED, "c1")
