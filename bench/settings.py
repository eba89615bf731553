"""What one benchmark run does: durations, rates, sizes (``--quick`` shrinks them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    """Every knob of a run; the defaults are what ``make bench`` measures."""

    concurrency: tuple[int, ...] = (1, 4, 16, 64, 256)
    """Closed-loop PlaceOrder callers per throughput point (the saturation sweep)."""

    sweep_seconds: float = 4.0
    """Length of each throughput point."""

    load_fractions: tuple[float, ...] = (0.5, 0.8)
    """Open-loop PlaceOrder rates for the latency runs, as fractions of the
    saturation throughput measured earlier in the same run. Past saturation an
    open-loop queue only grows, and p99 measures the length of the run."""

    rate_seconds: float = 8.0
    """Length of each open-loop run (latency, and the queries beside load)."""

    rate_concurrency: int = 64
    """ghz workers behind an open-loop run (enough that the schedule is kept)."""

    background_fraction: float = 0.5
    """PlaceOrder (market orders) behind the GetOrderStatus and CancelOrder
    runs, as a fraction of the market-order saturation."""

    query_fraction: float = 0.1
    """GetOrderStatus and CancelOrder calls/s beside that load, as a fraction of
    the same saturation: the two loads together stay below it."""

    resting_orders: int = 6000
    """Resting limit orders placed first, for GetOrderStatus and CancelOrder
    (more if the cancel run needs more)."""

    one_caller_seconds: float = 5.0
    """Length of each one-caller run (simulated ack latency 0)."""

    subscribers: int = 100
    fanout_updates_per_second: int = 500
    """Updates per second to every subscriber (orders/s times 5 events per order)."""

    fanout_seconds: float = 10.0

    slow_ack_latency: float = 0.05
    slow_concurrency: int = 256

    replay_events: int = 1_000_000
    open_orders: int = 1_000
    """Of the recovery journal's orders, how many are open (created, accepted)."""
    checkpoint_tail: int = 50_000
    """Events appended after the checkpoint: the gateway's default --checkpoint-every,
    the most a kill -9 leaves to replay."""
    memory_orders: int = 1_000_000
    large_events: int = 10_000_000
    """The retention scenario's second journal (its first has ``replay_events``)."""

    warmup_seconds: float = 1.0

    @classmethod
    def quick(cls) -> Settings:
        """A smoke run (a minute or two): smaller, shorter, same scenarios."""
        return cls(
            concurrency=(1, 16, 64),
            sweep_seconds=2.0,
            rate_seconds=3.0,
            resting_orders=1000,
            one_caller_seconds=2.0,
            fanout_seconds=3.0,
            replay_events=100_000,
            checkpoint_tail=10_000,
            memory_orders=100_000,
            large_events=400_000,
            warmup_seconds=0.5,
        )
