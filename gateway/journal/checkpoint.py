"""Checkpoints of the order table: what start-up loads instead of the whole history.

A checkpoint is the committed order table as of one sequence: every order,
and the executions booked on each (what makes a repeated fill known). It is
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
from dataclasses import dataclass
from pathlib import Path

import msgspec

from gateway.domain import Order

log = logging.getLogger(__name__)

MAGIC = b"GWCKPT\x00\x01"
CHECKPOINT_VERSION = 1
_HEADER = struct.Struct(">8sQQI")


class _Body(msgspec.Struct, array_like=True, gc=False):
    """The encoded table. ``gc=False``: it holds no cycles, and a million orders
    tracked by the cyclic collector would make every full collection walk them."""

    version: int
    sequence: int
    anchor_crc: int
    orders: list[Order]
    exec_ids: dict[str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The committed order table as of ``sequence``."""

    sequence: int
    anchor_crc: int
    orders: list[Order]
    exec_ids: dict[str, tuple[str, ...]]


_encoder = msgspec.msgpack.Encoder(decimal_format="string")
_decoder = msgspec.msgpack.Decoder(_Body)


def checkpoint_path(journal_path: Path) -> Path:
    return journal_path.with_name(f"{journal_path.name}.checkpoint")


def encode(checkpoint: Checkpoint) -> bytes:
    """Return the whole file's bytes for ``checkpoint``."""
    body = _encoder.encode(
        _Body(
            CHECKPOINT_VERSION,
            checkpoint.sequence,
            checkpoint.anchor_crc,
            checkpoint.orders,
            checkpoint.exec_ids,
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
    except (msgspec.DecodeError, ValueError, TypeError) as exc:
        raise ValueError(f"undecodable: {exc}") from None
    if decoded.version != CHECKPOINT_VERSION or decoded.sequence != sequence:
        raise ValueError(f"version {decoded.version} / sequence {decoded.sequence} unexpected")
    return Checkpoint(sequence, decoded.anchor_crc, decoded.orders, decoded.exec_ids)


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
