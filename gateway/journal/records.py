"""The journal's record format (version 3): the event alone, as msgpack.

A record is ``[sequence, event]``, the event being a tagged array
(``["filled", order_id, fill, time, ...]``, see ``gateway.domain.events``),
encoded by msgspec: Decimals as strings (exact), times as msgpack
timestamps, enums by value. The order's state after the event is not stored:
it is re-derived from the order's events (replay folds them; readers of a
range fold each order's earlier events, found by the order_id index).

Records of formats 1 and 2 (JSON objects with the whole order, from
``gateway.journal.codec``) are still read, so a journal written before is
upgraded in place by use: old rows stay as they are, new rows are events.
The two cannot be confused: a JSON record starts with ``{``, a msgpack
array never does.

Decoding is defensive: malformed bytes raise ``CorruptRecord`` and nothing
else; a record of a newer format raises ``IncompatibleJournal``.
"""

from __future__ import annotations

import msgspec

from gateway.domain import Order, OrderEvent, OrderFilled, OrderUpdate
from gateway.domain.controls import JournalEvent
from gateway.journal import codec
from gateway.journal.base import StoredEvent
from gateway.journal.codec import CorruptRecord

FORMAT_VERSION = 3
"""3: event-only msgpack records (2 and 1: JSON records with the order, still read)."""


class _Record(msgspec.Struct, frozen=True, array_like=True, gc=False):
    sequence: int
    event: JournalEvent


_encoder = msgspec.msgpack.Encoder(decimal_format="string")
_decoder = msgspec.msgpack.Decoder(_Record)
_JSON = ord("{")


def encode_event(sequence: int, event: JournalEvent) -> bytes:
    """Encode one record."""
    return _encoder.encode(_Record(sequence, event))


def decode(body: bytes) -> StoredEvent:
    """Decode a record of any format this code reads."""
    if body[:1] == b"{" or (body and body[0] == _JSON):
        record = codec.decode_record(body)
        update = record.update if isinstance(record.update, OrderUpdate) else None
        return StoredEvent(record.sequence, record.event, update)
    try:
        decoded = _decoder.decode(body)
    except (msgspec.DecodeError, ValueError, TypeError) as exc:
        # msgspec.ValidationError is a DecodeError: a value of the wrong type or tag.
        raise CorruptRecord(f"undecodable record: {exc}") from None
    return StoredEvent(decoded.sequence, decoded.event)


def update_after(sequence: int, event: OrderEvent, order: Order) -> OrderUpdate:
    """The update a subscriber is told for ``event``: what ``Ledger.emit`` builds."""
    fill = event.fill if isinstance(event, OrderFilled) else None
    return OrderUpdate(sequence, order, event.time, fill, kind=event.kind)
