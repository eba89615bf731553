"""End to end: ``python -m gateway.venue`` in its own process, traded through ``AlpacaBroker``."""

from __future__ import annotations

import asyncio
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO

import pytest

from gateway.brokers.alpaca import AlpacaBroker, AlpacaConfig
from gateway.brokers.base import ExecutionReport, ReportKind
from gateway.domain import OrderSpec, OrderStatus, OrderType, Side, TimeInForce

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
READY = re.compile(r"venue listening on (http://\S+)")
KEY_ID = "PKE2EVENUE000001"
SECRET = "e2e-venue-secret"
START_DEADLINE = 20.0
STOP_DEADLINE = 10.0
FILL_DEADLINE = 10.0


@dataclass
class VenueProcess:
    """A running venue process and everything it has printed so far."""

    url: str
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)

    def log(self) -> str:
        return "".join(self.output)


def _pump(stream: IO[str], lines: queue.Queue[str | None], keep: list[str]) -> None:
    """Keep the pipe drained (a full pipe would block the venue) and pass lines on."""
    for line in stream:
        keep.append(line)
        lines.put(line)
    lines.put(None)


@pytest.fixture
def venue_process(tmp_path: Path) -> Iterator[VenueProcess]:
    secret_file = tmp_path / "venue-secret"
    secret_file.write_text(SECRET + "\n")
    # The venue falls back to APCA_* variables: keep the caller's out of the test.
    env = {k: v for k, v in os.environ.items() if not k.startswith("APCA_")}
    env["PYTHONUNBUFFERED"] = "1"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.venue",
            "--listen",
            "127.0.0.1:0",
            "--key-id",
            KEY_ID,
            "--secret-file",
            str(secret_file),
            "--tick-interval",
            "0.02",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    output: list[str] = []
    threading.Thread(target=_pump, args=(process.stdout, lines, output), daemon=True).start()
    try:
        url = _wait_ready(lines, output)
        yield VenueProcess(url, process, output)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(STOP_DEADLINE)


def _wait_ready(lines: queue.Queue[str | None], output: list[str]) -> str:
    deadline = time.monotonic() + START_DEADLINE
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            break
        if line is None:
            pytest.fail("venue exited before it was ready:\n" + "".join(output))
        if match := READY.search(line):
            return match.group(1)
    pytest.fail(f"venue not ready within {START_DEADLINE}s:\n" + "".join(output))


async def _first_fills(broker: AlpacaBroker, client_order_id: str) -> list[ExecutionReport]:
    """Read reports until ``client_order_id`` is filled; return its fills."""
    fills: list[ExecutionReport] = []
    async for report in broker.reports():
        if report.client_order_id == client_order_id and report.kind is ReportKind.FILL:
            fills.append(report)
            if sum(r.fill.quantity for r in fills if r.fill) == Decimal(5):
                return fills
    return fills


async def test_an_order_placed_through_the_venue_process_fills(
    venue_process: VenueProcess,
) -> None:
    config = AlpacaConfig(key_id=KEY_ID, secret_key=SECRET, base_url=venue_process.url)
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
