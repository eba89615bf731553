"""Run every scenario against the gateway and the echo ceiling; write the report.

The order is fixed: throughput sweep, fixed-rate latency, queries under load,
fan-out, slow broker, then recovery and memory on large journals. Each
scenario starts fresh server processes, so no run inherits another's orders.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import processes, report
from bench.loadgen import Ghz, StreamClient, place_request
from bench.processes import Server
from bench.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Bench:
    """One run: its settings, tools, scratch directory and results."""

    def __init__(
        self, settings: Settings, ghz: Path, streamclient: Path, work: Path, tree: Path | None
    ) -> None:
        self.s = settings
        self.work = work
        self.ghz = Ghz(ghz, work)
        self.streams = StreamClient(streamclient, work)
        self.tree = tree
        self.results: dict[str, Any] = {}

    # ------------------------------------------------------------ servers

    def gateway(
        self, name: str, *extra: str, data_dir: Path | None = None, ready_timeout: float = 60.0
    ) -> Server:
        return processes.gateway(
            self.work,
            name,
            data_dir=data_dir,
            ready_timeout=ready_timeout,
            extra=extra,
            tree=self.tree,
        )

    def echo(self, name: str, *extra: str) -> Server:
        return processes.echo(self.work, name, extra=extra)

    def both(
        self,
        name: str,
        run: Callable[[Server, str], Any],
        *gateway_flags: str,
        echo_flags: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """Run ``run`` against a fresh echo server, then a fresh gateway."""
        out: dict[str, Any] = {}
        with self.echo(f"{name}-echo", *echo_flags) as echo:
            out["echo"] = run(echo, f"{name}e")
        with self.gateway(f"{name}-gateway", *gateway_flags) as gateway:
            out["gateway"] = run(gateway, f"{name}g")
        return out

    def warm_up(self, server: Server, tag: str) -> None:
        self.ghz.run(
            server.address,
            "PlaceOrder",
            place_request(f"{tag}-warm"),
            concurrency=8,
            seconds=self.s.warmup_seconds,
        )

    # ---------------------------------------------------------- scenarios

    def saturation(self) -> None:
        log("PlaceOrder throughput vs concurrency (closed loop)")

        def sweep(server: Server, tag: str) -> list[dict[str, Any]]:
            self.warm_up(server, tag)
            runs = []
            for c in self.s.concurrency:
                run = self.ghz.run(
                    server.address,
                    "PlaceOrder",
                    place_request(f"{tag}-c{c}"),
                    concurrency=c,
                    seconds=self.s.sweep_seconds,
                )
                log(f"  {server.name} c={c}: {run.rps:,.0f}/s p50 {run.latency.p50:.2f} ms")
                runs.append(run.to_json())
            return runs

        self.results["saturation"] = self.both("sat", sweep)

    def fixed_rates(self) -> None:
        log("PlaceOrder latency at fixed rates (open loop)")

        def rates(server: Server, tag: str) -> dict[str, Any]:
            self.warm_up(server, tag)
            out = {}
            for rate in self.s.rates:
                run = self.ghz.run(
                    server.address,
                    "PlaceOrder",
                    place_request(f"{tag}-r{rate}"),
                    concurrency=self.s.rate_concurrency,
                    rate=rate,
                    seconds=self.s.rate_seconds,
                )
                log(
                    f"  {server.name} {rate}/s: got {run.rps:,.0f}/s, p50 {run.latency.p50:.2f} "
                    f"p99 {run.latency.p99:.2f} p99.9 {run.latency.p99_9:.2f} ms"
                )
                out[str(rate)] = run.to_json() | {"latencies_ms": _sample(run.latencies_ms)}
            return out

        self.results["fixed_rate"] = self.both("rate", rates)

    def queries(self) -> None:
        log(f"GetOrderStatus and CancelOrder under {self.s.background_rate} PlaceOrder/s")

        def under_load(server: Server, tag: str) -> dict[str, Any]:
            self.warm_up(server, tag)
            rest = f"{tag}-rest"
            self.ghz.run(
                server.address,
                "PlaceOrder",
                place_request(rest, limit_price="0.01"),
                concurrency=32,
                count=self.s.resting_orders,
            )
            out = {}
            for method, key in (
                ("GetOrderStatus", "{{mod .RequestNumber %d}}"),
                ("CancelOrder", "{{.RequestNumber}}"),
            ):
                seconds = self.s.rate_seconds
                background, _ = self.ghz.start(
                    server.address,
                    "PlaceOrder",
                    place_request(f"{tag}-bg-{method}"),
                    concurrency=self.s.rate_concurrency,
                    rate=self.s.background_rate,
                    seconds=seconds + 2,
                )
                time.sleep(1)
                data = {
                    "account": "acct-1",
                    "client_order_id": f"{rest}-" + key.replace("%d", str(self.s.resting_orders)),
                }
                run = self.ghz.run(
                    server.address,
                    method,
                    data,
                    concurrency=16,
                    rate=self.s.query_rate,
                    seconds=seconds,
                )
                background.wait(seconds + 30)
                log(
                    f"  {server.name} {method}: p50 {run.latency.p50:.2f} p99 "
                    f"{run.latency.p99:.2f} p99.9 {run.latency.p99_9:.2f} ms {run.statuses}"
                )
                out[method] = run.to_json()
            return out

        self.results["queries"] = self.both("query", under_load)

    def fanout(self) -> None:
        s = self.s
        log(f"fan-out: {s.subscribers} subscribers, {s.fanout_updates_per_second} updates/s")
        orders_per_second = s.fanout_updates_per_second / 5  # 5 events per market order

        def fan(server: Server, tag: str) -> dict[str, Any]:
            is_echo = server.name.endswith("echo")
            client, out = self.streams.start(
                server.address,
                subscribers=s.subscribers,
                account="acct-fan",
                limit=s.fanout_seconds + 60,
                name=server.name,
            )
            if not self.streams.wait_ready(client, 30):
                client.kill()
                raise processes.ServerFailed(f"{server.name}: stream client never got ready")
            placed = None
            if is_echo:
                time.sleep(s.fanout_seconds)
            else:
                request = place_request(f"{tag}-fan") | {"account": "acct-fan"}
                placed = self.ghz.run(
                    server.address,
                    "PlaceOrder",
                    request,
                    concurrency=16,
                    rate=orders_per_second,
                    seconds=s.fanout_seconds,
                )
            time.sleep(2.0)  # let the last updates arrive
            summary = self.streams.finish(client, out)
            summary["placed"] = placed.ok if placed else None
            log(
                f"  {server.name}: {summary['delivered_per_second']:,.0f} delivered/s, lag p50 "
                f"{summary['lag_ms']['p50']:.2f} p99 {summary['lag_ms']['p99']:.2f} ms, "
                f"gaps {summary['gaps']}, errors {len(summary['errors'])}"
            )
            return summary

        self.results["fanout"] = self.both(
            "fan", fan, echo_flags=("--stream-rate", str(s.fanout_updates_per_second))
        )

    def slow_broker(self) -> None:
        s = self.s
        log(f"slow broker: {s.slow_ack_latency * 1000:.0f} ms acks, {s.slow_concurrency} callers")
        out: dict[str, Any] = {}
        for name, latency in (("fast", None), ("slow", s.slow_ack_latency)):
            flags = () if latency is None else ("--sim-ack-latency", str(latency))
            with self.gateway(f"broker-{name}", *flags) as gateway:
                self.warm_up(gateway, name)
                run = self.ghz.run(
                    gateway.address,
                    "PlaceOrder",
                    place_request(f"{name}-sat"),
                    concurrency=s.slow_concurrency,
                    seconds=s.sweep_seconds,
                )
                log(f"  {name} broker: {run.rps:,.0f}/s p50 {run.latency.p50:.2f} ms")
                out[name] = run.to_json()
        out["ack_latency_s"] = s.slow_ack_latency
        self.results["slow_broker"] = out

    def journals(self) -> None:
        s = self.s
        data = self.work / "journal-data"
        log("start-up of an empty gateway (the baseline for replay time and memory)")
        empty = self._start_and_measure("empty", self.work / "empty-data")
        log(f"  ready in {empty['ready_seconds']:.2f}s, RSS {empty['rss_kib'] / 1024:.0f} MiB")
        replay_orders = s.replay_events // 2
        built = self._build(data, replay_orders, 0)
        log(f"  built {built['records']:,} events in {built['seconds']:.1f}s")
        replay = self._start_and_measure("replay", data, timeout=600)
        replay["events"] = built["records"]
        replay["replay_seconds"] = replay["ready_seconds"] - empty["ready_seconds"]
        log(
            f"  {built['records']:,} events: ready in {replay['ready_seconds']:.2f}s "
            f"(replay {replay['replay_seconds']:.2f}s)"
        )
        more = s.memory_orders - replay_orders
        built_more = self._build(data, more, replay_orders) if more > 0 else {"seconds": 0.0}
        memory = self._start_and_measure("memory", data, timeout=900)
        memory["orders"] = s.memory_orders
        memory["events"] = 2 * s.memory_orders
        memory["bytes_per_order"] = (memory["rss_kib"] - empty["rss_kib"]) * 1024 / s.memory_orders
        log(
            f"  {s.memory_orders:,} orders: RSS {memory['rss_kib'] / 1024:.0f} MiB, "
            f"{memory['bytes_per_order']:.0f} B/order (start {memory['ready_seconds']:.1f}s)"
        )
        self.results["recovery"] = {
            "empty": empty,
            "replay": replay,
            "memory": memory,
            "build_seconds": built["seconds"] + built_more["seconds"],
        }
        shutil.rmtree(data, ignore_errors=True)

    def _build(self, data: Path, orders: int, first: int) -> dict[str, Any]:
        data.mkdir(parents=True, exist_ok=True)
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.journals",
                "--path",
                str(data / "journal.db"),
                "--orders",
                str(orders),
                "--first",
                str(first),
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=900,
        )
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return result

    def _start_and_measure(self, name: str, data: Path, timeout: float = 60) -> dict[str, Any]:
        with self.gateway(name, data_dir=data, ready_timeout=timeout) as gateway:
            ready = gateway.ready_seconds
            time.sleep(1.0)  # let start-up work (reconciliation) settle
            return {"ready_seconds": ready, "rss_kib": processes.rss_kib(gateway.pid)}


def _sample(values: list[float], keep: int = 20_000) -> list[float]:
    """Every n-th value, for plots (percentiles use all of them)."""
    step = max(1, len(values) // keep)
    return [round(v, 4) for v in sorted(values)[::step]]


def _tool(path: str | None, name: str) -> Path:
    found = Path(path) if path else ROOT / ".tools" / "bin" / name
    if not found.exists():
        found = Path(shutil.which(name) or found)
    if not found.exists():
        raise SystemExit(f"bench: {name} not found (make bench installs it into .tools/bin)")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--only", nargs="*", help="scenarios to run (default: all)")
    parser.add_argument("--ghz", help="ghz binary (default .tools/bin/ghz)")
    parser.add_argument(
        "--stream-client", help="stream client (default .tools/bin/bench-streamclient)"
    )
    parser.add_argument(
        "--gateway-tree",
        type=Path,
        help="run the gateway package in this directory (e.g. an older commit's, "
        "from `git archive REV gateway | tar -x -C DIR`) for a before/after comparison",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where to write the report")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument(
        "--render",
        action="store_true",
        help="only rewrite benchmarks.md from benchmarks.json (e.g. after editing "
        "bench/optimisations.md); measures nothing",
    )
    args = parser.parse_args(argv)
    if args.render:
        document = json.loads((args.out / "benchmarks.json").read_text())
        report.render(args.out, document["machine"], document["results"])
        return 0
    settings = Settings.quick() if args.quick else Settings()
    ghz = _tool(args.ghz, "ghz")
    client = _tool(args.stream_client, "bench-streamclient")
    work = Path(
        tempfile.mkdtemp(prefix="bench-", dir=ROOT / ".bench" if _mk(ROOT / ".bench") else None)
    )
    bench = Bench(settings, ghz, client, work, args.gateway_tree)
    scenarios = {
        "saturation": bench.saturation,
        "fixed_rate": bench.fixed_rates,
        "queries": bench.queries,
        "fanout": bench.fanout,
        "slow_broker": bench.slow_broker,
        "recovery": bench.journals,
    }
    chosen = args.only or list(scenarios)
    started = time.perf_counter()
    log(f"scratch directory {work}")
    try:
        for name in chosen:
            scenarios[name]()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - started
    meta = report.describe_machine(
        ghz, bench.ghz.version(), settings, args.gateway_tree, elapsed, quick=args.quick
    )
    summary = report.write(args.out, meta, bench.results)
    print(summary)
    return 0


def _mk(path: Path) -> bool:
    # On the repo's disk, not /tmp: the journal's fsyncs must hit a real disk.
    path.mkdir(exist_ok=True)
    return True
