"""The ledger: the order table, its sequence numbers and the durable view.

Synchronous and single-owner (the actor's task), with no asyncio in it, so
it is unit-tested on its own. Every change is an event: ``emit`` applies
it, gives it the next sequence and keeps the record until the actor hands
the batch to the journal (``take_pending``) and reports it durable
(``committed_through``). Reads (``durable``, ``find_durable``) see the
table as of the last commit: changes not yet durable are hidden, so no
client ever reads a state a crash could take back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime

from gateway.domain import (
    IllegalTransition,
    Order,
    OrderEvent,
    OrderFilled,
    OrderRef,
    OrderUpdate,
    ReplaceRequested,
    ReplaceTerms,
    apply_event,
)
from gateway.domain.controls import (
    ControlEvent,
    PositionChanged,
    PositionUpdate,
    apply_fill,
    control_update,
    flat,
)
from gateway.engine.control_book import ControlBook
from gateway.engine.interpret import execution_key
from gateway.engine.order_table import OrderTable
from gateway.journal import JournalRecord
from gateway.journal.base import StoredEvent
from gateway.journal.checkpoint import Checkpoint
from gateway.journal.order_index import AccountIndex
from gateway.risk.exposure import OpenExposure

log = logging.getLogger(__name__)


class Ledger:
    """Orders, their sequence and what of them is durable."""

    def __init__(self) -> None:
        self.table = OrderTable()
        self.sequence = 0  # the last assigned
        self.committed = 0  # the last durable
        self._pending: list[JournalRecord] = []
        # Orders changed since the last commit, as they were at it (None: new).
        self._before_commit: dict[str, Order | None] = {}
        self._last_record = 0  # the sequence of the newest record (the floor may be above)
        # Positions and halts, and what pre-trade risk needs of the open orders.
        self.controls = ControlBook()
        self.exposure = OpenExposure()
        # Replace requests by (account, replace_id): the order and the terms
        # asked. Built from the orders' own ``replaces`` (checkpoint) and from
        # each ReplaceRequested applied (live or replayed).
        self._replaces: dict[tuple[str, str], tuple[str, ReplaceTerms]] = {}
        # Replay meeting an evicted order: ``reload(order_id, before_sequence)``
        # puts it back into the table as of its records before that sequence.
        self.reload: Callable[[str, int], Order | None] | None = None

    # -------------------------------------------------------------- writes

    def emit(self, event: OrderEvent) -> Order:
        """Apply ``event`` as the next sequence; return the order after it.

        Raise IllegalTransition (and change nothing) if the order's state
        machine refuses it. An event that changes nothing (a duplicate ack)
        gets no sequence and no record: the order is returned as it was.
        """
        order_id = event.order_id
        before = self.table.get(order_id)
        after = apply_event(before, event, self.sequence + 1)
        if (
            before is not None
            # A new status or fill is a change: the full comparison (a copy and
            # thirteen fields) only runs when neither moved.
            and after.status is before.status
            and after.filled_quantity == before.filled_quantity
            and before
            == after.evolve(updated_at=before.updated_at, last_sequence=before.last_sequence)
        ):
            return before
        if order_id not in self._before_commit:
            self._before_commit[order_id] = before
        self.sequence += 1
        fill = event.fill if isinstance(event, OrderFilled) else None
        record = JournalRecord(
            event, OrderUpdate(self.sequence, after, event.time, fill, kind=event.kind)
        )
        self._put(record, after, before)
        self._pending.append(record)
        if before is not None and after.filled_quantity != before.filled_quantity:
            self._move_position(before, after, event.time)
        return after

    def emit_control(self, event: ControlEvent) -> None:
        """Record a control event (a halt, a position change) as the next sequence."""
        self.sequence += 1
        self._last_record = self.sequence
        self.controls.apply(event)
        self._pending.append(JournalRecord(event, control_update(self.sequence, event)))

    def _move_position(self, before: Order, after: Order, time: datetime) -> None:
        """Follow a change of ``after``'s filled quantity with its position's change.

        From the order's totals, not the fill: a fill inside a provisional total
        moves nothing, and a total booked from the broker moves it by its own amount.
        """
        spec = after.spec
        position = self.controls.position(spec.account, spec.symbol) or flat(
            spec.account, spec.symbol, time
        )
        moved = apply_fill(
            position,
            spec.side,
            after.filled_quantity - before.filled_quantity,
            after.fill_notional - before.fill_notional,
            time,
        )
        # emit_control, spelled out: this runs for every fill.
        self.sequence += 1
        self._last_record = sequence = self.sequence
        self.controls.put_position(moved)
        update = PositionUpdate(sequence, moved, after.order_id, time)
        self._pending.append(JournalRecord(PositionChanged(after.order_id, moved, time), update))

    def take_pending(self) -> list[JournalRecord]:
        """Hand over the records emitted since the last call, for one commit."""
        pending, self._pending = self._pending, []
        return pending

    def committed_through(self, sequence: int) -> None:
        """Everything up to ``sequence`` is durable: reads may see it."""
        self.committed = sequence
        self._before_commit.clear()
        self.controls.committed()

    def restore(self, checkpoint: Checkpoint) -> None:
        """Start from ``checkpoint``: the table as of its sequence, all durable.

        The records after it then go through ``replay``, like live ones.
        """
        if len(self.table) or self.sequence:
            raise RuntimeError("a checkpoint is restored into an empty ledger only")
        self.table.restore(checkpoint.orders, checkpoint.exec_ids, checkpoint.accounts)
        self.controls.restore(checkpoint.controls)
        for order in self.table.open_orders():
            self.exposure.track(None, order)
        for order in checkpoint.orders:
            for terms in order.replaces:
                self._replaces[(order.spec.account, terms.replace_id)] = (order.order_id, terms)
        self.sequence = self.committed = self._last_record = checkpoint.sequence

    def snapshot(
        self,
    ) -> tuple[int, list[Order], dict[str, tuple[str, ...]], Iterable[AccountIndex]] | None:
        """The table as of the last commit, for a checkpoint; None while changes are pending."""
        if self._pending or self._before_commit or self.sequence != self.committed:
            return None
        if self.committed != self._last_record:
            return None  # numbering resumed above a floor: no record there to anchor it
        orders, exec_ids, accounts = self.table.snapshot()
        return self.committed, orders, exec_ids, accounts

    def replay(self, records: Iterable[StoredEvent | JournalRecord], floor: int = 0) -> int:
        """Re-apply journaled ``records`` (all durable); return how many there were.

        The one path for replayed records: each event is applied by the same
        state machine as a live one, and its update is built as ``emit``
        builds it. ``floor`` is a sequence the journal reserved: numbering
        resumes after the larger of it and the last record.
        """
        count = 0
        table = self.table
        for record in records:
            event, sequence = record.event, record.sequence
            if isinstance(event, ControlEvent):
                self.controls.apply(event, durable=True)
                self._last_record = self.sequence = sequence
                count += 1
                continue
            # Only records of journal formats 1 and 2 (and the memory journal's) carry one.
            stored = record.update if isinstance(record.update, OrderUpdate) else None
            before = table.get(event.order_id)
            if before is None and self.reload is not None and table.is_evicted(event.order_id):
                # A late event of an order the checkpoint holds as evicted.
                before = self.reload(event.order_id, sequence)
            try:
                order = apply_event(before, event, sequence)
            except IllegalTransition as exc:
                # Only a bug writes such a record, and refusing to start over it
                # would be a crash loop. What clients were told is kept: the
                # stored state if there is one, else the order as it was.
                log.error("journal record %d does not replay (%s); kept as stored", sequence, exc)
                fallback = stored.order if stored is not None else before
                if fallback is None:
                    self.sequence = sequence
                    count += 1
                    continue
                order = fallback
            if stored is not None and order != stored.order:
                log.warning("journal record %d disagrees with its replay", sequence)
            fill = event.fill if isinstance(event, OrderFilled) else None
            update = OrderUpdate(sequence, order, event.time, fill, kind=event.kind)
            self._put(JournalRecord(event, update), order, before)
            self.sequence = sequence
            count += 1
        self.sequence = max(self.sequence, floor)
        self.committed = self.sequence
        return count

    def _put(self, record: JournalRecord, order: Order, before: Order | None) -> None:
        """Put a record's result (``order``, formerly ``before``) into the table:
        the one path for live and replay."""
        self._last_record = record.sequence
        self.exposure.track(before, order)
        self.table.put(order)
        event = record.event
        if isinstance(event, OrderFilled):
            self.table.add_exec(order.order_id, event.fill.exec_id)
            if event.cumulative_quantity is not None:
                # Also by its place in the order, so a repeat under another id is known.
                self.table.add_exec(order.order_id, execution_key(event.cumulative_quantity))
        elif isinstance(event, ReplaceRequested):
            self._replaces[(order.spec.account, event.terms.replace_id)] = (
                order.order_id,
                event.terms,
            )

    # --------------------------------------------------------------- reads

    def replace_request(self, account: str, replace_id: str) -> tuple[str, ReplaceTerms] | None:
        """The order and terms of ``account``'s replace ``replace_id`` (durable or not)."""
        return self._replaces.get((account, replace_id))

    def booked(self, order_id: str, exec_id: str) -> bool:
        """Whether execution ``exec_id`` is applied to ``order_id`` (durable or not)."""
        return self.table.has_exec(order_id, exec_id)

    def durable(self, order: Order) -> Order | None:
        """``order`` as of the last commit: None if it was created since."""
        if order.last_sequence <= self.committed:
            return order
        return self._before_commit[order.order_id]

    def find_durable(self, ref: OrderRef) -> Order | None:
        """The order ``ref`` names, as of the last commit."""
        found = self.table.find(ref)
        return None if found is None else self.durable(found)
