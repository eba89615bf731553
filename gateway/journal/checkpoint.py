"""Checkpoints of the order table: what start-up loads instead of the whole history.

A checkpoint is the committed order table as of one sequence: every order,
and the executions booked on each (what makes a repeated fill known). Once
terminal orders leave memory (``gateway.engine.retention``), it holds the
orders in memory and, for the others, only the index that finds them again
(``order_index.AccountIndex``); version 1 files (every order) still load. It is
derived data: the journal keeps every event, so a checkpoint that is
missing, torn, unreadable or of another journal is ignored (with a warning)
and start-up replays the whole journal instead. A checkpoint can cost time,
never data.

File layout (``journal.db.checkpoint``, beside the journal)::

    MAGIC (8 bytes) | sequence (8, big-endian) | body length (8) | CRC-32 of body (4) | body

The body is msgpack (msgspec) of ``_Body``. The sequence sits in the fixed
header too, so opening the journal can learn it without decoding the body.
``anchor_crc`` is the CRC of the journal's record at ``sequence``: a
checkpoint whose anchor is not in the journal (a salvaged or replaced file)
belongs to another history and is ignored.

Writing: to ``<name>.tmp``, fsynced, renamed over ``<name>``, directory
fsynced. A kill -9 at any point leaves the previous checkpoint or the new
one (plus perhaps a stray ``.tmp``, replaced by the next write).
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import msgspec

from gateway.domain import (
    Order,
    OrderSpec,
    OrderStatus,
    OrderType,
    ProvisionalFill,
    RejectCode,
    ReplaceTerms,
    Side,
    TimeInForce,
)
from gateway.domain.controls import ControlState
from gateway.journal.order_index import AccountIndex

log = logging.getLogger(__name__)

MAGIC = b"GWCKPT\x00\x01"
CHECKPOINT_VERSION = 2
# Version 1 had no ``accounts``: every order was in ``chunks``. Still read.
_READABLE_VERSIONS = frozenset({1, CHECKPOINT_VERSION})
_HEADER = struct.Struct(">8sQQI")


class _SpecRow(msgspec.Struct, array_like=True, gc=False):
    """An encoded ``OrderSpec`` as decoded: numbers still text (see ``_orders``)."""

    account: str
    client_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: str
    time_in_force: TimeInForce
    limit_price: str | None
    stop_price: str | None


class _OrderRow(msgspec.Struct, gc=False):
    """An encoded ``Order`` (a map by field name) as decoded: numbers still text."""

    order_id: str
    spec: _SpecRow
    status: OrderStatus
    created_at: datetime
    updated_at: datetime
    created_sequence: int
    last_sequence: int
    broker_order_id: str
    filled_quantity: str
    fill_notional: str
    reject_reason: str
    status_before_cancel: OrderStatus | None
    broker_filled: str
    provisional: ProvisionalFill | None
    # Added after version 1 was written: absent from older checkpoints, hence
    # the defaults (a checkpoint stays readable by the code that follows it).
    reject_code: RejectCode | None = None
    placed_spec: OrderSpec | None = None
    replaces: tuple[ReplaceTerms, ...] = ()
    pending_replace: ReplaceTerms | None = None


class _Body(msgspec.Struct, array_like=True, gc=False):
    """The encoded table. ``gc=False``: it holds no cycles.

    Orders go in chunks (each an embedded msgpack array of ``CHUNK`` orders),
    so loading decodes one chunk at a time: the decoded rows of a chunk are
    freed before the next, and their memory reused, instead of all of them
    sitting beside all the orders built from them.
    """

    version: int
    sequence: int
    anchor_crc: int
    chunks: list[msgspec.Raw]
    exec_chunks: list[msgspec.Raw]
    """Per chunk, each order's exec_ids (None: none), in the order of its orders:
    keyed by position, the table keys them with the order's own id string
    rather than a second copy of it per order."""
    accounts: list[AccountIndex] = []
    """Each account's full creation order and its evicted orders' keys (version
    2; empty: nothing was evicted, and the orders alone make the index)."""
    controls: ControlState | None = None
    """Positions and halts; absent from checkpoints written before them (the
    same version: an older reader ignores it, a newer one reads none)."""


CHUNK = 4096


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The committed order table as of ``sequence``."""

    sequence: int
    anchor_crc: int
    orders: list[Order]
    exec_ids: dict[str, tuple[str, ...]]
    accounts: list[AccountIndex]
    """The index of orders not in ``orders`` (evicted), per account; empty if none."""
    controls: ControlState = field(default_factory=ControlState)


_encoder = msgspec.msgpack.Encoder(decimal_format="string")
_decoder = msgspec.msgpack.Decoder(_Body)
_rows = msgspec.msgpack.Decoder(list[_OrderRow])
_execs = msgspec.msgpack.Decoder(list[tuple[str, ...] | None])
_RECURRING_MAX = 1 << 16


def checkpoint_path(journal_path: Path) -> Path:
    return journal_path.with_name(f"{journal_path.name}.checkpoint")


def encode(checkpoint: Checkpoint) -> bytes:
    """Return the whole file's bytes for ``checkpoint``."""
    orders, exec_ids = checkpoint.orders, checkpoint.exec_ids
    chunks = [orders[at : at + CHUNK] for at in range(0, len(orders), CHUNK)]
    body = _encoder.encode(
        _Body(
            CHECKPOINT_VERSION,
            checkpoint.sequence,
            checkpoint.anchor_crc,
            [msgspec.Raw(_encoder.encode(chunk)) for chunk in chunks],
            [
                msgspec.Raw(_encoder.encode([exec_ids.get(order.order_id) for order in chunk]))
                for chunk in chunks
            ],
            checkpoint.accounts,
            checkpoint.controls,
        )
    )
    return _HEADER.pack(MAGIC, checkpoint.sequence, len(body), zlib.crc32(body)) + body


