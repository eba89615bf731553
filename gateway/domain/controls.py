"""Trading controls in the domain: positions derived from fills, and halts.

Both are journaled as events in the orders' sequence space, so a restart
rebuilds them and a resuming subscriber replays them in order:

- ``PositionChanged`` follows the fill that moved a position, with the
  position as it is after the fill (replay sets it; nothing is recomputed);
- ``TradingStateChanged`` records a halt or its lifting (mode ACTIVE).

Positions use the average cost method: adding to a position adds to its
cost; reducing it realizes the difference between the fill's price and the
average cost; a fill that crosses zero closes the position, then opens the
other side at the fill's price.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum

import msgspec

from gateway.domain.decimals import AVERAGE_PRICE_QUANTUM
from gateway.domain.enums import Side
from gateway.domain.events import OrderEvent, OrderUpdate, _Event

ZERO = Decimal(0)


class TradingMode(Enum):
    ACTIVE = "active"
    HALTED = "halted"
    REDUCING = "reducing"


# How strict each mode is: an account's effective mode is the stricter of its
# own halt and the gateway-wide one.
_STRICTNESS = {TradingMode.ACTIVE: 0, TradingMode.REDUCING: 1, TradingMode.HALTED: 2}


def stricter(a: TradingMode, b: TradingMode) -> TradingMode:
    """The stricter of two modes."""
    return a if _STRICTNESS[a] >= _STRICTNESS[b] else b


class TradingHalt(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One halt in force (or, with mode ACTIVE, the lifting of one)."""

    scope_account: str  # "" is the gateway-wide halt
    mode: TradingMode
    reason: str
    principal: str
    since: datetime


class Position(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """An account's net holding of one symbol, exact.

    ``cost`` is the signed cost of the open quantity (negative when short),
    kept instead of the average so that adding to a position never rounds.
    """

    account: str
    symbol: str
    quantity: Decimal
    cost: Decimal
    realized_pnl: Decimal
    updated_at: datetime

    @property
    def average_cost(self) -> Decimal | None:
        """Average price of the open quantity; None when flat."""
        if self.quantity == ZERO:
            return None
        return (self.cost / self.quantity).quantize(AVERAGE_PRICE_QUANTUM)


def flat(account: str, symbol: str, time: datetime) -> Position:
    """A position never traded."""
    return Position(account, symbol, ZERO, ZERO, ZERO, time)


def apply_fill(
    position: Position, side: Side, quantity: Decimal, notional: Decimal, time: datetime
) -> Position:
    """Return ``position`` after ``quantity`` bought or sold for ``notional`` in total.

    Runs once per fill: signs are applied by negation, never by multiplying
    with an int (which builds a Decimal of it each time).
    """
    buy = side is Side.BUY
    held, cost, realized = position.quantity, position.cost, position.realized_pnl
    if held == ZERO or (held > ZERO) is buy:  # opening or adding
        if buy:
            held, cost = held + quantity, cost + notional
        else:
            held, cost = held - quantity, cost - notional
        return Position(position.account, position.symbol, held, cost, realized, time)
    size = -held if buy else held
    closing = quantity if quantity < size else size
    # Whole amounts stay exact; only a part of a position or fill is a quotient.
    removed = cost if closing == size else cost * closing / size
    part = notional if closing == quantity else notional * closing / quantity
    # Closing a long sells (proceeds in, cost out); closing a short buys back.
    realized += (-part - removed) if buy else (part - removed)
    held = held + closing if buy else held - closing
    cost -= removed
    rest = quantity - closing
    if rest > ZERO:  # a flip: the remainder opens the other side at the fill's price
        held = rest if buy else -rest
        opened = notional - part
        cost = opened if buy else -opened
    elif held == ZERO:
        cost = ZERO
    return Position(position.account, position.symbol, held, cost, realized, time)


class PositionChanged(_Event, tag="position", frozen=True):
    """A fill of ``order_id`` moved a position; ``position`` is how it is now."""

    order_id: str
    position: Position
    time: datetime


class TradingStateChanged(_Event, tag="trading_state", frozen=True):
    """An operator halted trading (or lifted a halt: mode ACTIVE)."""

    halt: TradingHalt
    time: datetime

    @property
    def order_id(self) -> str:
        """No order: the journal files it under the empty id."""
        return ""


ControlEvent = PositionChanged | TradingStateChanged


@dataclass(frozen=True, slots=True)
class PositionUpdate:
    """What a subscriber is told when a position changed."""

    sequence: int
    position: Position
    order_id: str
    time: datetime


@dataclass(frozen=True, slots=True)
class TradingStateUpdate:
    """What a subscriber is told when trading was halted or resumed."""

    sequence: int
    halt: TradingHalt
    time: datetime


def control_update(sequence: int, event: ControlEvent) -> PositionUpdate | TradingStateUpdate:
    """The update a control event announces: derived from the event alone."""
    if isinstance(event, PositionChanged):
        return PositionUpdate(sequence, event.position, event.order_id, event.time)
    return TradingStateUpdate(sequence, event.halt, event.time)


JournalEvent = OrderEvent | ControlEvent
"""Every event the journal stores, in one sequence space."""

AnyUpdate = OrderUpdate | PositionUpdate | TradingStateUpdate
"""Every update a subscriber may be sent."""


class ControlState(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """Positions and halts as of one sequence: what a checkpoint keeps of them."""

    positions: list[Position] = msgspec.field(default_factory=list)
    halts: list[TradingHalt] = msgspec.field(default_factory=list)
