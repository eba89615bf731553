"""A ``python -m gateway`` subprocess for client tests: start, stop, restart on one data dir.

The same pattern as tests/e2e/test_grpcurl.py's fixture, as a class the client
tests share: they need to restart a gateway on the same port and data dir.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

REPO_ROOT = Path(__file__).resolve().parents[2]
READY = re.compile(r"listening on (\S+:\d+)")
START_DEADLINE = 30.0
STOP_DEADLINE = 10.0


class GatewayProcess:
    """One gateway process at a time on ``data_dir``; ``address`` once started."""

    def __init__(self, data_dir: Path, *extra_args: str) -> None:
        self.data_dir = data_dir
        self.extra_args = extra_args
        self.address = ""
        self.output: list[str] = []
        self._process: subprocess.Popen[str] | None = None

    def log(self) -> str:
        """Everything the gateway processes printed so far."""
        return "".join(self.output)

    def start(self, listen: str = "127.0.0.1:0") -> str:
        """Start the gateway (on ``listen``) and return its address once it is ready."""
        # GATEWAY_* variables configure the gateway: none may leak in from the test's environment.
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        env["PYTHONUNBUFFERED"] = "1"
        command = [sys.executable, "-m", "gateway", "--listen", listen]
        command += ["--data-dir", str(self.data_dir), *self.extra_args]
        self._process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: queue.Queue[str | None] = queue.Queue()
        pump = threading.Thread(target=_pump, args=(self._process.stdout, lines, self.output))
        pump.daemon = True
        pump.start()
        self.address = self._wait_ready(lines)
        return self.address

    def restart(self) -> str:
        """Stop the gateway and start it again on the same address and data dir."""
        self.stop()
        return self.start(self.address)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_DEADLINE)

    def _wait_ready(self, lines: queue.Queue[str | None]) -> str:
        deadline = time.monotonic() + START_DEADLINE
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                raise RuntimeError(f"gateway exited before it was ready:\n{self.log()}")
            if match := READY.search(line):
                return match.group(1)
        self.stop()
        raise RuntimeError(f"gateway not ready within {START_DEADLINE}s:\n{self.log()}")


def _pump(stream: IO[str], lines: queue.Queue[str | None], keep: list[str]) -> None:
    """Copy the gateway's output into ``keep`` and ``lines`` until it closes."""
    for line in stream:
        keep.append(line)
        lines.put(line)
    lines.put(None)
