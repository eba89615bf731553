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

from bench import plots
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
        by = abs(self.value - self.goal)
        unit = "" if self.unit.startswith("×") else f" {self.unit}"
        times = f" ({self.value / self.goal:.2f}× the goal)" if self.goal else ""
        return f"short by {by:,.2f}{unit}{times}"

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


def rps(run: dict[str, Any]) -> float:
    """Calls answered OK per second (older runs recorded completed calls only)."""
    return float(run.get("ok_rps", run["rps"]))


def best_rps(runs: list[dict[str, Any]]) -> float:
    return max((rps(run) for run in runs), default=0.0)


EVENTS = {"limit": "resting, 2 events", "market": "5 events"}
KEPT_UP = 0.97
"""An open-loop run whose OK calls/s stay below this share of the offered rate fell behind."""
THROUGHPUT_GOALS = {"limit": 0.6, "market": 0.45}


def _at(runs: list[dict[str, Any]], fraction: float) -> dict[str, Any] | None:
    return next((run for run in runs if abs(run["fraction"] - fraction) < 1e-9), None)


def targets(results: dict[str, Any]) -> list[Target]:
    """The issue's targets, each judged on this run's figure beside its echo figure."""
    found: list[Target] = []
    sat = results.get("saturation", {})
    echo_best = best_rps(sat.get("echo", []))
    for kind, goal in THROUGHPUT_GOALS.items():
        if sat.get(kind) and echo_best:
            found.append(
                Target(
                    f"PlaceOrder throughput, {kind} orders ({EVENTS[kind]}) / echo",
                    best_rps(sat[kind]) / echo_best,
                    goal,
                    "× echo",
                    True,
                )
            )
    one = results.get("one_caller")
    if one and "limit" in one:
        gateway, echo = one["limit"]["latency_ms"]["p50"], one["echo"]["latency_ms"]["p50"]
        found.append(
            Target(
                "One caller p50, ack latency 0 (limit orders), minus echo p50",
                gateway - echo,
                1.0,
                "ms",
                False,
            )
        )
    for kind, latency in results.get("latency", {}).items():
        half = _at(latency["runs"], 0.5)
        if half:
            found.append(
                Target(
                    f"PlaceOrder p99 at 50 % of saturation ({kind} orders)",
                    half["gateway"]["latency_ms"]["p99"],
                    5,
                    "ms",
                    False,
                )
            )
    queries = results.get("queries", {})
    query = queries.get("gateway", {}).get("GetOrderStatus")
    if query and "saturation" in queries:
        share = queries["background_rate"] / queries["saturation"]
        found.append(
            Target(
                f"GetOrderStatus p99 beside PlaceOrder at {_pct(share)} of saturation",
                query["latency_ms"]["p99"],
                2,
                "ms",
                False,
            )
        )
    recovery = results.get("recovery")
    if recovery and "after_clean_stop" in recovery:
        events = recovery["replay"]["events"]
        slowest = max(
            recovery["after_clean_stop"]["ready_seconds"], recovery["after_kill"]["ready_seconds"]
        )
        found.append(
            Target(
                f"start-up to SERVING, {events / 1e6:g}M events (checkpoint; worst of clean "
                "stop and kill -9)",
                slowest,
                5,
                "s",
                False,
            )
        )
        found.append(
            Target(
                "journal size per event", recovery["journal_bytes_per_event"], 200, "bytes", False
            )
        )
    if recovery:
        memory = recovery["memory"]
        found.append(
            Target(
                f"RSS per tracked order ({memory['orders']:,} orders)",
                memory["bytes_per_order"],
                1024,
                "bytes",
                False,
            )
        )
    for journal in results.get("retention", {}).get("journals", []):
        slowest = max(
            journal["after_clean_stop"]["ready_seconds"], journal["after_kill"]["ready_seconds"]
        )
        found.append(
            Target(
                f"start-up to SERVING, {journal['events'] / 1e6:g}M events, terminal orders "
                "evicted (worst of clean stop and kill -9)",
                slowest,
                5 if journal["events"] <= 1_000_000 else 10,
                "s",
                False,
            )
        )
    found += _journal_targets(results)
    return found


