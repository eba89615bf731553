"""The SDK's own types: orders, fills and stream events, with Decimal numbers.

These are what callers see; protobuf messages stay behind the client (see
``_convert``). All are frozen: an ``Order`` is a snapshot as of its
``updated_at``, and a newer one arrives as a new value.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


class Side(enum.Enum):
    """Buy or sell."""

    BUY = "BUY"
    SELL = "SELL"


class OrderType(enum.Enum):
    """How an order is priced (see the proto for which prices each needs)."""

    MARKET = "MARKET"
    LIMIT = "LIMIT"
    STOP = "STOP"
    STOP_LIMIT = "STOP_LIMIT"


class TimeInForce(enum.Enum):
    """How long an order stays working."""

    DAY = "DAY"
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class OrderStatus(enum.Enum):
    """Where an order stands; FILLED, CANCELED, REJECTED and EXPIRED are terminal."""

    UNSPECIFIED = "UNSPECIFIED"
    PENDING_NEW = "PENDING_NEW"
    ACCEPTED = "ACCEPTED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    PENDING_CANCEL = "PENDING_CANCEL"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    PENDING_REPLACE = "PENDING_REPLACE"

    @property
    def is_terminal(self) -> bool:
        """Whether the order can no longer change (but for a late fill)."""
        return self in _TERMINAL


_TERMINAL = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)


class RejectCode(enum.Enum):
    """Who refused an order (``reject_reason`` says why, for people)."""

    UNSPECIFIED = "UNSPECIFIED"
    """Not rejected, or a code this SDK predates."""
    BROKER = "BROKER"
    RISK_LIMIT = "RISK_LIMIT"
    TRADING_HALTED = "TRADING_HALTED"
    NOT_DELIVERED = "NOT_DELIVERED"


class UpdateKind(enum.Enum):
    """What changed in an ``OrderUpdate``."""

    UNSPECIFIED = "UNSPECIFIED"
    """Snapshot updates, gateways older than this field, kinds this SDK predates."""
    CREATED = "CREATED"
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    FILL = "FILL"
    FILLS_RECONCILED = "FILLS_RECONCILED"
    CANCEL_REQUESTED = "CANCEL_REQUESTED"
    CANCELED = "CANCELED"
    CANCEL_REJECTED = "CANCEL_REJECTED"
    EXPIRED = "EXPIRED"
    REPLACE_REQUESTED = "REPLACE_REQUESTED"
    REPLACED = "REPLACED"
    """The broker accepted a replace: the order goes on with its new terms."""
    REPLACE_REJECTED = "REPLACE_REJECTED"
    """The broker refused a replace: the order keeps its old terms; see reject_reason."""


class TradingMode(enum.Enum):
    """Which new orders the gateway lets through, for an account or all of them."""

    UNSPECIFIED = "UNSPECIFIED"
    ACTIVE = "ACTIVE"
    """Every order the risk limits allow."""
    HALTED = "HALTED"
    """No new orders and no replaces; cancels only."""
    REDUCING = "REDUCING"
    """Only orders that reduce a position without flipping it."""


@dataclass(frozen=True, slots=True)
class Order:
    """The gateway's record of one order."""

    order_id: str
    client_order_id: str
    broker_order_id: str
    """Empty until the broker acknowledged the order."""
    account: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    limit_price: Decimal | None
    stop_price: Decimal | None
    time_in_force: TimeInForce
    status: OrderStatus
    filled_quantity: Decimal
    leaves_quantity: Decimal
    average_fill_price: Decimal | None
    """None before the first fill."""
    reject_reason: str
    created_at: datetime | None
    updated_at: datetime | None
    reject_code: RejectCode = RejectCode.UNSPECIFIED
    """Who rejected the order, when its status is REJECTED."""
    replace_id: str = ""
    """The replace_id of the latest replace request (pending, done or refused); '' if none."""

    @property
    def is_terminal(self) -> bool:
        """Whether the order is FILLED, CANCELED, REJECTED or EXPIRED."""
        return self.status.is_terminal


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of (part of) an order."""

    exec_id: str
    quantity: Decimal
    price: Decimal
    time: datetime | None


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """One change to one order, numbered by the gateway-wide ``sequence``."""

    sequence: int
    order: Order
    """The order's state after this change."""
    fill: Fill | None
    """The execution, when this change is a fill."""
    time: datetime | None
    snapshot: bool = False
    """True for an open order's current state sent because a snapshot was asked for."""
    kind: UpdateKind = UpdateKind.UNSPECIFIED
    """What changed (UNSPECIFIED in snapshot updates)."""


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The stream is alive; ``sequence`` is the newest the gateway has assigned."""

    sequence: int
    time: datetime | None


@dataclass(frozen=True, slots=True)
class SnapshotComplete:
    """The snapshot asked for is complete; live updates follow."""

    sequence: int
    order_count: int


@dataclass(frozen=True, slots=True)
class Position:
    """An account's net holding of one symbol, derived from its fills (average cost)."""

    account: str
    symbol: str
    quantity: Decimal
    """Signed: positive is long, negative is short, zero is flat."""
    average_cost: Decimal | None
    """Average price paid for the open quantity; None when flat."""
    realized_pnl: Decimal
    """Profit and loss realized by reducing or closing the position (fees not included)."""
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class PositionUpdate:
    """One change to one position, in the same sequence space as order updates."""

    sequence: int
    position: Position
    """The position after the change."""
    order_id: str
    """The order whose fill moved the position."""
    time: datetime | None


