"""The report: targets judged pass/short, ``benchmarks.md``, ``benchmarks.json``, plots.

Every figure that has a counterpart on the echo server is shown with its
ratio to it (for throughput: gateway / echo, higher is better; for latency:
gateway / echo, the slowdown). Recovery and memory have no transport in them,
so no ceiling applies; the page says so rather than inventing one.
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
OPTIMISATIONS = Path(__file__).resolve().parent / "optimisations.md"


@dataclass
class Target:
    """One target of the issue, judged on this run's figure."""

    name: str
    value: float | None
    goal: float
    unit: str
    at_least: bool
    why: str = ""

    @property
    def met(self) -> bool:
        if self.value is None:
            return False
        return self.value >= self.goal if self.at_least else self.value <= self.goal

    @property
    def verdict(self) -> str:
        if self.value is None:
            return "not measured"
        if self.met:
            return "pass"
        gap = self.value / self.goal if self.goal else 0
        return f"short ({gap:.2f}× the goal)"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "goal": self.goal,
            "unit": self.unit,
            "at_least": self.at_least,
            "met": self.met,
            "verdict": self.verdict,
        }


def describe_machine(
    ghz: Path,
    ghz_version: str,
    settings: Settings,
    tree: Path | None,
    elapsed: float,
    *,
    quick: bool,
) -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])

    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "not installed"

    def command(*argv: str) -> str:
        try:
            out = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=10)
        except OSError:
            return "?"
        return out.stdout.strip()

    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": command("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"),
        "git_dirty": bool(command("git", "-C", str(ROOT), "status", "--porcelain", "gateway")),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "grpcio": version("grpcio"),
        "protobuf": version("protobuf"),
        "sqlite": sqlite3.sqlite_version,
        "ghz": ghz_version,
        "go": command("go", "version"),
        "gateway_tree": str(tree) if tree else None,
        "load_average": Path("/proc/loadavg").read_text().split()[:3],
        "quick": quick,
        "seconds": round(elapsed, 1),
        "settings": dict(vars(settings)),
    }


# ----------------------------------------------------------------- targets


def _best(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    return max(runs, key=lambda r: r["rps"]) if runs else None


def targets(results: dict[str, Any]) -> list[Target]:
    found: list[Target] = []
    sat = results.get("saturation")
    if sat:
        gateway, echo = _best(sat["gateway"]), _best(sat["echo"])
        assert gateway is not None
        assert echo is not None
        found.append(Target("PlaceOrder at saturation", gateway["rps"], 4000, "calls/s", True))
        found.append(
            Target(
                "PlaceOrder at saturation / echo ceiling",
                gateway["rps"] / echo["rps"],
                0.6,
                "ratio",
                True,
            )
        )
    rate = results.get("fixed_rate", {}).get("gateway", {}).get("1000")
    if rate:
        found.append(Target("PlaceOrder p99 at 1,000/s", rate["latency_ms"]["p99"], 5, "ms", False))
    query = results.get("queries", {}).get("gateway", {}).get("GetOrderStatus")
    if query:
        found.append(
            Target("GetOrderStatus p99 under load", query["latency_ms"]["p99"], 2, "ms", False)
        )
    fan = results.get("fanout", {}).get("gateway")
    if fan:
        found.append(
            Target("Fan-out p99 lag (100 subscribers)", fan["lag_ms"]["p99"], 20, "ms", False)
        )
        dropped = fan["gaps"] + len(fan["errors"])
        found.append(Target("Fan-out updates dropped", dropped, 0, "updates", False))
        rate_per_sub = fan["delivered_per_second"] / max(1, fan["subscribers"])
        found.append(
            Target("Fan-out updates/s per subscriber", rate_per_sub, 500, "updates/s", True)
        )
    slow = results.get("slow_broker")
    if slow:
        found.append(
            Target(
                "Slow broker (50 ms) / fast broker throughput",
                slow["slow"]["rps"] / slow["fast"]["rps"],
                0.8,
                "ratio",
                True,
            )
        )
    recovery = results.get("recovery")
    if recovery:
        memory, replay = recovery["memory"], recovery["replay"]
        found.append(
            Target(
                f"RSS per tracked order ({memory['orders']:,} orders)",
                memory["bytes_per_order"],
                1024,
                "bytes",
                False,
            )
        )
        per_million = replay["replay_seconds"] * 1_000_000 / replay["events"]
        found.append(Target("Replay of 1M journal events", per_million, 10, "s", False))
    return found


# ------------------------------------------------------------------- page


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:,.0f}"


def _ratio(gateway: float, echo: float) -> str:
    return f"{gateway / echo:.2f}×" if echo else "n/a"


