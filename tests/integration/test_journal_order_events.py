"""Reading one order's history back: ``Journal.order_events`` and the checkpoint's index."""

from __future__ import annotations

import sqlite3
from array import array
from pathlib import Path

import pytest

from gateway.engine.retention import load_orders
from gateway.journal import CorruptRecord, JournalRecord, MemoryJournal, SqliteJournal
from gateway.journal import checkpoint as checkpoints
from gateway.journal.order_index import AccountIndex
from tests.integration.test_sqlite_journal import make_records
from tests.support import update_of


async def test_both_journals_return_each_orders_records_oldest_first(tmp_path: Path) -> None:
    records = make_records(1, 17)  # orders 0-2 whole, order-3 two records in
    sqlite = SqliteJournal.open(tmp_path / "journal.db")
    await sqlite.append(records[:9])
    await sqlite.append(records[9:])
    memory = MemoryJournal(records)

    def expected(order_id: str) -> list[JournalRecord]:
        return [r for r in records if r.event.order_id == order_id]

    try:
        for journal in (sqlite, memory):
            found = journal.order_events(["order-1", "order-3", "nobody"])
            assert set(found) == {"order-1", "order-3"}  # no record: left out
            for order_id, mine in found.items():
                want = expected(order_id)
                assert [(r.sequence, r.event) for r in mine] == [
                    (r.sequence, r.event) for r in want
                ]
                # Folded back, each order is the state its last record left it in.
                loaded = load_orders(journal, [order_id])[order_id][0]
                assert loaded == update_of(want[-1]).order
    finally:
        await sqlite.close()


async def test_a_damaged_record_of_the_order_is_reported_not_folded(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    journal = SqliteJournal.open(path)
    await journal.append(make_records(1, 10))
    try:
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE events SET crc = crc + 1 WHERE sequence = 7")
        assert set(journal.order_events(["order-0"])) == {"order-0"}  # untouched
        with pytest.raises(CorruptRecord, match="sequence 7: checksum"):
            journal.order_events(["order-1"])
    finally:
        await journal.close()


def test_a_checkpoint_with_a_misaligned_index_is_refused() -> None:
    sequences = array("q", [1, 2]).tobytes()
    cut = AccountIndex("acct-1", sequences, ["o-1", "o-2"], ["c-1", None], [""])
    data = checkpoints.encode(checkpoints.Checkpoint(2, 0, [], {}, [cut]))
    with pytest.raises(ValueError, match="misaligned"):
        checkpoints.decode(data)
    short = AccountIndex("acct-1", sequences[:12], ["o-1", "o-2"], ["c-1", None], ["", None])
    with pytest.raises(ValueError, match="misaligned"):
        checkpoints.decode(checkpoints.encode(checkpoints.Checkpoint(2, 0, [], {}, [short])))
    whole = AccountIndex("acct-1", sequences, ["o-1", "o-2"], ["c-1", None], ["", None])
    data = checkpoints.encode(checkpoints.Checkpoint(2, 0, [], {}, [whole]))
    assert checkpoints.decode(data).accounts == [whole]
