"""kill -9 while halted, for real: the gateway process restarts halted, with its positions."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway._proto.execution.v1 import execution_pb2_grpc as pb_grpc
from tests.ops_support import GatewayProcess
from tests.support import eventually, place_request

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

ACCOUNT = "acct-1"


def start(data_dir: Path) -> GatewayProcess:
    return GatewayProcess.start(
        ["--listen", "127.0.0.1:0", "--data-dir", str(data_dir), "--sim-tick-interval", "0.01"]
    )


async def test_a_gateway_killed_while_halted_restarts_halted(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = start(data_dir)
    try:
        async with grpc.aio.insecure_channel(first.address) as channel:
            stub = pb_grpc.ExecutionServiceStub(channel)
            bought = (await stub.PlaceOrder(place_request("buy-1", quantity="7"))).order

            async def position() -> pb.GetPositionsResponse:
                request = pb.GetPositionsRequest(account=ACCOUNT, symbols=["AAPL"])
                return await stub.GetPositions(request)

            before = await eventually(
                position, lambda r: r.positions[0].quantity == "7", what="the market buy filled"
            )
            control = pb_grpc.ControlServiceStub(channel)
            halted = await control.HaltTrading(
                pb.HaltTradingRequest(
                    scope_account=ACCOUNT, mode=pb.TRADING_MODE_HALTED, reason="kill -9 drill"
                )
            )
            assert len(halted.state.halts) == 1
    finally:
        first.kill()  # SIGKILL right after the halt was acknowledged: no clean checkpoint

    second = start(data_dir)
    try:
        async with grpc.aio.insecure_channel(second.address) as channel:
            control = pb_grpc.ControlServiceStub(channel)
            state = await control.GetTradingState(pb.GetTradingStateRequest())
            assert [(h.scope_account, h.mode, h.reason) for h in state.state.halts] == [
                (ACCOUNT, pb.TRADING_MODE_HALTED, "kill -9 drill")
            ]
            stub = pb_grpc.ExecutionServiceStub(channel)
            after = await stub.GetPositions(
                pb.GetPositionsRequest(account=ACCOUNT, symbols=["AAPL"])
            )
            assert after.positions[0] == before.positions[0]
            assert bought.order_id
            refused = (await stub.PlaceOrder(place_request("after-kill"))).order
            assert refused.status == pb.ORDER_STATUS_REJECTED
            assert "halted" in refused.reject_reason
    finally:
        second.kill()
