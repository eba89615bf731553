"""The operator's view of a journal file: select records, print them.

Everything here opens the file read-only, so it is safe while the gateway
runs and never "repairs" anything: damage is reported, not recovered from
(that is the gateway's job at start-up).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from datetime import UTC
from pathlib import Path

import msgspec

from gateway.domain import (
    CancelRejected,
    CancelRequested,
    OrderAccepted,
    OrderCanceled,
    OrderCreated,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    OrderUpdate,
    ReplaceRejected,
    ReplaceRequested,
)
from gateway.domain.controls import ControlEvent, PositionChanged, TradingStateChanged
from gateway.journal.base import JournalRecord
from gateway.journal.codec import CorruptRecord, encode_record, event_tag
from gateway.journal.sqlite import (
    OrderFolder,
    connect_read_only,
    decode_row,
    is_damage,
    iter_rows,
    read_format_version,
)

# (title, width) of the fixed-width columns; "details" takes the rest of the line.
COLUMNS = (
    ("SEQUENCE", 10),
    ("TIME (UTC)", 26),
    ("ORDER", 26),
    ("EVENT", 16),
    ("STATUS AFTER", 16),
    ("FILLED/QTY", 15),
)


def iter_records(
    path: Path,
    *,
    order_id: str | None = None,
    from_sequence: int | None = None,
    to_sequence: int | None = None,
) -> Iterator[JournalRecord]:
    """Yield the records of ``path`` for ``order_id`` and/or in [from, to], in order.

    Raise ``FileNotFoundError`` if there is no journal, ``IncompatibleJournal``
    for a newer format, and ``CorruptRecord`` where the file is damaged (after
    yielding every good record before that point).
    """
    conditions: list[str] = []
    args: list[object] = []
    if order_id is not None:
        conditions.append("order_id = ?")
        args.append(order_id)
    if from_sequence is not None:
        conditions.append("sequence >= ?")
        args.append(from_sequence)
    if to_sequence is not None:
        conditions.append("sequence <= ?")
        args.append(to_sequence)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    conn = connect_read_only(path)
    previous = 0
    try:
        if read_format_version(conn) is None:
            return  # created but never written
        # The folder reads each order's earlier events on a connection of its own:
        # one cursor stays open on this one.
        folder_conn = connect_read_only(path)
        try:
            folder = OrderFolder(folder_conn)
            for row in iter_rows(conn, where, args):
                stored = decode_row(row, previous)
                previous = stored.sequence
                yield folder.record(stored)
        finally:
            folder_conn.close()
    except sqlite3.DatabaseError as exc:
        if not is_damage(exc):
            raise
        raise CorruptRecord(f"{path} after sequence {previous}: SQLite: {exc}") from None
    finally:
        conn.close()


def format_jsonl(records: Iterable[JournalRecord]) -> Iterator[str]:
    """Yield one line (no newline) per record: the event and the order's state after it.

    In the JSON layout of journal format 2 (which stored both), whatever the
    format on disk: it is a stable, readable shape for tools like ``jq``.
    """
    for record in records:
        if isinstance(record.event, ControlEvent):
            yield _control_json(record.sequence, record.event)
        else:
            yield encode_record(record).decode("utf-8")


def _control_json(sequence: int, event: ControlEvent) -> str:
    """A control record (no order state) in JSON: its sequence and its event."""
    tag = "position" if isinstance(event, PositionChanged) else "trading_state"
    document = {"sequence": sequence, "type": tag, "event": msgspec.to_builtins(event)}
    return _CONTROL_JSON.encode(document).decode("utf-8")


_CONTROL_JSON = msgspec.json.Encoder(decimal_format="string")


def format_table(records: Iterable[JournalRecord]) -> Iterator[str]:
    """Yield a header line, then one fixed-width line per record (no newlines)."""
    yield _line([title for title, _ in COLUMNS], "DETAILS")
    for record in records:
        event, update = record.event, record.update
        if isinstance(event, ControlEvent) or not isinstance(update, OrderUpdate):
            yield _control_line(record)
            continue
        order = update.order
        cells = [
            str(record.sequence),
            update.time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f"),
            order.order_id,
            event_tag(event),
            order.status.name,
            f"{order.filled_quantity}/{order.spec.quantity}",
        ]
        yield _line(cells, describe(event))


def _control_line(record: JournalRecord) -> str:
    """A position change or a halt as a table line: no order status or fill columns."""
    event = record.event
    time = record.update.time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    if isinstance(event, PositionChanged):
        position = event.position
        details = (
            f"account={position.account} symbol={position.symbol} "
            f"quantity={position.quantity} realized_pnl={position.realized_pnl}"
        )
        return _line([str(record.sequence), time, event.order_id, "position", "", ""], details)
    assert isinstance(event, TradingStateChanged)
    halt = event.halt
    details = f"scope={halt.scope_account or '*'} principal={halt.principal} reason={halt.reason}"
    return _line([str(record.sequence), time, "", "trading_state", halt.mode.name, ""], details)


def describe(event: OrderEvent) -> str:
    """Return the facts of ``event`` that the other columns do not show."""
    match event:
        case OrderCreated(spec=spec):
            price = "".join(
                f" {label} {value}"
                for label, value in (("limit", spec.limit_price), ("stop", spec.stop_price))
                if value is not None
            )
            return (
                f"{spec.side.name} {spec.quantity} {spec.symbol} {spec.order_type.name}{price} "
                f"{spec.time_in_force.name} account={spec.account} "
                f"client_order_id={spec.client_order_id}"
            )
        case OrderAccepted(broker_order_id=broker_order_id):
            return f"broker_order_id={broker_order_id}"
        case OrderFilled(fill=fill):
            return f"exec_id={fill.exec_id} {fill.quantity} @ {fill.price}"
        case OrderRejected(reason=reason) | OrderCanceled(reason=reason):
            return f"reason={reason}" if reason else ""
        case CancelRejected(reason=reason):
            return f"reason={reason}"
        case CancelRequested() | OrderExpired():
            return ""
        case ReplaceRequested(terms=terms) | OrderReplaced(terms=terms):
            changed = " ".join(
                f"{label}={value}"
                for label, value in (
                    ("quantity", terms.quantity),
                    ("limit", terms.limit_price),
                    ("stop", terms.stop_price),
                )
                if value is not None
            )
            broker = getattr(event, "broker_order_id", "")
            suffix = f" broker_order_id={broker}" if broker else ""
            return f"replace_id={terms.replace_id} {changed}{suffix}"
        case ReplaceRejected(reason=reason):
            return f"reason={reason}"
    return ""


def _line(cells: list[str], details: str) -> str:
    # Values longer than a column push the line right rather than being cut:
    # an operator must never see a truncated id.
    fixed = " ".join(cell.ljust(width) for cell, (_, width) in zip(cells, COLUMNS, strict=True))
    return f"{fixed} {details}".rstrip()
