"""Durable session state: sequence numbers, sent messages, and our orders' terms.

One SQLite file beside the journal (WAL, ``synchronous=NORMAL``: a commit
survives ``kill -9`` of the gateway; a power cut may lose the last ones, as
it may the journal's in the same mode). What each table is for:

- ``session``: the next sequence number to send and to expect, so that a
  restarted gateway continues the FIX session instead of starting a new one;
- ``sent``: every application message sent, by sequence number, so that a
  ``ResendRequest`` can be answered with the messages themselves (admin
  messages are not kept: they are gap-filled);
- ``orders``: ClOrdID -> account, symbol, side and quantity, because an
  ``OrderCancelRequest`` must repeat them, and reports that lack tag 1
  (Account) must still find their gateway account after a restart;
- ``aliases``: the ClOrdIDs of our replace requests -> the order's own, because
  after a replace the venue names the order by the replace's ClOrdID, and the
  next request must name it so too (OrigClOrdID).

A sequence number is stored before its message is written to the socket, so a
crash between the two can never make the gateway reuse one.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gateway.brokers.fix.codec import Field, decode_body, encode_body

_SCHEMA = """
CREATE TABLE IF NOT EXISTS session (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    next_out INTEGER NOT NULL,
    next_in INTEGER NOT NULL,
    started TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sent (
    seq INTEGER PRIMARY KEY,
    msg_type TEXT NOT NULL,
    sending_time TEXT NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS aliases (
    cl_ord_id TEXT PRIMARY KEY,
    original TEXT NOT NULL,
    accepted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS orders (
    cl_ord_id TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    quantity TEXT NOT NULL,
    order_id TEXT NOT NULL DEFAULT '',
    -- The venue's last word on the order (OrdStatus, CumQty, AvgPx): the FIX
    -- session delivers every report, in order, so this is its current view.
    ord_status TEXT NOT NULL DEFAULT '',
    cum_qty TEXT NOT NULL DEFAULT '',
    avg_px TEXT NOT NULL DEFAULT ''
);
"""


@dataclass(frozen=True, slots=True)
class SentMessage:
    seq: int
    msg_type: str
    sending_time: datetime
    body: tuple[Field, ...]


@dataclass(frozen=True, slots=True)
class OrderTerms:
    """What a cancel must repeat about an order (FIX 4.4: Side, Symbol, OrderQty)."""

    account: str
    symbol: str
    side: str
    quantity: str
    order_id: str = ""
    ord_status: str = ""
    cum_qty: str = ""
    avg_px: str = ""


class SessionStore:
    """Sequence numbers and sent messages of one FIX session; ``":memory:"`` for tests."""

    def __init__(self, path: Path | str) -> None:
        if isinstance(path, Path):
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT next_out, next_in, started FROM session").fetchone()
        if row is None:
            never = datetime.min.replace(tzinfo=UTC).isoformat()  # no session day yet
            self._db.execute("INSERT INTO session VALUES (1, 1, 1, ?)", (never,))
            row = (1, 1, never)
        self.next_out: int = row[0]
        self.next_in: int = row[1]
        self.started = datetime.fromisoformat(row[2])

    def close(self) -> None:
        self._db.close()

    def set_next_in(self, seq: int) -> None:
        self.next_in = seq
        self._db.execute("UPDATE session SET next_in = ?", (seq,))

    def set_next_out(self, seq: int) -> None:
        self.next_out = seq
        self._db.execute("UPDATE session SET next_out = ?", (seq,))

    def take_out(self, msg_type: str, now: datetime, body: tuple[Field, ...] | None) -> int:
        """Allocate the next outgoing number (and keep ``body`` for resends) durably."""
        seq = self.next_out
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("UPDATE session SET next_out = ?", (seq + 1,))
            if body is not None:
                self._db.execute(
                    "INSERT OR REPLACE INTO sent VALUES (?, ?, ?, ?)",
                    (seq, msg_type, now.isoformat(), encode_body(body)),
                )
        self.next_out = seq + 1
        return seq

    def sent_between(self, begin: int, end: int) -> list[SentMessage]:
        """Kept messages with ``begin <= seq <= end``, in order."""
        rows = self._db.execute(
            "SELECT seq, msg_type, sending_time, body FROM sent WHERE seq BETWEEN ? AND ? "
            "ORDER BY seq",
            (begin, end),
        )
        return [
            SentMessage(seq, kind, datetime.fromisoformat(when), decode_body(body))
            for seq, kind, when, body in rows
        ]

    def reset(self, started: datetime) -> None:
        """Start a new session day: both numbers back to 1, sent messages forgotten."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "UPDATE session SET next_out = 1, next_in = 1, started = ?",
                (started.isoformat(),),
            )
            self._db.execute("DELETE FROM sent")
        self.next_out = self.next_in = 1
        self.started = started

    def open_orders(self) -> list[tuple[str, OrderTerms]]:
        """Our orders whose last known OrdStatus is not final (for ``open_orders``)."""
        rows = self._db.execute(
            "SELECT cl_ord_id, account, symbol, side, quantity, order_id, ord_status, cum_qty, "
            "avg_px FROM orders WHERE ord_status NOT IN ('2', '3', '4', '8', 'C')"
        )
        return [(row[0], OrderTerms(*row[1:])) for row in rows]

    def remember_order(self, cl_ord_id: str, terms: OrderTerms) -> OrderTerms | None:
        """Record an order's terms; return the terms already kept under ``cl_ord_id``."""
        existing = self.order(cl_ord_id)
        if existing is None:
            self._db.execute(
                "INSERT INTO orders (cl_ord_id, account, symbol, side, quantity) "
                "VALUES (?, ?, ?, ?, ?)",
                (cl_ord_id, terms.account, terms.symbol, terms.side, terms.quantity),
            )
        return existing

    def record_report(
        self, cl_ord_id: str, order_id: str, ord_status: str, cum_qty: str, avg_px: str
    ) -> None:
        """Keep the venue's latest view of one of our orders (from any report on it)."""
        self._db.execute(
            "UPDATE orders SET order_id = CASE WHEN ? = '' THEN order_id ELSE ? END, "
            "ord_status = ?, cum_qty = ?, avg_px = ? WHERE cl_ord_id = ?",
            (order_id, order_id, ord_status, cum_qty, avg_px, cl_ord_id),
        )

    def order(self, cl_ord_id: str) -> OrderTerms | None:
        row = self._db.execute(
            "SELECT account, symbol, side, quantity, order_id, ord_status, cum_qty, avg_px "
            "FROM orders WHERE cl_ord_id = ?",
            (cl_ord_id,),
        ).fetchone()
        return None if row is None else OrderTerms(*row)

    def add_alias(self, cl_ord_id: str, original: str) -> bool:
        """Record a replace's ClOrdID for ``original``; False if it was recorded before."""
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO aliases (cl_ord_id, original) VALUES (?, ?)",
            (cl_ord_id, original),
        )
        return cursor.rowcount == 1

    def original(self, cl_ord_id: str) -> str | None:
        """The order's own ClOrdID for a replace's ClOrdID (None: not an alias)."""
        row = self._db.execute(
            "SELECT original FROM aliases WHERE cl_ord_id = ?", (cl_ord_id,)
        ).fetchone()
        return None if row is None else str(row[0])

    def accept_alias(self, cl_ord_id: str, quantity: str) -> None:
        """The venue took the replace: the order goes by ``cl_ord_id`` now, for ``quantity``."""
        original = self.original(cl_ord_id)
        if original is None:
            return
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "UPDATE aliases SET accepted = (SELECT COALESCE(MAX(accepted), 0) + 1 FROM "
                "aliases WHERE original = ?) WHERE cl_ord_id = ? AND accepted = 0",
                (original, cl_ord_id),
            )
            if quantity:
                self._db.execute(
                    "UPDATE orders SET quantity = ? WHERE cl_ord_id = ?", (quantity, original)
                )

    def current(self, original: str) -> str:
        """The ClOrdID the venue knows the order by now (its last accepted replace's)."""
        row = self._db.execute(
            "SELECT cl_ord_id FROM aliases WHERE original = ? AND accepted > 0 "
            "ORDER BY accepted DESC LIMIT 1",
            (original,),
        ).fetchone()
        return original if row is None else str(row[0])

    def replace_accepted(self, cl_ord_id: str) -> bool:
        row = self._db.execute(
            "SELECT accepted FROM aliases WHERE cl_ord_id = ?", (cl_ord_id,)
        ).fetchone()
        return row is not None and row[0] > 0
