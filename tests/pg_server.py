"""A throwaway PostgreSQL server for the tests: initdb in a temporary directory.

Started once per test session (``pg_server`` in tests/conftest.py) and by
``make bench`` (bench/postgres.py), on a
free loopback port, with its socket in its own directory; torn down after.
Each test gets a database of its own (``PgServer.new_database``), so tests
never see each other's journals.

PostgreSQL refuses to run as root; as root (CI) the server runs as the
``postgres`` user the Debian package creates. Under ``CI=true`` a missing
server fails the tests that need it (``.ci/run`` installs it); elsewhere
they skip, saying what to install (``server_or_skip``).
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.processes import missing

START_TIMEOUT = 60.0
_names = itertools.count(1)


def find_bindir() -> Path | None:
    """The newest installed PostgreSQL's bin directory (Debian's layout, then PATH)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PgServer:
    """A running server: ``dsn(db)`` names one of its databases."""

    bindir: Path
    root: Path
    port: int
    user: str
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def new_database(self, prefix: str = "t") -> str:
        """Create an empty database; return its DSN."""
        import psycopg

        name = f"{prefix}_{os.getpid()}_{next(_names)}"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    # ------------------------------------------------------------ lifecycle

    @staticmethod
    def _ids() -> tuple[int | None, int | None, list[int] | None]:
        """(user, group, extra groups) that drop root to the postgres user; Nones otherwise."""
        if os.geteuid() != 0:
            return None, None, None
        entry = pwd.getpwnam("postgres")
        return entry.pw_uid, entry.pw_gid, []

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        uid, gid, extra = self._ids()
        if uid is not None and gid is not None:
            os.chown(self.root, uid, gid)
        command = [
            str(self.bindir / "initdb"),
            "-D", str(self.data),
            "-U", self.user,
            "--auth=trust",
            "--no-sync",  # the cluster is thrown away: its creation need not be durable
            "-E", "UTF8",
            "--locale=C",
        ]  # fmt: skip
        subprocess.run(
            command,
            check=True,
            capture_output=True,
            timeout=120,
            cwd=self.root,
            user=uid,
            group=gid,
            extra_groups=extra,
        )

    def start(self) -> None:
        """Start postgres in the foreground of a child process; wait until it answers."""
        uid, gid, extra = self._ids()
        log = (self.root / "server.log").open("ab")
        command = [
            str(self.bindir / "postgres"),
            "-D", str(self.data),
            "-p", str(self.port),
            "-h", "127.0.0.1",
            "-k", str(self.root),
            "-c", "max_connections=200",
            "-c", "shared_buffers=64MB",
            # Durable commits, as in production: the journal's numbers must be honest.
            "-c", "fsync=on",
            "-c", "synchronous_commit=on",
        ]  # fmt: skip
        self._process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.root,
            user=uid,
            group=gid,
            extra_groups=extra,
        )
        log.close()
        self.wait_ready()

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"postgres exited at start: {self.log_tail()}")
            try:
                with psycopg.connect(self.dsn(), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"postgres not ready in {timeout}s: {self.log_tail()}"
                    ) from None
                time.sleep(0.1)

    def stop(self, mode: signal.Signals = signal.SIGINT, timeout: float = 30.0) -> None:
        """Stop the server (SIGINT: PostgreSQL's "fast" shutdown)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(mode)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join((self.root / "server.log").read_text().splitlines()[-lines:])
        return "(no log)"


class PostgresMissing(RuntimeError):
    """No PostgreSQL server programs are installed."""


@contextlib.contextmanager
def running_server() -> Iterator[PgServer]:
    """A fresh server for the duration of the block (``make bench`` uses it too)."""
    bindir = find_bindir()
    if bindir is None:
        raise PostgresMissing("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="gateway-pg-"))
    # The postgres user must reach its directory inside; nothing secret is kept here.
    os.chmod(root, 0o755)  # noqa: S103
    server = PgServer(bindir, root, free_port(), "gateway")
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def server_or_skip() -> Iterator[PgServer]:
    """``running_server`` for a test: skipped if PostgreSQL is missing, failed under CI=true."""
    if find_bindir() is None:
        missing("PostgreSQL is not installed (Debian: apt-get install postgresql; .ci/run does)")
    with running_server() as server:
        yield server
