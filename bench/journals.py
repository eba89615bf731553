"""Large journals for the recovery and memory scenarios, written through the journal API.

``python -m bench.journals --path P --orders N --first K [--open M]`` appends
N orders of two events each to the SQLite journal at P, in big group commits,
numbering client order ids from K: filled ones (created, then one fill of the
whole quantity), of which the last M are open instead (created, then
accepted: resting limit orders). With ``--checkpoint`` it also writes the
checkpoint a gateway running with ``--retention`` leaves (the open orders and
the index of the evicted, terminal ones), directly: a journal of 10M events
is built in minutes this way rather than run through a gateway for hours.
It runs in its own process so that the benchmark's own memory and timings are
not disturbed, and prints one JSON line: records written and seconds taken.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from array import array
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from gateway.domain import (
    Fill,
    Order,
    OrderAccepted,
    OrderCreated,
    OrderFilled,
    OrderSpec,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
)
from gateway.domain.enums import TimeInForce
from gateway.journal import JournalRecord, SqliteJournal
from gateway.journal.order_index import AccountIndex

BATCH = 20_000  # records per commit: large, as a busy actor's batches add up
_SYMBOLS = ("AAPL", "MSFT", "NVDA", "SPY")


def open_order_records(index: int, sequence: int, now: datetime) -> list[JournalRecord]:
    """The two records of one resting limit order (created, accepted)."""
    order_id = f"01BENCH{index:019d}"
    spec = OrderSpec(
        f"acct-{index % 16}",
        f"r-{index:09d}",
        _SYMBOLS[index % 4],
        Side.BUY,
        OrderType.LIMIT,
        Decimal(1 + index % 500),
        TimeInForce.GTC,
        limit_price=Decimal("0.01"),
    )
    order = Order(order_id, spec, OrderStatus.PENDING_NEW, now, now, sequence, sequence)
    accepted_at = now + timedelta(milliseconds=1)
    accepted = order.evolve(
        status=OrderStatus.ACCEPTED,
        updated_at=accepted_at,
        last_sequence=sequence + 1,
        broker_order_id=f"SIM-{index}",
    )
    return [
        JournalRecord(OrderCreated(order_id, spec, now), OrderUpdate(sequence, order, now)),
        JournalRecord(
            OrderAccepted(order_id, f"SIM-{index}", accepted_at),
            OrderUpdate(sequence + 1, accepted, accepted_at),
        ),
    ]


def order_records(index: int, sequence: int, now: datetime) -> list[JournalRecord]:
    """The two records of one filled order, with sequences ``sequence`` and ``sequence + 1``.

    Built directly rather than through the state machine: this writes test
    data fast; the gateway re-applies every event through it at start.
    """
    order_id = f"01BENCH{index:019d}"
    quantity = Decimal(1 + index % 500)
    spec = OrderSpec(
        f"acct-{index % 16}",
        f"r-{index:09d}",
        _SYMBOLS[index % 4],
        Side.BUY if index % 2 else Side.SELL,
        OrderType.MARKET,
        quantity,
        TimeInForce.DAY,
    )
    created = OrderCreated(order_id, spec, now)
    order = Order(order_id, spec, OrderStatus.PENDING_NEW, now, now, sequence, sequence)
    price = Decimal(10_000 + index % 9_000) / 100
    filled_at = now + timedelta(milliseconds=2)
    fill = Fill(f"SIM-{index}-1", quantity, price, filled_at)
    filled = OrderFilled(order_id, fill, filled_at, f"SIM-{index}")
    done = Order(
        order_id,
        spec,
        OrderStatus.FILLED,
        now,
        filled_at,
        sequence,
        sequence + 1,
        broker_order_id=f"SIM-{index}",
        filled_quantity=quantity,
        fill_notional=price * quantity,
    )
    return [
        JournalRecord(created, OrderUpdate(sequence, order, now)),
        JournalRecord(filled, OrderUpdate(sequence + 1, done, filled_at, fill)),
    ]


async def build(
    path: Path, orders: int, first: int, open_orders: int = 0, *, checkpoint: bool = False
) -> dict[str, float]:
    journal = SqliteJournal.open(path)
    sequence = journal.last_sequence
    started = time.perf_counter()
    base = datetime.now(UTC) - timedelta(hours=1)
    batch: list[JournalRecord] = []
    first_open = first + orders - open_orders
    index_of = _Index() if checkpoint else None
    for index in range(first, first + orders):
        records = open_order_records if index >= first_open else order_records
        made = records(index, sequence + 1, base + timedelta(microseconds=index))
        batch += made
        if index_of is not None:
            last = made[-1].update
            assert isinstance(last, OrderUpdate)
            index_of.add(last.order)
        sequence += 2
        if len(batch) >= BATCH:
            await journal.append(batch)
            batch = []
    if batch:
        await journal.append(batch)
    written = time.perf_counter() - started
    if index_of is not None:
        # What a gateway that ran with --retention leaves: the open orders, and the
        # index of the terminal ones (evicted) that finds them in the journal.
        journal.save_checkpoint(sequence, index_of.open, {}, index_of.accounts())
    await journal.close()
    return {"records": 2 * orders, "seconds": written}


_Columns = tuple["array[int]", list[str], list[str | None], list[str | None]]


class _Index:
    """The checkpoint of a table whose terminal orders are all evicted."""

    def __init__(self) -> None:
        self.open: list[Order] = []
        self._columns: dict[
            str, tuple[array[int], list[str], list[str | None], list[str | None]]
        ] = {}

    def add(self, order: Order) -> None:
        account = order.spec.account
        columns = self._columns.get(account)
        if columns is None:
            columns = self._columns[account] = (array("q"), [], [], [])
        sequences, order_ids, client_ids, broker_ids = columns
        sequences.append(order.created_sequence)
        order_ids.append(order.order_id)
        if order.is_terminal:
            client_ids.append(order.spec.client_order_id)
            broker_ids.append(order.broker_order_id)
        else:
            self.open.append(order)
            client_ids.append(None)
            broker_ids.append(None)

    def accounts(self) -> list[AccountIndex]:
        # The checkpoint's int64s are little-endian, as on every machine this runs on.
        return [
            AccountIndex(account, sequences.tobytes(), ids, clients, brokers)
            for account, (sequences, ids, clients, brokers) in self._columns.items()
        ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.journals")
    parser.add_argument("--path", type=Path, required=True)
    parser.add_argument("--orders", type=int, required=True)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--open", type=int, default=0, help="the last N orders stay open")
    parser.add_argument(
        "--checkpoint",
        action="store_true",
        help="also write the checkpoint of a gateway whose terminal orders are all evicted",
    )
    args = parser.parse_args()
    built = build(args.path, args.orders, args.first, args.open, checkpoint=args.checkpoint)
    print(json.dumps(asyncio.run(built)))


if __name__ == "__main__":
    main()
