"""The load generators: ``ghz`` for unary calls, ``streamclient`` for streams.

Both are Go programs in their own processes, so the Python server under test
shares the 2-core machine with a client that costs it little. ``ghz`` runs
with one core (``--cpus 1``); its per-request latencies (the JSON report's
``details``) are what every percentile here is computed from.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.stats import Latency, latency_of

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "protos"
PROTO = PROTO_DIR / "execution" / "v1" / "execution.proto"
SERVICE = "execution.v1.ExecutionService"


ORDER_KINDS = ("limit", "market")
"""The two PlaceOrder workloads: a buy limit at 0.01 rests (created, accepted:
2 events); a market order fills at once in 3 partial fills (5 events)."""


def place_request(prefix: str, *, limit_price: str = "") -> dict[str, str]:
    """A PlaceOrder request whose client_order_id is new for every call.

    ``prefix`` keeps ids unique across runs against one gateway; a market
    order (the default) fills at once in 3 partial fills: 5 events per order.
    """
    request = {
        "account": "acct-1",
        "client_order_id": prefix + "-{{.RequestNumber}}",
        "symbol": "AAPL",
        "side": "SIDE_BUY",
        "order_type": "ORDER_TYPE_MARKET",
        "quantity": "10",
        "time_in_force": "TIME_IN_FORCE_DAY",
    }
    if limit_price:
        request |= {"order_type": "ORDER_TYPE_LIMIT", "limit_price": limit_price}
    return request


def order_request(prefix: str, kind: str) -> dict[str, str]:
    """A PlaceOrder request of one of ``ORDER_KINDS``, new for every call."""
    if kind not in ORDER_KINDS:
        raise ValueError(f"unknown order kind {kind!r}")
    return place_request(prefix, limit_price="0.01" if kind == "limit" else "")


@dataclass
class GhzRun:
    """One ghz run: what was asked and what came back."""

    call: str
    concurrency: int
    rate: float | None
    seconds: float
    count: int
    ok: int
    rps: float
    """Completed calls per second (OK or not) over the run's wall time."""
    ok_rps: float
    """Calls answered OK per second: the throughput, when some calls fail."""
    latency: Latency
    statuses: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "call": self.call,
            "concurrency": self.concurrency,
            "rate": self.rate,
            "seconds": round(self.seconds, 3),
            "count": self.count,
            "ok": self.ok,
            "rps": round(self.rps, 1),
            "ok_rps": round(self.ok_rps, 1),
            "latency_ms": self.latency.to_json(),
            "statuses": self.statuses,
            "errors": dict(list(self.errors.items())[:5]),
        }


class Ghz:
    """Runs ``ghz`` against one address with the repo's proto file."""

    def __init__(self, binary: Path, work: Path) -> None:
        self.binary = binary
        self.work = work
        self._runs = 0

    def version(self) -> str:
        out = subprocess.run(
            [str(self.binary), "--version"], capture_output=True, text=True, check=False
        )
        return out.stdout.strip() or out.stderr.strip()

    def command(
        self,
        address: str,
        method: str,
        data: dict[str, str],
        *,
        concurrency: int,
        seconds: float,
        rate: float | None = None,
        count: int | None = None,
    ) -> tuple[list[str], Path]:
        """Return ghz's argv and where its JSON report will be."""
        self._runs += 1
        out = self.work / f"ghz-{self._runs:03d}-{method}.json"
        argv = [
            str(self.binary),
            "--insecure",
            "--proto",
            str(PROTO),
            "--import-paths",
            str(PROTO_DIR),
            "--call",
            f"{SERVICE}.{method}",
            "--data",
            json.dumps(data),
            "--concurrency",
            str(concurrency),
            "--connections",
            str(min(concurrency, 4)),
            "--cpus",
            "1",
            "--timeout",
            "10s",
            "--format",
            "json",
            "--output",
            str(out),
        ]
        if count is not None:
            argv += ["--total", str(count)]
        else:
            # "wait": calls still in flight when the time is up are waited for
            # and counted. ghz's default closes the connections under them,
            # which drops exactly the slowest calls from the percentiles.
            argv += ["--duration", f"{seconds}s", "--duration-stop", "wait"]
            argv += ["--total", str(10_000_000)]
        if rate is not None:
            # Open loop: calls start on schedule whether or not earlier ones
            # answered, so a slow server cannot hide its queueing delay.
            argv += ["--rps", str(int(rate)), "--async"]
        argv.append(address)
        return argv, out

    def run(
        self,
        address: str,
        method: str,
        data: dict[str, str],
        *,
        concurrency: int,
        seconds: float = 5.0,
        rate: float | None = None,
        count: int | None = None,
    ) -> GhzRun:
        argv, out = self.command(
            address, method, data, concurrency=concurrency, seconds=seconds, rate=rate, count=count
        )
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, timeout=seconds + 60)
        return parse(out, method, concurrency, rate, time.perf_counter() - started)

    def start(
        self,
        address: str,
        method: str,
        data: dict[str, str],
        *,
        concurrency: int,
        seconds: float,
        rate: float | None = None,
    ) -> tuple[subprocess.Popen[bytes], Path]:
        """Start a run in the background (e.g. load behind another measurement)."""
        argv, out = self.command(
            address, method, data, concurrency=concurrency, seconds=seconds, rate=rate
        )
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return process, out


def parse(path: Path, method: str, concurrency: int, rate: float | None, wall: float) -> GhzRun:
    """Read ghz's JSON report into a ``GhzRun``."""
    report = json.loads(path.read_text())
    details = report.get("details") or []
    ok_ms = [d["latency"] / 1e6 for d in details if d.get("status") == "OK"]
    seconds = report["total"] / 1e9
    count = int(report["count"])
    return GhzRun(
        call=method,
        concurrency=concurrency,
        rate=rate,
        seconds=seconds,
        count=count,
        ok=len(ok_ms),
        rps=count / seconds if seconds else 0.0,
        ok_rps=len(ok_ms) / seconds if seconds else 0.0,
        latency=latency_of(ok_ms),
        statuses=report.get("statusCodeDistribution") or {},
        errors=report.get("errorDistribution") or {},
        latencies_ms=ok_ms,
    )


class StreamClient:
    """Runs the Go stream client (bench/streamclient) against one address."""

    def __init__(self, binary: Path, work: Path) -> None:
        self.binary = binary
        self.work = work

    def start(
        self, address: str, *, subscribers: int, account: str, limit: float, name: str
    ) -> tuple[subprocess.Popen[bytes], Path]:
        out = self.work / f"streams-{name}.json"
        argv = [
            str(self.binary),
            "-target",
            address,
            "-subscribers",
            str(subscribers),
            "-account",
            account,
            "-duration",
            f"{limit}s",
            "-out",
            str(out),
        ]
        process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        return process, out

    @staticmethod
    def wait_ready(process: subprocess.Popen[bytes], timeout: float) -> bool:
        """Wait until every stream has its first message (the client says "ready")."""
        assert process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                return False
            if line.strip() == b"ready":
                return True
        return False

    @staticmethod
    def finish(process: subprocess.Popen[bytes], out: Path) -> dict[str, Any]:
        """Tell the client to stop (close its stdin) and read its summary."""
        assert process.stdin is not None
        process.stdin.close()
        process.wait(30)
        result: dict[str, Any] = json.loads(out.read_text())
        return result
