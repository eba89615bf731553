"""The codec's compiled fast paths agree with its reference encoder and decoder."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone

import pytest

from gateway.domain import OrderEvent, OrderStatus
from gateway.journal import JournalRecord, codec
from gateway.journal.codec import CorruptRecord, decode_record, encode_record
from tests.support import update_of
from tests.unit.test_journal_codec import EVENTS, record

NEW_YORK = timezone(timedelta(hours=-5))


@pytest.mark.parametrize("event", EVENTS, ids=lambda event: type(event).__name__)
def test_encoding_is_byte_for_byte_the_reference(event: OrderEvent) -> None:
    original = record(event)
    assert encode_record(original) == codec.encode_record_reference(original)


def test_times_in_other_zones_and_whole_seconds_encode_like_the_reference() -> None:
    for moment in (
        datetime(2024, 3, 9, 9, 30, tzinfo=NEW_YORK),
        datetime(2024, 3, 9, 9, 30, 0, 5, tzinfo=NEW_YORK),
    ):
        changed = record(EVENTS[0], changes={"created_at": moment, "updated_at": moment})
        assert encode_record(changed) == codec.encode_record_reference(changed)


def test_snapshots_and_optional_fields_round_trip() -> None:
    update = update_of(record(EVENTS[3], changes={"status_before_cancel": None}))
    snapshot = JournalRecord(
        EVENTS[3],
        type(update)(update.sequence, update.order, update.time, update.fill, snapshot=True),
    )
    assert decode_record(encode_record(snapshot)) == snapshot


def test_a_naive_time_is_refused_as_by_the_reference() -> None:
    naive = record(EVENTS[0], changes={"created_at": datetime(2024, 3, 9, 9, 30)})
    with pytest.raises(ValueError, match="naive"):
        encode_record(naive)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(v=True),  # a bool is not a version
        lambda d: d["update"]["order"].update(status="open"),
        lambda d: d["update"]["order"].update(filled_quantity="NaN"),
        lambda d: d["update"]["order"].update(created_sequence="1"),
        lambda d: d["update"]["order"].pop("reject_reason"),
        lambda d: d["event"].update(order_id="someone-else"),
        lambda d: d["update"]["order"]["spec"].update(quantity=1),
        lambda d: d["update"].update(time="2024-03-09T09:30:00"),  # no offset
    ],
)
def test_whatever_the_reference_refuses_is_refused(change: object) -> None:
    document = json.loads(encode_record(record(EVENTS[0])))
    change(document)  # type: ignore[operator]
    data = json.dumps(document).encode()
    with pytest.raises(CorruptRecord):
        codec._decode_document(json.loads(data))
    with pytest.raises(CorruptRecord):
        decode_record(data)


def test_random_records_decode_to_what_the_reference_decodes() -> None:
    rng = random.Random(7)
    for _ in range(300):
        event = rng.choice(EVENTS)
        status = rng.choice(list(OrderStatus))
        original = record(event, rng.randrange(1, 10**12), changes={"status": status})
        data = codec.encode_record_reference(original)
        assert decode_record(data) == codec._decode_document(json.loads(data)) == original
