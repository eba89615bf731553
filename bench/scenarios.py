"""The scenarios of one run, each against the gateway and the echo ceiling.

The order is fixed: the saturation sweep comes first, because the open-loop
scenarios after it (latency at 50 % and 80 % of saturation, queries beside a
background load) take their rates from it. A scenario run on its own
(``--only latency``) measures the saturation it needs first, in the same run.
Each scenario starts fresh server processes, so no run inherits another's
orders.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import processes
from bench.loadgen import ORDER_KINDS, Ghz, GhzRun, StreamClient, order_request, parse
from bench.processes import Server
from bench.settings import Settings

SCENARIOS = (
    "saturation",
    "latency",
    "queries",
    "one_caller",
    "fanout",
    "slow_broker",
    "recovery",
    "journals",
    "takeover",
    "retention",
)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _brief(run: GhzRun) -> str:
    lat = run.latency
    return (
        f"got {run.ok_rps:,.0f}/s OK, p50 {lat.p50:.2f} p99 {lat.p99:.2f} "
        f"p99.9 {lat.p99_9:.2f} ms {run.statuses}"
    )


def sample(values: list[float], keep: int = 20_000) -> list[float]:
    """Every n-th value, for plots (percentiles use all of them)."""
    step = max(1, len(values) // keep)
    return [round(v, 4) for v in sorted(values)[::step]]


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

    def scenarios(self) -> dict[str, Callable[[], None]]:
        """Every scenario (a method of the same name) in the order a full run takes them."""
        return {name: getattr(self, name) for name in SCENARIOS}

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

    def warm_up(self, server: Server, tag: str, kind: str = "market") -> None:
        self.ghz.run(
            server.address,
            "PlaceOrder",
            order_request(f"{tag}-warm", kind),
            concurrency=8,
            seconds=self.s.warmup_seconds,
        )

    # ------------------------------------------------- saturation, latency

    def saturation(self) -> None:
        kinds = " and ".join(ORDER_KINDS)
        log(f"PlaceOrder throughput vs concurrency (closed loop): {kinds} orders, and echo")
        out: dict[str, Any] = {}
        with self.echo("sat-echo") as echo:
            out["echo"] = self._sweep(echo, "sate", "market")
        for kind in ORDER_KINDS:
            with self.gateway(f"sat-{kind}") as gateway:
                out[kind] = self._sweep(gateway, f"sat{kind[0]}", kind)
        self.results["saturation"] = out

    def _sweep(self, server: Server, tag: str, kind: str) -> list[dict[str, Any]]:
        self.warm_up(server, tag, kind)
        runs = []
        for c in self.s.concurrency:
            run = self.ghz.run(
                server.address,
                "PlaceOrder",
                order_request(f"{tag}-c{c}", kind),
                concurrency=c,
                seconds=self.s.sweep_seconds,
            )
            log(f"  {server.name} c={c}: {run.ok_rps:,.0f}/s p50 {run.latency.p50:.2f} ms")
            runs.append(run.to_json())
        return runs

    def saturation_of(self, kind: str) -> float:
        """The best closed-loop PlaceOrder/s of ``kind`` orders measured in this run.

        From the sweep if it ran; otherwise measured now at the sweep's two
        highest concurrencies, where the gateway saturates.
        """
        runs = self.results.get("saturation", {}).get(kind)
        if runs:
            return float(max(run["ok_rps"] for run in runs))
        probes = self.results.setdefault("saturation_probe", {})
        if kind not in probes:
            log(f"  no sweep in this run: measuring {kind}-order saturation first")
            with self.gateway(f"probe-{kind}") as gateway:
                self.warm_up(gateway, f"probe{kind[0]}", kind)
                probes[kind] = max(
                    self.ghz.run(
                        gateway.address,
                        "PlaceOrder",
                        order_request(f"probe{kind[0]}-c{c}", kind),
                        concurrency=c,
                        seconds=self.s.sweep_seconds,
                    ).ok_rps
                    for c in self.s.concurrency[-2:]
                )
            log(f"  {kind}-order saturation {probes[kind]:,.0f}/s")
        return float(probes[kind])

    def latency(self) -> None:
        fractions = ", ".join(f"{f * 100:.0f} %" for f in self.s.load_fractions)
        log(f"PlaceOrder latency at {fractions} of saturation (open loop)")
        out: dict[str, Any] = {}
        for kind in ORDER_KINDS:
            saturation = self.saturation_of(kind)
            rates = [max(1, round(f * saturation)) for f in self.s.load_fractions]
            sides: dict[str, list[dict[str, Any]]] = {}
            with self.echo(f"lat-{kind}-echo") as echo:
                sides["echo"] = self._open_loop(echo, f"lat{kind[0]}e", kind, rates)
            with self.gateway(f"lat-{kind}") as gateway:
                sides["gateway"] = self._open_loop(gateway, f"lat{kind[0]}g", kind, rates)
            out[kind] = {
                "saturation": saturation,
                "runs": [
                    {"fraction": f, "rate": rate, "gateway": g, "echo": e}
                    for f, rate, g, e in zip(
                        self.s.load_fractions, rates, sides["gateway"], sides["echo"], strict=True
                    )
                ],
            }
        self.results["latency"] = out

    def _open_loop(
        self, server: Server, tag: str, kind: str, rates: list[int]
    ) -> list[dict[str, Any]]:
        self.warm_up(server, tag, kind)
        runs = []
        for rate in rates:
            run = self.ghz.run(
                server.address,
                "PlaceOrder",
                order_request(f"{tag}-r{rate}", kind),
                concurrency=self.s.rate_concurrency,
                rate=rate,
                seconds=self.s.rate_seconds,
            )
            log(f"  {server.name} {kind} at {rate:,}/s: {_brief(run)}")
            runs.append(run.to_json() | {"latencies_ms": sample(run.latencies_ms)})
        return runs

    # ------------------------------------------------------------ queries

    def queries(self) -> None:
        saturation = self.saturation_of("market")
        background = max(1, round(self.s.background_fraction * saturation))
        rate = max(1, round(self.s.query_fraction * saturation))
        # Every cancel needs an order of its own to cancel.
        resting = max(self.s.resting_orders, math.ceil(1.2 * rate * self.s.rate_seconds))
        log(
            f"GetOrderStatus and CancelOrder at {rate}/s beside {background} PlaceOrder/s "
            f"(market, {self.s.background_fraction * 100:.0f} % of saturation), "
            f"{resting:,} resting orders"
        )

        def under_load(server: Server, tag: str) -> dict[str, Any]:
            self.warm_up(server, tag)
            rest = f"{tag}-rest"
            self.ghz.run(
                server.address,
                "PlaceOrder",
                order_request(rest, "limit"),
                concurrency=32,
                count=resting,
            )
            out = {}
            for method, key in (
                ("GetOrderStatus", "{{mod .RequestNumber %d}}"),
                ("CancelOrder", "{{.RequestNumber}}"),
            ):
                seconds = self.s.rate_seconds
                loader, loader_out = self.ghz.start(
                    server.address,
                    "PlaceOrder",
                    order_request(f"{tag}-bg-{method}", "market"),
                    concurrency=self.s.rate_concurrency,
                    rate=background,
                    seconds=seconds + 2,
                )
                time.sleep(1)
                data = {
                    "account": "acct-1",
                    "client_order_id": f"{rest}-" + key.replace("%d", str(resting)),
                }
                run = self.ghz.run(
                    server.address, method, data, concurrency=16, rate=rate, seconds=seconds
                )
                loader.wait(seconds + 30)
                beside = parse(loader_out, "PlaceOrder", self.s.rate_concurrency, background, 0)
                log(f"  {server.name} {method}: {_brief(run)}")
                log(f"  {server.name} PlaceOrder beside it: {_brief(beside)}")
                out[method] = run.to_json()
                out[f"PlaceOrder beside {method}"] = beside.to_json()
            return out

        self.results["queries"] = self.both("query", under_load) | {
            "saturation": saturation,
            "background_rate": background,
            "query_rate": rate,
            "resting_orders": resting,
        }

    # ---------------------------------------------------------- one caller

    def one_caller(self) -> None:
        log("one caller, simulated ack latency 0: limit and market orders, and echo")
        seconds = self.s.one_caller_seconds
        out: dict[str, Any] = {}
        with self.echo("one-echo") as echo:
            self.warm_up(echo, "onee")
            run = self.ghz.run(
                echo.address,
                "PlaceOrder",
                order_request("onee", "market"),
                concurrency=1,
                seconds=seconds,
            )
            log(f"  echo: {_brief(run)}")
            out["echo"] = run.to_json()
        with self.gateway("one-gateway", "--sim-ack-latency", "0") as gateway:
            for kind in ORDER_KINDS:
                self.warm_up(gateway, f"one{kind[0]}", kind)
                run = self.ghz.run(
                    gateway.address,
                    "PlaceOrder",
                    order_request(f"one{kind[0]}", kind),
                    concurrency=1,
                    seconds=seconds,
                )
                log(f"  gateway {kind}: {_brief(run)}")
                out[kind] = run.to_json()
        self.results["one_caller"] = out

    # ------------------------------------------------ fan-out, slow broker

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
                request = order_request(f"{tag}-fan", "market") | {"account": "acct-fan"}
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
                    order_request(f"{name}-sat", "market"),
                    concurrency=s.slow_concurrency,
                    seconds=s.sweep_seconds,
                )
                log(f"  {name} broker: {run.rps:,.0f}/s p50 {run.latency.p50:.2f} ms")
                out[name] = run.to_json()
        out["ack_latency_s"] = s.slow_ack_latency
        self.results["slow_broker"] = out

    # -------------------------------------------------- recovery, memory

    def recovery(self) -> None:
        """Start-up on a large journal: full replay, then checkpoint + tail (clean stop, kill -9).

        One journal of ``replay_events`` events with ``open_orders`` open
        orders. The first start has no checkpoint (a journal from before
        checkpoints: it replays everything, the "before" figure) and its
        clean stop writes one; the second loads it and replays nothing;
        then a tail of ``checkpoint_tail`` events is appended (the most a
        kill -9 just before a checkpoint leaves), a gateway started on it is
        killed with SIGKILL, and the next start loads the checkpoint and
        replays that tail. Each start's split comes from its own log line.
        """
        s = self.s
        data = self.work / "journal-data"
        log("start-up of an empty gateway (the baseline for replay time and memory)")
        empty = self._start_and_measure("empty", self.work / "empty-data")
        log(f"  ready in {empty['ready_seconds']:.2f}s, RSS {empty['rss_kib'] / 1024:.0f} MiB")
        replay_orders = s.replay_events // 2
        built = self._build(data, replay_orders, 0, s.open_orders)
        journal_bytes = _journal_bytes(data)
        log(
            f"  built {built['records']:,} events ({s.open_orders:,} open orders) in "
            f"{built['seconds']:.1f}s: {journal_bytes / built['records']:.0f} bytes/event"
        )
        replay = self._start_and_measure("replay", data, timeout=900)
        replay["events"] = built["records"]
        replay["replay_seconds"] = replay["ready_seconds"] - empty["ready_seconds"]
        log(
            f"  no checkpoint: ready in {replay['ready_seconds']:.2f}s "
            f"(replay {replay['replay_seconds']:.2f}s)"
        )
        clean = self._start_and_measure("after-clean-stop", data, timeout=900)
        log(f"  after a clean stop: {_split(clean)}")
        tail = self._build(data, s.checkpoint_tail // 2, replay_orders)
        with self.gateway("before-kill", data_dir=data, ready_timeout=900) as doomed:
            doomed.kill()  # no clean stop: no final checkpoint, WAL left as it is
        killed = self._start_and_measure("after-kill", data, timeout=900)
        log(f"  after kill -9 with a {tail['records']:,}-event tail: {_split(killed)}")
        more = s.memory_orders - replay_orders - s.checkpoint_tail // 2
        first_more = replay_orders + s.checkpoint_tail // 2
        built_more = self._build(data, more, first_more) if more > 0 else {"seconds": 0.0}
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
            "after_clean_stop": clean,
            "after_kill": killed | {"tail_events": tail["records"]},
            "open_orders": s.open_orders,
            "journal_bytes_per_event": journal_bytes / built["records"],
            "memory": memory,
            "build_seconds": built["seconds"] + tail["seconds"] + built_more["seconds"],
        }
        shutil.rmtree(data, ignore_errors=True)

    # ------------------------------------------------------------ retention

    def retention(self) -> None:
        """Start-up with terminal orders out of memory (``--retention``): 1M and 10M events.

        Each journal (``replay_events`` / ``large_events`` events, ``open_orders``
        open) is written with the checkpoint a gateway running with retention
        leaves: the open orders plus the index of the evicted terminal ones
        (``bench.journals --checkpoint``: 10M events through a gateway would
        take hours). A first start loads it and its clean stop writes the
        gateway's own checkpoint; the second start, measured, loads that
        ("after a clean stop"). Then ``checkpoint_tail`` events are appended,
        a gateway started on them is killed with SIGKILL, and the next start
        loads the checkpoint and replays the tail ("after kill -9").
        """
        s = self.s
        empty = self._start_and_measure("retention-empty", self.work / "retention-empty-data")
        runs: dict[str, Any] = {"empty": empty, "open_orders": s.open_orders, "journals": []}
        for events in (s.replay_events, s.large_events):
            data = self.work / f"retention-{events}"
            orders = events // 2
            log(f"retention: writing {events:,} events with an evicted-orders checkpoint")
            built = self._build(data, orders, 0, s.open_orders, checkpoint=True)
            first = self._start_and_measure(f"retention-{events}-first", data, timeout=900)
            log(f"  first start (the written checkpoint): {_split(first)}")
            clean = self._start_and_measure(f"retention-{events}-clean", data, timeout=900)
            log(f"  after a clean stop: {_split(clean)}")
            tail = self._build(data, s.checkpoint_tail // 2, orders)
            with self.gateway(
                f"retention-{events}-doomed", data_dir=data, ready_timeout=900
            ) as doomed:
                doomed.kill()
            killed = self._start_and_measure(f"retention-{events}-kill", data, timeout=900)
            log(f"  after kill -9 with a {tail['records']:,}-event tail: {_split(killed)}")
            per_order = (clean["rss_kib"] - empty["rss_kib"]) * 1024 / orders
            log(f"  RSS {clean['rss_kib'] / 1024:.0f} MiB: {per_order:.0f} bytes per order")
            runs["journals"].append(
                {
                    "events": built["records"],
                    "orders": orders,
                    "build_seconds": built["seconds"],
                    "checkpoint_bytes": (data / "journal.db.checkpoint").stat().st_size,
                    "after_clean_stop": clean,
                    "after_kill": killed | {"tail_events": tail["records"]},
                    "rss_bytes_per_order": per_order,
                }
            )
            shutil.rmtree(data, ignore_errors=True)
        self.results["retention"] = runs

    def _build(
        self, data: Path, orders: int, first: int, open_orders: int = 0, *, checkpoint: bool = False
    ) -> dict[str, Any]:
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
                "--open",
                str(open_orders),
                *(["--checkpoint"] if checkpoint else []),
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=900,
        )
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return result

    def _start_and_measure(self, name: str, data: Path, timeout: float = 60) -> dict[str, Any]:
        # The recovery scenario measures a table that keeps every order (its
        # journals are an hour old): retention is measured on its own.
        keep = () if name.startswith("retention") else ("--retention", KEEP_ALL)
        with self.gateway(name, *keep, data_dir=data, ready_timeout=timeout) as gateway:
            ready = gateway.ready_seconds
            time.sleep(1.0)  # let start-up work (reconciliation) settle
            measured = {"ready_seconds": ready, "rss_kib": processes.rss_kib(gateway.pid)}
            return measured | _recovered(gateway.log_path.read_text(errors="replace"))

    # --------------------------------------------------------- PostgreSQL

    def journals(self) -> None:
        """PlaceOrder throughput with the PostgreSQL journal beside SQLite and echo."""
        from bench import postgres

        postgres.journals(self)

    def takeover(self) -> None:
        """Time from kill -9 of the leader to the standby's SERVING."""
        from bench import postgres

        postgres.takeover(self)


