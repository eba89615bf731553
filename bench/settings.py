"""What one benchmark run does: durations, rates, sizes (``--quick`` shrinks them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    """Every knob of a run; the defaults are what ``make bench`` measures."""

    concurrency: tuple[int, ...] = (1, 4, 16, 64, 256)
    """Closed-loop PlaceOrder callers per throughput point (the saturation sweep)."""

    sweep_seconds: float = 5.0
    """Length of each throughput point."""

    rates: tuple[int, ...] = (1000, 3000)
    """Fixed PlaceOrder rates (calls/s, open loop) for the latency runs."""

    rate_seconds: float = 10.0
    """Length of each fixed-rate run."""

    rate_concurrency: int = 64
    """ghz workers behind a fixed-rate run (enough that the schedule is kept)."""

    background_rate: int = 1000
    """PlaceOrder calls/s behind the GetOrderStatus and CancelOrder runs."""

    query_rate: int = 500
    """GetOrderStatus and CancelOrder calls/s under that load."""

    resting_orders: int = 6000
    """Resting limit orders placed first, for GetOrderStatus and CancelOrder."""

    subscribers: int = 100
    fanout_updates_per_second: int = 500
    """Updates per second to every subscriber (orders/s times 5 events per order)."""

    fanout_seconds: float = 10.0

    slow_ack_latency: float = 0.05
    slow_concurrency: int = 256

    replay_events: int = 1_000_000
    memory_orders: int = 1_000_000

    warmup_seconds: float = 1.0

    @classmethod
    def quick(cls) -> Settings:
        """A smoke run (about a minute): smaller, shorter, same scenarios."""
        return cls(
            concurrency=(1, 16, 64),
            sweep_seconds=2.0,
            rate_seconds=3.0,
            resting_orders=2000,
            fanout_seconds=3.0,
            replay_events=100_000,
            memory_orders=100_000,
            warmup_seconds=0.5,
        )
