"""Positions and halts in the ledger: durable view, replay, checkpoints old and new, inspection."""

from __future__ import annotations

import struct
import zlib
from datetime import UTC, datetime
from decimal import Decimal

import msgspec

from gateway.domain import (
    Fill,
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderCreated,
    OrderFilled,
    OrderSpec,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from gateway.domain.controls import (
    ControlState,
    PositionChanged,
    TradingHalt,
    TradingMode,
    TradingStateChanged,
)
from gateway.engine.ledger import Ledger
from gateway.journal import checkpoint as checkpoints
from gateway.journal.inspect import format_jsonl, format_table
from gateway.risk.exposure import OpenExposure

T0 = datetime(2026, 1, 2, 14, 30, tzinfo=UTC)
D = Decimal


def spec(client_order_id: str, side: Side = Side.BUY, quantity: str = "10") -> OrderSpec:
    return OrderSpec(
        "acct-1", client_order_id, "AAPL", side, OrderType.LIMIT, D(quantity),
        TimeInForce.GTC, limit_price=D("100"),
    )  # fmt: skip


def filled(ledger: Ledger, order_id: str, exec_id: str, quantity: str, price: str) -> None:
    ledger.emit(OrderFilled(order_id, Fill(exec_id, D(quantity), D(price), T0), T0))


def test_a_fill_is_followed_by_its_position_change_and_reads_see_it_once_committed() -> None:
    ledger = Ledger()
    ledger.emit(OrderCreated("o-1", spec("c-1"), T0))
    ledger.emit(OrderAccepted("o-1", "B-1", T0))
    ledger.take_pending()
    ledger.committed_through(ledger.sequence)
    filled(ledger, "o-1", "x-1", "4", "100")
    records = ledger.take_pending()
    assert [type(r.event) for r in records] == [OrderFilled, PositionChanged]
    assert [r.sequence for r in records] == [3, 4]
    assert ledger.controls.durable_positions("acct-1", frozenset()) == []  # not yet durable
    assert ledger.controls.position("acct-1", "AAPL") is not None  # what the next fill builds on
    ledger.committed_through(4)
    (position,) = ledger.controls.durable_positions("acct-1", frozenset())
    assert (position.quantity, position.average_cost) == (D(4), D(100))
    assert ledger.controls.durable_positions("acct-1", frozenset({"MSFT"})) == []


def test_a_halt_is_hidden_until_durable_but_applies_at_once() -> None:
    ledger = Ledger()
    halt = TradingHalt("acct-1", TradingMode.REDUCING, "drill", "ops", T0)
    ledger.emit_control(TradingStateChanged(halt, T0))
    assert ledger.controls.mode("acct-1") is TradingMode.REDUCING
    assert ledger.controls.mode("acct-2") is TradingMode.ACTIVE
    assert ledger.controls.durable_halts() == []
    ledger.committed_through(ledger.sequence)
    assert ledger.controls.durable_halts() == [halt]
    everywhere = TradingHalt("", TradingMode.HALTED, "all", "ops", T0)
    ledger.emit_control(TradingStateChanged(everywhere, T0))
    assert ledger.controls.mode("acct-1") is TradingMode.HALTED  # the stricter of the two
    lifted = TradingHalt("acct-1", TradingMode.ACTIVE, "done", "ops", T0)
    ledger.emit_control(TradingStateChanged(lifted, T0))
    ledger.committed_through(ledger.sequence)
    assert ledger.controls.durable_halts() == [everywhere]


def test_replay_and_a_checkpoint_rebuild_positions_and_halts() -> None:
    live = Ledger()
    live.emit(OrderCreated("o-1", spec("c-1"), T0))
    filled(live, "o-1", "x-1", "10", "100")
    live.emit(OrderCreated("o-2", spec("c-2", Side.SELL, "15"), T0))
    filled(live, "o-2", "x-2", "15", "120")
    halt = TradingHalt("", TradingMode.HALTED, "eod", "ops", T0)
    live.emit_control(TradingStateChanged(halt, T0))
    records = live.take_pending()
    live.committed_through(live.sequence)

    replayed = Ledger()
    replayed.replay(records)
    assert replayed.controls.snapshot() == live.controls.snapshot()
    position = replayed.controls.position("acct-1", "AAPL")
    assert position is not None
    assert (position.quantity, position.realized_pnl) == (D(-5), D(200))

    snapshot = live.snapshot()
    assert snapshot is not None
    sequence, orders, exec_ids, accounts = snapshot
    controls = live.controls.snapshot()
    data = checkpoints.encode(
        checkpoints.Checkpoint(sequence, 0, orders, exec_ids, list(accounts), controls)
    )
    restored = Ledger()
    restored.restore(checkpoints.decode(data))
    assert restored.controls.snapshot() == live.controls.snapshot()
    assert restored.exposure.open_orders("acct-1") == 0


def test_a_checkpoint_written_before_controls_existed_still_loads() -> None:
    body = checkpoints._encoder.encode(
        [checkpoints.CHECKPOINT_VERSION, 7, 0, [], []]  # the body's five fields of old
    )
    header = struct.Struct(">8sQQI").pack(checkpoints.MAGIC, 7, len(body), zlib.crc32(body))
    loaded = checkpoints.decode(header + body)
    assert loaded.sequence == 7
    assert loaded.controls == ControlState()


def test_open_exposure_follows_an_order_through_its_life() -> None:
    exposure = OpenExposure()
    created = Order("o-1", spec("c-1"), OrderStatus.PENDING_NEW, T0, T0, 1)
    exposure.track(None, created)
    assert exposure.open_orders("acct-1") == 1
    assert exposure.working("acct-1", "AAPL", Side.BUY) == 10
    accepted = created.evolve(status=OrderStatus.ACCEPTED)
    exposure.track(created, accepted)
    part = accepted.evolve(status=OrderStatus.PARTIALLY_FILLED, filled_quantity=D(4))
    exposure.track(accepted, part)
    assert exposure.working("acct-1", "AAPL", Side.BUY) == 6
    assert exposure.working("acct-1", "AAPL", Side.SELL) == 0
    canceled = part.evolve(status=OrderStatus.CANCELED)
    exposure.track(part, canceled)
    assert exposure.open_orders("acct-1") == 0
    assert exposure.working("acct-1", "AAPL", Side.BUY) == 0
    exposure.track(canceled, canceled.evolve(filled_quantity=D(5)))  # a late fill
    assert exposure.working("acct-1", "AAPL", Side.BUY) == 0


def test_the_journal_inspector_shows_control_records() -> None:
    ledger = Ledger()
    ledger.emit(OrderCreated("o-1", spec("c-1"), T0))
    filled(ledger, "o-1", "x-1", "3", "99.5")
    ledger.emit(OrderCanceled("o-1", T0))
    halt = TradingHalt("acct-1", TradingMode.HALTED, "drill", "ops", T0)
    ledger.emit_control(TradingStateChanged(halt, T0))
    records = ledger.take_pending()
    table = list(format_table(records))
    assert any("position" in line and "quantity=3" in line for line in table)
    assert any("trading_state" in line and "HALTED" in line for line in table)
    lines = [msgspec.json.decode(line) for line in format_jsonl(records)]
    assert [line.get("type") for line in lines if "type" in line] == ["position", "trading_state"]
