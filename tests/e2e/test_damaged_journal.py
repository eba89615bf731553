"""A damaged journal file: a clear report, a running gateway, no evidence lost."""

from __future__ import annotations

import os
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.domain import OrderSpec, OrderType, Side, TimeInForce
from gateway.journal.datadir import JOURNAL_FILE
from tests.conftest import gateway_test_config
from tests.processes import GATEWAY_READY, clean_env, start

pytestmark = pytest.mark.e2e


def serve_once(data_dir: Path) -> str:
    """Start a gateway on ``data_dir``, stop it cleanly, return what it logged."""
    gateway = start(
        ["gateway", "--listen=127.0.0.1:0", f"--data-dir={data_dir}"],
        GATEWAY_READY,
        clean_env(),
    )
    assert gateway.stop() == 0, gateway.log()
    return gateway.log()


def test_a_file_of_garbage_is_moved_aside_and_the_gateway_starts(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    garbage = os.urandom(64 * 1024)
    (data_dir / JOURNAL_FILE).write_bytes(garbage)
    log = serve_once(data_dir)
    assert "Traceback" not in log
    assert "ERROR" in log
    kept = [p for p in data_dir.iterdir() if p.name.startswith(f"{JOURNAL_FILE}.corrupt-")]
    assert len(kept) == 1
    assert kept[0].read_bytes() == garbage  # the evidence is untouched
    # ...and the next start is quiet: no crash loop, nothing more moved aside.
    again = serve_once(data_dir)
    assert "corrupt" not in again.lower()
    assert len([p for p in data_dir.iterdir() if ".corrupt-" in p.name]) == 1


async def write_real_journal(tmp_path: Path, orders: int) -> int:
    """Run a gateway in this process to write a journal; return its last sequence."""
    gateway = Gateway(gateway_test_config(tmp_path))
    await gateway.start()
    try:
        for i in range(orders):
            await gateway.actor.place_order(spec_for(f"rest-{i}"))
        last = gateway.actor.last_sequence
    finally:
        await gateway.stop()  # closing checkpoints the WAL into the main file
    return last


def spec_for(client_order_id: str) -> OrderSpec:
    return OrderSpec(
        "acct-1", client_order_id, "AAPL", Side.BUY, OrderType.LIMIT, Decimal(10),
        TimeInForce.GTC, limit_price=Decimal("0.01"),
    )  # fmt: skip


async def test_a_truncated_journal_keeps_its_good_prefix(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    path = data_dir / JOURNAL_FILE
    written = await write_real_journal(tmp_path, orders=300)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    log = serve_once(data_dir)
    assert "Traceback" not in log
    with sqlite3.connect(path) as conn:
        kept = conn.execute("SELECT COUNT(*), MAX(sequence) FROM events").fetchone()
    assert 0 < kept[0] < written
    assert kept[1] == kept[0]  # a contiguous prefix 1..n
