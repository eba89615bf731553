"""In-flight records exist only while something about the order is outstanding."""

from __future__ import annotations

from gateway.engine.inflight import InFlightOrders


def test_a_record_goes_once_nothing_is_in_flight() -> None:
    flights = InFlightOrders()
    flights.of("o-1").submitting = True
    flights.of("o-1").cancel_after_submit = True
    flights.tidy("o-1")
    assert len(flights) == 1
    assert flights.submitting("o-1")

    flights.of("o-1").submitting = False
    flights.tidy("o-1")
    assert len(flights) == 1  # the cancel is still to be sent

    flights.of("o-1").cancel_after_submit = False
    flights.tidy("o-1")
    assert len(flights) == 0
    assert flights.get("o-1") is None
    assert not flights.submitting("o-1")


def test_unverified_orders_are_listed_in_order() -> None:
    flights = InFlightOrders()
    for order_id in ("o-3", "o-1", "o-2"):
        flights.of(order_id).unverified = True
    flights.of("o-4").cancelling = True

    assert list(flights.unverified()) == ["o-1", "o-2", "o-3"]