def _latency_row(label: str, g: dict[str, Any], e: dict[str, Any]) -> str:
    gl, el = g["latency_ms"], e["latency_ms"]
    cells = [
        label,
        f"{g['rps']:,.0f}",
        f"{e['rps']:,.0f}",
        *(f"{_ms(gl[k])} / {_ms(el[k])} ({_ratio(gl[k], el[k])})" for k in ("p50", "p99", "p99_9")),
        ", ".join(f"{k} {v}" for k, v in g["statuses"].items()),
    ]
    return "| " + " | ".join(cells) + " |"


def markdown(meta: dict[str, Any], results: dict[str, Any], judged: list[Target]) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`python -m bench`); do not edit by hand: the",
        "optimisation log at the end comes from `bench/optimisations.md`.",
        "",
        "Every gateway figure stands next to the **echo ceiling**: a bare `grpc.aio`",
        "server of the same API (`bench/echo.py`) that decodes each request and answers",
        "with canned bytes of the gateway's answer size, driven by the same load",
        "generator with the same concurrency, in the same run. Ratios are gateway ÷",
        "echo: for throughput higher is better, for latency it is the slowdown.",
        "",
        "The gateway runs with its defaults: simulated broker (1 ms acks, market",
        "orders fill at once in 3 partial fills, so one `PlaceOrder` makes 5 events),",
        "durable SQLite journal (WAL, `synchronous=FULL`, one fsync per actor batch),",
        "metrics interceptor on. `PlaceOrder` answers after the broker's ack, so each",
        "call waits for two group commits and the broker round trip.",
        "",
        "## Machine",
        "",
        f"- {meta['cpu']}, {meta['cores']} cores, {meta['memory_gib']} GiB, Linux {meta['kernel']}",
        f"- Python {meta['python']}, grpcio {meta['grpcio']}, protobuf {meta['protobuf']}, "
        f"SQLite {meta['sqlite']}, the standard asyncio event loop"
        + (f"; gateway code from `{meta['gateway_tree']}`" if meta["gateway_tree"] else ""),
        f"- load: ghz {meta['ghz']} (`--cpus 1`), stream client in Go ({meta['go']})",
        f"- commit {meta['git']}{' (with local changes)' if meta['git_dirty'] else ''}, "
        f"{meta['date']}; the whole run took {meta['seconds']:.0f} s"
        + (" (**quick mode**: smaller, shorter)" if meta["quick"] else ""),
        f"- load average at the end (1, 5, 15 min): {', '.join(meta['load_average'])}: the"
        " machine is shared, and other work on it shows up in every figure",
        "- Load generator and server share the 2 cores: ghz gets one (`--cpus 1`), the",
        "  server process the rest. Absolute numbers move with the machine; the ratios",
        "  to the echo server, measured minutes apart on the same cores, move much less.",
        "",
        "## Targets",
        "",
        "| target | goal | measured | verdict |",
        "|---|---|---|---|",
    ]
    for t in judged:
        goal = f"{'≥' if t.at_least else '≤'} {t.goal:,g} {t.unit}"
        value = "–" if t.value is None else f"{t.value:,.2f} {t.unit}"
        lines.append(f"| {t.name} | {goal} | {value} | {t.verdict} |")
    lines += ["", "![PlaceOrder throughput vs concurrency](bench-throughput.png)", ""]
    sat = results.get("saturation")
    if sat:
        lines += [
            "## PlaceOrder throughput vs concurrency",
            "",
            "Closed loop: each of *c* callers sends its next call when the last one answers.",
            "",
            "| callers | gateway calls/s | echo calls/s | ratio | gateway p50 ms | echo p50 ms | gateway p99 ms |",
            "|---|---|---|---|---|---|---|",
        ]
        for g, e in zip(sat["gateway"], sat["echo"], strict=True):
            lines.append(
                f"| {g['concurrency']} | {g['rps']:,.0f} | {e['rps']:,.0f} | "
                f"{_ratio(g['rps'], e['rps'])} | {_ms(g['latency_ms']['p50'])} | "
                f"{_ms(e['latency_ms']['p50'])} | {_ms(g['latency_ms']['p99'])} |"
            )
        lines.append("")
    rates = results.get("fixed_rate")
    if rates:
        lines += [
            "## PlaceOrder latency at fixed rates",
            "",
            "Open loop (`ghz --async --rps`): calls start on schedule whether or not earlier",
            "ones answered, so queueing shows up in the latency instead of lowering the",
            "rate. Cells are gateway / echo (ratio), in milliseconds. Percentiles are of",
            "the calls that succeeded; the rest are counted by status in the last column",
            "(past saturation: `CANCELED` at ghz's 10 s deadline, the gateway's",
            '`RESOURCE_EXHAUSTED` for a full inbox, and `UNAVAILABLE` "use of closed network',
            'connection" for calls still waiting when ghz ends the run and closes its',
            "connections; the echo runs show those too).",
            "",
            "| offered rate | gateway got/s | echo got/s | p50 | p99 | p99.9 | gateway statuses |",
            "|---|---|---|---|---|---|---|",
        ]
        for rate in rates["gateway"]:
            lines.append(
                _latency_row(f"{int(rate):,}/s", rates["gateway"][rate], rates["echo"][rate])
            )
        lines += ["", "![PlaceOrder latency distribution](bench-latency.png)", ""]
    queries = results.get("queries")
    if queries:
        lines += [
            "## GetOrderStatus and CancelOrder under load",
            "",
            f"Each runs at {meta['settings']['query_rate']}/s (open loop) while PlaceOrder runs",
            f"at {meta['settings']['background_rate']}/s beside it, against "
            f"{meta['settings']['resting_orders']:,} resting limit orders. Gateway / echo (ratio), ms.",
            "",
            "| call | gateway got/s | echo got/s | p50 | p99 | p99.9 | gateway statuses |",
            "|---|---|---|---|---|---|---|",
        ]
        for method in queries["gateway"]:
            lines.append(_latency_row(method, queries["gateway"][method], queries["echo"][method]))
        lines.append("")
    fan = results.get("fanout")
    if fan:
        g, e = fan["gateway"], fan["echo"]
        lines += [
            "## Fan-out to 100 subscribers",
            "",
            f"{g['subscribers']} `SubscribeUpdates` streams (one connection each, Go client) while",
            f"PlaceOrder runs at {meta['settings']['fanout_updates_per_second'] // 5}/s (×5 events =",
            f"{meta['settings']['fanout_updates_per_second']} updates/s). Lag: from the update's own",
            "time (a fill's time for a fill) to its arrival at the subscriber. The echo server",
            "sends one pre-encoded update to every stream at the same rate.",
            "",
            "| | gateway | echo | ratio |",
            "|---|---|---|---|",
            f"| delivered/s (all streams) | {g['delivered_per_second']:,.0f} | "
            f"{e['delivered_per_second']:,.0f} | {_ratio(g['delivered_per_second'], e['delivered_per_second'])} |",
            f"| lag p50 ms | {_ms(g['lag_ms']['p50'])} | {_ms(e['lag_ms']['p50'])} | "
            f"{_ratio(g['lag_ms']['p50'], e['lag_ms']['p50'])} |",
            f"| lag p99 ms | {_ms(g['lag_ms']['p99'])} | {_ms(e['lag_ms']['p99'])} | "
            f"{_ratio(g['lag_ms']['p99'], e['lag_ms']['p99'])} |",
            f"| lag p99.9 ms | {_ms(g['lag_ms']['p99_9'])} | {_ms(e['lag_ms']['p99_9'])} | "
            f"{_ratio(g['lag_ms']['p99_9'], e['lag_ms']['p99_9'])} |",
            f"| updates per stream (min–max) | {g['min_per_subscriber']:,}–{g['max_per_subscriber']:,} | "
            f"{e['min_per_subscriber']:,}–{e['max_per_subscriber']:,} | |",
            f"| sequence gaps, streams ended by error | {g['gaps']}, {len(g['errors'])} | "
            f"{e['gaps']}, {len(e['errors'])} | |",
            "",
        ]
    slow = results.get("slow_broker")
    if slow:
        f, s = slow["fast"], slow["slow"]
        c = f["concurrency"]
        lines += [
            "## Slow broker",
            "",
            f"PlaceOrder at saturation with {c} callers, simulated broker acks after 1 ms",
            f"(default) and after {slow['ack_latency_s'] * 1000:.0f} ms. A gateway whose actor",
            f"waited on the broker would manage 1/latency = {1 / slow['ack_latency_s']:.0f} calls/s; "
            f"{c} callers waiting {slow['ack_latency_s'] * 1000:.0f} ms each can at most reach "
            f"{c / slow['ack_latency_s']:,.0f}/s.",
            "",
            "| broker | calls/s | p50 ms | p99 ms |",
            "|---|---|---|---|",
            f"| 1 ms acks | {f['rps']:,.0f} | {_ms(f['latency_ms']['p50'])} | {_ms(f['latency_ms']['p99'])} |",
            f"| {slow['ack_latency_s'] * 1000:.0f} ms acks | {s['rps']:,.0f} | "
            f"{_ms(s['latency_ms']['p50'])} | {_ms(s['latency_ms']['p99'])} |",
            f"| ratio | {s['rps'] / f['rps']:.2f} | | |",
            "",
        ]
    recovery = results.get("recovery")
    if recovery:
        empty, replay, memory = recovery["empty"], recovery["replay"], recovery["memory"]
        lines += [
            "## Recovery and memory",
            "",
            "Journals written directly through the journal API (`bench/journals.py`: filled",
            "orders, two events each), then a gateway process started on them. Replay time",
            "is its time to `listening on` minus an empty gateway's; memory is its RSS",
            "minus the empty gateway's, per order. No transport is involved, so there is",
            "no echo ratio here.",
            "",
            "| | events | orders | ready in s | replay s | RSS MiB | bytes/order |",
            "|---|---|---|---|---|---|---|",
            f"| empty journal | 0 | 0 | {empty['ready_seconds']:.2f} | – | {empty['rss_kib'] / 1024:.0f} | – |",
            f"| replay | {replay['events']:,} | {replay['events'] // 2:,} | {replay['ready_seconds']:.2f} | "
            f"{replay['replay_seconds']:.2f} | {replay['rss_kib'] / 1024:.0f} | "
            f"{(replay['rss_kib'] - empty['rss_kib']) * 2048 / replay['events']:,.0f} |",
            f"| memory | {memory['events']:,} | {memory['orders']:,} | {memory['ready_seconds']:.2f} | "
            f"{memory['ready_seconds'] - empty['ready_seconds']:.2f} | {memory['rss_kib'] / 1024:.0f} | "
            f"{memory['bytes_per_order']:,.0f} |",
            "",
            f"Writing them took {recovery['build_seconds']:.1f} s "
            f"({(replay['events'] + memory['events'] - replay['events']) / max(recovery['build_seconds'], 1e-9):,.0f} events/s"
            " through `SqliteJournal.append`, encoding included).",
            "",
        ]
    if OPTIMISATIONS.exists():
        lines += [OPTIMISATIONS.read_text().rstrip(), ""]
    return "\n".join(lines)