@dataclass(frozen=True, slots=True)
class TradingHalt:
    """One halt in force (or, in a ``TradingStateUpdate``, lifted: mode ACTIVE)."""

    scope_account: str
    """The account halted; '' for the gateway-wide halt."""
    mode: TradingMode
    reason: str
    principal: str
    """Who halted (or resumed)."""
    since: datetime | None


_STRICTNESS = {TradingMode.ACTIVE: 0, TradingMode.REDUCING: 1, TradingMode.HALTED: 2}


@dataclass(frozen=True, slots=True)
class TradingState:
    """Every halt in force; none means trading is ACTIVE everywhere."""

    halts: tuple[TradingHalt, ...]
    """The gateway-wide halt (scope_account '') first."""

    def mode_for(self, account: str) -> TradingMode:
        """The account's effective mode: the stricter of its own halt and the gateway-wide one."""
        modes = [h.mode for h in self.halts if h.scope_account in ("", account)]
        return max(modes, key=lambda m: _STRICTNESS.get(m, 0), default=TradingMode.ACTIVE)


@dataclass(frozen=True, slots=True)
class TradingStateUpdate:
    """Trading was halted or resumed (``change.mode`` ACTIVE) for an account or all."""

    sequence: int
    change: TradingHalt
    time: datetime | None


@dataclass(frozen=True, slots=True)
class HaltResult:
    """What ``halt_trading`` did."""

    state: TradingState
    """Every halt now in force."""
    canceled_orders: tuple[Order, ...]
    """The orders asked to cancel (with cancel_open_orders), PENDING_CANCEL."""


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """The pre-trade limits for one account, or the defaults; None is no limit."""

    account: str
    """'' for the defaults."""
    max_order_quantity: Decimal | None
    max_order_notional: Decimal | None
    max_open_orders: int | None
    max_position: Decimal | None
    """Largest absolute position per symbol, projected with the open orders on its side."""
    max_order_rate: Decimal | None
    """New orders per second (a token bucket)."""
    order_rate_burst: int | None
    """Orders the bucket lets through at once; None: max_order_rate rounded up."""
    price_collar_percent: Decimal | None
    """Largest distance of a limit price from the reference price, in percent."""
    allowed_symbols: tuple[str, ...]
    """Only these may be traded; empty allows every symbol."""
    denied_symbols: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RiskLimitsReport:
    """The limits in force and the file they came from."""

    limits: tuple[RiskLimits, ...]
    """The defaults first, then one entry per account override."""
    source: str
    """The limits file; '' when the gateway runs without one."""
    loaded_at: datetime | None
    last_error: str
    """Why the latest change to the file was refused ('' if it loaded); the last good
    limits stay in force meanwhile."""


Event = OrderUpdate | Heartbeat | SnapshotComplete | PositionUpdate | TradingStateUpdate
"""Anything an update stream delivers."""

SequencedChange = OrderUpdate | PositionUpdate | TradingStateUpdate
"""The events that carry a sequence of their own; a resume continues after the last one."""
