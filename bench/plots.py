"""The report's plots: throughput vs concurrency, and latency distributions.

matplotlib is imported only here and only when drawing (the ``bench`` extra),
so the rest of the harness, and its type checks, run without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _rps(run: dict[str, Any]) -> float:
    return float(run.get("ok_rps", run["rps"]))


def draw(out: Path, results: dict[str, Any]) -> None:
    """Write ``bench-throughput.png`` and ``bench-latency.png`` for what was measured."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sat = results.get("saturation", {})
    if sat.get("echo"):
        fig, ax = plt.subplots(figsize=(7, 4.2))
        echo_best = max(_rps(run) for run in sat["echo"])
        goals = {"limit": 0.6, "market": 0.45}
        for name in ("echo", "limit", "market"):
            runs = sat.get(name)
            if not runs:
                continue
            (line,) = ax.plot(
                [r["concurrency"] for r in runs],
                [_rps(r) for r in runs],
                "--" if name == "echo" else "-",
                marker="o",
                label="echo" if name == "echo" else f"gateway, {name} orders",
            )
            if name in goals:
                # The target in the colour of the line it is for.
                ax.axhline(
                    goals[name] * echo_best,
                    color=line.get_color(),
                    linewidth=0.8,
                    linestyle=":",
                    label=f"{name} target: {goals[name]} of echo's best",
                )
        slow = results.get("slow_broker")
        if slow:
            ax.plot(
                [slow["slow"]["concurrency"]],
                [slow["slow"]["rps"]],
                "s",
                color="tab:red",
                label="gateway, market, 50 ms broker",
            )
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent callers (closed loop)")
        ax.set_ylabel("PlaceOrder calls/s (OK)")
        ax.set_title("PlaceOrder throughput vs concurrency")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
        fig.tight_layout()
        fig.savefig(out / "bench-throughput.png", dpi=110)
        plt.close(fig)
    latency = results.get("latency", {})
    if latency:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        colours = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"] * 4)
        echo_label = "echo at the same rate (dashed)"
        for kind, entry in latency.items():
            for run in entry["runs"]:
                # One colour per rate: the gateway solid, the echo at that rate dashed.
                colour = next(colours)
                share = f"{run['fraction'] * 100:.0f} % ({run['rate']:,}/s)"
                for side, style in (("gateway", "-"), ("echo", "--")):
                    values = run[side].get("latencies_ms") or []
                    if not values:
                        continue
                    n = len(values)
                    if side == "gateway":
                        label = f"gateway, {kind} @ {share}"
                    else:
                        label, echo_label = echo_label, "_"  # one legend entry for all
                    ax.plot(
                        values,
                        [100 * (i + 1) / n for i in range(n)],
                        style,
                        color=colour,
                        label=label,
                    )
        ax.axvline(5, color="grey", linewidth=0.8, linestyle=":", label="p99 target 5 ms")
        ax.set_xscale("log")
        ax.set_xlabel("PlaceOrder latency (ms, log scale)")
        ax.set_ylabel("percent of calls at or below")
        ax.set_title("PlaceOrder latency at shares of saturation (open loop)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="x-small")
        fig.tight_layout()
        fig.savefig(out / "bench-latency.png", dpi=110)
        plt.close(fig)
