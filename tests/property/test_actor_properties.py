"""The actor under random interleavings of client commands and venue behaviour.

Hypothesis draws a script: orders placed (keys reused, sometimes with other
parameters), cancels, fills and expiries at the venue, lost and duplicated and
overtaken reports, lost acks, refused submits, reconciliation passes. After
every step the invariants of ARCHITECTURE.md hold; at the end, with faults
gone, the gateway agrees with the venue and its journal replays to the same
table.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.domain import (
    ListOrdersQuery,
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
from gateway.engine.ledger import Ledger
from gateway.errors import GatewayError
from gateway.journal import MemoryJournal
from tests.property.scripted_broker import ScriptedBroker

ACCOUNT = "acct-1"
# Few keys, so that scripts reuse them: duplicates, cancels and fills collide.
KEYS = ["c0", "c1", "c2"]
CONFIG = EngineConfig(
    ack_wait=0,
    broker_attempts=3,
    broker_backoff=0.0005,
    broker_backoff_max=0.001,
    reconcile_interval=0,
    unhealthy_probe_interval=0.001,
    broker_failure_threshold=1000,
    absence_grace=0,
)


def spec(key: str, quantity: int = 10) -> OrderSpec:
    return OrderSpec(
        ACCOUNT, key, "AAPL", Side.BUY, OrderType.LIMIT, Decimal(quantity), TimeInForce.GTC,
        limit_price=Decimal(100),
    )  # fmt: skip


@dataclass(frozen=True)
class Step:
    action: str
    key: str
    detail: str = ""
    # How the venue's report of this step travels: "", "lose", "duplicate", "hold".
    delivery: str = ""


keys = st.sampled_from(KEYS)
deliveries = st.sampled_from(["", "", "lose", "duplicate", "hold"])
steps = st.one_of(
    st.builds(Step, st.just("place"), keys, st.sampled_from(["", "", "", "other-qty"]), deliveries),
    st.builds(Step, st.just("cancel"), keys, st.just(""), deliveries),
    st.builds(Step, st.just("fill"), keys, st.sampled_from(["0.3", "0.5", "1"]), deliveries),
    st.builds(Step, st.just("expire"), keys, st.just(""), deliveries),
    st.builds(Step, st.just("submit_fault"), keys, st.sampled_from(["lost_answer", "unavailable"])),
    st.builds(Step, st.just("reconcile"), keys),
)


async def settle(actor: OrderActor, venue: ScriptedBroker) -> None:
    """Wait (bounded) until the venue's reports are read and the actor is idle."""
    async with asyncio.timeout(10):
        while True:
            await actor.idle()
            if not venue.unread_reports:
                return
            await asyncio.sleep(0)  # the report reader's turn


async def table(actor: OrderActor) -> dict[str, Order]:
    orders, _ = await actor.list_orders(ListOrdersQuery(ACCOUNT, page_size=1000))
    return {o.spec.client_order_id: o for o in orders}


def check_step(before: dict[str, Order], after: dict[str, Order]) -> None:
    assert set(before) <= set(after), "an order vanished"
    for key, order in after.items():
        quantity = order.spec.quantity
        assert order.filled_quantity <= quantity
        if not order.is_terminal:
            assert order.filled_quantity + order.leaves_quantity == quantity
        old = before.get(key)
        if old is None:
            continue
        assert order.order_id == old.order_id
        assert order.filled_quantity >= old.filled_quantity, "filled decreased"
        if old.is_terminal:
            assert order.is_terminal, f"{key}: {old.status} became {order.status}"


async def run(script: list[Step]) -> None:
    venue = ScriptedBroker()
    journal = MemoryJournal()
    actor = OrderActor(venue, journal, CONFIG)
    await actor.start()
    try:
        seen: dict[str, Order] = {}
        for step in script:
            key = (ACCOUNT, step.key)
            venue.report_faults[:] = [step.delivery] if step.delivery else []
            if step.action == "place":
                quantity = 11 if step.detail == "other-qty" else 10
                # ALREADY_EXISTS for other parameters: nothing changes.
                with contextlib.suppress(GatewayError):
                    await actor.place_order(spec(step.key, quantity))
            elif step.action == "cancel":
                known = await table(actor)
                if step.key in known:
                    ref = OrderRef(ACCOUNT, order_id=known[step.key].order_id)
                    with contextlib.suppress(GatewayError):  # terminal: FAILED_PRECONDITION
                        await actor.cancel_order(ref)
            elif step.action == "fill":
                venue.fill(key, Decimal(step.detail))
            elif step.action == "expire":
                venue.expire(key)
            elif step.action == "submit_fault":
                venue.submit_faults.append(step.detail)
            else:
                actor.request_reconcile()
            await settle(actor, venue)
            now = await table(actor)
            check_step(seen, now)
            seen = now
            assert max(venue.acted_submits.values(), default=0) <= 1, "sent twice"

        # The bad day ends: whatever was lost, reconciliation finds.
        venue.submit_faults.clear()
        venue.report_faults.clear()
        venue.release_held()
        actor.request_reconcile()
        await settle(actor, venue)
        actor.request_reconcile()
        await settle(actor, venue)
        final = await table(actor)
        check_step(seen, final)
        for venue_key, order in venue.orders.items():
            mine = final[venue_key[1]]
            assert mine.filled_quantity == order.filled, f"{venue_key}: fills disagree"
            assert mine.is_terminal == order.status.is_terminal, (
                f"{venue_key}: {mine.status} here, {order.status} at the venue"
            )
        for client_order_id, mine in final.items():
            if (ACCOUNT, client_order_id) not in venue.orders:
                # Never reached the venue: only a rejection (or still unknown) is right.
                assert mine.status in (OrderStatus.REJECTED, OrderStatus.PENDING_NEW)

        records = journal.records
        assert [r.sequence for r in records] == list(range(1, len(records) + 1))
        fills = Counter(
            (r.event.order_id, r.event.fill.exec_id)
            for r in records
            if isinstance(r.event, OrderFilled)
        )
        assert max(fills.values(), default=1) == 1, "an exec_id applied twice"
    finally:
        await actor.stop()

    # Replay rebuilds exactly the same table.
    replayed = Ledger()
    assert replayed.replay(journal.records) == len(journal.records)
    assert {o.order_id for o in replayed.table.open_orders()} == {
        o.order_id for o in final.values() if not o.is_terminal
    }
    for mine in final.values():
        assert replayed.table.get(mine.order_id) == mine


@settings(max_examples=300, deadline=None)
@given(st.lists(steps, min_size=4, max_size=40))
def test_random_interleavings_keep_every_invariant(script: list[Step]) -> None:
    asyncio.run(run(script))
