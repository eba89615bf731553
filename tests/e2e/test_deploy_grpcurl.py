"""The README's grpcurl commands, run as written against a live gateway process.

Each ``$ grpcurl ...`` command of the README is taken from the file (line
continuations joined), pointed at the test's gateway instead of
127.0.0.1:50051, and run without a shell. A second gateway serves TLS with
tokens, and grpcurl reaches it the way docs/operations.md shows.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ops_support import (
    REPO_ROOT,
    TOKENS,
    GatewayProcess,
    clean_env,
    make_ca,
    make_cert,
    token_table,
)
from tests.processes import grpcurl_path

pytestmark = pytest.mark.e2e

README_ADDRESS = "127.0.0.1:50051"
CALL_TIMEOUT = 30


def readme_commands() -> list[list[str]]:
    """Every ``$ grpcurl`` command in README.md, as argv lists.

    A command runs on over lines ending in a backslash, and over lines inside
    a quoted JSON body, as a shell would read it.
    """
    text = (REPO_ROOT / "README.md").read_text()
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        pending: str | None = None
        for line in block.splitlines():
            if pending is None:
                if not line.startswith("$ grpcurl "):
                    continue
                pending = line[2:]
            else:
                pending += "\n" + line
            if pending.endswith("\\"):
                pending = pending[:-1]
                continue
            try:
                commands.append(shlex.split(pending))
            except ValueError:  # an open quote: the command goes on
                continue
            pending = None
        assert pending is None, f"unterminated command in README: {pending}"
    return commands


@pytest.fixture(scope="module")
def grpcurl() -> str:
    return grpcurl_path()


@pytest.fixture(scope="module")
def plaintext_gateway(
    grpcurl: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    data = tmp_path_factory.mktemp("data")
    gateway = GatewayProcess.start(["--listen", "127.0.0.1:0", "--data-dir", str(data)])
    try:
        yield gateway
    finally:
        gateway.terminate(within=20)


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=CALL_TIMEOUT, check=False)


def test_the_readme_has_the_commands_this_test_expects() -> None:
    commands = readme_commands()
    assert len(commands) >= 6
    assert all(README_ADDRESS in command for command in commands)


def test_every_readme_grpcurl_command_works_as_written(
    grpcurl: str, plaintext_gateway: GatewayProcess
) -> None:
    for command in readme_commands():
        argv = [grpcurl if a == "grpcurl" else a for a in command]
        argv = [plaintext_gateway.address if a == README_ADDRESS else a for a in argv]
        method = argv[-1]
        if method.endswith("/SubscribeUpdates"):
            # A stream never ends by itself: cut it, then judge what it printed.
            result = run([argv[0], "-max-time", "3", *argv[1:]])
            messages = [json.loads(m) for m in re.findall(r"^\{.*?^\}", result.stdout, re.M | re.S)]
            assert any("heartbeat" in m for m in messages), result.stdout + result.stderr
        elif "-format-error" in argv:
            result = run(argv)
            assert result.returncode != 0
            assert json.loads(result.stderr)["code"] == 3, result.stderr  # INVALID_ARGUMENT
        else:
            result = run(argv)
            assert result.returncode == 0, f"{shlex.join(command)}\n{result.stderr}"
            if argv[-1] == "list":
                assert "execution.v1.ExecutionService" in result.stdout


def test_grpcurl_over_tls_with_a_token(grpcurl: str, tmp_path: Path) -> None:
    ca = make_ca()
    cert, key = make_cert(ca, "gateway", server=True).write(tmp_path, "server")
    ca_file = tmp_path / "ca.crt"
    ca_file.write_bytes(ca.cert)
    tokens = tmp_path / "tokens"
    tokens.write_text(token_table())
    gateway = GatewayProcess.start(
        [
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            str(tmp_path / "data"),
            "--tls-cert",
            str(cert),
            "--tls-key",
            str(key),
            "--auth-tokens-file",
            str(tokens),
        ],
        env=clean_env(),
    )
    try:
        secure = [grpcurl, "-cacert", str(ca_file)]
        health = run([*secure, gateway.address, "grpc.health.v1.Health/Check"])
        assert health.returncode == 0
        assert json.loads(health.stdout) == {"status": "SERVING"}
        request = json.dumps({"account": "acct-a"})
        method = "execution.v1.ExecutionService/ListOrders"
        anonymous = run([*secure, "-d", request, gateway.address, method])
        assert anonymous.returncode != 0
        assert "Unauthenticated" in anonymous.stderr
        with_token = [*secure, "-H", f"authorization: Bearer {TOKENS['alice']}"]
        allowed = run([*with_token, "-d", request, gateway.address, method])
        assert allowed.returncode == 0, allowed.stderr
        other = json.dumps({"account": "acct-b"})
        denied = run([*with_token, "-d", other, gateway.address, method])
        assert denied.returncode != 0
        assert "PermissionDenied" in denied.stderr
        plaintext = run([grpcurl, "-plaintext", gateway.address, "list"])
        assert plaintext.returncode != 0
    finally:
        assert gateway.terminate(within=20) == 0
    for token in TOKENS.values():
        assert token not in gateway.log()
