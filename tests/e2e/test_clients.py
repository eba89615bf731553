"""End to end: every language's example strategy, and gatewayctl, against a gateway process.

Each example connects with a token, rests a limit order and amends it
(ReplaceOrder: quantity 5 -> 6, price 0.01 -> 0.02), fills a market order,
resumes a stream from a sequence and cancels the limit order, then prints one
``strategy done: ...`` line. The test checks that line and then asks the
gateway itself whether the orders ended as the example says, the amend included.

Java, TypeScript and Rust commit no generated code: each run below builds
its stubs from protos/ first (Maven's protobuf plugin, ``npm run build``,
cargo's build.rs), so these tests also prove that the generators work and
that the examples match the current proto.

A missing toolchain fails the test under CI=true and skips it elsewhere.
``make clients-setup`` fetches the examples' dependencies beforehand (the
Maven run is offline).
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from gateway_client import Client, OrderStatus, UpdateKind

from tests.clients.gateway_process import REPO_ROOT, GatewayProcess
from tests.processes import require_tool
from tests.support import eventually

pytestmark = pytest.mark.e2e

CLIENTS = REPO_ROOT / "clients"
TOKEN = "example-token"
DONE = re.compile(
    r"^strategy done: market order (?P<market>\S+) FILLED (?P<filled>\S+) @ \S+; "
    r"limit order (?P<limit>\S+) REPLACED (?P<quantity>\S+) @ (?P<price>\S+), then CANCELED; "
    r"resumed after sequence (?P<sequence>\d+)$",
    re.M,
)
# Every example amends its limit order (5 @ 0.01) to these terms.
AMENDED_QUANTITY = Decimal(6)
AMENDED_PRICE = Decimal("0.02")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Generous: a first `go run`, `mvn` or `cargo run` compiles, and CI machines have two cores.
EXAMPLE_TIMEOUT = 240.0
REPLAY_DEADLINE = 30.0


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    process = GatewayProcess(tmp_path_factory.mktemp("gateway-data"))
    process.start()
    try:
        yield process
    finally:
        process.stop()


def _require(*tools: str) -> None:
    for tool in tools:
        require_tool(tool, hint="install the toolchain (make clients-setup)")


def _run(command: Sequence[str], cwd: Path, timeout: float = EXAMPLE_TIMEOUT) -> str:
    try:
        result = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as expired:
        pytest.fail(f"{command} hung past {timeout}s:\n{expired.stdout!r}\n{expired.stderr!r}")
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return ANSI.sub("", result.stdout)  # Maven 3.8 colours its output even in batch mode


@dataclass(frozen=True)
class Example:
    language: str
    tools: tuple[str, ...]
    cwd: Path
    build: tuple[str, ...] | None
    run: tuple[str, ...]

    def command(self, target: str, account: str) -> list[str]:
        flags = ["-target", target, "-account", account, "-token", TOKEN]
        if self.language in {"typescript", "python", "rust"}:
            flags = [f"-{flag}" if flag.startswith("-") else flag for flag in flags]
        if self.language == "java":
            return [*self.run, "-Dexec.args=" + " ".join(flags)]
        return [*self.run, *flags]


EXAMPLES = [
    Example("python", (), CLIENTS / "python", None, (sys.executable, "examples/strategy.py")),
    Example("go", ("go",), CLIENTS / "go", None, ("go", "run", "./cmd/strategy")),
    Example(
        "typescript",
        ("npm", "node"),
        CLIENTS / "typescript",
        ("npm", "run", "--silent", "build"),
        ("node", "dist/examples/strategy.js"),
    ),
    Example(
        "java",
        ("mvn", "java"),
        CLIENTS / "java",
        None,
        ("mvn", "-B", "-q", "-o", "compile", "exec:java"),
    ),
    # --frozen: the Cargo.lock as committed, and offline (make clients-setup fetched the crates).
    Example(
        "rust",
        ("cargo",),
        CLIENTS / "rust",
        None,
        ("cargo", "run", "--frozen", "--quiet", "--example", "strategy", "--"),
    ),
]


@pytest.mark.timeout(2 * EXAMPLE_TIMEOUT)
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.language)
def test_example_strategy_runs_against_the_gateway(
    example: Example, gateway: GatewayProcess
) -> None:
    _require(*example.tools)
    account = f"{example.language}-{uuid.uuid4().hex[:10]}"
    if example.build:
        _run(example.build, example.cwd)
    output = _run(example.command(gateway.address, account), example.cwd)
    done = DONE.search(output)
    assert done, f"no final line in:\n{output}"
    with Client(gateway.address, token=TOKEN) as client:
        market = client.get_order(account, order_id=done["market"])
        limit = client.get_order(account, order_id=done["limit"])
        assert market.status is OrderStatus.FILLED
        assert str(market.filled_quantity) == done["filled"]
        assert limit.status is OrderStatus.CANCELED
        assert {o.order_id for o in client.list_orders(account)} == {
            market.order_id,
            limit.order_id,
        }
        # The amend happened: the gateway's order has the new terms, under the
        # same order_id, and the example printed what the gateway confirmed.
        assert (limit.quantity, limit.limit_price) == (AMENDED_QUANTITY, AMENDED_PRICE)
        assert (Decimal(done["quantity"]), Decimal(done["price"])) == (
            AMENDED_QUANTITY,
            AMENDED_PRICE,
        )
        assert limit.replace_id, "the order does not record its replace"
        # The example resumed after a sequence it had seen (the market order's
        # fill or the amend's confirmation, whichever came last).
        resumed_after = int(done["sequence"])
        replay = client.subscribe([account], after_sequence=resumed_after)
        try:
            first = next(iter(replay))
        finally:
            replay.close()
        assert first.sequence > resumed_after
        assert first.order.order_id == limit.order_id
        _assert_amended_on_the_stream(client, account, limit.order_id)


def _assert_amended_on_the_stream(client: Client, account: str, order_id: str) -> None:
    """The order's history: PENDING_REPLACE, then REPLACED with the new terms, then the cancel."""
    history = []
    replay = client.subscribe([account], after_sequence=0)
    # The replay ends at the order's terminal update; close() bounds it if that never comes.
    watchdog = threading.Timer(REPLAY_DEADLINE, replay.close)
    watchdog.start()
    try:
        for update in replay:
            if update.order.order_id == order_id:
                history.append(update)
            if update.order.order_id == order_id and update.order.is_terminal:
                break
    finally:
        watchdog.cancel()
        replay.close()
    kinds = [u.kind for u in history]
    assert UpdateKind.REPLACED in kinds, kinds
    replaced = history[kinds.index(UpdateKind.REPLACED)]
    assert (replaced.order.quantity, replaced.order.limit_price) == (
        AMENDED_QUANTITY,
        AMENDED_PRICE,
    )
    before = history[: kinds.index(UpdateKind.REPLACED)]
    assert any(u.order.status is OrderStatus.PENDING_REPLACE for u in before), kinds
    assert all(u.order.quantity == Decimal(5) for u in before), "amended before REPLACED"
    assert (history[-1].kind, history[-1].order.status) == (
        UpdateKind.CANCELED,
        OrderStatus.CANCELED,
    )


