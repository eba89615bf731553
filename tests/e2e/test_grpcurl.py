"""End to end: a gateway process driven by grpcurl, a stock tool that knows only the address.

Everything grpcurl needs (services, message shapes, error-detail types) must
come from server reflection; nothing here imports the generated code.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.processes import GATEWAY_READY, Service, clean_env, grpcurl_path, start
from tests.support import eventually

pytestmark = pytest.mark.e2e

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICE = "execution.v1.ExecutionService"
RPCS = ("PlaceOrder", "CancelOrder", "GetOrderStatus", "ListOrders", "SubscribeUpdates")
ACCOUNT = "acct-1"
STOP_DEADLINE = 10.0
# One grpcurl call; generous because CI machines are small and busy.
CALL_TIMEOUT = 20.0
FILL_DEADLINE = 15.0


@pytest.fixture(scope="module")
def gateway_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """Start the gateway on a free port with a fresh data dir; stop it with SIGTERM."""
    data_dir = tmp_path_factory.mktemp("gateway-data")
    # GATEWAY_* variables configure the gateway; the test's own settings must
    # not leak in from the environment (make test sets GATEWAY_GRPCURL).
    service = start(
        ["gateway", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir)],
        GATEWAY_READY,
        clean_env(PYTHONUNBUFFERED="1"),
    )
    try:
        yield service
    finally:
        service.stop(timeout=STOP_DEADLINE)


@dataclass(frozen=True)
class Grpcurl:
    """grpcurl pointed at one gateway, in plaintext."""

    binary: str
    gateway: Service

    def run(
        self,
        *target: str,
        options: Sequence[str] = (),
        data: object = None,
        timeout: float = CALL_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``grpcurl -plaintext OPTIONS [-d DATA] ADDRESS TARGET...``."""
        command = [self.binary, "-plaintext", *options]
        if data is not None:
            command += ["-d", json.dumps(data)]
        command += [self.gateway.address, *target]
        try:
            return subprocess.run(
                command, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"{command} hung past {timeout}s; gateway output:\n{self.gateway.log()}")

    def call(self, method: str, data: object) -> dict[str, Any]:
        """Call a unary RPC that must succeed and return its response as JSON."""
        result = self.run(f"{SERVICE}/{method}", data=data)
        assert result.returncode == 0, f"{method} failed:\n{result.stderr}\n{result.stdout}"
        response: dict[str, Any] = json.loads(result.stdout)
        return response


@pytest.fixture(scope="module")
def grpcurl_binary() -> str:
    """Find grpcurl: $GATEWAY_GRPCURL, then .tools/bin/grpcurl, then PATH."""
    return grpcurl_path()


@pytest.fixture(scope="module")
def grpcurl(grpcurl_binary: str, gateway_process: Service) -> Grpcurl:
    # grpcurl_binary comes first: no gateway is started for a run that skips.
    return Grpcurl(grpcurl_binary, gateway_process)


def _order_request(client_order_id: str, quantity: str = "10") -> dict[str, str]:
    return {
        "account": ACCOUNT,
        "client_order_id": client_order_id,
        "symbol": "AAPL",
        "side": "SIDE_BUY",
        "order_type": "ORDER_TYPE_MARKET",
        "quantity": quantity,
        "time_in_force": "TIME_IN_FORCE_DAY",
    }


def _new_id() -> str:
    return f"e2e-{uuid.uuid4().hex[:16]}"


def _json_stream(text: str) -> list[dict[str, Any]]:
    """Split grpcurl's output for a stream: JSON objects one after another."""
    decoder = json.JSONDecoder()
    messages: list[dict[str, Any]] = []
    position = 0
    while (position := _skip_space(text, position)) < len(text):
        message, position = decoder.raw_decode(text, position)
        messages.append(message)
    return messages


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position


def _place_and_fill(grpcurl: Grpcurl, client_order_id: str) -> dict[str, Any]:
    grpcurl.call("PlaceOrder", _order_request(client_order_id))

    def status() -> dict[str, Any]:
        request = {"account": ACCOUNT, "client_order_id": client_order_id}
        order: dict[str, Any] = grpcurl.call("GetOrderStatus", request)["order"]
        return order

    # A sync test: the one poller runs on a loop of its own (the probe blocks on grpcurl).
    return asyncio.run(
        eventually(
            status,
            lambda order: order.get("status") == "ORDER_STATUS_FILLED",
            within=FILL_DEADLINE,
            interval=0.1,
            what=f"{client_order_id} FILLED",
        )
    )


