"""The journal codec: exact round trips, and garbage never raises anything but CorruptRecord."""

from __future__ import annotations

import dataclasses
import json
import random
import typing
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import msgspec
import pytest

from gateway.domain import (
    CancelRejected,
    CancelRequested,
    Fill,
    FillsReconciled,
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderCreated,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    OrderSpec,
    OrderStatus,
    OrderType,
    OrderUpdate,
    ProvisionalFill,
    ReplaceRejected,
    ReplaceRequested,
    ReplaceTerms,
    Side,
    TimeInForce,
)
from gateway.domain.enums import RejectCode
from gateway.journal import JournalRecord, codec
from gateway.journal.codec import (
    FORMAT_VERSION,
    CorruptRecord,
    IncompatibleJournal,
    decode_record,
    encode_record,
)
from tests.support import update_of

T0 = datetime(2024, 3, 9, 14, 30, 0, 123456, tzinfo=UTC)
TINY, HUGE = Decimal("0.000000001"), Decimal("123456789012.5")


def spec(**changes: object) -> OrderSpec:
    base = OrderSpec(
        account="acct-é",
        client_order_id='c"1\n\\',
        symbol="BRK.B",
        side=Side.SELL,
        order_type=OrderType.STOP_LIMIT,
        quantity=HUGE,
        time_in_force=TimeInForce.GTC,
        limit_price=TINY,
        stop_price=Decimal("1E+3"),
    )
    return msgspec.structs.replace(base, **changes)


FILL = Fill("exec-1", TINY, HUGE, T0 + timedelta(microseconds=1))