def test_python_quickstart_runs(gateway: GatewayProcess) -> None:
    account = f"py-{uuid.uuid4().hex[:10]}"
    command = [sys.executable, "examples/quickstart.py", "--target", gateway.address]
    output = _run([*command, "--account", account], CLIENTS / "python", timeout=60)
    assert output.splitlines()[-1] == "quickstart done", output


def test_python_readme_first_snippet_runs(gateway: GatewayProcess) -> None:
    readme = (CLIENTS / "python" / "README.md").read_text()
    snippet = readme.split("```python\n", 1)[1].split("```", 1)[0]
    code = snippet.replace("127.0.0.1:50051", gateway.address)
    _run([sys.executable, "-c", code], CLIENTS / "python", timeout=60)


def _gatewayctl(gateway: GatewayProcess, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "gateway_client.cli", "--target", gateway.address]
    command += ["--token", TOKEN, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_gatewayctl_place_status_list_cancel_watch(gateway: GatewayProcess) -> None:
    account = f"ctl-{uuid.uuid4().hex[:10]}"
    placed = _gatewayctl(gateway, "--json", "place", account, "AAPL", "buy", "3", "--limit", "0.01")
    assert placed.returncode == 0, placed.stderr
    order = json.loads(placed.stdout)
    assert (order["order_type"], order["limit_price"], order["time_in_force"]) == (
        "LIMIT",
        "0.01",
        "GTC",
    )

    status = _gatewayctl(gateway, "status", account, "--order-id", order["order_id"])
    assert status.returncode == 0, status.stderr
    assert order["order_id"] in status.stdout

    listed = _gatewayctl(gateway, "--json", "list", account, "--open")
    assert [o["order_id"] for o in json.loads(listed.stdout)] == [order["order_id"]]

    cancel = _gatewayctl(gateway, "cancel", account, "--client-order-id", order["client_order_id"])
    assert cancel.returncode == 0, cancel.stderr

    watch = _gatewayctl(
        gateway, "--json", "watch", "--account", account, "--after-sequence", "0",
        "--max-updates", "4",
    )  # fmt: skip
    assert watch.returncode == 0, watch.stderr
    events = [json.loads(line) for line in watch.stdout.splitlines()]
    updates = [e for e in events if e["event"] == "update"]
    assert [u["order"]["status"] for u in updates] == [
        "PENDING_NEW",
        "ACCEPTED",
        "PENDING_CANCEL",
        "CANCELED",
    ]


def test_gatewayctl_replace_then_cancel_all(gateway: GatewayProcess) -> None:
    account = f"ctl-{uuid.uuid4().hex[:10]}"
    placed = _gatewayctl(gateway, "--json", "place", account, "AAPL", "buy", "5", "--limit", "0.01")
    assert placed.returncode == 0, placed.stderr
    order_id = json.loads(placed.stdout)["order_id"]

    replace = _gatewayctl(
        gateway, "--json", "replace", account, "--order-id", order_id, "--quantity", "6",
        "--limit", "0.02", "--replace-id", "ctl-replace-1",
    )  # fmt: skip
    assert replace.returncode == 0, replace.stderr
    assert json.loads(replace.stdout)["replace_id"] == "ctl-replace-1"
    with Client(gateway.address, token=TOKEN) as client:
        amended = asyncio.run(
            eventually(
                lambda: client.get_order(account, order_id=order_id),
                lambda order: order.status is not OrderStatus.PENDING_REPLACE,
                what="the replace confirmed",
            )
        )
    assert (amended.quantity, amended.limit_price) == (AMENDED_QUANTITY, AMENDED_PRICE)

    cancel_all = _gatewayctl(gateway, "--json", "cancel-all", account, "--symbol", "AAPL")
    assert cancel_all.returncode == 0, cancel_all.stderr
    assert [o["order_id"] for o in json.loads(cancel_all.stdout)] == [order_id]


def test_gatewayctl_positions_after_a_fill(gateway: GatewayProcess) -> None:
    account = f"ctl-{uuid.uuid4().hex[:10]}"
    bought = _gatewayctl(gateway, "place", account, "AAPL", "buy", "3")
    assert bought.returncode == 0, bought.stderr
    with Client(gateway.address, token=TOKEN) as client:
        asyncio.run(
            eventually(
                lambda: client.get_positions(account),
                lambda positions: [p.quantity for p in positions] == [3],
                what="a long position of 3 after the fill",
            )
        )
    shown = _gatewayctl(gateway, "--json", "positions", account)
    assert shown.returncode == 0, shown.stderr
    assert [(p["symbol"], p["quantity"]) for p in json.loads(shown.stdout)] == [("AAPL", "3")]


def test_gatewayctl_halt_refuses_new_orders_until_resume(gateway: GatewayProcess) -> None:
    # Without a tokens file (the loopback default) every caller may use ControlService.
    account = f"ctl-{uuid.uuid4().hex[:10]}"
    halted = _gatewayctl(gateway, "halt", "--account", account, "--reason", "e2e")
    assert halted.returncode == 0, halted.stderr
    assert halted.stdout.startswith(f"{account} HALTED")
    state = _gatewayctl(gateway, "--json", "state")
    assert [
        h["mode"] for h in json.loads(state.stdout)["halts"] if h["scope_account"] == account
    ] == ["HALTED"]

    refused = _gatewayctl(gateway, "--json", "place", account, "AAPL", "buy", "1")
    assert refused.returncode == 7, refused.stderr
    order = json.loads(refused.stdout)
    assert (order["status"], order["reject_code"]) == ("REJECTED", "TRADING_HALTED")

    resumed = _gatewayctl(gateway, "resume", "--account", account)
    assert resumed.returncode == 0, resumed.stderr
    placed = _gatewayctl(gateway, "--json", "place", account, "AAPL", "buy", "1")
    assert placed.returncode == 0, placed.stderr
    assert json.loads(placed.stdout)["status"] != "REJECTED"


@pytest.mark.parametrize(
    ("args", "exit_code"),
    [
        (("status", "acct-x", "--order-id", "no-such-order"), 3),
        (("place", "acct-x", "AAPL", "buy", "0"), 2),
        (("place", "acct-x", "AAPL", "buy", "abc"), 2),
    ],
    ids=["not-found", "invalid-argument", "not-a-number"],
)
def test_gatewayctl_exit_codes_say_what_happened(
    gateway: GatewayProcess, args: tuple[str, ...], exit_code: int
) -> None:
    result = _gatewayctl(gateway, *args)
    assert result.returncode == exit_code, result.stderr
    assert result.stderr.startswith("gatewayctl: ")


def test_gatewayctl_unreachable_gateway_is_exit_5() -> None:
    unreachable = GatewayProcess(Path("unused"))
    unreachable.address = "127.0.0.1:1"
    result = _gatewayctl(unreachable, "--timeout", "2", "list", "acct-x")
    assert result.returncode == 5, result.stderr
