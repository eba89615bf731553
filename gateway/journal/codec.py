"""The journal's on-disk encoding of a ``JournalRecord``: versioned, explicit JSON.

Every field is spelled out by name; numbers are exact (``Decimal`` as a
string), times are ISO-8601 in UTC, enums are stored by value and each event
carries a stable ``type`` tag (not its class name, so classes can be renamed).
The field tables below are the format: changing one means a new
``FORMAT_VERSION``.

Decoding is defensive: any malformed input raises ``CorruptRecord`` and
nothing else; a record written by a newer format raises ``IncompatibleJournal``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

import orjson

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
from gateway.journal.base import JournalRecord
from gateway.journal.compiled import compile_codec, with_kind

FORMAT_VERSION = 2
"""The newest record format this code reads and the one it writes.

2: fill accounting by the broker's cumulative quantity (``OrderFilled.
cumulative_quantity``, ``Order.broker_filled`` and ``Order.provisional``, the
``fills_reconciled`` event). Version 1 records are read by ``_upgrade_v1``.
"""


class JournalError(Exception):
    """Root of the journal's storage errors."""


class CorruptRecord(JournalError):
    """Stored bytes that do not decode to a record: damage, not a version issue.

    ``where`` is the path of the offending field, e.g. ``("update", "order", "status")``.
    """

    def __init__(self, why: str, *, where: tuple[str, ...] = ()) -> None:
        super().__init__(why, where)
        self.why = why
        self.where = where

    def __str__(self) -> str:
        return f"{'.'.join(self.where)}: {self.why}" if self.where else self.why


class IncompatibleJournal(JournalError):
    """Data written by a newer format than this code understands."""


# ------------------------------------------------------------ field kinds

Encode = Callable[[Any], object]
Decode = Callable[[object], Any]


@dataclass(frozen=True, slots=True)
class _Kind:
    """How one field's value becomes JSON and back."""

    encode: Encode
    decode: Decode
    shape: tuple[Any, ...] = ()
    """What the kind is, for ``gateway.journal.compiled``: ("text",), ("enum", E),
    ("optional", kind), ("struct", layout)..."""


def _decode_text(value: object) -> str:
    if not isinstance(value, str):
        raise CorruptRecord(f"expected a string, got {type(value).__name__}")
    return value


def _decode_integer(value: object) -> int:
    if type(value) is not int:  # bool is an int subclass: refuse it too
        raise CorruptRecord(f"expected an integer, got {type(value).__name__}")
    return value


def _decode_boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise CorruptRecord(f"expected true or false, got {type(value).__name__}")
    return value


