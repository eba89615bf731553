"""A checkpoint plus the journal's tail rebuilds exactly what a full replay does.

Hypothesis draws a history of order events, applied through the live path
(``Ledger.emit``; refused transitions are dropped as the actor drops them),
and a point to checkpoint at. Restoring that checkpoint and replaying the
records after it must give the same table, exec_ids and sequence as
replaying everything, also when the gateway was killed at any byte of a
later checkpoint's write (which must leave the earlier one usable) and when
the checkpoint file itself is torn (which must fall back to a full replay).

With eviction (terminal orders out of memory and out of the checkpoint,
read back from the journal): every answer a client can get, for every order,
is the same as without it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from tempfile import TemporaryDirectory

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.domain import (
    CancelRejected,
    CancelRequested,
    Fill,
    FillsReconciled,
    IllegalTransition,
    ListOrdersQuery,
    OrderAccepted,
    OrderCanceled,
    OrderCreated,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    OrderSpec,
    OrderType,
    OrderUpdate,
    RejectCode,
    ReplaceRejected,
    ReplaceRequested,
    ReplaceTerms,
    Side,
    TimeInForce,
)
from gateway.engine.config import EngineConfig
from gateway.engine.ledger import Ledger
from gateway.engine.retention import Retention, load_orders
from gateway.journal import JournalRecord, MemoryJournal
from gateway.journal import checkpoint as checkpoints

T0 = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
ORDERS = [f"ord-{i}" for i in range(4)]


def spec(index: int) -> OrderSpec:
    return OrderSpec(
        f"acct-{index % 2}", f"c{index}", "AAPL", Side.BUY, OrderType.LIMIT, Decimal(10),
        TimeInForce.GTC, limit_price=Decimal("101.5"),
    )  # fmt: skip


def event(kind: int, index: int, step: int, amount: int) -> OrderEvent:
    order_id, at = ORDERS[index], T0 + timedelta(milliseconds=step)
    quantity = Decimal(amount) / 2
    match kind:
        case 0:
            return OrderCreated(order_id, spec(index), at)
        case 1:
            return OrderAccepted(order_id, f"B-{index}", at)
        case 2:
            fill = Fill(f"x-{index}-{amount}", quantity, Decimal("100.25"), at)
            return OrderFilled(order_id, fill, at, f"B-{index}", None if amount % 3 else quantity)
        case 3:
            return FillsReconciled(order_id, quantity, Decimal("100.5"), at, f"B-{index}")
        case 4:
            return CancelRequested(order_id, at)
        case 5:
            return OrderCanceled(order_id, at, "asked")
        case 6:
            return CancelRejected(order_id, "too late", at)
        case 7:
            return OrderExpired(order_id, at)
        case 9:
            return ReplaceRequested(order_id, terms(index), at)
        case 10:
            return OrderReplaced(order_id, terms(index), at, f"B-{index}-{amount}")
        case 11:
            return ReplaceRejected(order_id, "price band", at)
        case _:
            return OrderRejected(order_id, "no", at, RejectCode.BROKER if amount % 2 else None)


def terms(index: int) -> ReplaceTerms:
    # One replace per order, so an outcome always answers the request pending.
    return ReplaceTerms(f"r{index}", quantity=Decimal(12), limit_price=Decimal("101.75"))


# Create, accept and replace drawn more often: a replace needs an accepted order.
KINDS = st.one_of(st.integers(0, 11), st.sampled_from([0, 1, 9, 10]))
steps = st.tuples(KINDS, st.integers(0, len(ORDERS) - 1), st.integers(1, 20))


def history(script: list[tuple[int, int, int]]) -> list[JournalRecord]:
    """Apply the script through the live path; return the journal it writes."""
    ledger = Ledger()
    records: list[JournalRecord] = []
    for step, (kind, index, amount) in enumerate(script):
        try:
            ledger.emit(event(kind, index, step, amount))
        except IllegalTransition:
            continue
        records += ledger.take_pending()
        ledger.committed_through(ledger.sequence)
    return records


def checkpoint_bytes(records: list[JournalRecord], at: int) -> bytes:
    """The checkpoint file the gateway writes after committing ``records[:at]``."""
    ledger = Ledger()
    ledger.replay(records[:at])
    snapshot = ledger.snapshot()
    assert snapshot is not None
    sequence, orders, exec_ids, accounts = snapshot
    controls = ledger.controls.snapshot()
    return checkpoints.encode(
        checkpoints.Checkpoint(sequence, 0, orders, exec_ids, list(accounts), controls)
    )


def recovered(records: list[JournalRecord], stored: bytes | None) -> Ledger:
    """Start-up as the actor does it: the checkpoint if usable, then the tail."""
    journal = MemoryJournal(records)
    journal.checkpoint = stored
    ledger = Ledger()
    found = journal.load_checkpoint()
    if found is not None:
        ledger.restore(found)
    ledger.replay(journal.replay(found.sequence if found else 0), journal.last_sequence)
    return ledger


def assert_same(left: Ledger, right: Ledger, records: list[JournalRecord]) -> None:
    assert left.sequence == right.sequence
    assert left.committed == right.committed
    left_orders, left_execs, _ = left.table.snapshot()
    right_orders, right_execs, _ = right.table.snapshot()
    assert sorted(left_orders, key=lambda o: o.order_id) == sorted(
        right_orders, key=lambda o: o.order_id
    )
    assert left_execs == right_execs
    assert left.table.open_orders() == right.table.open_orders()
    assert left.controls.snapshot() == right.controls.snapshot()  # positions and halts
    for record in records:
        if not isinstance(record.update, OrderUpdate):
            continue
        spec = record.update.order.spec
        assert left.table.by_key(*spec.key) == right.table.by_key(*spec.key)
        if isinstance(record.event, ReplaceRequested):
            # Every replace_id stays known: a retry returns the order after any restart.
            replace_id = record.event.terms.replace_id
            assert left.replace_request(spec.account, replace_id) == right.replace_request(
                spec.account, replace_id
            )
            assert left.replace_request(spec.account, replace_id) is not None


@settings(max_examples=200, deadline=None)
@given(st.lists(steps, min_size=1, max_size=60), st.data())
def test_checkpoint_plus_tail_equals_full_replay(
    script: list[tuple[int, int, int]], data: st.DataObject
) -> None:
    records = history(script)
    full = Ledger()
    full.replay(records)
    if not records:
        assert recovered(records, None).sequence == 0
        return
    at = data.draw(st.integers(1, len(records)), label="checkpoint after record")
    assert_same(recovered(records, checkpoint_bytes(records, at)), full, records)
    assert_same(recovered(records, None), full, records)


@settings(max_examples=100, deadline=None)
@given(st.lists(steps, min_size=2, max_size=40), st.data())
def test_a_kill_during_a_checkpoint_write_loses_nothing(
    script: list[tuple[int, int, int]], data: st.DataObject
) -> None:
    records = history(script)
    if len(records) < 2:
        return
    full = Ledger()
    full.replay(records)
    first = data.draw(st.integers(1, len(records) - 1), label="first checkpoint")
    second = data.draw(st.integers(first + 1, len(records)), label="second checkpoint")
    old, new = checkpoint_bytes(records, first), checkpoint_bytes(records, second)
    cut = data.draw(st.integers(0, len(new)), label="bytes of the new one written")
    with TemporaryDirectory() as directory:
        path = Path(directory) / "journal.db.checkpoint"
        path.write_bytes(old)
        # Killed mid-write: the temporary file holds a prefix; the rename never ran.
        path.with_name(f"{path.name}.tmp").write_bytes(new[:cut])
        assert_same(recovered(records, path.read_bytes()), full, records)
        # A file system that tore the checkpoint itself: refused, full replay instead.
        assert_same(recovered(records, new[:cut] if cut < len(new) else None), full, records)
        # The write completed: the new one is used.
        checkpoints.write(path, checkpoints.decode(new))
        assert checkpoints.read(path) == checkpoints.decode(new)
        assert_same(recovered(records, path.read_bytes()), full, records)


def test_a_torn_checkpoint_is_refused_not_misread() -> None:
    records = history([(0, 0, 1), (1, 0, 1), (2, 0, 4), (2, 0, 6), (0, 1, 1)])
    whole = checkpoint_bytes(records, len(records))
    for cut in range(len(whole)):
        try:
            checkpoints.decode(whole[:cut])
        except ValueError:
            continue
        raise AssertionError(f"a checkpoint cut at {cut} bytes decoded")
    flipped = bytearray(whole)
    flipped[-3] ^= 0x40
    try:
        checkpoints.decode(bytes(flipped))
    except ValueError:
        return
    raise AssertionError("a flipped byte went unnoticed")


# ------------------------------------------------------------- eviction
# Terminal orders may leave memory (gateway.engine.retention): the checkpoint
# then holds only their index, a late event of one after it reads it back from
# the journal during replay, and reads fetch it from the journal. None of it
# may change what a client sees of any order.


def retention_for(ledger: Ledger, journal: MemoryJournal) -> Retention:
    """The actor's retention layer over ``ledger``, driven directly (no actor)."""

    async def deliver(message: object) -> None:
        raise AssertionError("nothing is parked without an actor")

    retention = Retention(ledger, journal, EngineConfig(retention=0), deliver, lambda _: False)
    ledger.reload = retention.reload_blocking
    return retention


