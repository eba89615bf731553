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
    """Updates buffered per subscriber; a subscriber further behind is cut off.

    At least ``max_batch``: one batch publishes up to that many updates at
    once, and a subscriber that keeps up must be able to take a whole batch."""

    broker_attempts: int = 4
    """Tries of one broker call on transient errors (the first try included)."""

    broker_backoff: float = 0.05
    """First retry delay in seconds; doubles per try, with jitter."""

    broker_backoff_max: float = 2.0
    """Longest delay between two tries, in seconds."""

    retry_after_max: float = 30.0
    """Longest Retry-After (seconds) honoured from a rate-limited broker."""

    broker_failure_threshold: int = 5
    """Consecutive transient broker failures that mark the broker unhealthy."""

    reconcile_interval: float = 30.0
    """Seconds between reconciliation passes (also run at start and after a
    broker reconnect); 0 turns the periodic pass off."""

    unhealthy_probe_interval: float = 2.0
    """While the broker is unhealthy, seconds between probes (reconciliation passes)."""

    absence_grace: float = 60.0
    """Seconds after submission before an order the broker has no record of
    counts as never having arrived (and is rejected). Until then it stays
    PENDING_NEW and is asked about again. Also how long a replace whose
    answer was lost stays PENDING_REPLACE before the broker's terms settle it."""

    broker_call_timeout: float = 10.0
    """Seconds one broker call may take before its outcome counts as unknown."""

    checkpoint_every: int = 50_000
    """Journal events between two checkpoints of the order table (0: none).

    Start-up loads the newest checkpoint and replays only the events after
    it, so this bounds the replayed tail. A checkpoint costs time in
    proportion to the table; they are also spaced so that writing them
    takes at most a tenth of the time (see ``Checkpointer``)."""

    retention: float = 3600.0
    """Seconds a terminal order stays in memory after its last change (0: none stay).

    Past it, the order's state leaves memory and the checkpoint; its keys
    stay, and GetOrderStatus, ListOrders and a retried PlaceOrder read it
    back from the journal (see docs/durability.md). Memory and start-up then
    follow the open orders and this window, not the history."""

    retention_cache: int = 10_000
    """Evicted orders kept in memory as read back from the journal, most recent first
    (an LRU cache for repeated reads); 0: none."""

    def __post_init__(self) -> None:
        if self.subscriber_buffer < self.max_batch:
            raise ValueError(
                f"subscriber buffer ({self.subscriber_buffer}) must be at least the batch "
                f"size ({self.max_batch}), or subscribers that keep up get cut off"
            )
        if not self.retention >= 0 or self.retention_cache < 0:  # "not >=": NaN too
            raise ValueError("retention and retention_cache must be 0 or positive")
        if self.checkpoint_every < 0:
            raise ValueError("checkpoint_every must be 0 (off) or positive")
        if min(self.inbox_capacity, self.max_batch, self.broker_attempts) < 1:
            raise ValueError("inbox capacity, batch size and broker attempts must be positive")
