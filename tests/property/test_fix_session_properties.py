"""The FIX session over a bad network: every message delivered once, in order.

Hypothesis draws what happens to each of the counterparty's messages
(delivered, lost, repeated at once with PossDupFlag, or repeated with
PossDupFlag after later ones); the counterparty answers every ResendRequest
by replaying what was asked, as a FIX engine does. Whatever happens, the
session hands the application each message exactly once, in sequence order.
"""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.brokers.fix.codec import Framer, Message, encode
from gateway.brokers.fix.session import Session, Step
from gateway.brokers.fix.store import SessionStore

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
US, THEM = "GATEWAY", "VENUE"
FATES = st.sampled_from(["deliver", "lose", "repeat", "late"])


def message(seq: int, *, dup: bool = False) -> Message:
    body = [(17, f"E{seq}")]
    data = encode("8", seq, THEM, US, T0, body, poss_dup_of=T0 if dup else None)
    (msg,) = Framer().feed(data)
    return msg


def requests(step: Step) -> list[tuple[int, int]]:
    """The (BeginSeqNo, EndSeqNo) of the ResendRequests a step sends."""
    found = []
    for chunk in step.send:
        for msg in Framer().feed(chunk):
            if msg.msg_type == "2":
                found.append((int(msg.require(7)), int(msg.require(16))))
    return found


@settings(max_examples=300, deadline=None)
@given(fates=st.lists(FATES, min_size=1, max_size=40))
def test_each_message_is_delivered_once_in_order(fates: list[str]) -> None:
    session = Session(SessionStore(":memory:"), sender=US, target=THEM, heartbeat_interval=30)
    session.connected(T0)
    logon = encode("A", 1, THEM, US, T0, [(98, "0"), (108, "30")])
    session.received(next(iter(Framer().feed(logon))), T0)
    last = len(fates) + 1  # their messages are 2..last
    delivered: list[str] = []
    wire: deque[Message] = deque()
    held: list[Message] = []

    def feed(msg: Message) -> None:
        step = session.received(msg, T0)
        assert step.disconnect is None, step.disconnect
        delivered.extend(m.get(17) or "" for m in step.deliver)
        for begin, end in requests(step):
            # The counterparty replays what was asked, with PossDupFlag (bounded by
            # what it has sent so far).
            upto = sent_so_far if end == 0 else min(end, sent_so_far)
            wire.extend(message(seq, dup=True) for seq in range(begin, upto + 1))

    sent_so_far = 1
    for seq, fate in enumerate(fates, start=2):
        sent_so_far = seq
        if fate == "deliver":
            wire.append(message(seq))
        elif fate == "repeat":
            wire.extend([message(seq), message(seq, dup=True)])
        elif fate == "late":
            # TCP never reorders: what comes late is a repeat the counterparty sends
            # again on its own (PossDupFlag), after later messages.
            wire.append(message(seq))
            held.append(message(seq, dup=True))
        while wire:
            feed(wire.popleft())
    wire.extend(held)
    # A heartbeat after the last message shows any loss at the end (a gap).
    wire.append(next(iter(Framer().feed(encode("0", last + 1, THEM, US, T0, [])))))
    for _ in range(10 * len(fates) + 10):  # bounded: each round consumes a message
        if not wire:
            break
        feed(wire.popleft())
    assert delivered == [f"E{seq}" for seq in range(2, last + 1)]
    assert session.store.next_in == last + 2
    assert not session.resend_pending
