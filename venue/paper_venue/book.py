"""``PaperVenue``: Alpaca's order model over the simulated exchange core.

The exchange core matches orders; this layer gives them Alpaca's identity
(UUID ids, timestamps, statuses), keeps positions, and turns each exchange
report into the ``trade_updates`` event Alpaca would send, with the order as
it stood right after that event. Synchronous, no I/O: the web layer calls it
and forwards the events.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec

from gateway.brokers.base import ExecutionReport, ReportKind
from gateway.brokers.errors import BrokerRejected
from gateway.brokers.simulated.config import SimConfig
from gateway.brokers.simulated.exchange import SimulatedExchange
from gateway.domain import OrderSpec, Side, average_price
from paper_venue.wire import (
    CODE_NOT_CANCELABLE,
    CODE_NOT_FOUND,
    VenueError,
    asset_id,
    invalid,
)

ZERO = Decimal(0)
OPEN_STATUSES = frozenset(
    {"accepted", "pending_new", "new", "partially_filled", "pending_cancel", "done_for_day"}
)

# Receives (account name, one trade_updates message) for every event.
Listener = Callable[[str, dict[str, Any]], None]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class VenueOrder:
    """One order as the venue holds it; mutable because the book is the venue's own."""

    id: str
    spec: OrderSpec
    exchange_id: str
    created_at: datetime
    updated_at: datetime
    status: str = "accepted"
    filled_qty: Decimal = ZERO
    notional: Decimal = ZERO
    filled_at: datetime | None = None
    canceled_at: datetime | None = None
    expired_at: datetime | None = None
    failed_at: datetime | None = None
    # A replacement is named by its own client_order_id (None: the spec's),
    # and links to the order it replaced; a replaced order to its replacement.
    client_order_id: str | None = None
    replaces: str | None = None
    replaced_by: str | None = None
    replaced_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def to_json(self) -> dict[str, Any]:
        """Return the Alpaca order object."""
        spec = self.spec
        average = None
        if self.filled_qty:
            average = average_price(self.notional, self.filled_qty)
        return {
            "id": self.id,
            "client_order_id": self.client_order_id or spec.client_order_id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "submitted_at": self.created_at,
            "filled_at": self.filled_at,
            "expired_at": self.expired_at,
            "canceled_at": self.canceled_at,
            "failed_at": self.failed_at,
            "replaced_at": self.replaced_at,
            "replaced_by": self.replaced_by,
            "replaces": self.replaces,
            "asset_id": asset_id(spec.symbol),
            "symbol": spec.symbol,
            "asset_class": "us_equity",
            "notional": None,
            "qty": spec.quantity,
            "filled_qty": self.filled_qty,
            "filled_avg_price": average,
            "order_class": "",
            "order_type": spec.order_type.value,
            "type": spec.order_type.value,
            "side": spec.side.value,
            "time_in_force": spec.time_in_force.value,
            "limit_price": spec.limit_price,
            "stop_price": spec.stop_price,
            "status": self.status,
            "extended_hours": False,
            "legs": None,
            "trail_percent": None,
            "trail_price": None,
            "hwm": None,
        }