# --retention long enough that nothing leaves memory during a benchmark (ten years).
KEEP_ALL = str(10 * 365 * 86_400)

_RECOVERED = re.compile(
    r"recovered (\d+) orders: checkpoint at sequence (\d+) in ([\d.]+)s, "
    r"then (\d+) journal events in ([\d.]+)s"
)


def _recovered(log_text: str) -> dict[str, Any]:
    """The gateway's own split of its recovery (checkpoint load, tail replay), if logged."""
    match = _RECOVERED.search(log_text)
    if match is None:
        return {}
    return {
        "orders": int(match[1]),
        "checkpoint_sequence": int(match[2]),
        "checkpoint_seconds": float(match[3]),
        "tail_events": int(match[4]),
        "tail_seconds": float(match[5]),
    }


def _split(run: dict[str, Any]) -> str:
    checkpoint = run.get("checkpoint_seconds", 0.0)
    events, seconds = run.get("tail_events", 0), run.get("tail_seconds", 0.0)
    return (
        f"ready in {run['ready_seconds']:.2f}s (checkpoint {checkpoint:.2f}s, "
        f"tail of {events:,} events {seconds:.2f}s)"
    )


def _journal_bytes(data: Path) -> int:
    """The journal's size on disk: the file and its WAL (not the checkpoint)."""
    return sum(p.stat().st_size for p in data.glob("journal.db*") if "checkpoint" not in p.name)
