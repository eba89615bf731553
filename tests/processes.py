"""Start the gateway and the paper venue as real processes, for end-to-end tests."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, NoReturn

import pytest

START_DEADLINE = 30.0
GATEWAY_READY = re.compile(r"listening on (\S+:\d+)")
VENUE_READY = re.compile(r"venue listening on (http://\S+)")


@dataclass
class Service:
    """A running process, its address, and everything it has printed."""

    process: subprocess.Popen[str]
    address: str
    output: list[str] = field(default_factory=list)

    def log(self) -> str:
        return "".join(self.output)

    def kill(self) -> None:
        """SIGKILL: no clean-up, no flush, exactly like a crash."""
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, then wait (SIGKILL after ``timeout``); return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode


def _pump(stream: IO[str], lines: queue.Queue[str | None], keep: list[str]) -> None:
    """Keep the pipe drained (a full pipe would block the process) and pass lines on."""
    for line in stream:
        keep.append(line)
        lines.put(line)
    lines.put(None)


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without GATEWAY_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(extra)
    return env


def start(args: Sequence[str], ready: re.Pattern[str], env: dict[str, str]) -> Service:
    """Run ``python -m <args>`` and wait (bounded) for the line ``ready`` matches."""
    process = subprocess.Popen(
        [sys.executable, "-m", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    output: list[str] = []
    threading.Thread(target=_pump, args=(process.stdout, lines, output), daemon=True).start()
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        if found := ready.search(line):
            return Service(process, found.group(1), output)
    process.kill()
    process.wait(timeout=10)
    raise AssertionError(f"{' '.join(args)} did not become ready:\n{''.join(output)}")


REPO_ROOT = Path(__file__).resolve().parents[1]


def require_tool(name: str, *candidates: str | Path | None, hint: str) -> str:
    """Return the first executable of ``candidates``, else ``name`` on PATH.

    A missing tool fails the test under CI=true (CI installs every tool a test
    needs) and skips it elsewhere, with ``hint`` saying how to get it.
    """
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    if found := shutil.which(name):
        return found
    return missing(f"{name} not found; {hint}")


def missing(message: str) -> NoReturn:
    """A tool or server a test needs is absent: fail under CI=true (CI installs
    everything the tests need), skip elsewhere, saying ``message``."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def grpcurl_path() -> str:
    """Find grpcurl: $GATEWAY_GRPCURL, then .tools/bin/grpcurl, then PATH."""
    return require_tool(
        "grpcurl",
        os.environ.get("GATEWAY_GRPCURL"),
        REPO_ROOT / ".tools/bin/grpcurl",
        hint="run `make tools`",
    )
