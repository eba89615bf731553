"""Fast paths of the journal codec, compiled from its field tables.

``codec`` owns the format: its tables say which fields each record holds and
how each is spelled, and its generic encoder and decoder are the reference.
They walk those tables field by field for every record, which made encoding
and decoding most of the cost of a commit and of a replay. This module turns
the same tables into straight-line functions once, at import (as
``dataclasses`` does for ``__init__``), and serialises with orjson.

Nothing here decides anything about the format:

- ``encode`` produces exactly the bytes of the reference encoder (a unit test
  compares them record by record);
- ``decode`` accepts only what the reference accepts. Whenever anything looks
  off (a missing field, a wrong type, a bad number) it gives up and the caller
  runs the reference decoder, which says precisely what is wrong.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

from gateway.journal.base import JournalRecord


def with_kind(update: Any, kind: Any) -> Any:
    """``update`` with ``kind`` (a snapshot has none): the decoders' one finishing step."""
    return update if update.snapshot else dataclasses.replace(update, kind=kind)


class Miss(Exception):
    """The fast decoder is not sure: let the reference decoder judge."""


def _encode_time(value: datetime) -> datetime:
    # orjson writes an aware datetime exactly as isoformat() does.
    if value.tzinfo is UTC:
        return value
    if value.utcoffset() is None:
        raise ValueError(f"refusing to journal a naive datetime: {value.isoformat()}")
    return value.astimezone(UTC)


