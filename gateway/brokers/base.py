"""The broker boundary: what the engine needs from any broker.

Below this line live adapters (the simulated broker, real brokers); above it,
the engine. Only domain values cross it: ``OrderSpec`` going down,
``ExecutionReport`` and ``BrokerOrderState`` coming up, and the errors of
``gateway.brokers.errors``. An adapter translates its venue's wire format and
errors into these, in one place.

Commands (``submit``, ``cancel``) and reports (``reports()``) are separate on
purpose: a venue may confirm an order on the reply, on the stream, or both, and
in any order; the engine applies whichever comes first and ignores the echo.
The ``client_order_id`` is passed to the broker so that a retried submit can
be recognised there and never creates a second order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Protocol, runtime_checkable

from gateway.domain import Fill, OrderSpec, OrderStatus


class ReportKind(Enum):
    """What an execution report says happened."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    FILL = "fill"
    CANCELED = "canceled"
    CANCEL_REJECTED = "cancel_rejected"
    EXPIRED = "expired"
    REPLACED = "replaced"
    """The venue accepted a replace: the order works on with its new terms
    (``broker_order_id`` is its id from now on)."""
    REPLACE_REJECTED = "replace_rejected"
    """The venue refused a replace: the order keeps its old terms."""


@dataclass(frozen=True, slots=True)
class ExecutionReport:
    """One event from the broker about one order.

    ``fill`` is set exactly when ``kind`` is FILL; its ``exec_id`` is unique
    across the broker, and a report may be delivered more than once.
    """

    kind: ReportKind
    account: str
    client_order_id: str
    time: datetime
    broker_order_id: str = ""
    fill: Fill | None = None
    reason: str = ""
    # The order's cumulative filled quantity at the venue after this event,
    # when the venue says (Alpaca does). Lets the engine notice fills whose
    # reports were lost, even on a report that ends the order.
    filled_quantity: Decimal | None = None


@dataclass(frozen=True, slots=True)
class SubmitAck:
    """The broker's synchronous answer to a submit: the order exists there."""

    broker_order_id: str


@dataclass(frozen=True, slots=True)
class ReplaceAck:
    """The broker's synchronous answer to a replace: the order has its new terms.

    ``broker_order_id`` is the order's id at the venue from now on: a new
    one where the venue makes a replacement order (Alpaca), else the same.
    """

    broker_order_id: str


@dataclass(frozen=True, slots=True)
class BrokerOrderState:
    """The broker's view of one order, for reconciliation.

    ``fills`` lists the executions where the venue can tell them (each is
    applied once, by exec_id). Venues that only report totals (Alpaca) leave
    it empty and give ``filled_quantity`` and ``average_fill_price``: the
    gateway then books the difference to what it knows as one catch-up fill.

    ``spec`` gives the order's terms where the venue tells them (optional: an
    adapter that cannot map them leaves it None). Reconciliation needs them to
    adopt an order of ours the table lost (a salvaged journal); without them
    such an order can only be reported.
    """

    account: str
    client_order_id: str
    broker_order_id: str
    status: OrderStatus
    filled_quantity: Decimal
    fills: tuple[Fill, ...] = field(default=())
    reason: str = ""
    average_fill_price: Decimal | None = None
    spec: OrderSpec | None = None


