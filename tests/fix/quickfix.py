"""QuickFIX's example acceptors (executor, ordermatch) as processes on loopback.

``acceptor_binaries()`` builds them once per content hash (tests/fix/build_acceptors.sh,
cached under .tools/); without QuickFIX's Debian packages the tests fail under
CI=true (CI installs them) and skip elsewhere, saying what to install.
"""

from __future__ import annotations

import functools
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.processes import missing

HERE = Path(__file__).resolve().parent
START_DEADLINE = 20.0


@functools.cache
def _build() -> Path | str:
    """The directory of the built acceptors, or why there is none."""
    try:
        done = subprocess.run(
            ["bash", str(HERE / "build_acceptors.sh")],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "building QuickFIX's acceptors took over 10 minutes"
    if done.returncode != 0:
        return f"cannot build QuickFIX's acceptors: {done.stderr.strip()[-2000:]}"
    return Path(done.stdout.strip().splitlines()[-1])


def acceptor_binaries() -> Path:
    built = _build()
    if isinstance(built, Path):
        return built
    return missing(f"{built} (Debian: apt-get install libquickfix-dev libquickfix-doc g++)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Acceptor:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def quickfix_acceptor(
    name: str, workdir: Path, *, sender: str = "VENUE", target: str = "GATEWAY"
) -> Iterator[Acceptor]:
    """Run ``executor`` or ``ordermatch`` accepting the FIX 4.4 session target->sender."""
    binary = acceptor_binaries() / name
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = workdir / f"{name}.cfg"
    config.write_text(
        "[DEFAULT]\n"
        "ConnectionType=acceptor\n"
        f"SocketAcceptPort={port}\n"
        "SocketAcceptHost=127.0.0.1\n"
        "SocketReuseAddress=Y\n"
        f"FileStorePath={workdir / 'store'}\n"
        "StartTime=00:00:00\n"
        "EndTime=00:00:00\n"
        "UseDataDictionary=N\n"
        "ResetOnLogout=N\n"
        "[SESSION]\n"
        "BeginString=FIX.4.4\n"
        f"SenderCompID={sender}\n"
        f"TargetCompID={target}\n"
    )
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        # ordermatch reads commands from stdin: an open pipe that never speaks.
        process = subprocess.Popen(
            [str(binary), str(config)], stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT
        )
    acceptor = Acceptor(process, port, log)
    try:
        _wait_listening(acceptor)
        yield acceptor
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stdin is not None:
            process.stdin.close()


def _wait_listening(acceptor: Acceptor) -> None:
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        if acceptor.process.poll() is not None:
            raise AssertionError(f"acceptor exited:\n{acceptor.output()}")
        try:
            with socket.create_connection(("127.0.0.1", acceptor.port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"acceptor not listening within {START_DEADLINE}s:\n{acceptor.output()}")
