"""Broker health: transient failures open the breaker; a 429 never does."""

from __future__ import annotations

from gateway.brokers import BrokerRateLimited, BrokerRejected, BrokerUnavailable
from gateway.engine.breaker import BrokerHealth


def test_consecutive_transient_failures_open_it_and_success_closes_it() -> None:
    health = BrokerHealth(3)
    for _ in range(3):
        health.record(BrokerUnavailable("down"))
    assert not health.healthy
    health.record(None)
    assert health.healthy


def test_a_storm_of_429s_never_counts_as_the_broker_down() -> None:
    health = BrokerHealth(3)
    health.record(BrokerUnavailable("down"))
    health.record(BrokerUnavailable("down"))
    for _ in range(50):
        health.record(BrokerRateLimited("slow down", retry_after=1.0))
    assert health.healthy
    assert health.consecutive_failures == 0  # it answered: it is up


def test_a_rejection_proves_the_broker_up() -> None:
    health = BrokerHealth(1)
    health.record(BrokerUnavailable("down"))
    assert not health.healthy
    health.record(BrokerRejected("no"))
    assert health.healthy