@runtime_checkable
class Reconnects(Protocol):
    """A broker whose report stream reconnects by itself, and says when it did.

    Reports sent while it was away are lost; the engine reconciles on the call.
    """

    def add_reconnect_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` (quickly, without blocking) after each reconnect."""


@runtime_checkable
class BulkOrderStates(Protocol):
    """A broker that answers for many orders in one call (optional).

    Reconciliation asks this first and asks order by order only for what
    the answer lacks, so a pass over hundreds of orders costs a few calls,
    not hundreds, against a venue's rate limit.
    """

    async def orders_since(self, account: str, since: datetime) -> list[BrokerOrderState]:
        """Return the venue's view of the account's orders submitted after ``since``.

        It may stop short of the newest (a bounded number of pages): an order
        missing from the answer is asked about by ``order_status``.
        """


@runtime_checkable
class Replaces(Protocol):
    """A broker that amends an open order's quantity or prices (optional).

    A broker without it refuses ReplaceOrder up front (FAILED_PRECONDITION,
    reason ``REPLACE_NOT_SUPPORTED``) and nothing is recorded.

    Errors as for ``Broker``: ``BrokerRejected`` when the venue refused the
    replace (the order keeps its old terms), ``BrokerUnavailable`` when it
    certainly did not arrive, ``BrokerTimeout`` when its outcome is unknown
    (the engine then asks ``order_status`` and compares the terms).
    """

    async def replace(
        self,
        account: str,
        client_order_id: str,
        broker_order_id: str,
        spec: OrderSpec,
        replace_id: str,
    ) -> ReplaceAck:
        """Give the order ``client_order_id`` the terms of ``spec``; return once done.

        ``spec`` is the order's whole new terms (only quantity, limit and
        stop prices differ from the order's). ``replace_id`` is the client's
        idempotency key for this replace, for venues that name the
        replacement (a retry with it must not replace twice). A REPLACED
        report may follow on the stream too: the engine takes the first.
        """


@runtime_checkable
class CancelsAll(Protocol):
    """A broker that cancels every open order of an account in one call (optional).

    Used for a CancelAllOrders with no symbol or side filter, instead of one
    cancel per order (Alpaca's ``DELETE /v2/orders``). It cancels what the
    venue holds open for the account, orders the gateway does not know
    included. Errors as for ``Broker.cancel``; each order's outcome arrives
    as a report, as for a single cancel.
    """

    async def cancel_all_orders(self, account: str) -> None:
        """Ask the venue to cancel every open order of ``account``."""


@runtime_checkable
class Broker(Protocol):
    """A venue the gateway trades through.

    Required: ``connect``, ``close``, ``submit``, ``cancel``, ``reports``.
    Reconciliation: ``order_status``, ``open_orders``.
    Errors: raise ``BrokerRejected`` when the venue refused the request
    (permanent), ``BrokerUnavailable`` when the request certainly did not
    reach the venue, ``BrokerTimeout`` when its outcome is unknown.
    """

    name: str

    async def connect(self) -> None:
        """Open sessions and streams; return once orders can be submitted."""

    async def close(self) -> None:
        """Release everything; ``reports()`` iterators end."""

    async def submit(self, spec: OrderSpec) -> SubmitAck:
        """Send a new order, keyed by ``spec.client_order_id`` at the venue."""

    async def cancel(self, account: str, client_order_id: str, broker_order_id: str) -> None:
        """Ask the venue to cancel; the outcome arrives as a report.

        ``broker_order_id`` may be empty when the order's ack has not arrived;
        the venue then finds the order by ``client_order_id``.
        """

    def reports(self) -> AsyncIterator[Sequence[ExecutionReport]]:
        """Stream execution reports for every order of every account, forever.

        Each item is what one venue message (or one exchange call) reported,
        in the venue's order: the engine takes it as one message, so a fill
        that arrives with its siblings costs one hand-off, not one each.
        """

    async def order_status(self, account: str, client_order_id: str) -> BrokerOrderState | None:
        """Return the venue's view of one order, or None if it has no such order."""

    async def open_orders(self, account: str | None = None) -> list[BrokerOrderState]:
        """Return the venue's non-terminal orders (of one account, or all)."""


@runtime_checkable
class ReferencePrices(Protocol):
    """A broker that knows a reference price per symbol (optional).

    Pre-trade risk prices market and stop orders at it (for a notional limit)
    and keeps limit prices near it (the price collar). Without it, or with no
    price for a symbol, those checks refuse the order: they fail closed.
    """

    def reference_price(self, symbol: str) -> Decimal | None:
        """Return the venue's current reference price of ``symbol`` (None: unknown).

        Called by the actor for every order a price limit applies to: it must
        answer from memory, never block.
        """


@runtime_checkable
class SessionHealth(Protocol):
    """A broker with a session that can be down while the gateway runs (optional).

    A FIX session whose Logon is refused, or that is outside its schedule, is
    such a case: the gateway keeps serving reads, and the execution service's
    health follows the session.
    """

    def add_health_listener(self, listener: Callable[[bool], None]) -> None:
        """Call ``listener(up)`` (quickly, without blocking) when the session goes up or down."""