def test_list_shows_the_services(grpcurl: Grpcurl) -> None:
    result = grpcurl.run("list")
    assert result.returncode == 0, result.stderr
    services = set(result.stdout.split())
    assert SERVICE in services
    assert "grpc.health.v1.Health" in services
    assert any(s.startswith("grpc.reflection.") for s in services), services


def test_describe_shows_the_five_rpcs(grpcurl: Grpcurl) -> None:
    result = grpcurl.run("describe", SERVICE)
    assert result.returncode == 0, result.stderr
    for rpc in RPCS:
        assert re.search(rf"\brpc {rpc}\s*\(", result.stdout), f"{rpc} missing:\n{result.stdout}"
    assert re.search(r"rpc SubscribeUpdates\s*\([^)]*\)\s*returns\s*\(\s*stream\b", result.stdout)


def test_health_check_says_serving(grpcurl: Grpcurl) -> None:
    result = grpcurl.run("grpc.health.v1.Health/Check")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"status": "SERVING"}


def test_place_order_returns_the_order(grpcurl: Grpcurl) -> None:
    client_order_id = _new_id()
    order = grpcurl.call("PlaceOrder", _order_request(client_order_id))["order"]
    assert order["order_id"]
    assert order["client_order_id"] == client_order_id
    assert order["account"] == ACCOUNT
    assert order["symbol"] == "AAPL"
    assert order["side"] == "SIDE_BUY"
    assert order["quantity"] == "10"
    assert order["status"] != "ORDER_STATUS_REJECTED", order


def test_repeated_place_order_returns_the_same_order(grpcurl: Grpcurl) -> None:
    request = _order_request(_new_id())
    first = grpcurl.call("PlaceOrder", request)["order"]
    again = grpcurl.call("PlaceOrder", request)["order"]
    assert again["order_id"] == first["order_id"]


def test_market_order_fills(grpcurl: Grpcurl) -> None:
    order = _place_and_fill(grpcurl, _new_id())
    assert order["filled_quantity"] == "10"


def test_subscribe_updates_replays_the_fills(grpcurl: Grpcurl) -> None:
    client_order_id = _new_id()
    _place_and_fill(grpcurl, client_order_id)
    # The stream never ends by itself: grpcurl's -max-time cuts it, and then
    # exits non-zero (DeadlineExceeded). What it printed before is the test.
    result = grpcurl.run(
        f"{SERVICE}/SubscribeUpdates",
        options=["-max-time", "3"],
        data={"after_sequence": "0", "accounts": [ACCOUNT]},
    )
    messages = _json_stream(result.stdout)
    updates = [m["update"] for m in messages if "update" in m]
    sequences = [int(u["sequence"]) for u in updates]
    assert sequences == sorted(set(sequences)), "sequences not strictly increasing"
    ours = [u for u in updates if u["order"]["client_order_id"] == client_order_id]
    fills = [u["fill"] for u in ours if "fill" in u]
    assert fills, f"no fills for {client_order_id} in:\n{result.stdout}\n{result.stderr}"
    assert sum(Decimal(f["quantity"]) for f in fills) == Decimal("10"), fills
    assert ours[-1]["order"]["status"] == "ORDER_STATUS_FILLED"


def test_invalid_quantity_is_invalid_argument_naming_the_field(grpcurl: Grpcurl) -> None:
    request = _order_request(_new_id(), quantity="1e3")
    result = grpcurl.run(f"{SERVICE}/PlaceOrder", data=request)
    assert result.returncode != 0
    assert "Code: InvalidArgument" in result.stderr, result.stderr
    # Field names (grpcurl prints proto names) only appear if grpcurl resolved
    # google.rpc.BadRequest through reflection; an unresolved detail is bytes.
    assert '"field_violations"' in result.stderr, result.stderr
    assert '"field": "quantity"' in result.stderr, result.stderr


def test_invalid_quantity_details_as_json(grpcurl: Grpcurl) -> None:
    request = _order_request(_new_id(), quantity="1e3")
    result = grpcurl.run(f"{SERVICE}/PlaceOrder", options=["-format-error"], data=request)
    assert result.returncode != 0
    status = json.loads(result.stderr)
    assert status["code"] == 3  # INVALID_ARGUMENT
    (bad_request,) = [
        d for d in status["details"] if d["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    ]
    assert [v["field"] for v in bad_request["field_violations"]] == ["quantity"]