# ------------------------------------------------------------------ plots


def plots(out: Path, results: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sat = results.get("saturation")
    if sat:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for name, style in (("echo", "--"), ("gateway", "-")):
            runs = sat[name]
            ax.plot(
                [r["concurrency"] for r in runs],
                [r["rps"] for r in runs],
                style,
                marker="o",
                label=f"{name}",
            )
        slow = results.get("slow_broker")
        if slow:
            ax.plot(
                [slow["slow"]["concurrency"]],
                [slow["slow"]["rps"]],
                "s",
                color="tab:red",
                label="gateway, 50 ms broker",
            )
        ax.axhline(4000, color="grey", linewidth=0.8, linestyle=":", label="target 4,000/s")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent callers (closed loop)")
        ax.set_ylabel("PlaceOrder calls/s")
        ax.set_title("PlaceOrder throughput vs concurrency")
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "bench-throughput.png", dpi=110)
        plt.close(fig)
    rates = results.get("fixed_rate")
    if rates:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for name, style in (("echo", "--"), ("gateway", "-")):
            for rate, run in rates[name].items():
                values = run["latencies_ms"]
                if not values:
                    continue
                n = len(values)
                ax.plot(
                    values,
                    [100 * (i + 1) / n for i in range(n)],
                    style,
                    label=f"{name} @ {int(rate):,}/s",
                )
        ax.axvline(5, color="grey", linewidth=0.8, linestyle=":", label="p99 target 5 ms")
        ax.set_xscale("log")
        ax.set_xlabel("PlaceOrder latency (ms, log scale)")
        ax.set_ylabel("percent of calls at or below")
        ax.set_title("PlaceOrder latency distribution (open loop)")
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "bench-latency.png", dpi=110)
        plt.close(fig)


