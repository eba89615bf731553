"""Each of the venue's executions booked once, whatever order REST and the stream answer in.

The engine trades through the real ``AlpacaBroker`` against the paper venue,
whose stream is held behind its REST answers (``Faults.stream_delay``), as
Alpaca's can be. The market moves only when a test ticks it, so what REST
says and what the stream says next is decided here, not by timing. Also:
what a reconciliation pass costs against the rate limit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from gateway.brokers.alpaca import AlpacaBroker, AlpacaConfig
from gateway.brokers.simulated import SimConfig, SymbolConfig
from gateway.domain import (
    Order,
    OrderFilled,
    OrderRef,
    OrderSpec,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from gateway.engine import EngineConfig, OrderActor
from gateway.journal import MemoryJournal
from paper_venue import Faults, VenueAccount, VenueConfig, VenueServer
from tests.support import eventually

KEY_ID = "PKFILLS0000001"
SECRET = "fills-secret"
ACCOUNT = "acct-1"
STREAM_DELAY = 0.2


def venue_broker(venue: VenueServer, key_id: str, secret: str, account: str) -> AlpacaBroker:
    """The Alpaca adapter against ``venue``, quick to reconnect."""
    return AlpacaBroker(
        AlpacaConfig(
            key_id=key_id,
            secret_key=secret,
            base_url=venue.url,
            account=account,
            request_timeout=5.0,
            reconnect_backoff=0.02,
            reconnect_backoff_max=0.2,
            # The venue here has no rate limit; the client-side one is tested apart.
            calls_per_minute=100_000,
        )
    )


@dataclass
class Executions:
    """The venue's own record of its executions, per client_order_id, as it sent them."""

    by_order: dict[str, list[tuple[str, Decimal, Decimal]]] = field(default_factory=dict)

    def listen(self, owner: str, message: dict[str, Any]) -> None:
        data = message["data"]
        if data.get("event") in ("fill", "partial_fill"):
            coid = data["order"]["client_order_id"]
            self.by_order.setdefault(coid, []).append(
                (data["execution_id"], data["qty"], data["price"])
            )


@dataclass
class Rig:
    venue: VenueServer
    actor: OrderActor
    journal: MemoryJournal
    executions: Executions

    def tick(self) -> None:
        """Move the venue's market once: resting quantity matches, up to the liquidity."""
        self.venue.state.venue.tick()

    def venue_order(self, coid: str) -> dict[str, Any]:
        return self.venue.state.venue.by_client_order_id(ACCOUNT, coid)

    async def order(self, coid: str) -> Order:
        return await self.actor.get_order(OrderRef(ACCOUNT, client_order_id=coid))

    def booked_fills(self, order_id: str) -> list[tuple[str, Decimal, Decimal]]:
        """The executions the gateway booked (journaled fills), in booking order."""
        return [
            (r.event.fill.exec_id, r.event.fill.quantity, r.event.fill.price)
            for r in self.journal.replay()
            if isinstance(r.event, OrderFilled) and r.event.order_id == order_id
        ]

    async def agrees(self, coid: str) -> Order:
        """Wait until the gateway's order matches the venue's; return it."""
        venue = self.venue_order(coid)
        return await eventually(
            lambda: self.order(coid),
            lambda o: (
                o.filled_quantity == venue["filled_qty"]
                and o.status.value == venue["status"]
                and len(self.booked_fills(o.order_id)) == len(self.executions.by_order[coid])
            ),
            what=f"{coid} as at the venue",
        )


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    venue = VenueServer(
        VenueConfig(
            accounts=(VenueAccount(KEY_ID, SECRET, name=ACCOUNT),),
            # Each match fills at most 4, in one execution; the market moves
            # only on ``Rig.tick``.
            sim=SimConfig(
                seed=5,
                tick_interval=None,
                partial_fills=1,
                default_symbol=SymbolConfig(liquidity=Decimal(4), max_step_ticks=0),
                order_id_prefix="VENUE",
            ),
            faults=Faults(stream_delay=STREAM_DELAY),
        )
    )
    executions = Executions()
    venue.state.venue.subscribe(executions.listen)
    await venue.start()
    broker = venue_broker(venue, KEY_ID, SECRET, ACCOUNT)
    journal = MemoryJournal()
    await broker.connect()
    actor = OrderActor(
        broker,
        journal,
        EngineConfig(reconcile_interval=0, broker_backoff=0.01, unhealthy_probe_interval=0.05),
    )
    await actor.start()
    try:
        yield Rig(venue, actor, journal, executions)
    finally:
        await actor.stop()
        await broker.close()
        await venue.stop()


def market(coid: str, quantity: str) -> OrderSpec:
    return OrderSpec(
        ACCOUNT, coid, "AAPL", Side.BUY, OrderType.MARKET, Decimal(quantity), TimeInForce.DAY
    )


async def test_rest_ahead_of_the_stream_after_a_lost_submit_answer_counts_each_fill_once(
    rig: Rig,
) -> None:
    """The issue's race: the submit acts but answers 500; the gateway asks and REST,
    ahead of the stream, already shows the first execution; the stream's report of
    that same execution must not be booked a second time."""
    rig.venue.state.set_faults(lost_answer_rate=1.0)
    placed = await rig.actor.place_order(market("race-1", "11"), ack_wait=5.0)
    rig.venue.state.set_faults(lost_answer_rate=0.0)
    # The answer came from asking REST, ahead of the stream: 4 of 11 filled there.
    assert rig.venue_order("race-1")["filled_qty"] == Decimal(4)
    assert placed.status is not OrderStatus.PENDING_NEW

    rig.tick()  # 4 more
    rig.tick()  # the last 3
    assert rig.venue_order("race-1")["status"] == "filled"

    order = await rig.agrees("race-1")
    venue = rig.venue_order("race-1")
    assert order.status is OrderStatus.FILLED
    assert order.filled_quantity == Decimal(11)
    assert order.average_fill_price == venue["filled_avg_price"]
    assert rig.booked_fills(order.order_id) == rig.executions.by_order["race-1"]
    assert rig.actor.illegal_transitions == 0


async def test_a_reconciliation_pass_asks_in_bulk_not_order_by_order(rig: Rig) -> None:
    resting = [
        OrderSpec(
            ACCOUNT,
            f"rest-{i}",
            "AAPL",
            Side.BUY,
            OrderType.LIMIT,
            Decimal(1),
            TimeInForce.GTC,
            limit_price=Decimal("0.01"),
        )
        for i in range(300)
    ]
    for spec in resting:
        await rig.actor.place_order(spec)
    calls = rig.venue.state.calls
    singles = calls[("GET", "/v2/orders:by_client_order_id")]
    lists = calls[("GET", "/v2/orders")]
    passes = rig.actor.reconcile_passes

    rig.actor.request_reconcile()
    await eventually(
        lambda: rig.actor.reconcile_passes,
        lambda n: n > passes,
        what="a reconciliation pass",
    )
    # 300 open orders: one bulk page of every order since the oldest, one of
    # the open ones (for orders placed elsewhere); none asked about singly.
    assert calls[("GET", "/v2/orders:by_client_order_id")] == singles
    assert calls[("GET", "/v2/orders")] - lists == 2
