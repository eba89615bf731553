"""One order, several executions, and every order REST and the stream can answer in.

Hypothesis plays a broker that executes an order in parts and tells the
gateway two ways: its report stream (in order, each report possibly repeated
or, in the lossy runs, lost) and status answers (REST snapshots of the
order's totals, delivered late and out of order). The desk takes them one
message at a time, as the actor would. After every message:

- the gateway's filled quantity never exceeds what the broker has executed,
  never decreases, and is FILLED only once the broker's last execution is done;
- every booked fill is one of the broker's executions, with its own quantity
  and price, booked at most once.

At the end (the stream delivered, one fresh answer asked for) the booked
fills are the broker's executions one to one (those the stream delivered, in
the lossy runs), and quantity, status and average price are the broker's.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.brokers import BrokerOrderState, ExecutionReport, ReportKind, SubmitAck
from gateway.domain import (
    Fill,
    Order,
    OrderFilled,
    OrderSpec,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from gateway.domain.order import AVERAGE_PRICE_QUANTUM
from gateway.engine import EngineConfig
from gateway.engine.breaker import BrokerHealth
from gateway.engine.desk import OrderDesk
from gateway.engine.ledger import Ledger
from gateway.engine.messages import BrokerReports, BrokerState, Place, SubmitDone

T0 = datetime(2026, 1, 2, 14, 30, tzinfo=UTC)
QUANTITY = Decimal(20)
SPEC = OrderSpec("acct-1", "c-1", "AAPL", Side.BUY, OrderType.MARKET, QUANTITY, TimeInForce.DAY)
PRICES = [Decimal("101.86"), Decimal("101.88"), Decimal("99.5"), Decimal("100.125")]


class Work:
    """The desk's broker work: nothing to do here, the script is the broker."""

    def submit(
        self, order: Order, *, ask_first: bool = False, deadline: float | None = None
    ) -> None:
        pass

    def recheck(self, order: Order) -> None:
        pass

    def cancel(self, order: Order) -> None:
        pass

    def verify(self, order: Order) -> None:
        pass

    supports_replace = False
    supports_cancel_all = False

    def replace(self, order: Order) -> None:
        pass

    def cancel_all(self, account: str, order_ids: list[str]) -> None:
        pass


@dataclass
class Broker:
    """The broker's own record of the order: its executions, in order."""

    executions: list[Fill]
    done: int = 0  # executions that have happened

    def cumulative(self, upto: int | None = None) -> Decimal:
        count = self.done if upto is None else upto
        return sum((f.quantity for f in self.executions[:count]), Decimal(0))

    def state(self) -> BrokerOrderState:
        """A status answer as Alpaca gives one: totals and an average, no executions."""
        filled = self.cumulative()
        average = None
        if filled:
            notional = sum((f.quantity * f.price for f in self.executions[: self.done]), Decimal(0))
            average = (notional / filled).quantize(AVERAGE_PRICE_QUANTUM).normalize()
        if filled == QUANTITY:
            status = OrderStatus.FILLED
        else:
            status = OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.ACCEPTED
        return BrokerOrderState("acct-1", "c-1", "B-1", status, filled, average_fill_price=average)

    def report(self, index: int) -> ExecutionReport:
        fill = self.executions[index]
        return ExecutionReport(
            ReportKind.FILL,
            "acct-1",
            "c-1",
            fill.time,
            "B-1",
            fill=fill,
            filled_quantity=self.cumulative(index + 1),
        )


@dataclass
class Gateway:
    """The desk and its ledger, one message per batch."""

    ledger: Ledger = field(default_factory=Ledger)
    booked: list[Fill] = field(default_factory=list)

    def __post_init__(self) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        self.desk = OrderDesk(
            self.ledger,
            EngineConfig(),
            BrokerHealth(5),
            Work(),
            clock=lambda: T0,
            new_id=lambda: "o-1",
            new_future=loop.create_future,
        )
        self.handle(Place(SPEC, loop.create_future()))
        self.handle(SubmitDone("o-1", ack=SubmitAck("B-1")))

    def handle(self, message: object) -> None:
        self.desk.handle(message)  # type: ignore[arg-type]
        for record in self.ledger.take_pending():
            if isinstance(record.event, OrderFilled):
                self.booked.append(record.event.fill)
            self.ledger.committed_through(record.sequence)
        self.desk.replies.clear()
        self.desk.after_commit.clear()

    @property
    def order(self) -> Order:
        order = self.ledger.table.get("o-1")
        assert order is not None
        return order

    def close(self) -> None:
        self.loop.close()


