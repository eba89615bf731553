"""The FIX session layer as a state machine: no sockets, no clock, no asyncio.

The transport feeds it what happened (connected, a message arrived, time
passed, the connection was lost) with the current time, and gets back a
``Step``: bytes to write, application messages to hand to the adapter, and
whether to hang up. Every rule of the FIX 4.4 session protocol that the
gateway relies on lives here, tested in tests/unit/test_fix_session.py:

- Logon first; a Logout in its place is a refusal (bad CompIDs, wrong
  password, outside the counterparty's hours), reported with its Text (58);
- Heartbeat when we have been silent for HeartBtInt, TestRequest when the
  counterparty has, and a hang-up if the TestRequest goes unanswered;
- MsgSeqNum: too high opens a gap, answered by one ResendRequest; messages
  past the gap wait in a bounded queue and are processed in order once it
  fills. Too low is fatal, unless PossDupFlag says it is a repeat (then it is
  dropped: it was processed the first time);
- a ResendRequest is answered with the application messages themselves
  (PossDupFlag=Y, OrigSendingTime) and SequenceReset-GapFill for the rest;
- SequenceReset in both forms.

Sequence numbers live in the ``SessionStore`` and are written before the
message leaves, so they continue across reconnects and restarts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum

from gateway.brokers.fix.codec import (
    POSS_DUP,
    SENDER,
    TARGET,
    Field,
    GarbledMessage,
    Message,
    encode,
)
from gateway.brokers.fix.store import SessionStore

log = logging.getLogger(__name__)

# Admin message types (FIX 4.4 35=).
HEARTBEAT, TEST_REQUEST, RESEND_REQUEST, REJECT = "0", "1", "2", "3"
SEQUENCE_RESET, LOGOUT, LOGON = "4", "5", "A"
ADMIN_TYPES = frozenset({HEARTBEAT, TEST_REQUEST, RESEND_REQUEST, REJECT, SEQUENCE_RESET})
ADMIN_TYPES |= {LOGOUT, LOGON}

# Tags of the session messages.
BEGIN_SEQ_NO, END_SEQ_NO, NEW_SEQ_NO, GAP_FILL = 7, 16, 36, 123
TEXT, ENCRYPT_METHOD, HEART_BT_INT, TEST_REQ_ID, RESET_SEQ_NUM = 58, 98, 108, 112, 141

MAX_QUEUED = 10_000
"""Messages held past a gap; a counterparty that never fills it is hung up on."""


class State(Enum):
    DISCONNECTED = "disconnected"
    LOGON_SENT = "logon_sent"
    ACTIVE = "active"
    LOGOUT_SENT = "logout_sent"


class NotLoggedOn(Exception):
    """An application message was offered while the session is not active."""


@dataclass(slots=True)
class Step:
    """What the transport must do after one input."""

    send: list[bytes] = field(default_factory=list)
    deliver: list[Message] = field(default_factory=list)
    disconnect: str | None = None
    """Hang up, for this reason (logged by the caller)."""
    logged_on: bool = False
    """The Logon exchange completed in this step."""
    refused: str | None = None
    """The counterparty refused our Logon, with this text."""


class Session:
    """One FIX 4.4 initiator session (our side of it)."""

    def __init__(
        self,
        store: SessionStore,
        *,
        sender: str,
        target: str,
        heartbeat_interval: int,
        logon_timeout: float = 10.0,
    ) -> None:
        self.store = store
        self.sender = sender
        self.target = target
        self.heartbeat = timedelta(seconds=heartbeat_interval)
        self.logon_timeout = timedelta(seconds=logon_timeout)
        self.state = State.DISCONNECTED
        self._last_sent = datetime.min
        self._last_received = datetime.min
        self._state_since = datetime.min
        self._test_request: tuple[str, datetime] | None = None
        self._test_counter = 0
        # Past a gap: seq -> message, processed once the gap is filled.
        self._queued: dict[int, Message] = {}
        self._resend_until = 0  # a ResendRequest is out for next_in .. this seq

    # --- inputs ---------------------------------------------------------

    def connected(self, now: datetime, *, reset: bool = False) -> Step:
        """The TCP (or TLS) connection is up: log on (resetting both numbers if asked)."""
        step = Step()
        self._queued.clear()
        self._resend_until = 0
        self._test_request = None
        self._last_received = now
        if reset:
            self.store.reset(now)
        body: list[Field] = [(ENCRYPT_METHOD, "0"), (HEART_BT_INT, str(self.heartbeat.seconds))]
        if reset:
            body.append((RESET_SEQ_NUM, "Y"))
        self._send_admin(step, LOGON, body, now)
        self._enter(State.LOGON_SENT, now)
        return step

    def lost(self, now: datetime) -> None:
        """The connection went away (either side); numbers stay where they are."""
        self._enter(State.DISCONNECTED, now)
        self._queued.clear()
        self._resend_until = 0

    def received(self, msg: Message, now: datetime) -> Step:
        """Process one received message."""
        step = Step()
        self._last_received = now
        if msg.get(SENDER) != self.target or msg.get(TARGET) != self.sender:
            return self._hang_up(
                step, now, f"CompID problem: {msg.get(SENDER)}->{msg.get(TARGET)}", logout=True
            )
        kind = msg.msg_type
        if self.state is State.LOGON_SENT and kind != LOGON:
            if kind == LOGOUT:
                step.refused = msg.get(TEXT) or "logon refused (no reason given)"
                step.disconnect = f"logon refused: {step.refused}"
                self._enter(State.DISCONNECTED, now)
                return step
            return self._hang_up(step, now, f"expected Logon, got {kind!r}", logout=True)
        if kind == SEQUENCE_RESET and msg.get(GAP_FILL) != "Y":
            # SequenceReset-Reset ignores MsgSeqNum: it moves the number, never back.
            self._reset_to(msg, step, now)
            return step
        try:
            seq = msg.seq_num
        except (GarbledMessage, ValueError):
            return self._hang_up(step, now, "message without a valid MsgSeqNum", logout=True)
        expected = self.store.next_in
        if kind == LOGON and msg.get(RESET_SEQ_NUM) == "Y" and seq == 1:
            self.store.set_next_in(1)  # the counterparty starts a new session day
            expected = 1
        if seq < expected:
            if msg.poss_dup:
                return step  # a repeat of what we processed: drop it
            return self._hang_up(
                step,
                now,
                f"MsgSeqNum too low, expecting {expected} but received {seq}",
                logout=True,
            )
        if seq > expected:
            return self._gap(msg, seq, expected, step, now)
        self.store.set_next_in(self._process(msg, step, now))
        self._drain_queue(step, now)
        return step

    def tick(self, now: datetime) -> Step:
        """Time passed: heartbeats, test requests, timeouts."""
        step = Step()
        if self.state is State.LOGON_SENT and now - self._state_since > self.logon_timeout:
            return self._hang_up(step, now, "no answer to our Logon")
        if self.state is State.LOGOUT_SENT and now - self._state_since > self.heartbeat:
            return self._hang_up(step, now, "no answer to our Logout")
        if self.state is not State.ACTIVE:
            return step
        if self._test_request is not None:
            if now - self._test_request[1] >= self.heartbeat:
                return self._hang_up(step, now, "counterparty silent: TestRequest unanswered")
        elif now - self._last_received >= self.heartbeat * 1.2:
            # 20% grace over HeartBtInt: a heartbeat in flight is not silence.
            self._test_counter += 1
            test_id = f"TEST-{self._test_counter}"
            self._test_request = (test_id, now)
            self._send_admin(step, TEST_REQUEST, [(TEST_REQ_ID, test_id)], now)
        if now - self._last_sent >= self.heartbeat:
            self._send_admin(step, HEARTBEAT, [], now)
        return step

    def logout(self, now: datetime, text: str = "") -> Step:
        """Start an orderly Logout (the session's end, or the gateway stopping)."""
        step = Step()
        if self.state in (State.ACTIVE, State.LOGON_SENT):
            self._send_admin(step, LOGOUT, [(TEXT, text)] if text else [], now)
            self._enter(State.LOGOUT_SENT, now)
        return step

    def send_app(self, msg_type: str, body: Iterable[Field], now: datetime) -> bytes:
        """Number, keep (for resends) and encode one application message."""
        if self.state is not State.ACTIVE:
            raise NotLoggedOn(f"FIX session {self.state.value}")
        fields = tuple(body)
        seq = self.store.take_out(msg_type, now, fields)
        self._last_sent = now
        return encode(msg_type, seq, self.sender, self.target, now, fields)

    @property
    def resend_pending(self) -> bool:
        return self._resend_until > 0

    # --- internals ------------------------------------------------------

    def _enter(self, state: State, now: datetime) -> None:
        self.state = state
        self._state_since = now

    def _send_admin(self, step: Step, kind: str, body: list[Field], now: datetime) -> None:
        seq = self.store.take_out(kind, now, None)
        step.send.append(encode(kind, seq, self.sender, self.target, now, body))
        self._last_sent = now

    def _hang_up(self, step: Step, now: datetime, reason: str, *, logout: bool = False) -> Step:
        if logout and self.state in (State.ACTIVE, State.LOGON_SENT):
            self._send_admin(step, LOGOUT, [(TEXT, reason)], now)
        step.disconnect = reason
        self.lost(now)
        return step

    def _gap(self, msg: Message, seq: int, expected: int, step: Step, now: datetime) -> Step:
        kind = msg.msg_type
        if kind == LOGOUT:
            # No point asking for a resend from a counterparty that is leaving.
            self._process(msg, step, now)
            return step
        if kind in (LOGON, RESEND_REQUEST):
            # Acted on at once: active now, and a counterparty waiting for our replay
            # before it replays its own would otherwise wait for us forever.
            self._process(msg, step, now)
        elif len(self._queued) >= MAX_QUEUED:
            return self._hang_up(step, now, "too many messages past an unfilled gap", logout=True)
        else:
            self._queued[seq] = msg
        if not self._resend_until:
            self._resend_until = seq - 1
            log.warning("FIX gap: expected %d, received %d; asking for a resend", expected, seq)
            self._send_admin(
                step, RESEND_REQUEST, [(BEGIN_SEQ_NO, str(expected)), (END_SEQ_NO, "0")], now
            )
        if kind in (LOGON, RESEND_REQUEST):
            self._queued[seq] = _consumed(msg)  # its number still counts, in order
        return step

    def _drain_queue(self, step: Step, now: datetime) -> None:
        while (msg := self._queued.pop(self.store.next_in, None)) is not None:
            self.store.set_next_in(self._process(msg, step, now))
        if self._resend_until and self.store.next_in > self._resend_until:
            self._resend_until = 0
        if self._queued:
            # A gap fill that jumped over queued messages makes them repeats: drop them.
            for stale in [s for s in self._queued if s < self.store.next_in]:
                del self._queued[stale]

    def _process(self, msg: Message, step: Step, now: datetime) -> int:
        """Act on an in-sequence message; return the next expected number."""
        kind = msg.msg_type
        next_in = msg.seq_num + 1
        if kind == _CONSUMED:
            return next_in
        if kind == HEARTBEAT:
            if self._test_request is not None and msg.get(TEST_REQ_ID) == self._test_request[0]:
                self._test_request = None
        elif kind == TEST_REQUEST:
            self._send_admin(step, HEARTBEAT, [(TEST_REQ_ID, msg.get(TEST_REQ_ID) or "")], now)
        elif kind == RESEND_REQUEST:
            self._replay(msg, step, now)
        elif kind == REJECT:
            log.error("FIX session-level Reject of our message: %s", msg)
            step.deliver.append(msg)
        elif kind == SEQUENCE_RESET:  # GapFill (the Reset form never gets here)
            new = int(msg.require(NEW_SEQ_NO))
            if new > next_in:
                next_in = new
        elif kind == LOGOUT:
            if self.state is not State.LOGOUT_SENT:
                self._send_admin(step, LOGOUT, [], now)
            step.disconnect = f"counterparty logged out: {msg.get(TEXT) or 'no reason given'}"
            self.lost(now)
        elif kind == LOGON:
            if self.state is State.LOGON_SENT:
                self._enter(State.ACTIVE, now)
                step.logged_on = True
        else:
            step.deliver.append(msg)
        return next_in

    def _replay(self, request: Message, step: Step, now: datetime) -> None:
        begin = int(request.require(BEGIN_SEQ_NO))
        end = int(request.require(END_SEQ_NO))
        last = self.store.next_out - 1
        if end == 0 or end > last:
            end = last
        kept = {m.seq: m for m in self.store.sent_between(begin, end)}
        seq = begin
        while seq <= end:
            stored = kept.get(seq)
            if stored is not None:
                step.send.append(
                    encode(
                        stored.msg_type,
                        seq,
                        self.sender,
                        self.target,
                        now,
                        stored.body,
                        poss_dup_of=stored.sending_time,
                    )
                )
                seq += 1
                continue
            # Admin messages (and anything not kept) become one GapFill up to the next kept one.
            upto = min((s for s in kept if s > seq), default=end + 1)
            body: list[Field] = [(GAP_FILL, "Y"), (NEW_SEQ_NO, str(upto))]
            step.send.append(
                encode(SEQUENCE_RESET, seq, self.sender, self.target, now, body, poss_dup_of=now)
            )
            seq = upto
        self._last_sent = now
        log.info("FIX resend of %d..%d answered (%d messages replayed)", begin, end, len(kept))

    def _reset_to(self, msg: Message, step: Step, now: datetime) -> None:
        new = int(msg.require(NEW_SEQ_NO))
        if new < self.store.next_in:
            log.error(
                "FIX SequenceReset to %d below the expected %d: ignored", new, self.store.next_in
            )
            return
        self.store.set_next_in(new)
        self._resend_until = 0
        self._drain_queue(step, now)


_CONSUMED = "\x00consumed"


def _consumed(msg: Message) -> Message:
    """A placeholder for a message already acted on out of order (a Logon past a gap)."""
    return Message(((35, _CONSUMED), (34, str(msg.seq_num)), (POSS_DUP, "N")))
