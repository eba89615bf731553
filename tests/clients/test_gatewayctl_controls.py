"""``gatewayctl`` replace, cancel-all, positions, halt, resume, state and limits.

Run in-process (``cli.main``) against the fake gateway: the request each
command sends, what it prints (text and ``--json``) and its exit code.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator

import grpc
import pytest
from gateway_client import cli
from gateway_client._proto.execution.v1 import execution_pb2 as pb

from tests.clients.fake_gateway import Failure, FakeGateway, order


@pytest.fixture
async def fake() -> AsyncIterator[FakeGateway]:
    async with FakeGateway() as gateway:
        yield gateway


async def gatewayctl(fake: FakeGateway, *args: str) -> tuple[int, str]:
    """Run one command in a thread (the fake serves on this loop); return (exit code, stdout)."""
    out = io.StringIO()
    argv = ["--target", fake.address, "--token", "admin-token", *args]
    code = await asyncio.to_thread(cli.main, argv, out)
    return code, out.getvalue()


def halts(*scopes: tuple[str, pb.TradingMode.ValueType]) -> pb.TradingState:
    return pb.TradingState(
        halts=[pb.TradingHalt(scope_account=a, mode=m, principal="ops") for a, m in scopes]
    )


async def test_replace_sends_the_new_terms(fake: FakeGateway) -> None:
    fake.answers["ReplaceOrder"] = lambda request: pb.ReplaceOrderResponse(
        order=order(status=pb.ORDER_STATUS_PENDING_REPLACE, replace_id=request.replace_id)
    )
    code, text = await gatewayctl(
        fake, "replace", "acct-1", "--client-order-id", "cid-1", "--quantity", "6",
        "--limit", "0.02", "--replace-id", "r-1",
    )  # fmt: skip
    assert code == cli.EXIT_OK
    (sent,) = fake.requests["ReplaceOrder"]
    assert (sent.client_order_id, sent.replace_id, sent.quantity, sent.limit_price) == (
        "cid-1",
        "r-1",
        "6",
        "0.02",
    )
    assert text.startswith("replace r-1 requested for ord-1")
    assert "PENDING_REPLACE" in text


async def test_replace_with_nothing_to_change_is_a_usage_error(fake: FakeGateway) -> None:
    code, _ = await gatewayctl(fake, "replace", "acct-1", "--order-id", "ord-1")
    assert code == cli.EXIT_USAGE
    assert "ReplaceOrder" not in fake.requests


async def test_cancel_all_and_positions_as_json(fake: FakeGateway) -> None:
    fake.answers["CancelAllOrders"] = pb.CancelAllOrdersResponse(
        orders=[order(order_id="ord-1", status=pb.ORDER_STATUS_PENDING_CANCEL)]
    )
    fake.answers["GetPositions"] = pb.GetPositionsResponse(
        positions=[pb.Position(account="acct-1", symbol="AAPL", quantity="-2.5",
                               average_cost="100.10", realized_pnl="3")]
    )  # fmt: skip
    code, text = await gatewayctl(fake, "--json", "cancel-all", "acct-1", "--side", "sell")
    assert code == cli.EXIT_OK
    assert [(o["order_id"], o["status"]) for o in json.loads(text)] == [("ord-1", "PENDING_CANCEL")]
    assert fake.requests["CancelAllOrders"][0].side == pb.SIDE_SELL

    code, text = await gatewayctl(fake, "--json", "positions", "acct-1", "--symbol", "AAPL")
    assert code == cli.EXIT_OK
    (position,) = json.loads(text)
    # Exact decimal strings, never floats.
    assert (position["quantity"], position["average_cost"], position["realized_pnl"]) == (
        "-2.5",
        "100.10",
        "3",
    )
    assert list(fake.requests["GetPositions"][0].symbols) == ["AAPL"]

    code, text = await gatewayctl(fake, "positions", "acct-1")
    assert code == cli.EXIT_OK
    header, row = text.splitlines()
    assert header.split()[:3] == ["SYMBOL", "QTY", "AVG"]
    assert row.split()[:4] == ["AAPL", "-2.5", "100.10", "3"]


async def test_halt_then_state_then_resume(fake: FakeGateway) -> None:
    fake.answers["HaltTrading"] = pb.HaltTradingResponse(
        state=halts(("acct-1", pb.TRADING_MODE_REDUCING)),
        canceled_orders=[order(status=pb.ORDER_STATUS_PENDING_CANCEL)],
    )
    fake.answers["GetTradingState"] = pb.GetTradingStateResponse(
        state=halts(("", pb.TRADING_MODE_HALTED))
    )
    fake.answers["ResumeTrading"] = pb.ResumeTradingResponse(state=pb.TradingState())

    code, text = await gatewayctl(
        fake, "halt", "--account", "acct-1", "--mode", "reducing", "--cancel-open-orders",
        "--reason", "runaway loop",
    )  # fmt: skip
    assert code == cli.EXIT_OK
    (sent,) = fake.requests["HaltTrading"]
    assert (sent.scope_account, sent.mode, sent.cancel_open_orders, sent.reason) == (
        "acct-1",
        pb.TRADING_MODE_REDUCING,
        True,
        "runaway loop",
    )
    assert text.splitlines() == [
        "acct-1 REDUCING by ops",
        "cancel requested for 1 open orders",
    ]

    code, text = await gatewayctl(fake, "state")
    assert (code, text) == (cli.EXIT_OK, "all accounts HALTED by ops\n")

    code, text = await gatewayctl(fake, "resume")
    assert (code, text) == (cli.EXIT_OK, "trading ACTIVE everywhere\n")
    assert fake.requests["ResumeTrading"][0].scope_account == ""


async def test_halt_without_the_admin_grant_exits_6(fake: FakeGateway) -> None:
    fake.answers["HaltTrading"] = pb.HaltTradingResponse()
    fake.fail("HaltTrading", Failure(grpc.StatusCode.PERMISSION_DENIED))
    code, _ = await gatewayctl(fake, "halt")
    assert code == cli.EXIT_DENIED


async def test_limits_text_and_json(fake: FakeGateway) -> None:
    fake.answers["GetRiskLimits"] = pb.GetRiskLimitsResponse(
        limits=[
            pb.RiskLimits(max_order_quantity="1000", max_open_orders=50),
            pb.RiskLimits(account="acct-1", max_order_notional="50000", denied_symbols=["GME"]),
        ],
        source="risk.toml",
        last_error="max_position: not a decimal",
    )
    code, text = await gatewayctl(fake, "limits")
    assert code == cli.EXIT_OK
    assert text.splitlines() == [
        "limits from risk.toml",
        "defaults: max_order_quantity 1000; max_open_orders 50",
        "acct-1: max_order_notional 50000; denied_symbols GME",
        "last change refused (last good limits in force): max_position: not a decimal",
    ]
    code, text = await gatewayctl(fake, "--json", "limits", "--account", "acct-1")
    assert code == cli.EXIT_OK
    report = json.loads(text)
    assert report["limits"][1]["max_order_notional"] == "50000"
    assert report["limits"][0]["max_order_notional"] is None
    assert fake.requests["GetRiskLimits"][1].account == "acct-1"
