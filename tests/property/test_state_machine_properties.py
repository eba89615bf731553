"""The order state machine under random event sequences: invariants always hold."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.domain import (
    CancelRejected,
    CancelRequested,
    Fill,
    IllegalTransition,
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderCreated,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    OrderSpec,
    OrderStatus,
    OrderType,
    ReplaceRejected,
    ReplaceRequested,
    ReplaceTerms,
    Side,
    TimeInForce,
    apply_event,
)

NOW = datetime(2026, 1, 2, tzinfo=UTC)
QUANTITY = Decimal(10)
SPEC = OrderSpec(
    "acct-1", "c-1", "AAPL", Side.BUY, OrderType.LIMIT, QUANTITY, TimeInForce.GTC, Decimal(100)
)

# A few replace requests (bigger, smaller, price only); an outcome applies
# only to the request pending, so the generator draws both from this set.
replace_terms = st.sampled_from(
    [
        ReplaceTerms("r-up", quantity=Decimal(12)),
        ReplaceTerms("r-down", quantity=Decimal(4), limit_price=Decimal("99.5")),
        ReplaceTerms("r-price", limit_price=Decimal(101)),
    ]
)
fill_quantities = st.sampled_from([Decimal("0.5"), Decimal(1), Decimal(3), Decimal(7), Decimal(10)])
events = st.one_of(
    st.just(OrderAccepted("o", "B-1", NOW)),
    st.just(OrderRejected("o", "no", NOW)),
    st.builds(
        lambda q, n: OrderFilled("o", Fill(f"x-{n}", q, Decimal("99.5"), NOW), NOW),
        fill_quantities,
        st.integers(0, 10**6),
    ),
    st.just(CancelRequested("o", NOW)),
    st.just(OrderCanceled("o", NOW)),
    st.just(CancelRejected("o", "too late", NOW)),
    st.just(OrderExpired("o", NOW)),
    st.builds(lambda t: ReplaceRequested("o", t, NOW), replace_terms),
    st.builds(lambda t: OrderReplaced("o", t, NOW, "B-2"), replace_terms),
    st.just(ReplaceRejected("o", "not now", NOW)),
)


def check(before: Order, after: Order, event: OrderEvent) -> None:
    quantity = after.spec.quantity
    assert after.filled_quantity >= before.filled_quantity, "filled never decreases"
    assert after.filled_quantity <= quantity, "never overfilled, whatever the replaces"
    if not after.is_terminal:
        assert after.filled_quantity + after.leaves_quantity == quantity
    else:
        assert after.leaves_quantity == 0
    if before.is_terminal:
        # Terminal stays terminal; only a late fill moves CANCELED/EXPIRED to FILLED.
        assert after.is_terminal
        if after.status is not before.status:
            assert before.status in (OrderStatus.CANCELED, OrderStatus.EXPIRED)
            assert after.status is OrderStatus.FILLED
    if after.status is OrderStatus.FILLED:
        assert after.filled_quantity == quantity
    if after.status is OrderStatus.PARTIALLY_FILLED:
        assert 0 < after.filled_quantity < quantity
    # Terms change only when the broker accepts the replace pending, to its terms.
    if after.spec != before.spec:
        assert isinstance(event, OrderReplaced)
        assert event.terms == before.pending_replace
        assert after.spec == event.terms.applied_to(before.spec)
        assert after.placed == SPEC, "the terms it was placed with still identify it"
    if after.status is OrderStatus.PENDING_REPLACE:
        assert after.pending_replace is not None
    if before.status is OrderStatus.PENDING_REPLACE and isinstance(
        event, OrderReplaced | ReplaceRejected
    ):
        # Accepted or refused, the order works on as its fills say.
        assert after.status in (
            OrderStatus.ACCEPTED,
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
        )
        assert after.pending_replace is None


@settings(max_examples=400, deadline=None)
@given(st.lists(events, max_size=30))
def test_random_event_sequences_keep_every_invariant(sequence: list[OrderEvent]) -> None:
    order = apply_event(None, OrderCreated("o", SPEC, NOW), 1)
    for number, event in enumerate(sequence, start=2):
        try:
            after = apply_event(order, event, number)
        except IllegalTransition:
            continue  # refused: the order is unchanged (apply_event is pure)
        check(order, after, event)
        assert after.last_sequence == number
        order = after