executions = st.lists(
    st.tuples(st.integers(1, 5), st.sampled_from(PRICES)), min_size=2, max_size=6
).map(
    lambda parts: [
        Fill(f"E-{i}", Decimal(q), price, T0) for i, (q, price) in enumerate(parts, start=1)
    ]
)


def check_step(gateway: Gateway, broker: Broker, previous: Decimal) -> Decimal:
    order = gateway.order
    filled = order.filled_quantity
    assert filled >= previous, "filled quantity went down"
    assert filled <= broker.cumulative(), f"{filled} booked, broker executed {broker.cumulative()}"
    if order.status is OrderStatus.FILLED:
        assert broker.cumulative() == QUANTITY, "FILLED before the broker's last execution"
    counts = Counter(f.exec_id for f in gateway.booked)
    assert all(n == 1 for n in counts.values()), f"booked twice: {counts}"
    assert set(gateway.booked) <= set(broker.executions), "a booked fill the broker never made"
    return filled


def run_script(data: st.DataObject, lossy: bool) -> None:
    fills = data.draw(executions, label="executions")
    total = sum((f.quantity for f in fills), Decimal(0))
    # Keep the total within the order: a market order the broker fills, in part or whole.
    while total > QUANTITY:
        total -= fills.pop().quantity
    if data.draw(st.booleans(), label="fill the order completely") and total < QUANTITY:
        fills.append(Fill(f"E-{len(fills) + 1}", QUANTITY - total, PRICES[0], T0))
    broker = Broker(fills)
    gateway = Gateway()
    sent = 0  # stream reports delivered (or lost) so far, in order
    delivered: list[int] = []
    snapshots: list[BrokerOrderState] = []  # answers on their way, any order
    filled = Decimal(0)
    try:
        while broker.done < len(fills) or sent < len(fills) or snapshots:
            moves = []
            if broker.done < len(fills):
                moves.append("execute")
            if sent < broker.done:
                moves += ["stream", "lose"] if lossy else ["stream"]
            if delivered:
                moves.append("repeat")
            moves.append("ask")
            if snapshots:
                moves.append("answer")
            move = data.draw(st.sampled_from(moves), label="move")
            if move == "execute":
                broker.done += 1
            elif move == "stream":
                gateway.handle(BrokerReports([broker.report(sent)]))
                delivered.append(sent)
                sent += 1
            elif move == "lose":
                sent += 1  # lost with a dropped connection: never delivered
            elif move == "repeat":
                index = data.draw(st.sampled_from(delivered), label="repeated report")
                gateway.handle(BrokerReports([broker.report(index)]))
            elif move == "ask":
                if len(snapshots) < 4:
                    snapshots.append(broker.state())
            else:
                which = data.draw(st.integers(0, len(snapshots) - 1), label="answer")
                gateway.handle(BrokerState(snapshots.pop(which)))
            filled = check_step(gateway, broker, filled)

        gateway.handle(BrokerState(broker.state()))  # one fresh answer at the end
        check_step(gateway, broker, filled)
        order, final = gateway.order, broker.state()
        expected = [fills[i] for i in delivered] if lossy else fills
        assert sorted(gateway.booked, key=lambda f: f.exec_id) == sorted(
            set(expected), key=lambda f: f.exec_id
        )
        assert order.filled_quantity == final.filled_quantity
        assert order.status is final.status
        assert order.average_fill_price == final.average_fill_price
        if not lossy:
            assert order.provisional is None  # every unit stands on a real execution
        assert gateway.desk.illegal_transitions == 0
    finally:
        gateway.close()


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_each_execution_is_booked_once_whatever_order_rest_and_the_stream_answer_in(
    data: st.DataObject,
) -> None:
    run_script(data, lossy=False)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_with_reports_lost_the_totals_are_still_the_brokers(data: st.DataObject) -> None:
    run_script(data, lossy=True)
