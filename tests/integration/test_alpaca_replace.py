"""Replace and cancel-all through the engine, the real ``AlpacaBroker`` and the paper venue.

Alpaca replaces an order by a new one (new id, its own client_order_id,
``replaces``/``replaced_by`` linking the two): the gateway keeps one order,
whose broker id moves to the replacement, and books the replacement's fills
on it. The market moves only when a test ticks it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from gateway.brokers.alpaca import AlpacaBroker
from gateway.brokers.simulated import SimConfig, SymbolConfig
from gateway.domain import (
    Order,
    OrderRef,
    OrderSpec,
    OrderStatus,
    OrderType,
    ReplaceTerms,
    Side,
    TimeInForce,
)
from gateway.engine import EngineConfig, OrderActor
from gateway.errors import InvalidArgument
from gateway.journal import MemoryJournal
from paper_venue import VenueAccount, VenueConfig, VenueServer
from tests.integration.test_fill_accounting import venue_broker
from tests.support import eventually

KEY_ID = "PKREPLACE000001"
SECRET = "replace-secret"
ACCOUNT = "acct-1"


@dataclass
class Rig:
    venue: VenueServer
    actor: OrderActor
    broker: AlpacaBroker

    def venue_order(self, client_order_id: str) -> dict[str, Any]:
        return self.venue.state.venue.by_client_order_id(ACCOUNT, client_order_id)

    def set_price(self, price: str) -> None:
        self.venue.state.venue.set_price("AAPL", Decimal(price))

    async def order(self, client_order_id: str) -> Order:
        return await self.actor.get_order(OrderRef(ACCOUNT, client_order_id=client_order_id))

    async def when(self, client_order_id: str, what: str, check: Any) -> Order:
        return await eventually(lambda: self.order(client_order_id), check, what=what)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    venue = VenueServer(
        VenueConfig(
            accounts=(VenueAccount(KEY_ID, SECRET, name=ACCOUNT),),
            # Each match fills at most 4, in one execution; prices move only here.
            sim=SimConfig(
                seed=5,
                tick_interval=None,
                partial_fills=1,
                default_symbol=SymbolConfig(liquidity=Decimal(4), max_step_ticks=0),
                order_id_prefix="VENUE",
            ),
        )
    )
    await venue.start()
    broker = venue_broker(venue, KEY_ID, SECRET, ACCOUNT)
    await broker.connect()
    actor = OrderActor(
        broker,
        MemoryJournal(),
        EngineConfig(reconcile_interval=0, broker_backoff=0.01, unhealthy_probe_interval=0.05),
    )
    await actor.start()
    try:
        yield Rig(venue, actor, broker)
    finally:
        await actor.stop()
        await broker.close()
        await venue.stop()


def limit_buy(client_order_id: str, quantity: str = "10", price: str = "90") -> OrderSpec:
    return OrderSpec(
        ACCOUNT, client_order_id, "AAPL", Side.BUY, OrderType.LIMIT, Decimal(quantity),
        TimeInForce.GTC, limit_price=Decimal(price),
    )  # fmt: skip


async def placed(rig: Rig, client_order_id: str, **terms: str) -> Order:
    order = await rig.actor.place_order(limit_buy(client_order_id, **terms), ack_wait=5.0)
    return (
        await rig.when(client_order_id, "ACCEPTED", lambda o: o.status is OrderStatus.ACCEPTED)
        if order.status is OrderStatus.PENDING_NEW
        else order
    )


async def test_a_replace_moves_the_order_to_its_replacement_and_books_its_fills(
    rig: Rig,
) -> None:
    rig.set_price("100")
    order = await placed(rig, "amend-1")
    old_id = order.broker_order_id
    ref = OrderRef(ACCOUNT, client_order_id="amend-1")
    pending = await rig.actor.replace_order(
        ref, ReplaceTerms("r-1", quantity=Decimal(8), limit_price=Decimal(95))
    )
    assert pending.status is OrderStatus.PENDING_REPLACE
    replaced = await rig.when(
        "amend-1", "replaced", lambda o: o.status is not OrderStatus.PENDING_REPLACE
    )
    assert replaced.status is OrderStatus.ACCEPTED
    assert (replaced.spec.quantity, replaced.spec.limit_price) == (Decimal(8), Decimal(95))
    assert replaced.broker_order_id != old_id
    # At the venue: the old order replaced by a new one named after ours.
    old = rig.venue.state.venue.get(ACCOUNT, old_id)
    assert (old["status"], old["replaced_by"]) == ("replaced", replaced.broker_order_id)
    new = rig.venue_order("amend-1~r-1")
    assert (new["id"], new["replaces"]) == (replaced.broker_order_id, old_id)
    # The replacement's fills land on the gateway's order.
    rig.set_price("95")  # 4 now
    rig.set_price("94")  # the other 4
    done = await rig.when("amend-1", "FILLED", lambda o: o.status is OrderStatus.FILLED)
    assert done.filled_quantity == Decimal(8)
    assert done.order_id == order.order_id
    assert rig.actor.illegal_transitions == 0
    assert rig.actor.unknown_reports == 0
    # Reconciliation asks by our client_order_id and is led to the replacement.
    state = await rig.broker.order_status(ACCOUNT, "amend-1")
    assert state is not None
    assert (state.client_order_id, state.broker_order_id, state.status) == (
        "amend-1",
        done.broker_order_id,
        OrderStatus.FILLED,
    )


async def test_fills_before_and_after_the_replace_add_up(rig: Rig) -> None:
    rig.set_price("100")
    await placed(rig, "part-1")
    rig.set_price("90")  # 4 of 10 fill at once
    await rig.when("part-1", "4 filled", lambda o: o.filled_quantity == Decimal(4))
    ref = OrderRef(ACCOUNT, client_order_id="part-1")
    with pytest.raises(InvalidArgument):  # below what is filled
        await rig.actor.replace_order(ref, ReplaceTerms("r-low", quantity=Decimal(3)))
    await rig.actor.replace_order(ref, ReplaceTerms("r-up", quantity=Decimal(14)))
    # The replacement trades at once at the venue (4 more): 8 of 14, one order here.
    replaced = await rig.when("part-1", "8 filled", lambda o: o.filled_quantity == Decimal(8))
    assert (replaced.status, replaced.spec.quantity) == (
        OrderStatus.PARTIALLY_FILLED,
        Decimal(14),
    )
    for _ in range(2):  # 4 + 2 more, at the replacement
        rig.venue.state.venue.tick()
    done = await rig.when("part-1", "FILLED", lambda o: o.status is OrderStatus.FILLED)
    assert done.filled_quantity == Decimal(14)
    assert rig.actor.illegal_transitions == 0


async def test_a_replace_the_venue_refuses_keeps_the_old_terms(rig: Rig) -> None:
    rig.set_price("100")
    await placed(rig, "refused-1")
    rig.set_price("90")
    await rig.when("refused-1", "4 filled", lambda o: o.filled_quantity == Decimal(4))
    ref = OrderRef(ACCOUNT, client_order_id="refused-1")
    # Not below the fills (the gateway takes it), but not above them either:
    # the venue refuses a replace that would leave nothing to work.
    await rig.actor.replace_order(ref, ReplaceTerms("r-eq", quantity=Decimal(4)))
    refused = await rig.when(
        "refused-1", "refused", lambda o: o.status is not OrderStatus.PENDING_REPLACE
    )
    assert refused.status is OrderStatus.PARTIALLY_FILLED
    assert refused.spec.quantity == Decimal(10)
    assert "not above" in refused.reject_reason
    assert rig.venue_order("refused-1")["status"] == "partially_filled"


async def test_cancel_all_is_one_delete_of_every_order(rig: Rig) -> None:
    rig.set_price("100")
    for i in range(3):
        await placed(rig, f"all-{i}")
    asked = await rig.actor.cancel_all(ACCOUNT)
    assert len(asked) == 3
    assert all(o.status is OrderStatus.PENDING_CANCEL for o in asked)
    for i in range(3):
        await rig.when(f"all-{i}", "CANCELED", lambda o: o.status is OrderStatus.CANCELED)
    calls = rig.venue.state.calls
    assert calls[("DELETE", "/v2/orders")] == 1
    assert calls[("DELETE", "/v2/orders/{order_id}")] == 0  # none one by one


async def test_cancel_all_of_one_symbol_cancels_order_by_order(rig: Rig) -> None:
    rig.set_price("100")
    await placed(rig, "sym-1")
    asked = await rig.actor.cancel_all(ACCOUNT, symbol="AAPL")
    assert [o.spec.client_order_id for o in asked] == ["sym-1"]
    await rig.when("sym-1", "CANCELED", lambda o: o.status is OrderStatus.CANCELED)
    calls = rig.venue.state.calls
    assert calls[("DELETE", "/v2/orders")] == 0  # not equivalent: it would cancel every symbol
    assert calls[("DELETE", "/v2/orders/{order_id}")] == 1
