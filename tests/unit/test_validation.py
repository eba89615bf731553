"""Proto requests to domain values: every rule of execution.proto, table-driven."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway.domain import (
    ALLOWED_TIME_IN_FORCE,
    ListOrdersQuery,
    OrderRef,
    OrderSpec,
    OrderType,
    Side,
    SubscriptionFilter,
    TimeInForce,
)
from gateway.errors import InvalidArgument
from gateway.service.convert import ORDER_TYPE_TO_PROTO, TIME_IN_FORCE_TO_PROTO
from gateway.service.validation import (
    MAX_SEQUENCE,
    encode_page_token,
    list_query_from_proto,
    order_ref_from_proto,
    parse_decimal,
    place_order_from_proto,
    subscription_from_proto,
)

MEGABYTE = 1_000_000


def place_request(**overrides: Any) -> pb.PlaceOrderRequest:
    fields: dict[str, Any] = {
        "account": "acct-1",
        "client_order_id": "strat:42",
        "symbol": "AAPL",
        "side": pb.SIDE_BUY,
        "order_type": pb.ORDER_TYPE_LIMIT,
        "quantity": "100",
        "limit_price": "187.25",
        "time_in_force": pb.TIME_IN_FORCE_DAY,
    }
    fields.update(overrides)
    return pb.PlaceOrderRequest(**fields)


def violated_fields(call: Callable[[], object]) -> list[str]:
    """Return the fields ``call`` refuses, in the order reported."""
    with pytest.raises(InvalidArgument) as caught:
        call()
    return [v.field for v in caught.value.violations]


# --- decimals ---------------------------------------------------------------

VALID_DECIMALS = [
    ("1", Decimal(1)),
    ("100", Decimal(100)),
    ("187.25", Decimal("187.25")),
    ("0.5", Decimal("0.5")),
    ("1.50", Decimal("1.5")),
    ("0.000000001", Decimal("1E-9")),
    ("999999999999", Decimal(999999999999)),
    ("999999999999.999999999", Decimal("999999999999.999999999")),
    ("100000000000.1", Decimal("100000000000.1")),
]

INVALID_DECIMALS = [
    pytest.param("", id="empty"),
    pytest.param("-1", id="negative"),
    pytest.param("-0", id="negative-zero"),
    pytest.param("+1", id="plus"),
    pytest.param("1e3", id="exponent"),
    pytest.param("1E3", id="exponent-upper"),
    pytest.param("1E-3", id="exponent-negative"),
    pytest.param("NaN", id="nan"),
    pytest.param("nan", id="nan-lower"),
    pytest.param("sNaN", id="snan"),
    pytest.param("Infinity", id="infinity"),
    pytest.param("inf", id="inf"),
    pytest.param(" 1", id="leading-space"),
    pytest.param("1 ", id="trailing-space"),
    pytest.param("1\n", id="trailing-newline"),
    pytest.param("\t1", id="tab"),
    pytest.param("1.", id="bare-point"),
    pytest.param(".5", id="no-integer-part"),
    pytest.param(".", id="point-only"),
    pytest.param("007", id="leading-zeros"),
    pytest.param("00", id="double-zero"),
    pytest.param("01.5", id="leading-zero-fraction"),
    pytest.param("1,5", id="comma"),
    pytest.param("1_000", id="underscore"),
    pytest.param("1..2", id="double-point"),
    pytest.param("1.2.3", id="two-points"),
    pytest.param("0x10", id="hex"),
    pytest.param("\u0663", id="arabic-indic-digit"),
    pytest.param("\uff11", id="fullwidth-digit"),
    pytest.param("1\x00", id="nul"),
    pytest.param("1234567890123", id="13-integer-digits"),
    pytest.param("1.1234567890", id="10-fraction-digits"),
    pytest.param("1234567890123.5", id="13-integer-digits-fraction"),
    pytest.param("1" * MEGABYTE, id="1MB-digits"),
    pytest.param("x" * MEGABYTE, id="1MB-junk"),
]


@pytest.mark.parametrize(("text", "expected"), VALID_DECIMALS)
@pytest.mark.parametrize("positive", [True, False])
def test_parse_decimal_accepts(text: str, expected: Decimal, positive: bool) -> None:
    assert parse_decimal(text, "quantity", positive=positive) == expected


@pytest.mark.parametrize("text", INVALID_DECIMALS)
@pytest.mark.parametrize("positive", [True, False])
def test_parse_decimal_refuses(text: str, positive: bool) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_decimal(text, "some_field", positive=positive)
    [violation] = caught.value.violations
    assert violation.field == "some_field"
    assert len(violation.description) < 300  # never echoes a huge input


@pytest.mark.parametrize("text", ["0", "0.0", "0.000000000"])
def test_zero_is_refused_only_when_positive(text: str) -> None:
    assert parse_decimal(text, "filled_quantity", positive=False) == 0
    with pytest.raises(InvalidArgument, match="greater than zero"):
        parse_decimal(text, "quantity", positive=True)


@pytest.mark.parametrize("text", INVALID_DECIMALS)
@pytest.mark.parametrize("field", ["quantity", "limit_price"])
def test_place_order_names_the_bad_decimal_field(text: str, field: str) -> None:
    # An empty limit price is refused too: LIMIT requires one.
    assert violated_fields(lambda: place_order_from_proto(place_request(**{field: text}))) == [
        field
    ]


@pytest.mark.parametrize("field", ["quantity", "limit_price", "stop_price"])
def test_zero_price_or_quantity_is_refused(field: str) -> None:
    fields = {"order_type": pb.ORDER_TYPE_STOP_LIMIT, "stop_price": "180", field: "0"}
    request = place_request(**fields)
    assert violated_fields(lambda: place_order_from_proto(request)) == [field]


# --- a valid order ------------------------------------------------------------


def test_valid_limit_order_becomes_a_spec() -> None:
    assert place_order_from_proto(place_request()) == OrderSpec(
        account="acct-1",
        client_order_id="strat:42",
        symbol="AAPL",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        quantity=Decimal(100),
        time_in_force=TimeInForce.DAY,
        limit_price=Decimal("187.25"),
        stop_price=None,
    )


def test_valid_stop_limit_sell_keeps_both_prices() -> None:
    spec = place_order_from_proto(
        place_request(
            side=pb.SIDE_SELL,
            order_type=pb.ORDER_TYPE_STOP_LIMIT,
            limit_price="99.5",
            stop_price="100",
            time_in_force=pb.TIME_IN_FORCE_GTC,
            quantity="0.25",
        )
    )
    assert spec.side is Side.SELL
    assert spec.order_type is OrderType.STOP_LIMIT
    assert spec.time_in_force is TimeInForce.GTC
    assert (spec.quantity, spec.limit_price, spec.stop_price) == (
        Decimal("0.25"),
        Decimal("99.5"),
        Decimal(100),
    )


# --- prices against the order type -----------------------------------------------

PRICE_RULES = [
    # (order type, limit_price, stop_price, fields refused)
    (pb.ORDER_TYPE_MARKET, "", "", []),
    (pb.ORDER_TYPE_MARKET, "10", "", ["limit_price"]),
    (pb.ORDER_TYPE_MARKET, "", "10", ["stop_price"]),
    (pb.ORDER_TYPE_MARKET, "10", "10", ["limit_price", "stop_price"]),
    (pb.ORDER_TYPE_LIMIT, "10", "", []),
    (pb.ORDER_TYPE_LIMIT, "", "", ["limit_price"]),
    (pb.ORDER_TYPE_LIMIT, "10", "10", ["stop_price"]),
    (pb.ORDER_TYPE_LIMIT, "", "10", ["limit_price", "stop_price"]),
    (pb.ORDER_TYPE_STOP, "", "10", []),
    (pb.ORDER_TYPE_STOP, "", "", ["stop_price"]),
    (pb.ORDER_TYPE_STOP, "10", "10", ["limit_price"]),
    (pb.ORDER_TYPE_STOP, "10", "", ["limit_price", "stop_price"]),
    (pb.ORDER_TYPE_STOP_LIMIT, "10", "10", []),
    (pb.ORDER_TYPE_STOP_LIMIT, "", "10", ["limit_price"]),
    (pb.ORDER_TYPE_STOP_LIMIT, "10", "", ["stop_price"]),
    (pb.ORDER_TYPE_STOP_LIMIT, "", "", ["limit_price", "stop_price"]),
]


@pytest.mark.parametrize(("order_type", "limit", "stop", "refused"), PRICE_RULES)
def test_prices_must_match_the_order_type(
    order_type: pb.OrderType.ValueType, limit: str, stop: str, refused: list[str]
) -> None:
    request = place_request(
        order_type=order_type,
        limit_price=limit,
        stop_price=stop,
        time_in_force=pb.TIME_IN_FORCE_DAY,
    )
    if refused:
        assert violated_fields(lambda: place_order_from_proto(request)) == refused
    else:
        spec = place_order_from_proto(request)
        assert spec.limit_price == (Decimal(limit) if limit else None)
        assert spec.stop_price == (Decimal(stop) if stop else None)


def test_forbidden_and_malformed_price_reports_both() -> None:
    request = place_request(order_type=pb.ORDER_TYPE_MARKET, limit_price="-1")
    assert violated_fields(lambda: place_order_from_proto(request)) == [
        "limit_price",
        "limit_price",
    ]


def test_malformed_price_is_reported_even_when_the_type_is_unspecified() -> None:
    request = place_request(order_type=pb.ORDER_TYPE_UNSPECIFIED, limit_price="1e3")
    assert violated_fields(lambda: place_order_from_proto(request)) == [
        "order_type",
        "limit_price",
    ]


# --- time in force against the order type ------------------------------------------


# (limit_price, stop_price) that suit each type, so only the time in force varies.
VALID_PRICES = {
    OrderType.MARKET: ("", ""),
    OrderType.LIMIT: ("10", ""),
    OrderType.STOP: ("", "10"),
    OrderType.STOP_LIMIT: ("10", "11"),
}


@pytest.mark.parametrize("order_type", list(OrderType))
@pytest.mark.parametrize("time_in_force", list(TimeInForce))
def test_time_in_force_must_be_allowed_for_the_type(
    order_type: OrderType, time_in_force: TimeInForce
) -> None:
    request = place_request(
        order_type=ORDER_TYPE_TO_PROTO[order_type],
        time_in_force=TIME_IN_FORCE_TO_PROTO[time_in_force],
        limit_price=VALID_PRICES[order_type][0],
        stop_price=VALID_PRICES[order_type][1],
    )
    if time_in_force in ALLOWED_TIME_IN_FORCE[order_type]:
        spec = place_order_from_proto(request)
        assert (spec.order_type, spec.time_in_force) == (order_type, time_in_force)
    else:
        with pytest.raises(InvalidArgument) as caught:
            place_order_from_proto(request)
        [violation] = caught.value.violations
        assert violation.field == "time_in_force"
        assert "not allowed" in violation.description


# --- enums -----------------------------------------------------------------------


@pytest.mark.parametrize("field", ["side", "order_type", "time_in_force"])
@pytest.mark.parametrize("number", [0, 5, 99, -1, 2**31 - 1])
def test_unspecified_and_unknown_enums_are_refused(field: str, number: int) -> None:
    request = place_request(**{field: number})
    with pytest.raises(InvalidArgument) as caught:
        place_order_from_proto(request)
    fields = [v.field for v in caught.value.violations]
    assert field in fields
    # An unknown order type cannot be checked against prices or time in force.
    assert set(fields) == {field}


def test_enum_violation_lists_the_choices() -> None:
    with pytest.raises(InvalidArgument) as caught:
        place_order_from_proto(place_request(side=pb.SIDE_UNSPECIFIED))
    assert "SIDE_BUY, SIDE_SELL" in caught.value.violations[0].description


# --- names: account, client_order_id, symbol ------------------------------------------

NAME_CASES = [
    # (field, value, valid)
    ("account", "a", True),
    ("account", "A" * 64, True),
    ("account", "Acct_1.main-2", True),
    ("account", "", False),
    ("account", "A" * 65, False),
    ("account", "acct:1", False),
    ("account", "acct 1", False),
    ("account", "acct/1", False),
    ("account", "acct\n", False),
    ("account", "\u00e4cct", False),
    ("account", "a" * MEGABYTE, False),
    ("client_order_id", "x", True),
    ("client_order_id", "c" * 48, True),
    ("client_order_id", "strat-1:2024.01_01", True),
    ("client_order_id", "", False),
    ("client_order_id", "c" * 49, False),
    ("client_order_id", "id/1", False),
    ("client_order_id", "id 1", False),
    ("client_order_id", "id\x00", False),
    ("client_order_id", ":" * MEGABYTE, False),
    ("symbol", "A", True),
    ("symbol", "AAPL", True),
    ("symbol", "BRK.B", True),
    ("symbol", "BTC/USD", True),
    ("symbol", "ES-2024", True),
    ("symbol", "7203", True),
    ("symbol", "S" * 24, True),
    ("symbol", "", False),
    ("symbol", "S" * 25, False),
    ("symbol", "aapl", False),
    ("symbol", "Aapl", False),
    ("symbol", ".AAPL", False),
    ("symbol", "/USD", False),
    ("symbol", "-X", False),
    ("symbol", "BTC_USD", False),
    ("symbol", "BTC:USD", False),
    ("symbol", "AAPL ", False),
    ("symbol", "A" * MEGABYTE, False),
]


@pytest.mark.parametrize(("field", "value", "valid"), NAME_CASES)
def test_name_charsets_and_lengths(field: str, value: str, valid: bool) -> None:
    request = place_request(**{field: value})
    if valid:
        assert getattr(place_order_from_proto(request), field) == value
    else:
        assert violated_fields(lambda: place_order_from_proto(request)) == [field]


# --- every violation at once -------------------------------------------------------


def test_every_violation_is_reported_together() -> None:
    request = pb.PlaceOrderRequest(
        account="bad account",
        client_order_id="",
        symbol="aapl",
        side=pb.SIDE_UNSPECIFIED,
        order_type=pb.ORDER_TYPE_MARKET,
        quantity="-5",
        limit_price="10",
        stop_price="1e2",
        time_in_force=pb.TIME_IN_FORCE_GTC,
    )
    assert sorted(violated_fields(lambda: place_order_from_proto(request))) == sorted(
        [
            "account",
            "client_order_id",
            "symbol",
            "side",
            "quantity",
            "limit_price",
            "stop_price",  # malformed
            "stop_price",  # and forbidden for MARKET
            "time_in_force",
        ]
    )


def test_empty_request_names_every_required_field() -> None:
    assert sorted(violated_fields(lambda: place_order_from_proto(pb.PlaceOrderRequest()))) == [
        "account",
        "client_order_id",
        "order_type",
        "quantity",
        "side",
        "symbol",
        "time_in_force",
    ]


# --- order references -------------------------------------------------------------

RefRequest = type[pb.CancelOrderRequest] | type[pb.GetOrderStatusRequest]
REF_REQUESTS = [pb.CancelOrderRequest, pb.GetOrderStatusRequest]


@pytest.mark.parametrize("request_type", REF_REQUESTS)
def test_order_ref_by_order_id(request_type: RefRequest) -> None:
    request = request_type(account="acct-1", order_id="01HZX3-abc")
    assert order_ref_from_proto(request) == OrderRef(account="acct-1", order_id="01HZX3-abc")


@pytest.mark.parametrize("request_type", REF_REQUESTS)
def test_order_ref_by_client_order_id(request_type: RefRequest) -> None:
    request = request_type(account="acct-1", client_order_id="strat:42")
    assert order_ref_from_proto(request) == OrderRef(account="acct-1", client_order_id="strat:42")


@pytest.mark.parametrize("request_type", REF_REQUESTS)
def test_order_ref_needs_one_id(request_type: RefRequest) -> None:
    request = request_type(account="acct-1")
    assert violated_fields(lambda: order_ref_from_proto(request)) == ["order_id"]


@pytest.mark.parametrize("request_type", REF_REQUESTS)
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("order_id", ""),  # the oneof is set, to an empty id
        ("order_id", "o" * 65),
        ("order_id", "id with spaces"),
        ("order_id", "o" * MEGABYTE),
        ("client_order_id", ""),
        ("client_order_id", "c" * 49),
        ("client_order_id", "id/1"),
    ],
)
def test_order_ref_ids_are_validated(request_type: RefRequest, field: str, value: str) -> None:
    request = request_type(account="acct-1", **{field: value})
    assert request.WhichOneof("order_ref") == field
    assert violated_fields(lambda: order_ref_from_proto(request)) == [field]


@pytest.mark.parametrize("request_type", REF_REQUESTS)
def test_order_ref_reports_account_and_id_together(request_type: RefRequest) -> None:
    request = request_type(account="")
    assert violated_fields(lambda: order_ref_from_proto(request)) == ["account", "order_id"]


# --- list orders and page tokens ---------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "effective"),
    [(0, 100), (1, 1), (100, 100), (999, 999), (1000, 1000), (1001, 1000), (2**32 - 1, 1000)],
)
def test_page_size_defaults_and_caps(requested: int, effective: int) -> None:
    query = list_query_from_proto(pb.ListOrdersRequest(account="acct-1", page_size=requested))
    assert query.page_size == effective


def test_list_query_carries_the_filters() -> None:
    request = pb.ListOrdersRequest(account="acct-1", open_only=True, symbols=["AAPL", "BTC/USD"])
    assert list_query_from_proto(request) == ListOrdersQuery(
        account="acct-1",
        page_size=100,
        open_only=True,
        symbols=frozenset({"AAPL", "BTC/USD"}),
        after_created_sequence=0,
    )


def test_list_query_validates_account_and_each_symbol() -> None:
    request = pb.ListOrdersRequest(account="", symbols=["AAPL", "bad", "", "MSFT"])
    assert violated_fields(lambda: list_query_from_proto(request)) == [
        "account",
        "symbols[1]",
        "symbols[2]",
    ]


def test_list_query_refuses_too_many_symbols() -> None:
    request = pb.ListOrdersRequest(account="acct-1", symbols=["AAPL"] * 1001)
    assert violated_fields(lambda: list_query_from_proto(request)) == ["symbols"]


def _next_page(request: pb.ListOrdersRequest, last_sequence: int) -> pb.ListOrdersRequest:
    token = encode_page_token(list_query_from_proto(request), last_sequence)
    following = pb.ListOrdersRequest()
    following.CopyFrom(request)
    following.page_token = token
    return following


@pytest.mark.parametrize("last_sequence", [0, 1, 42, MAX_SEQUENCE])
def test_page_token_round_trip(last_sequence: int) -> None:
    first = pb.ListOrdersRequest(account="acct-1", open_only=True, symbols=["MSFT", "AAPL"])
    query = list_query_from_proto(_next_page(first, last_sequence))
    assert query.after_created_sequence == last_sequence
    assert query.symbols == frozenset({"AAPL", "MSFT"})


def test_page_token_is_url_safe_and_short() -> None:
    request = pb.ListOrdersRequest(account="a" * 64, symbols=["S" * 24] * 1000)
    token = _next_page(request, MAX_SEQUENCE).page_token
    assert len(token) < 100
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_page_token_survives_symbol_order_and_page_size_changes() -> None:
    following = _next_page(pb.ListOrdersRequest(account="acct-1", symbols=["MSFT", "AAPL"]), 7)
    del following.symbols[:]
    following.symbols.extend(["AAPL", "MSFT"])
    following.page_size = 5
    assert list_query_from_proto(following).after_created_sequence == 7


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"account": "acct-2"}, id="account"),
        pytest.param({"open_only": False}, id="open_only"),
        pytest.param({"symbols": ["AAPL"]}, id="fewer-symbols"),
        pytest.param({"symbols": ["AAPL", "MSFT", "IBM"]}, id="more-symbols"),
        pytest.param({"symbols": []}, id="no-symbols"),
    ],
)
def test_page_token_is_refused_with_other_filters(change: dict[str, Any]) -> None:
    following = _next_page(
        pb.ListOrdersRequest(account="acct-1", open_only=True, symbols=["AAPL", "MSFT"]), 7
    )
    fields: dict[str, Any] = {
        "account": following.account,
        "open_only": following.open_only,
        "symbols": list(following.symbols),
        "page_token": following.page_token,
    }
    fields.update(change)
    request = pb.ListOrdersRequest(**fields)
    with pytest.raises(InvalidArgument) as caught:
        list_query_from_proto(request)
    [violation] = caught.value.violations
    assert violation.field == "page_token"
    assert "another account or other filters" in violation.description


def _token(body: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")


def _good_hash() -> str:
    token = _next_page(pb.ListOrdersRequest(account="acct-1"), 1).page_token
    body = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    assert isinstance(body, dict)
    hash_ = body["f"]
    assert isinstance(hash_, str)
    return hash_


def test_hand_made_token_with_the_right_hash_is_accepted() -> None:
    request = pb.ListOrdersRequest(
        account="acct-1", page_token=_token({"v": 1, "after": 3, "f": _good_hash()})
    )
    assert list_query_from_proto(request).after_created_sequence == 3


BAD_TOKENS: list[Any] = [
    pytest.param("x", id="one-char"),
    pytest.param("not a token", id="spaces"),
    pytest.param("!!!!", id="bad-alphabet"),
    pytest.param("abc=", id="padding-char"),
    pytest.param("a+b/", id="standard-base64"),
    pytest.param("A" * 257, id="too-long"),
    pytest.param("A" * MEGABYTE, id="1MB"),
    pytest.param(base64.urlsafe_b64encode(b"\xff\xfe").decode().rstrip("="), id="not-utf8"),
    pytest.param(_token("just a string"), id="json-string"),
    pytest.param(_token([1, 2, 3]), id="json-list"),
    pytest.param(_token({}), id="empty-object"),
    pytest.param(_token({"v": 1, "after": 3}), id="no-hash"),
    pytest.param(_token({"v": 1, "f": "x"}), id="no-after"),
]


@pytest.mark.parametrize("token", BAD_TOKENS)
def test_malformed_page_tokens_are_refused(token: str) -> None:
    request = pb.ListOrdersRequest(account="acct-1", page_token=token)
    assert violated_fields(lambda: list_query_from_proto(request)) == ["page_token"]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"v": 2}, id="future-version"),
        pytest.param({"v": "1"}, id="version-as-string"),
        pytest.param({"after": -1}, id="negative-after"),
        pytest.param({"after": MAX_SEQUENCE + 1}, id="after-overflows-int64"),
        pytest.param({"after": True}, id="after-bool"),
        pytest.param({"after": 1.5}, id="after-float"),
        pytest.param({"after": "3"}, id="after-string"),
        pytest.param({"after": None}, id="after-null"),
        pytest.param({"f": "0000000000000000"}, id="tampered-hash"),
        pytest.param({"f": 12}, id="hash-not-string"),
        pytest.param({"extra": 1}, id="extra-key"),
    ],
)
def test_tampered_page_tokens_are_refused(change: dict[str, Any]) -> None:
    body: dict[str, Any] = {"v": 1, "after": 3, "f": _good_hash()}
    body.update(change)
    request = pb.ListOrdersRequest(account="acct-1", page_token=_token(body))
    assert violated_fields(lambda: list_query_from_proto(request)) == ["page_token"]


def test_flipping_a_token_character_never_crashes() -> None:
    token = _next_page(pb.ListOrdersRequest(account="acct-1", open_only=True), 12345).page_token
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    refusals: list[InvalidArgument] = []
    for i in range(len(token)):
        for replacement in "A_0":
            if replacement == token[i]:
                continue
            tampered = token[:i] + replacement + token[i + 1 :]
            assert set(tampered) <= set(alphabet)
            request = pb.ListOrdersRequest(account="acct-1", open_only=True, page_token=tampered)
            # A flip inside the "after" digits may decode to another page; any
            # other flip must be refused, and none may raise anything else.
            try:
                list_query_from_proto(request)
            except InvalidArgument as error:
                refusals.append(error)
    assert refusals
    assert all([v.field for v in e.violations] == ["page_token"] for e in refusals)


# --- subscriptions ----------------------------------------------------------------


def test_empty_subscription_means_everything_live() -> None:
    assert subscription_from_proto(pb.SubscribeUpdatesRequest()) == SubscriptionFilter()


@pytest.mark.parametrize(
    ("after", "expected"), [(0, 0), (1, 1), (2**40, 2**40), (2**64 - 1, MAX_SEQUENCE)]
)
def test_after_sequence_presence_decides_replay(after: int, expected: int) -> None:
    request = pb.SubscribeUpdatesRequest(after_sequence=after)
    assert subscription_from_proto(request).after_sequence == expected


def test_subscription_carries_accounts_and_symbols() -> None:
    request = pb.SubscribeUpdatesRequest(accounts=["a1", "a2", "a1"], symbols=["AAPL"])
    assert subscription_from_proto(request) == SubscriptionFilter(
        accounts=frozenset({"a1", "a2"}), symbols=frozenset({"AAPL"}), after_sequence=None
    )


def test_subscription_validates_every_entry() -> None:
    request = pb.SubscribeUpdatesRequest(
        accounts=["ok", "bad account", "x" * MEGABYTE], symbols=["AAPL", "aapl"]
    )
    assert violated_fields(lambda: subscription_from_proto(request)) == [
        "accounts[1]",
        "accounts[2]",
        "symbols[1]",
    ]


@pytest.mark.parametrize("field", ["accounts", "symbols"])
def test_subscription_refuses_too_many_entries(field: str) -> None:
    request = pb.SubscribeUpdatesRequest()
    getattr(request, field).extend(["A"] * 1001)
    assert violated_fields(lambda: subscription_from_proto(request)) == [field]
