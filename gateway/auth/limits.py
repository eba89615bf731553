"""Per-principal limits and the registry of each principal's open streams.

Owns what one authenticated principal may hold at once, so that one
misbehaving strategy cannot starve the others:

- ``OrderRateLimiter``: a token bucket per principal for order entry
  (every call that writes: PlaceOrder, CancelOrder, ReplaceOrder, ...); over
  it, ``RESOURCE_EXHAUSTED`` with reason ``PRINCIPAL_RATE_LIMITED`` and the
  time until the next call fits.
- ``StreamRegistry``: a cap on each principal's open streams (reason
  ``PRINCIPAL_STREAM_LIMIT``), and the credential and accounts each stream was
  opened with, so a reload of the principals table can end the streams it no
  longer allows (``revalidate``).

Limits apply to authenticated callers; with no authentication there is no
principal to tell one caller from another.
"""

from __future__ import annotations

import contextvars
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.auth.policy import AuthPolicy, CallerCredential
from gateway.auth.tokens import Principal
from gateway.errors import GatewayError, PermissionDenied, ResourceExhausted, Unauthenticated


@dataclass(frozen=True, slots=True)
class PrincipalLimits:
    """What each principal may hold at once; 0 means no limit."""

    max_streams: int = 100
    """Open SubscribeUpdates streams per principal."""

    order_rate: float = 0.0
    """Order-entry calls (PlaceOrder, CancelOrder, ReplaceOrder, ...) per second, per principal."""

    order_burst: int = 0
    """Order-entry calls a principal may make at once above the rate (0: one second's worth)."""

    @property
    def burst(self) -> int:
        return self.order_burst or max(1, math.ceil(self.order_rate))


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class OrderRateLimiter:
    """A token bucket per principal name: ``rate`` per second, up to ``burst`` at once."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def admit(self, principal: str) -> None:
        """Take one call from ``principal``'s bucket; raise ResourceExhausted if empty."""
        now = self._clock()
        bucket = self._buckets.get(principal)
        if bucket is None:
            bucket = self._buckets[principal] = _Bucket(float(self.burst), now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return
        wait_ms = math.ceil((1.0 - bucket.tokens) / self.rate * 1000)
        raise ResourceExhausted(
            f"principal {principal!r} is over its order-entry rate of {self.rate:g}/s "
            f"(burst {self.burst}); retry in {wait_ms} ms",
            reason="PRINCIPAL_RATE_LIMITED",
            metadata={
                "principal": principal,
                "limit": f"{self.rate:g}/s",
                "burst": str(self.burst),
                "retry_after_ms": str(wait_ms),
            },
        )


class OpenStream:
    """One open stream of a principal: what it was opened with, and how to end it."""

    __slots__ = ("_on_end", "accounts", "credential", "error", "method", "principal")

    def __init__(
        self,
        principal: Principal,
        credential: CallerCredential,
        accounts: frozenset[str] | None,
        method: str,
    ) -> None:
        self.principal = principal
        self.credential = credential
        self.accounts = accounts
        """The accounts the stream shows; None: every account."""
        self.method = method
        self.error: GatewayError | None = None
        """Set when the gateway ended the stream; nothing more may be sent on it."""
        self._on_end: list[Callable[[GatewayError], None]] = []

    def on_end(self, callback: Callable[[GatewayError], None]) -> None:
        """Call ``callback(error)`` when the stream is ended (now, if it already was)."""
        if self.error is not None:
            callback(self.error)
        else:
            self._on_end.append(callback)

    def end(self, error: GatewayError) -> None:
        """End the stream with ``error``: its next message is that status instead."""
        if self.error is not None:
            return
        self.error = error
        callbacks, self._on_end = self._on_end, []
        for callback in callbacks:
            callback(error)


# The stream the current call is (one task per call): the interceptor opens
# it, the handler ties what it streams from to its end.
current_stream: contextvars.ContextVar[OpenStream | None] = contextvars.ContextVar(
    "gateway_open_stream", default=None
)


class StreamRegistry:
    """Every authenticated open stream, by principal; at most ``max_per_principal`` each."""

    def __init__(self, max_per_principal: int = 0) -> None:
        self.max_per_principal = max_per_principal
        self._open: dict[str, set[OpenStream]] = {}

    def count(self, principal: str) -> int:
        return len(self._open.get(principal, ()))

    def __len__(self) -> int:
        return sum(len(streams) for streams in self._open.values())

    def open(
        self,
        principal: Principal,
        credential: CallerCredential,
        accounts: frozenset[str] | None,
        method: str,
    ) -> OpenStream:
        """Register a stream; raise ResourceExhausted if the principal has too many."""
        streams = self._open.setdefault(principal.name, set())
        limit = self.max_per_principal
        if limit and len(streams) >= limit:
            raise ResourceExhausted(
                f"principal {principal.name!r} already has {limit} open streams; close one first",
                reason="PRINCIPAL_STREAM_LIMIT",
                metadata={"principal": principal.name, "limit": str(limit)},
            )
        stream = OpenStream(principal, credential, accounts, method)
        streams.add(stream)
        return stream

    def close(self, stream: OpenStream) -> None:
        """Forget ``stream``; safe to call more than once."""
        streams = self._open.get(stream.principal.name)
        if streams is not None:
            streams.discard(stream)
            if not streams:
                del self._open[stream.principal.name]

    def revalidate(self, policy: AuthPolicy) -> list[OpenStream]:
        """End every stream the current table no longer allows; return them.

        A credential that no longer identifies anyone ends its streams with
        UNAUTHENTICATED; a principal no longer granted one of the stream's
        accounts (or no longer all of them) with PERMISSION_DENIED.
        """
        ended: list[OpenStream] = []
        for streams in list(self._open.values()):
            for stream in list(streams):
                error = _refusal(policy.resolve(stream.credential), stream)
                if error is not None:
                    stream.end(error)
                    ended.append(stream)
        return ended


def _refusal(principal: Principal | None, stream: OpenStream) -> GatewayError | None:
    """Why ``principal`` may no longer see ``stream`` (None if it still may)."""
    name = stream.principal.name
    if principal is None:
        return Unauthenticated(
            f"the credential of principal {name!r} was revoked; the stream is closed",
            reason="CREDENTIAL_REVOKED",
            metadata={"principal": name},
        )
    if stream.accounts is None:
        lost = None if principal.all_accounts else "*"
    else:
        lost = next((a for a in sorted(stream.accounts) if not principal.may_read(a)), None)
    if lost is None:
        return None
    return PermissionDenied(
        f"principal {principal.name!r} is no longer granted account {lost!r}; the stream is closed",
        reason="ACCOUNT_NOT_GRANTED",
        metadata={"principal": principal.name, "account": lost},
    )