def _encode_decimal(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError(f"refusing to journal a non-finite decimal: {value}")
    return str(value)


def _text(value: object) -> str:
    if type(value) is not str:
        raise Miss
    return value


def _integer(value: object) -> int:
    if type(value) is not int:
        raise Miss
    return value


def _boolean(value: object) -> bool:
    if value is not True and value is not False:
        raise Miss
    return value


# Decoded values by their text. Records repeat them (an order's created_at is
# in each of its updates; quantities and prices recur), and both types are
# immutable, so sharing one object is safe: it saves the parsing on replay
# and the memory of a copy per order in the table. Bounded: cleared when full.
_CACHE_SIZE = 8192
_decimals: dict[str, Decimal] = {}
_times: dict[str, datetime] = {}


def _decimal(value: object) -> Decimal:
    if type(value) is not str:
        raise Miss
    number = _decimals.get(value)
    if number is not None:
        return number
    try:
        number = Decimal(value)
    except (InvalidOperation, ValueError):
        raise Miss from None
    if not number.is_finite():
        raise Miss
    if len(_decimals) >= _CACHE_SIZE:
        _decimals.clear()
    _decimals[value] = number
    return number


def _time(value: object) -> datetime:
    if type(value) is not str:
        raise Miss
    moment = _times.get(value)
    if moment is not None:
        return moment
    moment = datetime.fromisoformat(value)  # ValueError: a miss too
    if moment.utcoffset() is None:
        raise Miss
    moment = moment.astimezone(UTC)
    if len(_times) >= _CACHE_SIZE:
        _times.clear()
    _times[value] = moment
    return moment


def _enum_decoder(enum: type[Enum]) -> Callable[[object], Enum]:
    by_value = {member.value: member for member in enum}

    def decode(value: object) -> Enum:
        member = by_value.get(value) if type(value) is str else None
        if member is None:
            raise Miss
        return member

    return decode


class _Compiler:
    """Generates one encoder and one decoder per layout (struct) of the format."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {
            "Miss": Miss,
            "_encode_time": _encode_time,
            "_encode_decimal": _encode_decimal,
            "_text": _text,
            "_integer": _integer,
            "_boolean": _boolean,
            "_decimal": _decimal,
            "_time": _time,
        }
        self.names: dict[int, str] = {}
        self.sources: list[str] = []
        self._ids = itertools.count()

    def _global(self, prefix: str, value: object) -> str:
        name = f"{prefix}{next(self._ids)}"
        self.namespace[name] = value
        return name

    def encode_expr(self, kind: Any, value: str) -> str:
        shape = kind.shape
        match shape[0]:
            case "text" | "integer" | "boolean":
                return value
            case "decimal":
                return f"_encode_decimal({value})"
            case "time":
                return f"_encode_time({value})"
            case "enum":
                return f"{value}.value"
            case "optional":
                temp = f"_v{next(self._ids)}"
                inner = self.encode_expr(shape[1], temp)
                return f"(None if ({temp} := {value}) is None else {inner})"
            case "struct":
                return f"{self.layout(shape[1])[0]}({value})"
        raise AssertionError(f"no fast encoder for {shape}")

    def decode_expr(self, kind: Any, value: str) -> str:
        shape = kind.shape
        match shape[0]:
            case "text" | "integer" | "boolean" | "decimal" | "time":
                return f"_{shape[0]}({value})"
            case "enum":
                return f"{self._global('_enum', _enum_decoder(shape[1]))}({value})"
            case "optional":
                temp = f"_v{next(self._ids)}"
                inner = self.decode_expr(shape[1], temp)
                return f"(None if ({temp} := {value}) is None else {inner})"
            case "struct":
                return f"{self.layout(shape[1])[1]}({value})"
        raise AssertionError(f"no fast decoder for {shape}")

    def layout(self, layout: Any) -> tuple[str, str]:
        """Return the names of ``layout``'s generated encoder and decoder."""
        if id(layout) in self.names:
            name = self.names[id(layout)]
            return f"_enc_{name}", f"_dec_{name}"
        name = f"{layout.cls.__name__}{next(self._ids)}"
        self.names[id(layout)] = name
        cls = self._global("_cls", layout.cls)
        names = self._global("_names", layout.names)
        items = [f'"type": "{layout.tag}"'] if layout.tag else []
        items += [
            f'"{field}": {self.encode_expr(kind, f"v.{field}")}' for field, kind in layout.fields
        ]
        # Plain fields are checked in one test, inline; the rest call helpers.
        plain = {"text": "str", "integer": "int"}
        checks = [
            f"type(d[{field!r}]) is not {plain[kind.shape[0]]}"
            for field, kind in layout.fields
            if kind.shape[0] in plain
        ]
        arguments = [
            f"{field}=d[{field!r}]"
            if kind.shape[0] in plain
            else f"{field}={self.decode_expr(kind, f'd[{field!r}]')}"
            for field, kind in layout.fields
        ]
        check = f"    if {' or '.join(checks)}:\n        raise Miss\n" if checks else ""
        self.sources.append(
            f"def _enc_{name}(v):\n    return {{{', '.join(items)}}}\n\n"
            f"def _dec_{name}(d):\n"
            f"    if type(d) is not dict or d.keys() != {names}:\n        raise Miss\n"
            f"{check}"
            f"    return {cls}({', '.join(arguments)})\n"
        )
        return f"_enc_{name}", f"_dec_{name}"
        name = f"{layout.cls.__name__}{next(self._ids)}"
        self.names[id(layout)] = name
        cls = self._global("_cls", layout.cls)
        names = self._global("_names", layout.names)
        items = [f'"type": "{layout.tag}"'] if layout.tag else []
        items += [
            f'"{field}": {self.encode_expr(kind, f"v.{field}")}' for field, kind in layout.fields
        ]
        arguments = [
            f"{field}={self.decode_expr(kind, f'd[{field!r}]')}" for field, kind in layout.fields
        ]
        self.sources.append(
            f"def _enc_{name}(v):\n    return {{{', '.join(items)}}}\n\n"
            f"def _dec_{name}(d):\n"
            f"    if type(d) is not dict or d.keys() != {names}:\n        raise Miss\n"
            f"    return {cls}({', '.join(arguments)})\n"
        )
        return f"_enc_{name}", f"_dec_{name}"

    def build(self) -> dict[str, Any]:
        exec(compile("\n".join(self.sources), "<journal codec>", "exec"), self.namespace)  # noqa: S102  # source generated above from the codec's own tables
        return self.namespace


def compile_codec(
    events: Mapping[str, Any], by_class: Mapping[type, Any], update: Any, version: int
) -> tuple[Callable[[JournalRecord], dict[str, object]], Callable[[object], JournalRecord]]:
    """Return (to_document, from_document) for the layouts of ``codec``.

    ``to_document`` gives the record as a dict orjson serialises to the
    reference bytes; ``from_document`` rebuilds a record from a parsed
    document or raises ``Miss``.
    """
    compiler = _Compiler()
    update_names = compiler.layout(update)
    event_names = {cls: compiler.layout(layout) for cls, layout in by_class.items()}
    namespace = compiler.build()
    encode_update = namespace[update_names[0]]
    decode_update = namespace[update_names[1]]
    encoders = {cls: namespace[names[0]] for cls, names in event_names.items()}
    decoders = {tag: namespace[event_names[layout.cls][1]] for tag, layout in events.items()}
    fields = frozenset({"v", "event", "update"})

    def to_document(record: JournalRecord) -> dict[str, object]:
        return {
            "v": version,
            "event": encoders[type(record.event)](record.event),
            "update": encode_update(record.update),
        }

    def from_document(document: object) -> JournalRecord:
        if type(document) is not dict or document.keys() != fields:
            raise Miss
        if type(document["v"]) is not int or document["v"] != version:
            raise Miss  # a bool, an older or a newer version: the reference decides
        raw = document["event"]
        tag = raw.get("type") if type(raw) is dict else None
        decoder = decoders.get(tag) if type(tag) is str else None
        if decoder is None:
            raise Miss
        event = decoder(raw)
        update = decode_update(document["update"])
        if event.order_id != update.order.order_id:
            raise Miss
        # Not stored (codec.NEWER_THAN_JSON): a change's kind is its event's.
        return JournalRecord(event, with_kind(update, event.kind))

    return to_document, from_document
