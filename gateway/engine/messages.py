"""Messages to the actor: client commands, and broker results in their own queue.

Client commands carry a future the actor resolves once the batch that handled
them is durable. Broker results come from broker tasks, the report reader and
reconciliation; they go ahead of commands (see ``mailbox``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.brokers import BrokerOrderState, ExecutionReport, ReplaceAck, SubmitAck
from gateway.domain import Order, OrderRef, OrderSpec, ReplaceTerms, Side
from gateway.engine.fanout import Subscriber
from gateway.engine.trading_controls import Halt, Resume


@dataclass(frozen=True, slots=True)
class PlaceOutcome:
    """The order as committed, and (while it is PENDING_NEW) the caller's own
    future: the order once it leaves PENDING_NEW, or None if the wait ran out."""

    order: Order
    settled: asyncio.Future[Order | None] | None


@dataclass(slots=True)
class Place:
    spec: OrderSpec
    reply: asyncio.Future[PlaceOutcome]
    # When the caller stops waiting (monotonic seconds): broker retries for a
    # new order stop there.
    deadline: float | None = None
    # The caller's span context (tracing on): the batch links to it, and the
    # order's broker submit is a child of it.
    trace: Any = None


@dataclass(slots=True)
class Cancel:
    ref: OrderRef
    reply: asyncio.Future[Order]


@dataclass(slots=True)
class Replace:
    ref: OrderRef
    terms: ReplaceTerms
    reply: asyncio.Future[Order]


@dataclass(slots=True)
class CancelAll:
    """Cancel one batch of an account's open orders (optionally one symbol/side).

    Handles at most ``limit`` orders created after ``after_created_sequence``
    and answers with them and where the next batch starts (None: done), so a
    mass cancel of a large account is many short batches, never one long one.
    """

    account: str
    symbol: str | None
    side: Side | None
    after_created_sequence: int
    limit: int
    reply: asyncio.Future[tuple[list[Order], int | None]]
    # The broker cancels them all in one call afterwards (``BulkCancel``):
    # no cancel per order now.
    bulk: bool = False


@dataclass(slots=True)
class BulkCancel:
    """Send the one broker call that cancels every open order of ``account``.

    ``order_ids``: the orders a ``bulk`` CancelAll marked PENDING_CANCEL.
    """

    account: str
    order_ids: list[str]
    reply: asyncio.Future[None]


@dataclass(slots=True)
class BulkCancelDone:
    """The broker's cancel-all call finished; ``unresolved``: nobody knows if it worked."""

    account: str
    order_ids: list[str]
    error: BaseException | None = None
    unresolved: bool = False


@dataclass(slots=True)
class Subscribe:
    subscriber: Subscriber
    reply: asyncio.Future[int]


@dataclass(slots=True)
class Flush:
    """Answered once everything queued before it is handled and committed."""

    reply: asyncio.Future[None]


@dataclass(slots=True)
class SubmitDone:
    """A broker submit task finished: ``ack`` or ``error`` is set."""

    order_id: str
    ack: SubmitAck | None = None
    error: BaseException | None = None


@dataclass(slots=True)
class CancelDone:
    """A broker cancel task finished; ``unresolved``: nobody knows if it worked."""

    order_id: str
    error: BaseException | None = None
    unresolved: bool = False


@dataclass(slots=True)
class ReplaceDone:
    """A broker replace task finished; ``unresolved``: nobody knows if it worked
    (``state``: the broker's view of the order since, if it answered)."""

    order_id: str
    ack: ReplaceAck | None = None
    error: BaseException | None = None
    unresolved: bool = False
    state: BrokerOrderState | None = None


@dataclass(slots=True)
class BrokerReports:
    """What one broker call or stream frame reported, in the venue's order."""

    reports: Sequence[ExecutionReport]


@dataclass(slots=True)
class BrokerState:
    """The broker's view of one order (from reconciliation or a submit's check)."""

    state: BrokerOrderState


@dataclass(slots=True)
class OpenOrders:
    """Reconciliation asks which open orders to check (none in submission)."""

    reply: asyncio.Future[list[Order]]


@dataclass(slots=True)
class Absent:
    """Reconciliation found no record of this order at the broker."""

    order_id: str


@dataclass(slots=True)
class BrokerOpenOrders:
    """The broker's open orders, to spot ones the gateway does not know."""

    states: list[BrokerOrderState]


@dataclass(slots=True)
class Sweep:
    """Evict terminal orders past the retention window (``gateway.engine.retention``).

    ``reply`` (if any) gets the number evicted, once the pass ran."""

    reply: asyncio.Future[int] | None = None


@dataclass(slots=True)
class Reloaded:
    """Evicted orders read back from the journal: each order and its exec_ids.

    ``order_ids`` is what was asked; an id missing from ``orders`` has no
    record; ``error`` is set if the journal could not be read."""

    order_ids: frozenset[str]
    orders: dict[str, tuple[Order, tuple[str, ...]]]
    error: BaseException | None = None


Command = Place | Cancel | Replace | CancelAll | BulkCancel | Subscribe | Flush | Halt | Resume
Result = (
    SubmitDone
    | CancelDone
    | ReplaceDone
    | BulkCancelDone
    | BrokerReports
    | BrokerState
    | OpenOrders
    | Absent
    | BrokerOpenOrders
    | Sweep
    | Reloaded
)
Message = Command | Result
