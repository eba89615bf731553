"""Who waits for which answer from the counterparty, and which reports came already.

FIX answers arrive on the session, not on the request: a NewOrderSingle is
answered by the order's first ExecutionReport (found by ClOrdID), a status
question by reports naming its OrdStatusReqID or MassStatusReqID, and a
reject of any of our messages names it by RefSeqNum. ``Waiters`` keeps those
expectations for the adapter; ``RecentExecIds`` remembers ExecIDs already
applied, to drop repeats (PossDupFlag/PossResend).

Bounded: kept references to sent messages and remembered ExecIDs are capped
(the oldest are forgotten first); pending questions end with their caller's
timeout, or all at once when the connection is lost.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gateway.brokers.base import BrokerOrderState, ReplaceAck, SubmitAck
from gateway.brokers.errors import BrokerTimeout

T = TypeVar("T")


@dataclass(slots=True)
class MassStatus:
    """One OrderMassStatusRequest being answered."""

    done: asyncio.Future[None]
    states: list[BrokerOrderState] = field(default_factory=list)


class Waiters:
    """The questions out at the counterparty, by the key its answer will carry."""

    def __init__(self, max_refs: int = 100_000) -> None:
        self.acks: dict[str, asyncio.Future[SubmitAck]] = {}
        self.status: dict[str, tuple[str, asyncio.Future[BrokerOrderState | None]]] = {}
        self.mass: dict[str, MassStatus] = {}
        self.replaces: dict[str, asyncio.Future[ReplaceAck]] = {}
        self._refs: OrderedDict[int, tuple[str, str]] = OrderedDict()
        self._max_refs = max_refs

    def ack_for(self, cl_ord_id: str) -> asyncio.Future[SubmitAck]:
        """The future an order's first report resolves (one per ClOrdID, shared)."""
        return _shared_future(self.acks, cl_ord_id)

    def answer_ack(self, cl_ord_id: str, answer: SubmitAck | BaseException) -> None:
        _answer(self.acks, cl_ord_id, answer)

    def replace_for(self, cl_ord_id: str) -> asyncio.Future[ReplaceAck]:
        """The future a replace's answer resolves (by the replace's ClOrdID, shared)."""
        return _shared_future(self.replaces, cl_ord_id)

    def answer_replace(self, cl_ord_id: str, answer: ReplaceAck | BaseException) -> None:
        _answer(self.replaces, cl_ord_id, answer)

    def sent(self, seq: int, msg_type: str, ref: str) -> None:
        """Remember what our message ``seq`` was about, for a reject naming it."""
        self._refs[seq] = (msg_type, ref)
        if len(self._refs) > self._max_refs:
            self._refs.popitem(last=False)

    def rejected(self, seq: int) -> tuple[str, str] | None:
        """What our message ``seq`` was (type, key), if known; forgotten then."""
        return self._refs.pop(seq, None)

    def fail_all(self, reason: str) -> None:
        """The connection is gone: every pending question's outcome is unknown."""
        futures: list[asyncio.Future[Any]] = [*self.acks.values(), *self.replaces.values()]
        futures += [status for _, status in self.status.values()]
        futures += [mass.done for mass in self.mass.values()]
        self.acks.clear()
        self.replaces.clear()
        for future in futures:
            if not future.done():
                future.set_exception(BrokerTimeout(reason))
                future.exception()  # read by its waiter, if any: no "never retrieved" noise


class RecentExecIds:
    """The last ``limit`` ExecIDs seen, to drop reports the counterparty repeats."""

    def __init__(self, limit: int = 100_000) -> None:
        self._seen: set[str] = set()
        self._order: deque[str] = deque()
        self._limit = limit

    def repeated(self, exec_id: str, *, marked: bool) -> bool:
        """Record ``exec_id``; return whether this is a repeat to drop.

        Only a report ``marked`` as a possible repeat (PossDupFlag/PossResend) is
        dropped: an unmarked one with a known ExecID goes on to the engine,
        which books each ExecID once anyway.
        """
        if exec_id in self._seen:
            return marked
        self._seen.add(exec_id)
        self._order.append(exec_id)
        if len(self._order) > self._limit:
            self._seen.discard(self._order.popleft())
        return False


def _shared_future(waiting: dict[str, asyncio.Future[T]], key: str) -> asyncio.Future[T]:
    """The pending future for ``key`` (callers asking again share it), new if none is."""
    future = waiting.get(key)
    if future is None or future.done():
        future = waiting[key] = asyncio.get_running_loop().create_future()
    return future


def _answer(waiting: dict[str, asyncio.Future[T]], key: str, answer: T | BaseException) -> None:
    """Resolve (and forget) ``key``'s future with ``answer``, if one is still waiting."""
    future = waiting.pop(key, None)
    if future is None or future.done():
        return
    if isinstance(answer, BaseException):
        future.set_exception(answer)
    else:
        future.set_result(answer)
