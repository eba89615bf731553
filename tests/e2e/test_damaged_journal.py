"""A damaged journal file: start refuses and changes nothing; salvage is the operator's step."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.domain import OrderSpec, OrderType, Side, TimeInForce
from gateway.journal.datadir import JOURNAL_FILE
from tests.conftest import gateway_test_config
from tests.processes import GATEWAY_READY, clean_env, start

pytestmark = pytest.mark.e2e


EXIT_JOURNAL_DAMAGED = 65


def serve_once(data_dir: Path, *flags: str) -> str:
    """Start a gateway on ``data_dir``, stop it cleanly, return what it logged."""
    gateway = start(
        ["gateway", "--listen=127.0.0.1:0", f"--data-dir={data_dir}", *flags],
        GATEWAY_READY,
        clean_env(),
    )
    assert gateway.stop() == 0, gateway.log()
    return gateway.log()


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
        check=False,
    )


def aside(data_dir: Path) -> list[Path]:
    return [p for p in data_dir.iterdir() if p.name.startswith(f"{JOURNAL_FILE}.corrupt-")]


def test_a_damaged_journal_stops_the_start_until_an_operator_salvages_it(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    garbage = os.urandom(64 * 1024)
    (data_dir / JOURNAL_FILE).write_bytes(garbage)

    refused = run("--listen=127.0.0.1:0", f"--data-dir={data_dir}")
    assert refused.returncode == EXIT_JOURNAL_DAMAGED, refused.stderr
    assert "Traceback" not in refused.stderr
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith("gateway: error: journal")
    assert "damaged" in last
    assert f"gateway journal salvage --data-dir {data_dir}" in last
    assert (data_dir / JOURNAL_FILE).read_bytes() == garbage  # nothing changed
    assert aside(data_dir) == []

    salvaged = run("journal", "salvage", f"--data-dir={data_dir}")
    assert salvaged.returncode == 0, salvaged.stderr
    assert "salvaged" in salvaged.stdout
    (kept,) = aside(data_dir)
    assert kept.read_bytes() == garbage  # the evidence is untouched
    # ...and the next start is quiet; a second salvage finds nothing to do.
    again = serve_once(data_dir)
    assert "corrupt" not in again.lower()
    assert "nothing to do" in run("journal", "salvage", f"--data-dir={data_dir}").stdout
    assert len(aside(data_dir)) == 1


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


async def test_salvage_at_start_keeps_a_truncated_journals_good_prefix(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    path = data_dir / JOURNAL_FILE
    written = await write_real_journal(tmp_path, orders=300)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert run("--listen=127.0.0.1:0", f"--data-dir={data_dir}").returncode == (
        EXIT_JOURNAL_DAMAGED
    )
    log = serve_once(data_dir, "--salvage-journal")
    assert "Traceback" not in log
    assert "salvaged" in log
    with sqlite3.connect(path) as conn:
        sequences = [s for (s,) in conn.execute("SELECT sequence FROM events ORDER BY sequence")]
    kept = [s for s in sequences if s <= written]
    assert 0 < len(kept) < written
    assert kept == list(range(1, len(kept) + 1))  # a contiguous prefix 1..n
    # What the restarted gateway wrote since (an order whose acknowledgement was
    # lost, resumed) is numbered above every sequence the lost records had.
    assert all(s > written for s in sequences[len(kept) :])