def evict(ledger: Ledger, order_ids: set[str]) -> None:
    for order_id in order_ids:
        order = ledger.table.get(order_id)
        if order is not None and order.is_terminal:
            ledger.table.evict(order_id)


async def observed(retention: Retention, ledger: Ledger) -> dict[str, object]:
    """Every answer a client can get: each order by id and by key, and every page."""
    seen: dict[str, object] = {}
    for index, order_id in enumerate(ORDERS):
        key = spec(index).key
        seen[order_id] = await retention.read(order_id)
        found = ledger.table.id_by_key(*key)
        seen[f"key {key}"] = None if found is None else await retention.read(found)
    for account in ("acct-0", "acct-1"):
        for size in (1, 2, 5):
            for open_only in (False, True):
                pages, after = [], 0
                for _ in range(len(ORDERS) + 1):  # bounded: one order per page at least
                    page, more = await retention.page(
                        ListOrdersQuery(account, size, open_only, frozenset(), after)
                    )
                    pages.append(page)
                    if not more:
                        break
                    after = page[-1].created_sequence
                seen[f"{account} {size} {open_only}"] = pages
    return seen


def assert_same_answers(recovered_: Ledger, full: Ledger, journal: MemoryJournal) -> None:
    reference = asyncio.run(observed(retention_for(full, journal), full))
    assert asyncio.run(observed(retention_for(recovered_, journal), recovered_)) == reference
    # Each order's exec ids, read back or in memory, as a full replay has them.
    for order_id in ORDERS:
        if recovered_.table.is_evicted(order_id):
            loaded = load_orders(journal, [order_id]).get(order_id)
            assert loaded is not None
            assert loaded[1] == full.table.exec_ids(order_id)
        else:
            assert recovered_.table.exec_ids(order_id) == full.table.exec_ids(order_id)