def order(**changes: object) -> Order:
    base = Order(
        order_id="01HQ0000000000000000000000",
        spec=spec(),
        status=OrderStatus.PENDING_CANCEL,
        created_at=T0,
        updated_at=T0 + timedelta(seconds=1),
        created_sequence=1,
        last_sequence=42,
        broker_order_id="B-🚀",
        filled_quantity=TINY,
        fill_notional=Decimal("-0.0"),
        reject_reason="",
        status_before_cancel=OrderStatus.PARTIALLY_FILLED,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


OID = order().order_id
EVENTS: list[OrderEvent] = [
    OrderCreated(OID, spec(), T0),
    OrderAccepted(OID, "B-1", T0),
    OrderRejected(OID, "no \u2028 funds", T0),
    OrderFilled(OID, FILL, T0, "B-1"),
    OrderFilled(OID, FILL, T0),
    OrderFilled(OID, FILL, T0, "B-1", cumulative_quantity=HUGE),
    FillsReconciled(OID, HUGE, TINY, T0, "B-1"),
    FillsReconciled(OID, Decimal(4), Decimal("101.86"), T0),
    CancelRequested(OID, T0),
    OrderCanceled(OID, T0, "ioc leftover"),
    OrderCanceled(OID, T0),
    CancelRejected(OID, "too late", T0),
    OrderExpired(OID, T0),
    ReplaceRequested(OID, ReplaceTerms("r-1", quantity=HUGE), T0),
    ReplaceRequested(OID, ReplaceTerms("r-2", limit_price=TINY, stop_price=HUGE), T0),
    OrderReplaced(OID, ReplaceTerms("r-1", quantity=HUGE), T0, "B-2"),
    ReplaceRejected(OID, "too late", T0),
]


def record(
    event: OrderEvent, sequence: int = 42, *, changes: dict[str, object] | None = None
) -> JournalRecord:
    """Return ``event`` with an update of ``order()`` (with ``changes``) at ``sequence``."""
    fill = event.fill if isinstance(event, OrderFilled) else None
    update = OrderUpdate(sequence, order(**(changes or {})), T0, fill, kind=event.kind)
    return JournalRecord(event, update)


def test_every_event_type_has_a_layout() -> None:
    assert {layout.cls for layout in codec.EVENTS.values()} == set(typing.get_args(OrderEvent))
    assert {type(event) for event in EVENTS} == set(typing.get_args(OrderEvent))


@pytest.mark.parametrize(
    "layout",
    [
        *codec.EVENTS.values(),
        codec.SPEC,
        codec.FILL,
        codec.PROVISIONAL,
        codec.ORDER,
        codec.UPDATE,
    ],
    ids=lambda layout: layout.cls.__name__,
)
def test_layouts_spell_out_every_field(layout: codec._Struct) -> None:
    # A field added to a domain class must be added to the format (and the version bumped).
    if isinstance(layout.cls, type) and issubclass(layout.cls, msgspec.Struct):
        names = [f.name for f in msgspec.structs.fields(layout.cls)]
    else:
        names = [f.name for f in dataclasses.fields(layout.cls)]  # type: ignore[arg-type]
    newer = codec.NEWER_THAN_JSON.get(layout.cls, ())
    assert [name for name, _ in layout.fields] + list(newer) == names


@pytest.mark.parametrize("event", EVENTS, ids=lambda event: type(event).__name__)
def test_every_event_round_trips_exactly(event: OrderEvent) -> None:
    original = record(event)
    decoded = decode_record(encode_record(original))
    assert decoded == original
    # Equal is not enough for Decimal: 1E+3 == 1000, but the exponent must survive too.
    order = update_of(decoded).order
    assert str(order.spec.stop_price) == "1E+3"
    assert str(order.fill_notional) == "-0.0"
    assert order.spec.quantity.as_tuple() == HUGE.as_tuple()


@pytest.mark.parametrize(
    "changes",
    [
        *({"status": status, "status_before_cancel": None} for status in OrderStatus),
        *({"spec": spec(side=side)} for side in Side),
        *({"spec": spec(order_type=kind, limit_price=None, stop_price=None)} for kind in OrderType),
        *({"spec": spec(time_in_force=tif)} for tif in TimeInForce),
    ],
)
def test_every_enum_value_round_trips(changes: dict[str, object]) -> None:
    original = record(EVENTS[0], changes=changes)
    assert decode_record(encode_record(original)) == original


def test_a_snapshot_flag_round_trips() -> None:
    original = record(EVENTS[1])
    # Snapshots have no kind.
    update = dataclasses.replace(update_of(original), snapshot=True, kind=None)
    original = JournalRecord(original.event, update)
    assert decode_record(encode_record(original)) == original


def test_times_are_stored_in_utc_and_keep_their_instant() -> None:
    eastern = T0.astimezone(timezone(timedelta(hours=-5)))
    original = record(OrderExpired(OID, eastern))
    body = json.loads(encode_record(original))
    assert body["event"]["time"] == "2024-03-09T14:30:00.123456+00:00"
    decoded = decode_record(encode_record(original))
    assert decoded == original
    assert decoded.event.time.tzinfo is UTC


def test_the_format_is_plain_tagged_json() -> None:
    body = json.loads(encode_record(record(EVENTS[3], sequence=7)))
    assert body["v"] == FORMAT_VERSION
    assert body["event"]["type"] == "filled"
    assert body["event"]["fill"]["quantity"] == "1E-9"
    assert body["update"]["sequence"] == 7
    assert body["update"]["order"]["status"] == "pending_cancel"


def test_values_the_format_cannot_hold_exactly_are_refused_when_writing() -> None:
    with pytest.raises(ValueError, match="naive"):
        encode_record(record(OrderExpired(OID, datetime(2024, 1, 1))))
    with pytest.raises(ValueError, match="non-finite"):
        encode_record(record(EVENTS[0], changes={"filled_quantity": Decimal("NaN")}))


def test_a_newer_format_is_incompatible_not_corrupt() -> None:
    with pytest.raises(IncompatibleJournal, match=f"version {FORMAT_VERSION + 1}"):
        decode_record(json.dumps({"v": FORMAT_VERSION + 1, "whatever": []}).encode())


GOOD = encode_record(record(EVENTS[3]))


def mutated(path: tuple[str, ...], value: object) -> bytes:
    """Return GOOD with the field at ``path`` set to ``value`` (deleted if ``...``)."""
    document = json.loads(GOOD)
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    if value is ...:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (b"", ()),
        (b"\xff\xfe\x00garbage", ()),
        (b"null", ()),
        (b"[1, 2]", ()),
        (b"{}", ("v",)),
        (b"[" * 100_000 + b"]" * 100_000, ()),
        (mutated(("v",), "1"), ("v",)),
        (mutated(("v",), True), ("v",)),
        (mutated(("v",), 0), ("v",)),
        (mutated(("extra",), 1), ()),
        (mutated(("event", "type"), "teleported"), ("event", "type")),
        (mutated(("event", "type"), ["filled"]), ("event", "type")),
        (mutated(("event",), "filled"), ("event", "type")),
        (mutated(("event", "fill", "price"), ...), ("event", "fill")),
        (mutated(("event", "fill", "price"), 101.5), ("event", "fill", "price")),
        (mutated(("event", "fill", "price"), "1.2.3"), ("event", "fill", "price")),
        (mutated(("event", "fill", "price"), "NaN"), ("event", "fill", "price")),
        (mutated(("event", "fill", "price"), "-Infinity"), ("event", "fill", "price")),
        (mutated(("event", "time"), "2024-03-09T14:30:00"), ("event", "time")),
        (mutated(("event", "time"), "yesterday"), ("event", "time")),
        (mutated(("event", "time"), 1700000000), ("event", "time")),
        (mutated(("update", "sequence"), True), ("update", "sequence")),
        (mutated(("update", "sequence"), 7.0), ("update", "sequence")),
        (mutated(("update", "snapshot"), 0), ("update", "snapshot")),
        (mutated(("update", "order", "status"), "FILLED"), ("update", "order", "status")),
        (mutated(("update", "order", "spec", "side"), None), ("update", "order", "spec", "side")),
        (mutated(("update", "order", "spec"), []), ("update", "order", "spec")),
        (mutated(("update", "order", "order_id"), "someone-else"), ()),
        (mutated(("update", "fill"), {"exec_id": "x"}), ("update", "fill")),
    ],
)
def test_malformed_input_is_corrupt_and_says_where(data: bytes, where: tuple[str, ...]) -> None:
    with pytest.raises(CorruptRecord) as caught:
        decode_record(data)
    assert caught.value.where == where