JOURNAL_GOAL = 0.8
"""PlaceOrder throughput on the PostgreSQL journal, as a share of SQLite's."""
TAKEOVER_MARGIN = 2.0
"""Seconds past the lease a standby may take, from kill -9 to SERVING."""


def _journal_targets(results: dict[str, Any]) -> list[Target]:
    found: list[Target] = []
    journals = results.get("journals", {})
    if journals.get("sqlite") and journals.get("postgresql"):
        found.append(
            Target(
                "PlaceOrder throughput, PostgreSQL journal / SQLite journal (market orders)",
                best_rps(journals["postgresql"]) / best_rps(journals["sqlite"]),
                JOURNAL_GOAL,
                "× SQLite",
                True,
            )
        )
    takeover = results.get("takeover")
    if takeover and takeover.get("seconds"):
        found.append(
            Target(
                f"takeover, kill -9 of the leader to the standby's SERVING "
                f"(lease {takeover['lease']:g} s, worst of {len(takeover['seconds'])})",
                max(takeover["seconds"]),
                takeover["lease"] + TAKEOVER_MARGIN,
                "s",
                False,
            )
        )
    return found


def _journals(journals: dict[str, Any], takeover: dict[str, Any] | None) -> list[str]:
    if not all(journals.get(k) for k in ("echo", "sqlite", "postgresql")):
        return []
    lines = [
        "## PlaceOrder by journal: SQLite and PostgreSQL",
        "",
        "Market orders, closed loop, the echo server and two fresh gateways in the same",
        "run: the default SQLite journal, and `--journal postgresql://...` on a PostgreSQL",
        "server started for the run on the same disk and cores (`fsync` and",
        "`synchronous_commit` on; one fenced `INSERT ... unnest` statement per actor batch).",
        "",
        "| callers | SQLite calls/s | PostgreSQL calls/s | PostgreSQL ÷ SQLite | echo calls/s "
        "| SQLite p50 ms | PostgreSQL p50 ms | PostgreSQL p99 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows = zip(journals["echo"], journals["sqlite"], journals["postgresql"], strict=False)
    for echo, sqlite, pg in rows:
        lines.append(
            f"| {echo['concurrency']} | {rps(sqlite):,.0f} | {rps(pg):,.0f} | "
            f"{_ratio(rps(pg), rps(sqlite))} | {rps(echo):,.0f} | "
            f"{_ms(sqlite['latency_ms']['p50'])} | {_ms(pg['latency_ms']['p50'])} | "
            f"{_ms(pg['latency_ms']['p99'])} |"
        )
    lines += [""]
    if takeover and takeover.get("seconds"):
        seconds = ", ".join(f"{s:.2f}" for s in takeover["seconds"])
        lines += [
            "## Standby takeover",
            "",
            f"A leader and a hot standby on one PostgreSQL journal (lease {takeover['lease']:g} s);",
            "the leader is killed with SIGKILL and the time is taken until the standby's",
            f"health check says SERVING: {seconds} s.",
            "",
        ]
    return lines


# ------------------------------------------------------------------- page


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:,.0f}"


def _pct(share: float) -> str:
    return f"{share * 100:.0f} %"


def _ratio(gateway: float, echo: float) -> str:
    return f"{gateway / echo:.2f}×" if echo else "n/a"


def _latency_row(label: str, g: dict[str, Any], e: dict[str, Any]) -> str:
    gl, el = g["latency_ms"], e["latency_ms"]
    cells = [
        label,
        f"{rps(g):,.0f}",
        f"{rps(e):,.0f}",
        *(f"{_ms(gl[k])} / {_ms(el[k])} ({_ratio(gl[k], el[k])})" for k in ("p50", "p99", "p99_9")),
        ", ".join(f"{k} {v}" for k, v in g["statuses"].items()),
    ]
    return "| " + " | ".join(cells) + " |"


