"""The journal boundary: an append-only, sequenced log of order events.

Each record holds the event (the truth, re-applied on recovery). Appended
and read records also carry the update it produced (the order's state after
it, what subscribers replay); a store may keep the event alone and derive
the update when read.
``append`` returns only once the records are durable: the engine answers a
client or streams an update only after that.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.domain import Order, OrderUpdate
from gateway.domain.controls import AnyUpdate, ControlState, JournalEvent
from gateway.journal.checkpoint import Checkpoint
from gateway.journal.order_index import AccountIndex


@dataclass(frozen=True, slots=True)
class JournalRecord:
    """One event with its gateway-wide sequence and resulting update."""

    event: JournalEvent
    update: AnyUpdate

    @property
    def sequence(self) -> int:
        return self.update.sequence


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A record as replay reads it back: its sequence and event.

    ``update`` is set for records of journal formats 1 and 2, which stored
    the order's state beside the event; format 3 stores the event alone
    and replay derives the state, as it did for live events.
    """

    sequence: int
    event: JournalEvent
    update: OrderUpdate | None = None


class Journal(Protocol):
    """Durable storage for the order event log."""

    @property
    def last_sequence(self) -> int:
        """The newest sequence stored or reserved (0: none); the next record must be after it.

        It can be above the newest stored record: after a recovery that dropped
        damaged records, numbers they may have used stay reserved, so no
        sequence a client has seen ever names a different update.
        """

    def replay(self, after_sequence: int = 0) -> Iterable[StoredEvent | JournalRecord]:
        """Yield the stored records after ``after_sequence`` in order (used once, at start)."""

    def load_checkpoint(self) -> Checkpoint | None:
        """The newest usable checkpoint of the table (None: replay everything). Blocking."""

    def save_checkpoint(
        self,
        sequence: int,
        orders: list[Order],
        exec_ids: dict[str, tuple[str, ...]],
        accounts: Iterable[AccountIndex],
        controls: ControlState | None = None,
    ) -> int:
        """Store the table as of durable ``sequence`` as the checkpoint; return its size.

        ``accounts`` is the index of the orders not in ``orders`` (evicted:
        see ``gateway.engine.retention``); it must be stored with them, as
        ``Checkpoint.accounts``, and given back by ``load_checkpoint``:
        without it those orders' client keys are forgotten. (Storing
        ``checkpoint.encode(Checkpoint(..., list(accounts), controls))`` as
        one blob does it.) ``controls`` (positions and halts; None: none) is
        stored and given back the same way. Blocking; run off the event loop.
        Atomic: a crash mid-way leaves the previous checkpoint.
        """

    def order_events(
        self, order_ids: Collection[str]
    ) -> dict[str, list[StoredEvent | JournalRecord]]:
        """Every stored record of each of ``order_ids``, oldest first, by order id.

        Ids with no record are left out. This is how an order that left
        memory is read back (folded through the state machine, as replay
        does); a store needs an index on the records' order id for it.
        Blocking, and safe to call from any thread while ``append`` runs:
        run it off the event loop. Raises ``JournalError`` on a damaged record.
        """

    async def append(self, records: Sequence[JournalRecord]) -> None:
        """Store ``records`` (increasing sequences) durably, as one commit."""

    async def read(self, after_sequence: int, up_to: int, limit: int) -> list[JournalRecord]:
        """Return up to ``limit`` records with after_sequence < sequence <= up_to."""

    async def close(self) -> None:
        """Flush and release the storage."""