@settings(max_examples=150, deadline=None)
@given(st.lists(steps, max_size=50), st.data())
def test_eviction_changes_no_answer(
    script: list[tuple[int, int, int]], data: st.DataObject
) -> None:
    # Every order created, some ended (canceled, expired, rejected), late fills
    # after: what evicts orders, and what reads them back.
    def of(kinds: tuple[int, ...]) -> st.SearchStrategy[list[tuple[int, int, int]]]:
        index, amount = st.integers(0, len(ORDERS) - 1), st.integers(1, 20)
        return st.lists(st.tuples(st.sampled_from(kinds), index, amount), max_size=6)

    ends = data.draw(of((5, 7, 8)), label="ends")
    late = data.draw(of((2, 3)), label="late fills")
    script = [(0, index, 1) for index in range(len(ORDERS))] + script + ends
    checkpointed = history(script)
    records = history(script + late)
    if not records:
        return
    journal = MemoryJournal(records)
    full = Ledger()
    full.replay(records)
    last = max(len(checkpointed), 1)
    at = data.draw(st.one_of(st.just(last), st.integers(1, last)), label="checkpoint after record")
    gone = data.draw(
        st.one_of(st.just(set(ORDERS)), st.sets(st.sampled_from(ORDERS))),
        label="evicted before the checkpoint",
    )
    later = data.draw(st.sets(st.sampled_from(ORDERS)), label="evicted after recovery")
    # The checkpoint of a gateway that evicted ``gone`` (the terminal ones of them).
    ledger = Ledger()
    ledger.replay(records[:at])
    evict(ledger, gone)
    snapshot = ledger.snapshot()
    assert snapshot is not None
    sequence, orders, exec_ids, accounts = snapshot
    journal.checkpoint = checkpoints.encode(
        checkpoints.Checkpoint(sequence, 0, orders, exec_ids, list(accounts))
    )
    # Start-up: the checkpoint, then the tail (late events read evicted orders back).
    restarted = Ledger()
    retention_for(restarted, journal)
    found = journal.load_checkpoint()
    assert found is not None
    restarted.restore(found)
    restarted.replay(journal.replay(found.sequence), journal.last_sequence)
    assert restarted.sequence == full.sequence
    assert_same_answers(restarted, full, journal)
    evict(restarted, later)
    assert_same_answers(restarted, full, journal)


@settings(max_examples=60, deadline=None)
@given(st.lists(steps, min_size=2, max_size=40), st.data())
def test_a_kill_during_a_checkpoint_write_with_evictions_loses_nothing(
    script: list[tuple[int, int, int]], data: st.DataObject
) -> None:
    records = history(script)
    if len(records) < 2:
        return
    journal = MemoryJournal(records)
    full = Ledger()
    full.replay(records)
    at = data.draw(st.integers(1, len(records)), label="checkpoint after record")
    ledger = Ledger()
    ledger.replay(records[:at])
    evict(ledger, set(ORDERS))
    snapshot = ledger.snapshot()
    assert snapshot is not None
    sequence, orders, exec_ids, accounts = snapshot
    whole = checkpoints.encode(
        checkpoints.Checkpoint(sequence, 0, orders, exec_ids, list(accounts))
    )
    cut = data.draw(st.integers(0, len(whole)), label="bytes written")
    # A torn file is refused (full replay); a whole one is used. Both answer alike.
    journal.checkpoint = whole[:cut]
    restarted = Ledger()
    retention_for(restarted, journal)
    found = journal.load_checkpoint()
    assert (found is not None) == (cut == len(whole))
    if found is not None:
        restarted.restore(found)
    restarted.replay(journal.replay(found.sequence if found else 0), journal.last_sequence)
    assert_same_answers(restarted, full, journal)
