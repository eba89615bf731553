"""Latency summaries: exact percentiles from every sample, in milliseconds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Latency:
    """Percentiles of one run's latencies (ms); zeros when there were none."""

    samples: int
    mean: float
    p50: float
    p90: float
    p99: float
    p99_9: float
    max: float

    def to_json(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            **{k: round(v, 3) for k, v in vars(self).items() if k != "samples"},
        }


def percentile(ordered: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0..1) of an ascending list."""
    if not ordered:
        return 0.0
    rank = max(0, min(len(ordered) - 1, int(-(-q * len(ordered) // 1)) - 1))
    return ordered[rank]


def latency_of(samples_ms: list[float]) -> Latency:
    ordered = sorted(samples_ms)
    if not ordered:
        return Latency(0, 0, 0, 0, 0, 0, 0)
    return Latency(
        samples=len(ordered),
        mean=sum(ordered) / len(ordered),
        p50=percentile(ordered, 0.50),
        p90=percentile(ordered, 0.90),
        p99=percentile(ordered, 0.99),
        p99_9=percentile(ordered, 0.999),
        max=ordered[-1],
    )
