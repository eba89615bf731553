"""``gatewayctl watch``: the live table of orders, fills and positions, and its renderings."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any, TextIO

from gateway_client._models import (
    Event,
    Fill,
    Heartbeat,
    Order,
    OrderUpdate,
    Position,
    PositionUpdate,
    SnapshotComplete,
    TradingHalt,
    TradingMode,
    TradingStateUpdate,
    UpdateKind,
)

RECENT_FILLS = 10
# A replace changes an order's terms, not always its status: say so on its line.
_REPLACE_KINDS = frozenset(
    {UpdateKind.REPLACE_REQUESTED, UpdateKind.REPLACED, UpdateKind.REPLACE_REJECTED}
)


def to_json(value: Any) -> Any:
    """A JSON-ready copy of an SDK value: Decimals as strings, enums by name."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "__dataclass_fields__"):
        return {name: to_json(getattr(value, name)) for name in value.__dataclass_fields__}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


def event_json(event: Event) -> str:
    """One line of ``watch --json``: the event with its kind."""
    kind = {
        OrderUpdate: "update",
        Heartbeat: "heartbeat",
        SnapshotComplete: "snapshot_complete",
        PositionUpdate: "position",
        TradingStateUpdate: "trading_state",
    }
    return json.dumps({"event": kind[type(event)], **to_json(event)}, sort_keys=True)


def _number(value: Decimal | None) -> str:
    return "" if value is None else format(value, "f")


ORDER_COLUMNS = ("SEQ", "ORDER", "CLIENT ID", "SYMBOL", "SIDE", "TYPE", "QTY", "FILLED", "AVG PX",
                 "STATUS")  # fmt: skip


def order_row(order: Order, sequence: int | str = "") -> tuple[str, ...]:
    """One order as table cells."""
    return (
        str(sequence),
        order.order_id,
        order.client_order_id,
        order.symbol,
        order.side.value,
        order.order_type.value,
        _number(order.quantity),
        _number(order.filled_quantity),
        _number(order.average_fill_price),
        order.status.value,
    )


POSITION_COLUMNS = ("SYMBOL", "QTY", "AVG COST", "REALIZED P&L", "UPDATED")


def position_row(position: Position) -> tuple[str, ...]:
    """One position as table cells."""
    updated = position.updated_at.isoformat(timespec="seconds") if position.updated_at else ""
    return (
        position.symbol,
        _number(position.quantity),
        _number(position.average_cost),
        _number(position.realized_pnl),
        updated,
    )


def halt_text(halt: TradingHalt) -> str:
    """One halt (or resume) in words: 'acct-1 HALTED by ops (fat finger)'."""
    scope = halt.scope_account or "all accounts"
    who = f" by {halt.principal}" if halt.principal else ""
    why = f" ({halt.reason})" if halt.reason else ""
    return f"{scope} {halt.mode.value}{who}{why}"


def table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    """Left-aligned columns, two spaces apart."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=False)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    )


@dataclass
class WatchTable:
    """The latest state of every order seen on the stream, and the recent fills."""

    orders: dict[str, tuple[int, Order]] = field(default_factory=dict)
    fills: deque[tuple[Order, Fill]] = field(default_factory=lambda: deque(maxlen=RECENT_FILLS))
    positions: dict[tuple[str, str], Position] = field(default_factory=dict)
    halts: dict[str, TradingHalt] = field(default_factory=dict)
    last_sequence: int = 0
    newest_sequence: int = 0

    def apply(self, event: Event) -> None:
        """Fold one event into the table."""
        if isinstance(event, OrderUpdate):
            self.orders[event.order.order_id] = (event.sequence, event.order)
            if event.fill is not None:
                self.fills.append((event.order, event.fill))
            if not event.snapshot:
                self.last_sequence = event.sequence
            self.newest_sequence = max(self.newest_sequence, event.sequence)
        elif isinstance(event, PositionUpdate | TradingStateUpdate):
            if isinstance(event, PositionUpdate):
                self.positions[(event.position.account, event.position.symbol)] = event.position
            elif event.change.mode is TradingMode.ACTIVE:
                self.halts.pop(event.change.scope_account, None)
            else:
                self.halts[event.change.scope_account] = event.change
            self.last_sequence = event.sequence
            self.newest_sequence = max(self.newest_sequence, event.sequence)
        elif isinstance(event, Heartbeat | SnapshotComplete):
            self.newest_sequence = max(self.newest_sequence, event.sequence)

    def render(self) -> str:
        """The whole screen: orders, then recent fills."""
        rows = [order_row(order, seq) for seq, order in self.orders.values()]
        fills = [
            (order.symbol, order.side.value, _number(fill.quantity), _number(fill.price),
             fill.exec_id, order.order_id)
            for order, fill in self.fills
        ]  # fmt: skip
        lines = [f"trading {halt_text(halt)}" for halt in self.halts.values()]
        lines += [
            f"orders (last sequence {self.last_sequence}, gateway at {self.newest_sequence})",
            table(ORDER_COLUMNS, rows),
            "",
            "recent fills",
            table(("SYMBOL", "SIDE", "QTY", "PRICE", "EXEC ID", "ORDER"), fills),
        ]
        if self.positions:
            held = [(p.account, *position_row(p)) for p in self.positions.values()]
            lines += ["", "positions", table(("ACCOUNT", *POSITION_COLUMNS), held)]
        return "\n".join(lines)


def event_line(event: Event) -> str:
    """One line per event, for a watch whose output is not a terminal."""
    if isinstance(event, OrderUpdate):
        order = event.order
        text = (
            f"#{event.sequence} {order.order_id} {order.symbol} {order.side.value} "
            f"{_number(order.quantity)} {order.order_type.value} {order.status.value} "
            f"filled {_number(order.filled_quantity)}"
        )
        if event.fill is not None:
            text += f" (fill {_number(event.fill.quantity)} @ {_number(event.fill.price)})"
        if event.kind in _REPLACE_KINDS:
            why = f": {order.reject_reason}" if order.reject_reason else ""
            text += f" ({event.kind.value}{why})"
        return text + (" [snapshot]" if event.snapshot else "")
    if isinstance(event, PositionUpdate):
        position = event.position
        return (
            f"#{event.sequence} position {position.account} {position.symbol} "
            f"{_number(position.quantity)} avg {_number(position.average_cost) or '-'} "
            f"realized {_number(position.realized_pnl)} (order {event.order_id})"
        )
    if isinstance(event, TradingStateUpdate):
        return f"#{event.sequence} trading {halt_text(event.change)}"
    if isinstance(event, SnapshotComplete):
        return f"snapshot complete: {event.order_count} open orders as of #{event.sequence}"
    return f"heartbeat: gateway at #{event.sequence}"


def show(out: TextIO, screen: WatchTable, event: Event, *, as_json: bool, live: bool) -> None:
    """Print one event: JSON line, a redrawn table (terminal) or a line."""
    screen.apply(event)
    if as_json:
        print(event_json(event), file=out, flush=True)
    elif live:
        out.write("\x1b[H\x1b[2J" + screen.render() + "\n")
        out.flush()
    elif not isinstance(event, Heartbeat):
        print(event_line(event), file=out, flush=True)
