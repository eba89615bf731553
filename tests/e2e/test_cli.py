"""The ``gateway`` command: flags, environment, one-line errors, clean exit."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.cli import FLAGS

pytestmark = pytest.mark.e2e


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(extra)
    return env


def run_gateway(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env or clean_env(),
        check=False,
    )


def test_help_documents_every_flag_and_its_environment_variable() -> None:
    result = run_gateway("--help")
    assert result.returncode == 0
    for flag in FLAGS:
        assert f"--{flag.name}" in result.stdout
        if flag.env is not None:
            assert flag.env in result.stdout
    assert "--no-reflection" in result.stdout
    # Opt-ins said on the command line each time have no variable.
    assert "GATEWAY_SALVAGE_JOURNAL" not in result.stdout
    assert "GATEWAY_ALPACA_ALLOW_LIVE" not in result.stdout


@pytest.mark.parametrize(
    ("args", "env", "fragment"),
    [
        (["--listen", "nonsense"], {}, "--listen"),
        (["--ack-wait", "-1"], {}, "--ack-wait"),
        (["--sim-prices", "AAPL=abc"], {}, "--sim-prices"),
        (["--no-such-flag"], {}, "unrecognized arguments"),
        ([], {"GATEWAY_LISTEN": "not-an-address"}, "--listen"),
        ([], {"GATEWAY_SUBSCRIBER_BUFFER": "zero"}, "--subscriber-buffer"),
        ([], {"GATEWAY_INSECURE": "maybe"}, "--insecure"),
        (["--log-level", "chatty"], {}, "--log-level"),
        (["--otlp-endpoint", "collector:4317"], {}, "--otlp-endpoint"),
        (["--subscriber-buffer", "10", "--inbox-capacity", "5"], {}, "subscriber buffer"),
        (["--tls-cert", "cert.pem"], {}, "--tls-key"),
    ],
)
def test_bad_settings_give_a_one_line_error_and_exit_2(
    args: list[str], env: dict[str, str], fragment: str
) -> None:
    result = run_gateway(*args, env=clean_env(**env))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("gateway: error:")
    assert fragment in last


def test_a_port_in_use_gives_a_one_line_error_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_gateway("--listen", f"127.0.0.1:{port}", "--data-dir", str(tmp_path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr.strip().splitlines()[-1]


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "--data-dir", str(tmp_path)],
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(GATEWAY_LISTEN="127.0.0.1:0"),
    )
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 30
        address = ""
        while time.monotonic() < deadline and not address:
            line = process.stderr.readline()
            if not line:
                break
            if found := re.search(r"listening on (\S+:\d+)", line):
                address = found.group(1)
        assert address, "gateway did not report its address"
        yield process, address
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def test_environment_sets_the_listen_address_and_sigterm_exits_0(
    running: tuple[subprocess.Popen[str], str],
) -> None:
    process, address = running
    assert address.startswith("127.0.0.1:")
    assert not address.endswith(":0")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0
