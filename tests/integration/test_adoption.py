"""Reconciliation takes back an acknowledged order that the journal lost.

The motivating case is a salvaged journal (docs/durability.md): salvage keeps
the good prefix, so orders acknowledged after the damage are gone from the
table while the venue still works them. They are ours (the venue gives their
terms, and the account is one this gateway trades), so reconciliation adopts
them with the venue's terms, ack and fills, instead of calling them foreign.
"""

from __future__ import annotations

from decimal import Decimal

from gateway.brokers.simulated import SimConfig, SimulatedBroker, SymbolConfig
from gateway.domain import OrderSpec, OrderStatus, OrderType, OrderUpdate, Side, TimeInForce
from gateway.engine import EngineConfig, OrderActor
from gateway.journal import MemoryJournal
from tests.support import eventually


def spec(client_order_id: str, limit: str) -> OrderSpec:
    return OrderSpec(
        account="acct-1",
        client_order_id=client_order_id,
        symbol="AAPL",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        quantity=Decimal(10),
        time_in_force=TimeInForce.GTC,
        limit_price=Decimal(limit),
    )


async def reconciled(actor: OrderActor) -> None:
    target = actor.reconcile_passes + 1
    actor.request_reconcile()
    await eventually(lambda: actor.reconcile_passes, lambda n: n >= target, what="a pass")
    await actor.flush()


async def test_an_acknowledged_order_a_salvage_dropped_is_adopted_with_terms_and_fills() -> None:
    # Four units per match and no ticks: the marketable order fills 4 of 10 and rests.
    symbol = SymbolConfig(liquidity=Decimal(4))
    config = SimConfig(seed=1, tick_interval=None, default_symbol=symbol)
    broker = SimulatedBroker(config)
    await broker.connect()
    engine = EngineConfig(reconcile_interval=0)
    journal = MemoryJournal()
    first = OrderActor(broker, journal, engine)
    await first.start()
    kept = await first.place_order(spec("kept", "0.01"))
    lost_spec = spec("lost", "1000")
    lost = await first.place_order(lost_spec)
    await eventually(
        first.open_orders,
        lambda orders: any(o.filled_quantity == 4 for o in orders),
        what="the partial fill",
    )
    await first.flush()
    records = journal.records
    await first.stop()

    # The salvage kept what was durable before the second order was created.
    created = next(
        r.sequence
        for r in records
        if isinstance(r.update, OrderUpdate) and r.update.order.spec.client_order_id == "lost"
    )
    salvaged = MemoryJournal([r for r in records if r.sequence < created])
    second = OrderActor(broker, salvaged, engine)
    await second.start()
    try:
        assert [o.spec.client_order_id for o in second.open_orders()] == ["kept"]
        await reconciled(second)

        adopted = {o.spec.client_order_id: o for o in second.open_orders()}["lost"]
        assert second.adopted_orders == 1
        assert second.foreign_orders == 0
        assert adopted.spec == lost_spec
        assert adopted.status is OrderStatus.PARTIALLY_FILLED
        assert adopted.broker_order_id == lost.broker_order_id
        assert adopted.filled_quantity == Decimal(4)
        assert adopted.average_fill_price is not None
        assert adopted.average_fill_price <= Decimal(1000)
        assert {o.order_id for o in second.open_orders()} >= {kept.order_id}

        await reconciled(second)  # a second pass finds it in the table: adopted once
        assert second.adopted_orders == 1
    finally:
        await second.stop()
        await broker.close()
