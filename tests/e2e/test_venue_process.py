"""End to end: ``python -m paper_venue`` in its own process, traded through ``AlpacaBroker``."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.brokers.alpaca import AlpacaBroker, AlpacaConfig
from gateway.brokers.base import ExecutionReport, ReportKind
from gateway.brokers.testing import each_report
from gateway.domain import OrderSpec, OrderStatus, OrderType, Side, TimeInForce
from tests.processes import VENUE_READY, Service, clean_env, start

pytestmark = pytest.mark.e2e

KEY_ID = "PKE2EVENUE000001"
SECRET = "e2e-venue-secret"
STOP_DEADLINE = 10.0
FILL_DEADLINE = 10.0


@pytest.fixture
def venue_process(tmp_path: Path) -> Iterator[Service]:
    secret_file = tmp_path / "venue-secret"
    secret_file.write_text(SECRET + "\n")
    # The venue falls back to APCA_* variables: keep the caller's out of the test.
    env = {k: v for k, v in clean_env(PYTHONUNBUFFERED="1").items() if not k.startswith("APCA_")}
    service = start(
        [
            "paper_venue",
            "--listen=127.0.0.1:0",
            f"--key-id={KEY_ID}",
            f"--secret-file={secret_file}",
            "--tick-interval=0.02",
        ],
        VENUE_READY,
        env,
    )
    try:
        yield service
    finally:
        if service.process.poll() is None:
            service.kill()


async def _first_fills(broker: AlpacaBroker, client_order_id: str) -> list[ExecutionReport]:
    """Read reports until ``client_order_id`` is filled; return its fills."""
    fills: list[ExecutionReport] = []
    async for report in each_report(broker.reports()):
        if report.client_order_id == client_order_id and report.kind is ReportKind.FILL:
            fills.append(report)
            if sum(r.fill.quantity for r in fills if r.fill) == Decimal(5):
                return fills
    return fills


async def test_an_order_placed_through_the_venue_process_fills(
    venue_process: Service,
) -> None:
    config = AlpacaConfig(key_id=KEY_ID, secret_key=SECRET, base_url=venue_process.address)
    broker = AlpacaBroker(config)
    await broker.connect()
    try:
        spec = OrderSpec(
            account="alpaca",
            client_order_id="e2e-1",
            symbol="MSFT",
            side=Side.SELL,
            order_type=OrderType.MARKET,
            quantity=Decimal(5),
            time_in_force=TimeInForce.DAY,
        )
        reading = asyncio.create_task(_first_fills(broker, "e2e-1"))
        ack = await broker.submit(spec)
        fills = await asyncio.wait_for(reading, FILL_DEADLINE)
        assert {f.broker_order_id for f in fills} == {ack.broker_order_id}
        state = await broker.order_status("alpaca", "e2e-1")
        assert state is not None
        assert state.status is OrderStatus.FILLED

        # Stop the venue while the adapter's stream is still open: it must not hang.
        venue_process.process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(venue_process.process.wait, STOP_DEADLINE)
        assert code == 0, venue_process.log()
    finally:
        await broker.close()