def decode(data: bytes) -> Checkpoint:
    """Decode a checkpoint file's bytes; raise ValueError if they are not a whole one."""
    if len(data) < _HEADER.size:
        raise ValueError("shorter than its header")
    magic, sequence, length, crc = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise ValueError("not a checkpoint of this format")
    body = memoryview(data)[_HEADER.size :]
    if len(body) != length:
        raise ValueError(f"body of {len(body)} bytes, header says {length}")
    if zlib.crc32(body) != crc:
        raise ValueError("checksum mismatch")
    try:
        decoded = _decoder.decode(body)
        if decoded.version not in _READABLE_VERSIONS or decoded.sequence != sequence:
            raise ValueError(f"version {decoded.version} / sequence {decoded.sequence} unexpected")
        orders: list[Order] = []
        recurring: dict[str, Decimal] = {}
        exec_ids: dict[str, tuple[str, ...]] = {}
        if len(decoded.exec_chunks) != len(decoded.chunks):
            raise ValueError("exec_ids do not match the orders")
        for chunk, exec_chunk in zip(decoded.chunks, decoded.exec_chunks, strict=True):
            loaded = _orders(_rows.decode(chunk), recurring)
            execs = _execs.decode(exec_chunk)
            if len(execs) != len(loaded):
                raise ValueError("exec_ids do not match the orders")
            for order, ids in zip(loaded, execs, strict=True):
                if ids:
                    exec_ids[order.order_id] = ids
            orders += loaded
        for index in decoded.accounts:
            count = len(index.order_ids)
            if not (
                len(index.sequences) == 8 * count
                and len(index.client_order_ids) == len(index.broker_order_ids) == count
            ):
                raise ValueError(f"the order index of account {index.account!r} is misaligned")
    except (msgspec.DecodeError, ValueError, TypeError) as exc:
        raise ValueError(f"undecodable: {exc}") from None
    controls = decoded.controls if decoded.controls is not None else ControlState()
    return Checkpoint(sequence, decoded.anchor_crc, orders, exec_ids, decoded.accounts, controls)


def read_sequence(path: Path) -> int:
    """The sequence a checkpoint file's header names (0: no usable header)."""
    try:
        with path.open("rb") as file:
            header = file.read(_HEADER.size)
    except OSError:
        return 0
    if len(header) < _HEADER.size:
        return 0
    magic, sequence, _, _ = _HEADER.unpack(header)
    return int(sequence) if magic == MAGIC else 0


def read(path: Path) -> Checkpoint | None:
    """Load the checkpoint at ``path``; None (with a warning) if absent or unusable."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("checkpoint %s unreadable (%s): replaying the whole journal", path, exc)
        return None
    try:
        return decode(data)
    except ValueError as exc:
        log.warning("checkpoint %s unusable (%s): replaying the whole journal", path, exc)
        return None


def write(path: Path, checkpoint: Checkpoint) -> int:
    """Replace the checkpoint at ``path`` atomically and durably; return its size."""
    data = encode(checkpoint)
    temporary = path.with_name(f"{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return len(data)


def discard(path: Path) -> None:
    """Remove a checkpoint (and a leftover temporary): it no longer matches the journal."""
    for leftover in (path, path.with_name(f"{path.name}.tmp")):
        leftover.unlink(missing_ok=True)


def _orders(rows: list[_OrderRow], recurring: dict[str, Decimal]) -> list[Order]:
    """Build the orders of decoded rows, sharing equal numbers as replay does.

    Decoding straight into ``Order`` made a Decimal (about 100 bytes) per
    field per order where replay shares one: a quantity filled in full is
    the ordered quantity's object, zero totals are one zero, and quantities
    and limits recur across orders. Loaded orders took half as much memory
    again as replayed ones. Numbers are decoded as text and turned into
    Decimals through a bounded table of the recurring ones instead.
    """

    def number(text: str) -> Decimal:
        found = recurring.get(text)
        if found is None:
            found = Decimal(text)
            if len(recurring) < _RECURRING_MAX:
                recurring[text] = found
        return found

    orders: list[Order] = []
    append = orders.append
    for row in rows:
        raw = row.spec
        quantity = number(raw.quantity)
        spec = OrderSpec(
            raw.account,
            raw.client_order_id,
            raw.symbol,
            raw.side,
            raw.order_type,
            quantity,
            raw.time_in_force,
            None if raw.limit_price is None else number(raw.limit_price),
            None if raw.stop_price is None else number(raw.stop_price),
        )
        filled = quantity if row.filled_quantity == raw.quantity else number(row.filled_quantity)
        broker_filled = (
            filled if row.broker_filled == row.filled_quantity else number(row.broker_filled)
        )
        created_at = row.created_at
        append(
            Order(
                row.order_id,
                spec,
                row.status,
                created_at,
                created_at if row.updated_at == created_at else row.updated_at,
                row.created_sequence,
                row.last_sequence,
                row.broker_order_id,
                filled,
                Decimal(row.fill_notional) if row.fill_notional != "0" else number("0"),
                row.reject_reason,
                row.status_before_cancel,
                broker_filled,
                row.provisional,
                row.reject_code,
                row.placed_spec,
                row.replaces,
                row.pending_replace,
            )
        )
    return orders
