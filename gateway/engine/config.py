"""Tuning of the order actor."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """How the actor queues, batches, waits and retries."""

    inbox_capacity: int = 10_000
    """Commands waiting for the actor; beyond it clients get RESOURCE_EXHAUSTED."""

    max_batch: int = 512
    """Most messages handled per batch (one journal commit per batch)."""

    ack_wait: float = 2.0
    """Seconds PlaceOrder waits for the broker's answer before replying PENDING_NEW."""

    subscriber_buffer: int = 10_000
    """Updates buffered per subscriber; a subscriber further behind is cut off."""

    broker_attempts: int = 4
    """Tries of one broker call on transient errors (the first try included)."""

    broker_backoff: float = 0.05
    """First retry delay in seconds; doubles per try, with jitter."""

    broker_backoff_max: float = 2.0
    """Longest delay between two tries, in seconds."""

    broker_call_timeout: float = 10.0
    """Seconds one broker call may take before its outcome counts as unknown."""