def test_every_truncation_is_corrupt() -> None:
    for cut in range(len(GOOD)):
        with pytest.raises(CorruptRecord):
            decode_record(GOOD[:cut])


def test_random_damage_never_raises_anything_but_corrupt_record() -> None:
    rng = random.Random(3)
    inputs = [rng.randbytes(rng.randrange(200)) for _ in range(300)]
    for _ in range(2000):
        damaged = bytearray(GOOD)
        for _ in range(rng.randrange(1, 4)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        inputs.append(bytes(damaged))
    for data in inputs:
        try:
            decoded = decode_record(data)
        except CorruptRecord:
            continue
        # A flip may land in a free-text field and still decode: then it is a valid record.
        assert isinstance(decoded, JournalRecord)


# ------------------------------------------------------------ version 1

# Records as the previous format (version 1) wrote them: no broker cumulative
# on fills, no provisional part or broker count on orders.
V1_ORDER = {
    "order_id": "o-1",
    "spec": {
        "account": "acct-1",
        "client_order_id": "c-1",
        "symbol": "AAPL",
        "side": "buy",
        "order_type": "market",
        "quantity": "11",
        "time_in_force": "day",
        "limit_price": None,
        "stop_price": None,
    },
    "status": "partially_filled",
    "created_at": "2024-03-09T14:30:00+00:00",
    "updated_at": "2024-03-09T14:30:01+00:00",
    "created_sequence": 1,
    "last_sequence": 3,
    "broker_order_id": "B-1",
    "filled_quantity": "4",
    "fill_notional": "407.44",
    "reject_reason": "",
    "status_before_cancel": None,
}
V1_FILL = {
    "exec_id": "x-1",
    "quantity": "4",
    "price": "101.86",
    "time": "2024-03-09T14:30:01+00:00",
}
V1_FILLED = {
    "v": 1,
    "event": {
        "type": "filled",
        "order_id": "o-1",
        "fill": V1_FILL,
        "time": "2024-03-09T14:30:01+00:00",
        "broker_order_id": "B-1",
    },
    "update": {
        "sequence": 3,
        "order": V1_ORDER,
        "time": "2024-03-09T14:30:01+00:00",
        "fill": V1_FILL,
        "snapshot": False,
    },
}


def test_a_version_1_fill_reads_as_an_execution_placed_nowhere() -> None:
    decoded = decode_record(json.dumps(V1_FILLED).encode())

    assert isinstance(decoded.event, OrderFilled)
    when = datetime(2024, 3, 9, 14, 30, 1, tzinfo=UTC)
    assert decoded.event.fill == Fill("x-1", Decimal(4), Decimal("101.86"), when)
    assert decoded.event.cumulative_quantity is None
    order = update_of(decoded).order
    assert order.filled_quantity == Decimal(4)
    assert order.broker_filled == Decimal(0)
    assert order.provisional is None
    # Written again, it is a version 2 record that reads back the same.
    again = encode_record(decoded)
    assert json.loads(again)["v"] == FORMAT_VERSION == 2
    assert decode_record(again) == decoded


def test_a_version_1_record_of_any_other_event_reads() -> None:
    canceled = {
        **V1_FILLED,
        "event": {
            "type": "canceled",
            "order_id": "o-1",
            "time": "2024-03-09T14:30:02+00:00",
            "reason": "",
        },
        "update": {**V1_FILLED["update"], "fill": None},  # type: ignore[dict-item]
    }
    decoded = decode_record(json.dumps(canceled).encode())
    assert isinstance(decoded.event, OrderCanceled)
    assert update_of(decoded).order.provisional is None


def test_a_version_1_record_with_version_2_fields_is_corrupt() -> None:
    mixed = json.loads(json.dumps(V1_FILLED))
    mixed["event"]["cumulative_quantity"] = "4"
    with pytest.raises(CorruptRecord, match="later fields"):
        decode_record(json.dumps(mixed).encode())


def test_a_provisional_part_round_trips() -> None:
    provisional = ProvisionalFill(Decimal(4), Decimal("407.44"), Decimal(0), Decimal(0))
    event = FillsReconciled(OID, Decimal(4), Decimal("101.86"), T0, "B-1")
    stored = record(event, changes={"provisional": provisional, "broker_filled": Decimal(4)})
    assert decode_record(encode_record(stored)) == stored
    assert encode_record(stored) == codec.encode_record_reference(stored)


def test_a_rejection_written_before_reject_codes_reads_with_none() -> None:
    rejected = record(OrderRejected(OID, "no", T0, RejectCode.RISK_LIMIT))
    document = json.loads(encode_record(rejected))
    assert document["event"]["code"] == "risk_limit"
    assert decode_record(json.dumps(document).encode()) == rejected
    del document["event"]["code"]  # as format 2 wrote it
    old = decode_record(json.dumps(document).encode())
    assert isinstance(old.event, OrderRejected)
    assert old.event.code is None
