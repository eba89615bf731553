"""The FIX adapter's book of pending questions and recently seen ExecIDs."""

from __future__ import annotations

import pytest

from gateway.brokers.base import SubmitAck
from gateway.brokers.errors import BrokerTimeout
from gateway.brokers.fix.waiters import RecentExecIds, Waiters


def test_only_marked_repeats_are_dropped_and_memory_is_bounded() -> None:
    recent = RecentExecIds(limit=2)
    assert not recent.repeated("E1", marked=False)
    assert recent.repeated("E1", marked=True)
    assert not recent.repeated("E1", marked=False)  # unmarked: the engine dedups it
    recent.repeated("E2", marked=False)
    recent.repeated("E3", marked=False)
    assert not recent.repeated("E1", marked=True)  # forgotten: the oldest went first


async def test_an_answer_before_the_wait_is_kept_and_a_lost_connection_fails_the_rest() -> None:
    waiting = Waiters(max_refs=1)
    early = waiting.ack_for("c1")
    waiting.answer_ack("c1", SubmitAck("O1"))
    assert (await early).broker_order_id == "O1"
    late = waiting.ack_for("c2")
    waiting.fail_all("gone")
    with pytest.raises(BrokerTimeout, match="gone"):
        await late
    waiting.sent(5, "D", "c1")
    waiting.sent(6, "F", "c1")
    assert waiting.rejected(5) is None  # past the bound
    assert waiting.rejected(6) == ("F", "c1")
