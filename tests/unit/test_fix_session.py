"""The FIX session state machine, driven message by message with a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.brokers.fix.codec import Field, Framer, Message, encode
from gateway.brokers.fix.session import NotLoggedOn, Session, State, Step
from gateway.brokers.fix.store import SessionStore

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
US, THEM = "GATEWAY", "VENUE"


def parse(data: bytes) -> list[Message]:
    return list(Framer().feed(data))


def sent(step: Step) -> list[Message]:
    return [m for chunk in step.send for m in parse(chunk)]


def theirs(kind: str, seq: int, body: list[Field] | None = None, *, dup: bool = False) -> Message:
    """A message from the counterparty, through the real encoder and framer."""
    data = encode(kind, seq, THEM, US, T0, body or [], poss_dup_of=T0 if dup else None)
    (msg,) = parse(data)
    return msg


def make_session(store: SessionStore | None = None, heartbeat: int = 30) -> Session:
    return Session(
        store or SessionStore(":memory:"),
        sender=US,
        target=THEM,
        heartbeat_interval=heartbeat,
        logon_timeout=5,
    )


def logged_on(session: Session | None = None) -> Session:
    session = session or make_session()
    session.connected(T0)
    step = session.received(theirs("A", session.store.next_in, [(98, "0"), (108, "30")]), T0)
    assert step.logged_on
    return session


def test_logon_is_sent_first_with_heartbeat_interval_and_sequence_one() -> None:
    session = make_session()
    (logon,) = sent(session.connected(T0))
    assert (logon.msg_type, logon.seq_num, logon.get(108), logon.get(141)) == ("A", 1, "30", None)
    assert session.state is State.LOGON_SENT
    with pytest.raises(NotLoggedOn):
        session.send_app("D", [(11, "a")], T0)


def test_logon_answer_activates_the_session() -> None:
    session = logged_on()
    assert session.state is State.ACTIVE
    assert (session.store.next_out, session.store.next_in) == (2, 2)


def test_logout_instead_of_logon_is_a_refusal_with_its_text() -> None:
    session = make_session()
    session.connected(T0)
    step = session.received(theirs("5", 1, [(58, "unknown SenderCompID")]), T0)
    assert step.refused == "unknown SenderCompID"
    assert step.disconnect is not None
    assert session.state is State.DISCONNECTED


def test_wrong_comp_ids_hang_up_with_a_logout() -> None:
    session = logged_on()
    data = encode("0", 2, "SOMEONE", US, T0, [])
    step = session.received(parse(data)[0], T0)
    assert step.disconnect is not None
    assert "CompID" in step.disconnect
    assert [m.msg_type for m in sent(step)] == ["5"]


def test_unanswered_logon_times_out() -> None:
    session = make_session()
    session.connected(T0)
    assert session.tick(T0 + timedelta(seconds=4)).disconnect is None
    assert session.tick(T0 + timedelta(seconds=6)).disconnect == "no answer to our Logon"


def test_heartbeat_after_our_silence_and_test_request_after_theirs() -> None:
    session = logged_on()
    assert sent(session.tick(T0 + timedelta(seconds=29))) == []
    (heartbeat,) = sent(session.tick(T0 + timedelta(seconds=30)))
    assert heartbeat.msg_type == "0"
    # They have been silent for HeartBtInt plus 20%: a TestRequest, once.
    later = T0 + timedelta(seconds=37)
    messages = sent(session.tick(later))
    assert [m.msg_type for m in messages] == ["1"]
    assert sent(session.tick(later + timedelta(seconds=1))) == []
    # Answered: no hang-up.
    test_id = messages[0].get(112)
    session.received(theirs("0", 2, [(112, test_id or "")]), later + timedelta(seconds=2))
    assert session.tick(later + timedelta(seconds=31)).disconnect is None


def test_unanswered_test_request_hangs_up() -> None:
    session = logged_on()
    session.tick(T0 + timedelta(seconds=37))
    step = session.tick(T0 + timedelta(seconds=68))
    assert step.disconnect is not None
    assert "TestRequest" in step.disconnect
    assert session.state is State.DISCONNECTED


def test_test_request_is_answered_with_its_id() -> None:
    session = logged_on()
    (answer,) = sent(session.received(theirs("1", 2, [(112, "PING")]), T0))
    assert (answer.msg_type, answer.get(112)) == ("0", "PING")


def test_application_messages_are_delivered_in_order() -> None:
    session = logged_on()
    step = session.received(theirs("8", 2, [(17, "E1")]), T0)
    assert [m.get(17) for m in step.deliver] == ["E1"]
    assert session.store.next_in == 3


def test_gap_asks_for_a_resend_once_and_holds_later_messages_until_filled() -> None:
    session = logged_on()
    step = session.received(theirs("8", 4, [(17, "E4")]), T0)
    (request,) = sent(step)
    assert (request.msg_type, request.get(7), request.get(16)) == ("2", "2", "0")
    assert step.deliver == []
    # A second message past the gap: no second ResendRequest.
    assert sent(session.received(theirs("8", 5, [(17, "E5")]), T0)) == []
    # The resend fills the gap: everything comes out, in sequence order.
    first = session.received(theirs("8", 2, [(17, "E2")], dup=True), T0)
    assert [m.get(17) for m in first.deliver] == ["E2"]
    rest = session.received(theirs("8", 3, [(17, "E3")], dup=True), T0)
    assert [m.get(17) for m in rest.deliver] == ["E3", "E4", "E5"]
    assert session.store.next_in == 6
    assert not session.resend_pending


def test_gap_fill_skips_admin_messages_and_releases_the_queue() -> None:
    session = logged_on()
    session.received(theirs("8", 5, [(17, "E5")]), T0)
    step = session.received(theirs("4", 2, [(123, "Y"), (36, "5")], dup=True), T0)
    assert [m.get(17) for m in step.deliver] == ["E5"]
    assert session.store.next_in == 6


def test_duplicate_with_poss_dup_below_the_expected_number_is_dropped() -> None:
    session = logged_on()
    session.received(theirs("8", 2, [(17, "E2")]), T0)
    step = session.received(theirs("8", 2, [(17, "E2")], dup=True), T0)
    assert step.deliver == []
    assert step.disconnect is None
    assert session.store.next_in == 3


def test_sequence_too_low_without_poss_dup_is_fatal() -> None:
    session = logged_on()
    session.received(theirs("8", 2, [(17, "E2")]), T0)
    step = session.received(theirs("8", 2, [(17, "E2")]), T0)
    assert step.disconnect is not None
    assert "too low" in step.disconnect
    assert [m.msg_type for m in sent(step)] == ["5"]


def test_sequence_reset_moves_the_expected_number_forward_only() -> None:
    session = logged_on()
    session.received(theirs("4", 1, [(36, "10")]), T0)
    assert session.store.next_in == 10
    session.received(theirs("4", 1, [(36, "3")]), T0)
    assert session.store.next_in == 10


def test_resend_request_replays_application_messages_and_gap_fills_admin_ones() -> None:
    session = logged_on()  # our 1: Logon
    session.send_app("D", [(11, "A1")], T0)  # 2
    session.tick(T0 + timedelta(seconds=30))  # 3: Heartbeat
    session.send_app("D", [(11, "A2")], T0)  # 4
    step = session.received(theirs("2", 2, [(7, "1"), (16, "0")]), T0)
    replay = sent(step)
    described = [(m.msg_type, m.seq_num, m.get(11) or m.get(36), m.poss_dup) for m in replay]
    assert described == [
        ("4", 1, "2", True),
        ("D", 2, "A1", True),
        ("4", 3, "4", True),
        ("D", 4, "A2", True),
    ]
    assert all(m.get(122) for m in replay if m.msg_type == "D")  # OrigSendingTime
    assert session.store.next_out == 5  # a replay takes no new numbers


def test_logon_past_a_gap_activates_and_asks_for_the_missing_messages() -> None:
    store = SessionStore(":memory:")
    store.set_next_in(5)
    session = make_session(store)
    session.connected(T0)
    step = session.received(theirs("A", 8, [(98, "0"), (108, "30")]), T0)
    assert step.logged_on
    (request,) = sent(step)
    assert (request.msg_type, request.get(7)) == ("2", "5")
    for seq in (5, 6, 7):
        session.received(theirs("8", seq, [(17, f"E{seq}")], dup=True), T0)
    assert store.next_in == 9  # the Logon's own number counted once the gap filled


def test_numbers_continue_across_reconnects_and_survive_a_reopened_store(tmp_path: Path) -> None:
    path = tmp_path / "fix.sqlite"
    session = logged_on(make_session(SessionStore(path)))
    session.send_app("D", [(11, "A1")], T0)
    session.received(theirs("8", 2, [(17, "E2")]), T0)
    session.lost(T0)
    session.store.close()
    again = make_session(SessionStore(path))
    (logon,) = sent(again.connected(T0))
    assert logon.seq_num == 3
    assert again.store.next_in == 3
    assert [m.body for m in again.store.sent_between(1, 10)] == [((11, "A1"),)]


def test_reset_on_logon_starts_both_numbers_at_one() -> None:
    store = SessionStore(":memory:")
    store.set_next_in(40)
    store.set_next_out(50)
    session = make_session(store)
    (logon,) = sent(session.connected(T0, reset=True))
    assert (logon.seq_num, logon.get(141)) == (1, "Y")
    assert store.next_in == 1


def test_counterparty_logout_is_answered_and_ends_the_session() -> None:
    session = logged_on()
    step = session.received(theirs("5", 2, [(58, "end of day")]), T0)
    assert [m.msg_type for m in sent(step)] == ["5"]
    assert step.disconnect is not None
    assert "end of day" in step.disconnect
    assert session.state is State.DISCONNECTED


def test_our_logout_waits_for_the_answer_then_gives_up() -> None:
    session = logged_on()
    (logout,) = sent(session.logout(T0, "end of session"))
    assert (logout.msg_type, logout.get(58)) == ("5", "end of session")
    assert session.state is State.LOGOUT_SENT
    assert session.tick(T0 + timedelta(seconds=31)).disconnect == "no answer to our Logout"


def test_a_resend_request_past_a_gap_is_answered_at_once() -> None:
    session = logged_on()
    session.send_app("D", [(11, "A1")], T0)  # our 2
    step = session.received(theirs("2", 4, [(7, "2"), (16, "0")]), T0)
    kinds = [(m.msg_type, m.seq_num, m.poss_dup) for m in sent(step)]
    # Our replay first (they may wait for it before replaying theirs), then our request.
    assert kinds == [("D", 2, True), ("2", 3, False)]
    session.received(theirs("4", 2, [(123, "Y"), (36, "4")], dup=True), T0)
    assert session.store.next_in == 5  # the ResendRequest's own number counted once
    assert not session.resend_pending