def _encode_decimal(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError(f"refusing to journal a non-finite decimal: {value}")
    return str(value)


def _decode_decimal(value: object) -> Decimal:
    text = _decode_text(value)
    try:
        number = Decimal(text)
    except (InvalidOperation, ValueError):
        raise CorruptRecord(f"not a decimal: {text[:40]!r}") from None
    if not number.is_finite():
        raise CorruptRecord(f"not a finite decimal: {text[:40]!r}")
    return number


def _encode_time(value: datetime) -> str:
    if value.utcoffset() is None:
        # A naive time has no instant: storing it would silently pick a zone.
        raise ValueError(f"refusing to journal a naive datetime: {value.isoformat()}")
    return value.astimezone(UTC).isoformat()


def _decode_time(value: object) -> datetime:
    text = _decode_text(value)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CorruptRecord(f"not an ISO-8601 time: {text[:40]!r}") from None
    if moment.utcoffset() is None:
        raise CorruptRecord(f"time without a UTC offset: {text[:40]!r}")
    return moment.astimezone(UTC)


def _enum(enum: type[Enum]) -> _Kind:
    by_value = {member.value: member for member in enum}

    def decode(value: object) -> Enum:
        member = by_value.get(value) if isinstance(value, str) else None
        if member is None:
            raise CorruptRecord(f"not a {enum.__name__}: {str(value)[:40]!r}")
        return member

    return _Kind(lambda member: member.value, decode, ("enum", enum))


def _optional(kind: _Kind) -> _Kind:
    return _Kind(
        lambda value: None if value is None else kind.encode(value),
        lambda value: None if value is None else kind.decode(value),
        ("optional", kind),
    )


TEXT = _Kind(lambda value: value, _decode_text, ("text",))
INTEGER = _Kind(lambda value: value, _decode_integer, ("integer",))
BOOLEAN = _Kind(lambda value: value, _decode_boolean, ("boolean",))
DECIMAL = _Kind(_encode_decimal, _decode_decimal, ("decimal",))
TIME = _Kind(_encode_time, _decode_time, ("time",))


class _Struct:
    """A dataclass as a JSON object with exactly these fields (no more, no fewer)."""

    def __init__(
        self,
        cls: type,
        fields: tuple[tuple[str, _Kind], ...],
        *,
        tag: str | None = None,
        later: Mapping[str, object] | None = None,
    ) -> None:
        self.cls = cls
        self.fields = fields
        self.tag = tag
        # Fields added after records were written without them, with the value
        # their absence means (formats 1 and 2 are read, no longer written).
        self.later = dict(later or {})
        # An event's object also carries its type tag beside the fields.
        self.names = frozenset(name for name, _ in fields) | ({"type"} if tag else set())
        self.kind = _Kind(self.encode, self.decode, ("struct", self))

    def encode(self, value: object) -> dict[str, object]:
        encoded: dict[str, object] = {"type": self.tag} if self.tag else {}
        for name, kind in self.fields:
            encoded[name] = kind.encode(getattr(value, name))
        return encoded

    def decode(self, value: object) -> Any:
        if not isinstance(value, dict):
            raise CorruptRecord(f"expected an object, got {type(value).__name__}")
        if self.later and value.keys() != self.names:
            value = {**{k: v for k, v in self.later.items() if k not in value}, **value}
        if value.keys() != self.names:
            missing, unknown = self.names - value.keys(), value.keys() - self.names
            raise CorruptRecord(f"fields missing {sorted(missing)}, unknown {sorted(unknown)[:5]}")
        arguments: dict[str, object] = {}
        for name, kind in self.fields:
            try:
                arguments[name] = kind.decode(value[name])
            except CorruptRecord as exc:
                raise CorruptRecord(exc.why, where=(name, *exc.where)) from None
        return self.cls(**arguments)


# ------------------------------------------------------------- the format

SPEC = _Struct(
    OrderSpec,
    (
        ("account", TEXT),
        ("client_order_id", TEXT),
        ("symbol", TEXT),
        ("side", _enum(Side)),
        ("order_type", _enum(OrderType)),
        ("quantity", DECIMAL),
        ("time_in_force", _enum(TimeInForce)),
        ("limit_price", _optional(DECIMAL)),
        ("stop_price", _optional(DECIMAL)),
    ),
)

FILL = _Struct(
    Fill,
    (("exec_id", TEXT), ("quantity", DECIMAL), ("price", DECIMAL), ("time", TIME)),
)

PROVISIONAL = _Struct(
    ProvisionalFill,
    (
        ("cumulative", DECIMAL),
        ("notional", DECIMAL),
        ("confirmed_quantity", DECIMAL),
        ("confirmed_notional", DECIMAL),
    ),
)

# Format 3 stores events as msgpack (``records``); these JSON layouts of the
# replace events serve the export (``gateway journal export``) only.
REPLACE_TERMS = _Struct(
    ReplaceTerms,
    (
        ("replace_id", TEXT),
        ("quantity", _optional(DECIMAL)),
        ("limit_price", _optional(DECIMAL)),
        ("stop_price", _optional(DECIMAL)),
    ),
)

ORDER = _Struct(
    Order,
    (
        ("order_id", TEXT),
        ("spec", SPEC.kind),
        ("status", _enum(OrderStatus)),
        ("created_at", TIME),
        ("updated_at", TIME),
        ("created_sequence", INTEGER),
        ("last_sequence", INTEGER),
        ("broker_order_id", TEXT),
        ("filled_quantity", DECIMAL),
        ("fill_notional", DECIMAL),
        ("reject_reason", TEXT),
        ("status_before_cancel", _optional(_enum(OrderStatus))),
        ("broker_filled", DECIMAL),
        ("provisional", _optional(PROVISIONAL.kind)),
    ),
)

UPDATE = _Struct(
    OrderUpdate,
    (
        ("sequence", INTEGER),
        ("order", ORDER.kind),
        ("time", TIME),
        ("fill", _optional(FILL.kind)),
        ("snapshot", BOOLEAN),
    ),
)

# Type tag -> event layout. Tags are names in the format, never class names,
# so renaming a class cannot orphan old records.
_EVENT_LAYOUTS = (
    _Struct(OrderCreated, (("order_id", TEXT), ("spec", SPEC.kind), ("time", TIME)), tag="created"),
    _Struct(
        OrderAccepted,
        (("order_id", TEXT), ("broker_order_id", TEXT), ("time", TIME)),
        tag="accepted",
    ),
    _Struct(
        OrderRejected,
        (
            ("order_id", TEXT),
            ("reason", TEXT),
            ("time", TIME),
            ("code", _optional(_enum(RejectCode))),
        ),
        tag="rejected",
        later={"code": None},
    ),
    _Struct(
        OrderFilled,
        (
            ("order_id", TEXT),
            ("fill", FILL.kind),
            ("time", TIME),
            ("broker_order_id", TEXT),
            ("cumulative_quantity", _optional(DECIMAL)),
        ),
        tag="filled",
    ),
    _Struct(
        FillsReconciled,
        (
            ("order_id", TEXT),
            ("cumulative_quantity", DECIMAL),
            ("average_price", DECIMAL),
            ("time", TIME),
            ("broker_order_id", TEXT),
        ),
        tag="fills_reconciled",
    ),
    _Struct(CancelRequested, (("order_id", TEXT), ("time", TIME)), tag="cancel_requested"),
    _Struct(OrderCanceled, (("order_id", TEXT), ("time", TIME), ("reason", TEXT)), tag="canceled"),
    _Struct(
        CancelRejected,
        (("order_id", TEXT), ("reason", TEXT), ("time", TIME)),
        tag="cancel_rejected",
    ),
    _Struct(OrderExpired, (("order_id", TEXT), ("time", TIME)), tag="expired"),
    _Struct(
        ReplaceRequested,
        (("order_id", TEXT), ("terms", REPLACE_TERMS.kind), ("time", TIME)),
        tag="replace_requested",
    ),
    _Struct(
        OrderReplaced,
        (
            ("order_id", TEXT),
            ("terms", REPLACE_TERMS.kind),
            ("time", TIME),
            ("broker_order_id", TEXT),
        ),
        tag="replaced",
    ),
    _Struct(
        ReplaceRejected,
        (("order_id", TEXT), ("reason", TEXT), ("time", TIME)),
        tag="replace_rejected",
    ),
)
EVENTS: Mapping[str, _Struct] = {layout.tag or "": layout for layout in _EVENT_LAYOUTS}

# Fields added to the domain after format 3 made records msgpack events
# (``records``): no JSON record ever held them, and adding them here would
# refuse every stored format 1/2 record (a layout's fields are exact). The
# export leaves them out; everything it needs to replay is in the events.
NEWER_THAN_JSON: Mapping[type, tuple[str, ...]] = {
    Order: ("reject_code", "placed_spec", "replaces", "pending_replace"),
    OrderUpdate: ("kind",),
}
_BY_CLASS: Mapping[type, _Struct] = {layout.cls: layout for layout in _EVENT_LAYOUTS}
_RECORD_FIELDS = frozenset({"v", "event", "update"})


def event_tag(event: OrderEvent) -> str:
    """Return the format's type tag of ``event`` (``"filled"``, ``"canceled"``...)."""
    return _BY_CLASS[type(event)].tag or ""


# ------------------------------------------------------------ public API


def record_to_json(record: JournalRecord) -> dict[str, object]:
    """Return ``record`` as the format's JSON object (also what exports show)."""
    return {
        "v": FORMAT_VERSION,
        "event": _BY_CLASS[type(record.event)].encode(record.event),
        "update": UPDATE.encode(record.update),
    }


# The same tables, compiled into straight-line functions (see ``compiled``).
_to_document, _from_document = compile_codec(EVENTS, _BY_CLASS, UPDATE, FORMAT_VERSION)


def encode_record_reference(record: JournalRecord) -> bytes:
    """Encode ``record`` the slow, table-walking way (what ``encode_record`` must equal)."""
    text = json.dumps(
        record_to_json(record), separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def encode_record(record: JournalRecord) -> bytes:
    """Encode ``record`` as compact UTF-8 JSON.

    Raise ``ValueError`` for values the format cannot hold exactly (a naive
    datetime, a NaN): better refused at write time than misread at replay.
    """
    try:
        return orjson.dumps(_to_document(record))
    except orjson.JSONEncodeError:
        # Something orjson will not write (e.g. an integer past 64 bits):
        # the reference encoder writes it or says why not.
        return encode_record_reference(record)


def decode_record(data: bytes) -> JournalRecord:
    """Decode bytes written by ``encode_record`` (this or an older format version).

    Raise ``IncompatibleJournal`` for a newer format and ``CorruptRecord`` for
    anything else that is not a well-formed record; never anything else.
    """
    # The fast path; at any doubt at all, the reference decoder below judges.
    with contextlib.suppress(Exception):
        return _from_document(orjson.loads(data))
    try:
        document = json.loads(data)
    except (ValueError, TypeError, RecursionError) as exc:  # bad UTF-8 is a ValueError too
        raise CorruptRecord(f"not JSON: {exc}") from None
    try:
        return _decode_document(document)
    except (CorruptRecord, IncompatibleJournal):
        raise
    except (ValueError, TypeError, ArithmeticError, RecursionError) as exc:
        # A domain constructor refusing a value: still corruption, never a crash.
        raise CorruptRecord(f"undecodable record: {exc!r}") from None


def _decode_document(document: object) -> JournalRecord:
    if not isinstance(document, dict):
        raise CorruptRecord(f"expected an object, got {type(document).__name__}")
    version = document.get("v")
    if type(version) is not int:
        raise CorruptRecord("no integer format version", where=("v",))
    # Checked before the layout: a newer format may have any layout at all.
    if version > FORMAT_VERSION:
        raise IncompatibleJournal(
            f"record format version {version} is newer than this gateway's {FORMAT_VERSION}"
        )
    if version < 1:
        raise CorruptRecord(f"no such format version {version}", where=("v",))
    if version == 1:
        document = _upgrade_v1(document)
    if document.keys() != _RECORD_FIELDS:
        raise CorruptRecord(f"unexpected fields {sorted(document.keys())[:5]}")
    raw_event = document["event"]
    tag = raw_event.get("type") if isinstance(raw_event, dict) else None
    layout = EVENTS.get(tag) if isinstance(tag, str) else None
    if layout is None:
        raise CorruptRecord(f"unknown event type {str(tag)[:40]!r}", where=("event", "type"))
    event = _decode_part(layout, raw_event, "event")
    update: OrderUpdate = _decode_part(UPDATE, document["update"], "update")
    if event.order_id != update.order.order_id:
        raise CorruptRecord(f"event of {event.order_id!r} carries another order's update")
    # Not stored (NEWER_THAN_JSON): a change's kind is its event's.
    return JournalRecord(event, with_kind(update, event.kind))


# Fields version 2 added, with the value that means what version 1 meant.
_V2_FILLED_FIELDS = {"cumulative_quantity": None}
_V2_ORDER_FIELDS = {"broker_filled": "0", "provisional": None}


def _upgrade_v1(document: dict[str, Any]) -> dict[str, Any]:
    """Return a version 1 document as version 2 would write it.

    Version 1 knew no broker cumulative quantity and no provisional fills:
    its fills are executions placed nowhere in particular, which is what the
    added fields' empty values say. Anything not shaped as expected is left
    for the decoder to call corrupt.
    """
    upgraded = dict(document)
    event = document.get("event")
    if isinstance(event, dict) and event.get("type") == "filled":
        upgraded["event"] = _with_fields(event, _V2_FILLED_FIELDS, "event")
    update = document.get("update")
    if isinstance(update, dict) and isinstance(update.get("order"), dict):
        order = _with_fields(update["order"], _V2_ORDER_FIELDS, "update.order")
        upgraded["update"] = {**update, "order": order}
    return upgraded


def _with_fields(value: dict[str, Any], fields: Mapping[str, object], where: str) -> dict[str, Any]:
    present = fields.keys() & value.keys()
    if present:
        raise CorruptRecord(f"version 1 record with later fields {sorted(present)} in {where}")
    return {**value, **fields}


def _decode_part(layout: _Struct, value: object, name: str) -> Any:
    try:
        return layout.decode(value)
    except CorruptRecord as exc:
        raise CorruptRecord(exc.why, where=(name, *exc.where)) from None