class PaperVenue:
    """Accounts' orders, positions and events over one ``SimulatedExchange``."""

    def __init__(
        self, config: SimConfig | None = None, *, clock: Callable[[], datetime] = _utc_now
    ) -> None:
        self._exchange = SimulatedExchange(config or SimConfig(order_id_prefix="VENUE"))
        self._clock = clock
        self._orders: dict[str, VenueOrder] = {}  # by id, in submission order
        self._by_exchange_id: dict[str, VenueOrder] = {}
        self._by_client_id: dict[tuple[str, str], VenueOrder] = {}
        self._positions: dict[tuple[str, str], Decimal] = {}
        self._listeners: list[Listener] = []
        # When the market last moved: a session end passed since then closes
        # the day for orders that stay working (done_for_day).
        self._last_tick: datetime | None = None

    @property
    def exchange(self) -> SimulatedExchange:
        return self._exchange

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def submit(self, spec: OrderSpec, *, reject_later: bool = False) -> dict[str, Any]:
        """Place an order; return it as accepted (its fills follow as events).

        ``reject_later``: answer as accepted, then reject it on the stream, as
        Alpaca does when its own checks refuse an order it has received; it
        never reaches the market.
        """
        if (spec.account, spec.client_order_id) in self._by_client_id:
            raise invalid("client_order_id must be unique")
        now = self._clock()
        if reject_later:
            return self._reject_later(spec, now)
        try:
            ack, reports = self._exchange.submit(spec, now)
        except BrokerRejected as exc:
            raise invalid(exc.reason) from None
        order = VenueOrder(
            id=str(uuid.uuid4()),
            spec=spec,
            exchange_id=ack.broker_order_id,
            created_at=now,
            updated_at=now,
        )
        self._orders[order.id] = order
        self._by_exchange_id[order.exchange_id] = order
        self._by_client_id[(spec.account, spec.client_order_id)] = order
        # Alpaca answers before the order works; its events come after, the
        # first of them pending_new (received, not yet working), then new.
        order.status = "pending_new"
        accepted = order.to_json()
        self._publish(order, {"event": "pending_new", "timestamp": now})
        self._apply(reports)
        return accepted

    def _reject_later(self, spec: OrderSpec, now: datetime) -> dict[str, Any]:
        order = VenueOrder(
            id=str(uuid.uuid4()), spec=spec, exchange_id="", created_at=now, updated_at=now
        )
        self._orders[order.id] = order
        self._by_client_id[(spec.account, spec.client_order_id)] = order
        order.status = "pending_new"
        accepted = order.to_json()
        self._publish(order, {"event": "pending_new", "timestamp": now})
        order.status, order.failed_at = "rejected", now
        self._publish(order, {"event": "rejected", "timestamp": now})
        return accepted

    def cancel(self, account: str, order_id: str) -> None:
        """Cancel an open order; the ``canceled`` event follows."""
        order = self._find(account, order_id)
        if not order.is_open:
            raise VenueError(422, CODE_NOT_CANCELABLE, "order is not cancelable")
        now = self._clock()
        try:
            reports = self._exchange.cancel(
                account, order.spec.client_order_id, now, order.exchange_id
            )
        except BrokerRejected:
            raise VenueError(422, CODE_NOT_CANCELABLE, "order is not cancelable") from None
        # As at Alpaca: the request is taken (pending_cancel), then it is done.
        order.status = "pending_cancel"
        self._publish(order, {"event": "pending_cancel", "timestamp": now})
        self._apply(reports)

    def replace(
        self,
        account: str,
        order_id: str,
        *,
        qty: Decimal | None,
        limit_price: Decimal | None,
        stop_price: Decimal | None,
        time_in_force: str | None,
        client_order_id: str,
    ) -> dict[str, Any]:
        """Replace an open order as Alpaca does: by a new order; return it.

        The replaced order ends ``replaced`` (``replaced_by`` names the new
        one); the new one (``replaces`` names the old) has its own id and
        ``client_order_id``, the new terms (``qty`` is the new total), and
        carries the fills so far: its ``filled_qty`` goes on counting from
        them. At the exchange core the order is amended in place.
        """
        order = self._find(account, order_id)
        if not order.is_open or order.status == "pending_cancel":
            raise VenueError(422, CODE_NOT_CANCELABLE, "order is not replaceable")
        spec = order.spec
        if time_in_force is not None and time_in_force != spec.time_in_force.value:
            raise invalid("this venue does not change time_in_force on replace")
        if (account, client_order_id) in self._by_client_id:
            raise invalid("client_order_id must be unique")
        terms = msgspec.structs.replace(
            spec,
            quantity=spec.quantity if qty is None else qty,
            limit_price=spec.limit_price if limit_price is None else limit_price,
            stop_price=spec.stop_price if stop_price is None else stop_price,
        )
        now = self._clock()
        try:
            _, reports = self._exchange.replace(
                account, spec.client_order_id, terms, now, order.exchange_id
            )
        except BrokerRejected as exc:
            raise invalid(exc.reason) from None
        new = VenueOrder(
            id=str(uuid.uuid4()),
            spec=terms,
            exchange_id=order.exchange_id,
            created_at=now,
            updated_at=now,
            status="new",
            filled_qty=order.filled_qty,
            notional=order.notional,
            client_order_id=client_order_id,
            replaces=order.id,
        )
        self._orders[new.id] = new
        self._by_exchange_id[new.exchange_id] = new
        self._by_client_id[(account, client_order_id)] = new
        order.status, order.replaced_at, order.replaced_by = "replaced", now, new.id
        order.updated_at = now
        self._publish(order, {"event": "replaced", "timestamp": now})
        answer = new.to_json()
        self._publish(new, {"event": "new", "timestamp": now})
        self._apply(r for r in reports if r.kind is not ReportKind.REPLACED)
        return answer

    def cancel_all(self, account: str) -> list[dict[str, Any]]:
        """Cancel every cancelable order of ``account``; return ``DELETE /v2/orders``'s list."""
        done = []
        for order in list(self._orders.values()):
            if order.spec.account != account or not order.is_open:
                continue
            if order.status == "pending_cancel":
                continue
            self.cancel(account, order.id)
            done.append({"id": order.id, "status": 200, "body": order.to_json()})
        return done

    def get(self, account: str, order_id: str) -> dict[str, Any]:
        return self._find(account, order_id).to_json()

    def by_client_order_id(self, account: str, client_order_id: str) -> dict[str, Any]:
        order = self._by_client_id.get((account, client_order_id))
        if order is None:
            raise VenueError(404, CODE_NOT_FOUND, "order not found")
        return order.to_json()

    def list(
        self,
        account: str,
        *,
        status: str = "open",
        limit: int = 50,
        direction: str = "desc",
        after: datetime | None = None,
        until: datetime | None = None,
        symbols: frozenset[str] = frozenset(),
    ) -> list[dict[str, Any]]:
        """Return orders as ``GET /v2/orders`` filters them (by submission time)."""
        chosen = [
            order
            for order in self._orders.values()
            if order.spec.account == account
            and (status == "all" or order.is_open == (status == "open"))
            and (after is None or order.created_at > after)
            and (until is None or order.created_at < until)
            and (not symbols or order.spec.symbol in symbols)
        ]
        if direction == "desc":
            chosen.reverse()
        return [order.to_json() for order in chosen[:limit]]

    def position(self, account: str, symbol: str) -> Decimal:
        return self._positions.get((account, symbol), ZERO)

    def tick(self) -> None:
        """Move the market once and publish what it caused.

        A session end passed since the last tick expires DAY orders (the
        exchange does) and closes the day for every order still working:
        ``done_for_day``, as Alpaca sends; they work again next session.
        """
        now = self._clock()
        self._apply(self._exchange.tick(now))
        ended = self._session_end_since(self._last_tick, now)
        self._last_tick = now
        if ended is None:
            return
        for order in self._orders.values():
            if order.is_open and order.status != "done_for_day":
                order.status, order.updated_at = "done_for_day", ended
                self._publish(order, {"event": "done_for_day", "timestamp": ended})

    def _session_end_since(self, last: datetime | None, now: datetime) -> datetime | None:
        """The session end in (last, now], if there is one (and a session end is set)."""
        end = self._exchange.config.session_end
        if end is None or last is None:
            return None
        now = now.astimezone(UTC)
        latest = datetime.combine(now.date(), end, tzinfo=UTC)
        if latest > now:
            latest -= timedelta(days=1)
        return latest if latest > last.astimezone(UTC) else None

    def set_price(self, symbol: str, price: Decimal) -> None:
        """Force a reference price and publish what it caused."""
        self._apply(self._exchange.set_price(symbol, price, self._clock()))

    def _find(self, account: str, order_id: str) -> VenueOrder:
        order = self._orders.get(order_id)
        if order is None or order.spec.account != account:
            raise VenueError(404, CODE_NOT_FOUND, "order not found")
        return order

    def _apply(self, reports: Iterable[ExecutionReport]) -> None:
        for report in reports:
            order = self._by_exchange_id[report.broker_order_id]
            order.updated_at = report.time
            self._publish(order, self._event(order, report))

    def _publish(self, order: VenueOrder, data: dict[str, Any]) -> None:
        """Send one trade_updates event, with the order as it stands after it."""
        data["order"] = order.to_json()
        message = {"stream": "trade_updates", "data": data}
        for listener in list(self._listeners):
            listener(order.spec.account, message)

    def _event(self, order: VenueOrder, report: ExecutionReport) -> dict[str, Any]:
        """Update ``order`` by ``report``; return the event's fields except ``order``."""
        when = report.time
        if report.kind is ReportKind.ACCEPTED:
            order.status = "new"
            return {"event": "new"}
        if report.kind is ReportKind.FILL:
            fill = report.fill
            assert fill is not None, "FILL reports carry a fill"
            order.filled_qty += fill.quantity
            order.notional += fill.quantity * fill.price
            done = order.filled_qty == order.spec.quantity
            order.status = "filled" if done else "partially_filled"
            if done:
                order.filled_at = when
            key = (order.spec.account, order.spec.symbol)
            signed = fill.quantity if order.spec.side is Side.BUY else -fill.quantity
            self._positions[key] = self._positions.get(key, ZERO) + signed
            return {
                "event": "fill" if done else "partial_fill",
                "execution_id": str(uuid.uuid4()),
                "timestamp": when,
                "price": fill.price,
                "qty": fill.quantity,
                "position_qty": self._positions[key],
            }
        if report.kind is ReportKind.EXPIRED:
            order.status, order.expired_at = "expired", when
            return {"event": "expired", "timestamp": when}
        # The exchange core ends orders only by cancel or expiry (it refuses
        # bad orders up front), so what remains is a cancel.
        order.status, order.canceled_at = "canceled", when
        return {"event": "canceled", "timestamp": when}
