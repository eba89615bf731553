"""The bookkeeping that lets an update stream reconnect without gaps or repeats.

Pure state, shared by the asyncio and the blocking subscription: which request
to send next, which events to hand to the caller, and how long to wait before
the next reconnect. The rule: resume with ``after_sequence`` = the last update
delivered to the caller, and never deliver a sequence at or below it again.
Order, position and trading-state updates share one sequence space, so each of
them moves the resume point alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from gateway_client._convert import event_from_proto, subscribe_request_to_proto
from gateway_client._models import Event, Heartbeat, OrderUpdate, SequencedChange, SnapshotComplete
from gateway_client._options import ReconnectPolicy
from gateway_client._proto.execution.v1 import execution_pb2 as pb
from gateway_client.errors import GatewayClientError, SubscriptionLost

# Stream endings worth a reconnect; anything else (a bad request, a denied
# account, a journal that no longer has our sequence) is the caller's to see.
_RECONNECT_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
    }
)


class ResumeState:
    """Where a subscription stands, across any number of connections."""

    def __init__(
        self,
        accounts: Sequence[str],
        symbols: Sequence[str],
        after_sequence: int | None,
        snapshot: bool,
        policy: ReconnectPolicy,
    ) -> None:
        if snapshot and after_sequence is not None:
            raise ValueError("snapshot and after_sequence cannot be combined")
        self._accounts = tuple(accounts)
        self._symbols = tuple(symbols)
        self._snapshot_pending = snapshot
        self._delivered = after_sequence
        self._baseline: int | None = None
        self._policy = policy
        self._failures = 0
        self.reconnects = 0
        """How many times the stream was re-established."""

    @property
    def last_sequence(self) -> int | None:
        """The sequence to resume after: the last update delivered, or where we started."""
        return self._delivered if self._delivered is not None else self._baseline

    def request(self) -> pb.SubscribeUpdatesRequest:
        """The request for the next connection."""
        if self._snapshot_pending:
            return subscribe_request_to_proto(self._accounts, self._symbols, None, True)
        return subscribe_request_to_proto(self._accounts, self._symbols, self.last_sequence, False)

    def accept(self, message: pb.SubscribeUpdatesResponse) -> Event | None:
        """Record one stream message; return the event to deliver, or None to drop it."""
        self._failures = 0
        event = event_from_proto(message)
        if isinstance(event, SequencedChange):
            if isinstance(event, OrderUpdate) and event.snapshot:
                return event
            if self._delivered is not None and event.sequence <= self._delivered:
                return None  # already delivered before a reconnect
            self._delivered = event.sequence
        elif isinstance(event, SnapshotComplete):
            self._snapshot_pending = False
            self._delivered = max(self._delivered or 0, event.sequence)
        elif isinstance(event, Heartbeat) and self._delivered is None and self._baseline is None:
            # A live subscription's first message: the newest sequence when it
            # began, so that a reconnect before any update replays from there.
            self._baseline = event.sequence
        return event

    def next_delay(self, error: GatewayClientError | None) -> float:
        """Seconds to wait before reconnecting after ``error`` (None: the stream just ended).

        Raise ``error`` itself if it is not worth a reconnect, and
        ``SubscriptionLost`` once the policy's attempts are used up.
        """
        if error is not None and error.code not in _RECONNECT_CODES:
            raise error
        if error is not None and self.last_sequence is None and "last_sequence" in error.metadata:
            self._baseline = int(error.metadata["last_sequence"])
        self._failures += 1
        limit = self._policy.max_attempts
        if limit is not None and self._failures > limit:
            raise SubscriptionLost(
                f"update stream lost after {limit} reconnect attempts "
                f"(resume with after_sequence={self.last_sequence})",
                code=error.code if error else None,
                metadata={"last_sequence": str(self.last_sequence or 0)},
            ) from error
        self.reconnects += 1
        return self._policy.backoff.delay(self._failures)
