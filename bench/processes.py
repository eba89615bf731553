"""The processes a benchmark drives: a gateway or the echo server, started and stopped.

Each server runs in its own process, logs to a file in the run's work
directory, and is ready once it logs ``listening on HOST:PORT``. Every wait
is bounded; a server that does not come up ends the run with its log tail.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

_LISTENING = re.compile(r"listening on (\S+):(\d+)")


class ServerFailed(RuntimeError):
    """A server process exited or did not become ready in time."""


def rss_kib(pid: int) -> int:
    """Return the resident set size of process ``pid`` in KiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise ServerFailed(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """Return user+system CPU seconds used so far by process ``pid`` (all threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


class Server:
    """One server process; use as a context manager to be sure it is stopped."""

    def __init__(self, name: str, argv: list[str], log_path: Path, ready_timeout: float) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.ready_timeout = ready_timeout
        self.address = ""
        self.started_at = 0.0
        self.ready_seconds = 0.0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def start(self) -> Server:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        self.started_at = time.perf_counter()
        self._process = subprocess.Popen(  # our own interpreter and module
            self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        log.close()
        deadline = self.started_at + self.ready_timeout
        while time.perf_counter() < deadline:
            if self._process.poll() is not None:
                raise ServerFailed(
                    f"{self.name} exited ({self._process.returncode}): {self.tail()}"
                )
            match = _LISTENING.search(self.log_path.read_text(errors="replace"))
            if match:
                self.ready_seconds = time.perf_counter() - self.started_at
                self.address = f"{match.group(1)}:{match.group(2)}"
                return self
            time.sleep(0.02)
        self.stop()
        raise ServerFailed(f"{self.name} not ready within {self.ready_timeout:.0f}s: {self.tail()}")

    def tail(self, lines: int = 15) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 20.0) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def kill(self) -> None:
        """SIGKILL the process and reap it: a crash, nothing flushed."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def gateway(
    work: Path,
    name: str,
    *,
    data_dir: Path | None = None,
    extra: tuple[str, ...] = (),
    ready_timeout: float = 30.0,
    tree: Path | None = None,
) -> Server:
    """A gateway with defaults (simulated broker, durable journal) on a free port.

    ``tree``: run the ``gateway`` package found there instead (see ``bench.tree``).
    """
    data = data_dir or work / f"{name}-data"
    module = ["bench.tree", str(tree)] if tree else ["gateway"]
    argv = [
        sys.executable,
        "-m",
        *module,
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        str(data),
        # Draining is for load balancers; the benchmark stops at once.
        "--drain-delay",
        "0",
        *extra,
    ]
    return Server(name, argv, work / f"{name}.log", ready_timeout)


def echo(work: Path, name: str, *, extra: tuple[str, ...] = ()) -> Server:
    """The bare grpc.aio echo server (the ceiling) on a free port."""
    argv = [sys.executable, "-m", "bench.echo", "--listen", "127.0.0.1:0", *extra]
    return Server(name, argv, work / f"{name}.log", 30.0)
