"""The indexed exchange behaves exactly as the scanning one did, call for call.

Random sessions (submits of every order type and time in force, duplicates and
reused ids, cancels by either id, ticks, forced prices, DAY expiries, limited
liquidity, several symbols) run through ``SimulatedExchange`` and through
``ScanningExchange`` (the same exchange before its order books, which scanned
every working order on every step). Both must give the same reports in the
same order, the same refusals, prices, open orders and order states: so the
books change what a step costs, and nothing a caller can see, fills and
their random prices included.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.brokers import BrokerRejected
from gateway.brokers.simulated import SimConfig, SimulatedExchange, SymbolConfig
from gateway.domain import ALLOWED_TIME_IN_FORCE, OrderSpec, OrderType, Side, TimeInForce
from tests.property.reference_exchange import ScanningExchange

T0 = datetime(2024, 1, 2, 15, 0, tzinfo=UTC)
CENT = Decimal("0.01")
SYMBOLS = ("AAPL", "MSFT", "VOLA")
ACCOUNTS = ("a", "b")
IDS = 12


@dataclass(frozen=True)
class Submit:
    spec: OrderSpec


@dataclass(frozen=True)
class Cancel:
    account: str
    client_order_id: str
    by_broker_id: bool


@dataclass(frozen=True)
class Tick:
    seconds: int


@dataclass(frozen=True)
class SetPrice:
    symbol: str
    price: Decimal


@dataclass(frozen=True)
class Touch:
    """Move a symbol to exactly the limit or stop of an earlier submit: the boundary."""

    submit: int
    stop: bool


Op = Submit | Cancel | Tick | SetPrice | Touch

# Near the starting prices (100, and 50 for VOLA), where ticks cross them.
offsets = st.integers(min_value=-10, max_value=10).map(lambda n: n * Decimal("0.05"))


@st.composite
def submits(draw: st.DrawFn) -> Submit:
    symbol = draw(st.sampled_from(SYMBOLS))
    base = Decimal(50) if symbol == "VOLA" else Decimal(100)
    order_type = draw(st.sampled_from(OrderType))
    limit = stop = None
    if order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        limit = base + draw(offsets)
    if order_type in (OrderType.STOP, OrderType.STOP_LIMIT):
        stop = base + draw(offsets)
    spec = OrderSpec(
        account=draw(st.sampled_from(ACCOUNTS)),
        # Few ids: duplicates, and reuses with another spec, happen often.
        client_order_id=f"c{draw(st.integers(0, IDS - 1))}",
        symbol=symbol,
        side=draw(st.sampled_from(Side)),
        order_type=order_type,
        quantity=draw(st.sampled_from([Decimal(1), Decimal(7), Decimal(100), Decimal("0.5")])),
        # Mostly what the order type allows; now and then a refusal.
        time_in_force=draw(
            st.sampled_from(sorted(ALLOWED_TIME_IN_FORCE[order_type], key=str))
            | st.sampled_from(TimeInForce)
        ),
        limit_price=limit,
        stop_price=stop,
    )
    return Submit(spec)


ops = st.one_of(
    submits(),
    submits(),
    st.builds(
        Cancel,
        st.sampled_from(ACCOUNTS),
        st.integers(0, IDS - 1).map(lambda n: f"c{n}"),
        st.booleans(),
    ),
    st.builds(Tick, st.sampled_from([1, 1, 1, 60, 3600, 3 * 3600, 6 * 3600])),
    st.builds(SetPrice, st.sampled_from(SYMBOLS), offsets.map(lambda d: max(CENT, 100 + d))),
    st.builds(Touch, st.integers(0, 100), st.booleans()),
)

configs = st.builds(
    SimConfig,
    seed=st.integers(0, 2**16),
    symbols=st.just({"VOLA": SymbolConfig(price=Decimal(50), max_step_ticks=40, slippage_ticks=5)}),
    default_symbol=st.builds(
        SymbolConfig, liquidity=st.sampled_from([None, Decimal(3), Decimal(30)])
    ),
    partial_fills=st.integers(1, 3),
    session_end=st.sampled_from([None, time(20, 0)]),
)

Exchange = SimulatedExchange | ScanningExchange


def apply(exchange: Exchange, op: Op, now: datetime) -> object:
    """Run ``op``; return what the caller sees, a refusal included."""
    try:
        match op:
            case Submit(spec):
                return exchange.submit(spec, now)
            case Cancel(account, client_order_id, by_broker_id):
                broker_order_id = ""
                if by_broker_id:
                    state = exchange.order_status(account, client_order_id)
                    broker_order_id = state.broker_order_id if state else "SIM-0"
                    client_order_id = ""
                return exchange.cancel(account, client_order_id, now, broker_order_id)
            case Tick():
                return exchange.tick(now)
            case SetPrice(symbol, price):
                return exchange.set_price(symbol, price, now)
    except BrokerRejected as refused:
        return ("refused", str(refused))
    raise AssertionError(op)


@settings(max_examples=200, deadline=None)
@given(configs, st.lists(ops, min_size=10, max_size=100))
def test_books_give_what_scanning_gave(config: SimConfig, session: list[Op]) -> None:
    books, scanning = SimulatedExchange(config), ScanningExchange(config)
    now = T0
    specs = [op.spec for op in session if isinstance(op, Submit)]
    for step, op in enumerate(session):
        if isinstance(op, Tick):
            now += timedelta(seconds=op.seconds)
        if isinstance(op, Touch):
            if not specs:
                continue
            spec = specs[op.submit % len(specs)]
            price = (spec.stop_price if op.stop else spec.limit_price) or spec.limit_price
            op = SetPrice(spec.symbol, price or Decimal(100))
        assert apply(books, op, now) == apply(scanning, op, now), f"step {step}: {op}"
        assert books.open_orders() == scanning.open_orders()

    for symbol in SYMBOLS:
        assert books.price(symbol) == scanning.price(symbol)
    for account in ACCOUNTS:
        assert books.open_orders(account) == scanning.open_orders(account)
        for n in range(IDS):
            assert books.order_status(account, f"c{n}") == scanning.order_status(account, f"c{n}")
    assert books.received == scanning.received