def _throughput(sat: dict[str, Any]) -> list[str]:
    kinds = [kind for kind in EVENTS if sat.get(kind)]
    if not kinds or not sat.get("echo"):
        return []
    names = " and ".join(f"{kind} ({EVENTS[kind]})" for kind in kinds)
    head = ["callers"]
    head += [f"{kind} calls/s" for kind in kinds] + ["echo calls/s"]
    head += [f"{kind} ÷ echo" for kind in kinds]
    head += [f"{kind} p50 ms" for kind in kinds] + ["echo p50 ms"]
    head += [f"{kind} p99 ms" for kind in kinds]
    lines = [
        "## PlaceOrder throughput vs concurrency",
        "",
        "Closed loop: each of *c* callers sends its next call when the last one answers.",
        f"The gateway with {names} orders, each sweep in a fresh process, and the echo",
        "server in the same run. Calls/s counts the calls answered OK.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for i, echo in enumerate(sat["echo"]):
        runs = [sat[kind][i] for kind in kinds]
        cells = [str(echo["concurrency"])]
        cells += [f"{rps(run):,.0f}" for run in runs] + [f"{rps(echo):,.0f}"]
        cells += [_ratio(rps(run), rps(echo)) for run in runs]
        cells += [_ms(run["latency_ms"]["p50"]) for run in [*runs, echo]]
        cells += [_ms(run["latency_ms"]["p99"]) for run in runs]
        lines.append("| " + " | ".join(cells) + " |")
    best = [f"{kind} {best_rps(sat[kind]):,.0f}/s" for kind in kinds]
    lines += [
        "",
        f"Saturation (best point): {', '.join(best)}; echo {best_rps(sat['echo']):,.0f}/s.",
        "",
    ]
    return lines


def _latency(latency: dict[str, Any]) -> list[str]:
    if not latency:
        return []
    lines = [
        "## PlaceOrder latency at 50 % and 80 % of saturation",
        "",
        "Open loop (`ghz --async --rps`): calls start on schedule whether or not earlier",
        "ones answered, so queueing shows up in the latency instead of lowering the rate.",
        "Each rate is a share of that order kind's saturation measured earlier in this",
        "run; the echo server gets the same rates. Cells are gateway / echo (ratio), in",
        "milliseconds, of the calls that succeeded; the last column counts the gateway's",
        "calls by status.",
        "",
        "| orders | share of saturation | offered/s | gateway got/s | echo got/s | p50 | p99 | p99.9 | gateway statuses |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    behind = []
    for kind, entry in latency.items():
        for run in entry["runs"]:
            row = _latency_row(f"{run['rate']:,}", run["gateway"], run["echo"])
            share = f"{_pct(run['fraction'])} of {entry['saturation']:,.0f}/s"
            lines.append(f"| {kind} | {share} {row}")
            if rps(run["gateway"]) < KEPT_UP * run["rate"]:
                behind.append(
                    f"{kind} orders at {_pct(run['fraction'])} "
                    f"({rps(run['gateway']):,.0f} of {run['rate']:,}/s)"
                )
    if behind:
        lines += [
            "",
            f"The gateway fell behind the offered rate in {'; '.join(behind)}: what it",
            "sustained open-loop was below the sweep's best closed-loop point, so those",
            "percentiles include a queue that grew during the run.",
        ]
    lines += ["", "![PlaceOrder latency distribution](bench-latency.png)", ""]
    return lines


def _queries(queries: dict[str, Any]) -> list[str]:
    if not queries.get("gateway") or "query_rate" not in queries:
        return []  # none, or a run from before the rates were shares of saturation
    lines = [
        "## GetOrderStatus and CancelOrder beside a PlaceOrder load",
        "",
        f"Each runs at {queries['query_rate']:,}/s (open loop) while market-order PlaceOrder",
        f"runs beside it at {queries['background_rate']:,}/s, "
        f"{_pct(queries['background_rate'] / queries['saturation'])} of the market-order",
        f"saturation ({queries['saturation']:,.0f}/s), against {queries['resting_orders']:,}",
        "resting limit orders; the PlaceOrder rows are that background load, measured",
        "over its whole run. Gateway / echo (ratio), ms.",
        "",
        "| call | gateway got/s | echo got/s | p50 | p99 | p99.9 | gateway statuses |",
        "|---|---|---|---|---|---|---|",
    ]
    for method, run in queries["gateway"].items():
        lines.append(_latency_row(method, run, queries["echo"][method]))
    lines.append("")
    return lines


def _one_caller(one: dict[str, Any]) -> list[str]:
    if not one.get("echo"):
        return []
    echo = one["echo"]["latency_ms"]
    lines = [
        "## One caller, simulated ack latency 0",
        "",
        "One closed-loop caller against a gateway started with `--sim-ack-latency 0`, so",
        "what is left is the gateway's own path (two group commits with their fsyncs, the",
        "broker call, the answer); the echo server with one caller beside it.",
        "",
        "| server | calls/s | p50 ms | p90 ms | p99 ms | p50 minus echo p50 |",
        "|---|---|---|---|---|---|",
    ]
    for name in (*EVENTS, "echo"):
        if name not in one:
            continue
        run = one[name]
        lat = run["latency_ms"]
        label = f"gateway, {name} orders" if name in EVENTS else "echo"
        extra = f"+{lat['p50'] - echo['p50']:.2f} ms" if name in EVENTS else ""
        lines.append(
            f"| {label} | {rps(run):,.0f} | {_ms(lat['p50'])} | {_ms(lat['p90'])} | "
            f"{_ms(lat['p99'])} | {extra} |"
        )
    lines.append("")
    return lines


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
        "The gateway runs with its defaults: simulated broker (1 ms acks), durable",
        "SQLite journal (WAL, `synchronous=FULL`, one fsync per actor batch), metrics",
        "interceptor on. `PlaceOrder` answers after the broker's ack, so each call waits",
        "for two group commits and the broker round trip. Two workloads: **limit**",
        "orders (a buy at 0.01 that rests: created and accepted, 2 events) and",
        "**market** orders (they fill at once in 3 partial fills: 5 events).",
        "",
        "Latency is measured where the gateway can keep up: open-loop runs at 50 % and",
        "80 % of the saturation throughput the same run measured first. Past saturation",
        "an open-loop queue only grows, and p99 then measures the length of the run.",
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
        *(
            f'- {", ".join(run["scenarios"])}: measured later, by `make bench ARGS="--only '
            f'{" ".join(run["scenarios"])}"` at commit {run["git"]} ({run["date"]}), and '
            "merged into this run's results"
            for run in meta.get("partial_runs", [])
        ),
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
    lines += _throughput(results.get("saturation", {}))
    lines += _latency(results.get("latency", {}))
    lines += _queries(results.get("queries", {}))
    lines += _one_caller(results.get("one_caller", {}))
    lines += _journals(results.get("journals", {}), results.get("takeover"))
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
        ]
        if "after_clean_stop" in recovery:
            lines += _checkpoint_lines(recovery)
        lines += [
            f"Writing them took {recovery['build_seconds']:.1f} s "
            f"({(replay['events'] + memory['events'] - replay['events']) / max(recovery['build_seconds'], 1e-9):,.0f} events/s"
            " through `SqliteJournal.append`, encoding included).",
            "",
        ]
    retention = results.get("retention")
    if retention:
        lines += _retention_lines(retention)
    if OPTIMISATIONS.exists():
        lines += [OPTIMISATIONS.read_text().rstrip(), ""]
    return "\n".join(lines)


def _retention_lines(retention: dict[str, Any]) -> list[str]:
    """Start-up and memory with terminal orders out of memory (``--retention``)."""
    empty = retention["empty"]
    rows = []
    for journal in retention["journals"]:
        for label, run in (
            ("after a clean stop", journal["after_clean_stop"]),
            ("after kill -9", journal["after_kill"]),
        ):
            rows.append(
                f"| {journal['events']:,} | {label} | {run['ready_seconds']:.2f} | "
                f"{run.get('checkpoint_seconds', 0):.2f} | {run.get('tail_events', 0):,} | "
                f"{run.get('tail_seconds', 0):.2f} | {run['rss_kib'] / 1024:.0f} | "
                f"{(run['rss_kib'] - empty['rss_kib']) * 1024 / journal['orders']:,.0f} |"
            )
    return [
        "## Start-up with terminal orders out of memory",
        "",
        "Journals of filled orders (two events each) with "
        f"{retention['open_orders']:,} open orders, written by `bench/journals.py "
        "--checkpoint` together with the checkpoint a gateway running with "
        "`--retention` leaves: the open orders, and for the terminal ones only the "
        "index that finds them in the journal (client key, broker id, place in the "
        "account's creation order). Written directly because running 10M events "
        "through a gateway would take hours. A first start loads that checkpoint "
        "and its clean stop writes the gateway's own; the start measured \"after a "
        'clean stop" loads that one. Then a tail of events is appended, a gateway '
        "started on it is killed with SIGKILL, and the next start loads the "
        "checkpoint and replays the tail. RSS is the gateway's minus an empty "
        "gateway's, per order of the journal (nearly all evicted).",
        "",
        "| events | start | ready in s | checkpoint load s | tail events | tail replay s "
        "| RSS MiB | RSS bytes/order |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]


def _checkpoint_lines(recovery: dict[str, Any]) -> list[str]:
    """Start-up from a checkpoint, split into its load and the tail's replay."""
    rows = []
    for label, run in (
        ("no checkpoint (full replay)", recovery["replay"]),
        ("after a clean stop", recovery["after_clean_stop"]),
        ("after kill -9", recovery["after_kill"]),
    ):
        rows.append(
            f"| {label} | {run['ready_seconds']:.2f} | "
            f"{run.get('checkpoint_seconds', 0):.2f} | {run.get('tail_events', 0):,} | "
            f"{run.get('tail_seconds', 0):.2f} | {run['rss_kib'] / 1024:.0f} |"
        )
    return [
        f"The same journal ({recovery['replay']['events']:,} events, "
        f"{recovery['open_orders']:,} open orders, "
        f"{recovery['journal_bytes_per_event']:.0f} bytes per event on disk) started three "
        "ways: with no checkpoint (a journal from before checkpoints), after a clean stop "
        "(which writes one), and after a kill -9 with "
        f"{recovery['after_kill']['tail_events']:,} events past the checkpoint. The split is "
        "the gateway's own log line.",
        "",
        "| start | ready in s | checkpoint load s | tail events | tail replay s | RSS MiB |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
    ]


def render(out: Path, meta: dict[str, Any], results: dict[str, Any]) -> None:
    """Rewrite only the page, from a run's recorded machine and results."""
    (out / "benchmarks.md").write_text(markdown(meta, results, targets(results)) + "\n")


def write(out: Path, meta: dict[str, Any], results: dict[str, Any]) -> str:
    """Write the page, the JSON and the plots; return a short text summary."""
    out.mkdir(parents=True, exist_ok=True)
    judged = targets(results)
    slim = json.loads(json.dumps(results))  # a copy without the plot samples
    for entry in slim.get("latency", {}).values():
        for run in entry["runs"]:
            run["gateway"].pop("latencies_ms", None)
            run["echo"].pop("latencies_ms", None)
    for side in slim.get("fanout", {}).values():
        side.pop("lag_sample_ms", None)
    document = {"machine": meta, "targets": [t.to_json() for t in judged], "results": slim}
    (out / "benchmarks.json").write_text(json.dumps(document, indent=1) + "\n")
    plots.draw(out, results)
    (out / "benchmarks.md").write_text(markdown(meta, results, judged) + "\n")
    width = max((len(t.name) for t in judged), default=0)
    return "\n".join(
        f"{t.name:<{width}}  {('–' if t.value is None else f'{t.value:,.2f}')} {t.unit}  {t.verdict}"
        for t in judged
    )