def render(out: Path, meta: dict[str, Any], results: dict[str, Any]) -> None:
    """Rewrite only the page, from a run's recorded machine and results."""
    (out / "benchmarks.md").write_text(markdown(meta, results, targets(results)) + "\n")


def write(out: Path, meta: dict[str, Any], results: dict[str, Any]) -> str:
    """Write the page, the JSON and the plots; return a short text summary."""
    out.mkdir(parents=True, exist_ok=True)
    judged = targets(results)
    slim = json.loads(json.dumps(results))  # a copy without the plot samples
    for runs in slim.get("fixed_rate", {}).values():
        for run in runs.values():
            run.pop("latencies_ms", None)
    for side in slim.get("fanout", {}).values():
        side.pop("lag_sample_ms", None)
    document = {"machine": meta, "targets": [t.to_json() for t in judged], "results": slim}
    (out / "benchmarks.json").write_text(json.dumps(document, indent=1) + "\n")
    plots(out, results)
    (out / "benchmarks.md").write_text(markdown(meta, results, judged) + "\n")
    width = max((len(t.name) for t in judged), default=0)
    return "\n".join(
        f"{t.name:<{width}}  {('–' if t.value is None else f'{t.value:,.2f}')} {t.unit}  {t.verdict}"
        for t in judged
    )
