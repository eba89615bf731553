"""Settings of the paper venue: accounts, the simulated market, faults."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from gateway.brokers.simulated.config import SimConfig

# Namespace of the venue's name-based UUIDs (account ids, asset ids).
VENUE_NAMESPACE = uuid.UUID("7d0f6c1e-55d5-4d0a-9a53-6f1c2f8f0a11")


@dataclass(frozen=True, slots=True)
class VenueAccount:
    """One Alpaca-style account, reached with one key pair."""

    key_id: str
    secret_key: str = field(repr=False)
    name: str = "PA0000000001"
    """The account number; also the account's name in the exchange core."""

    @property
    def id(self) -> str:
        """A stable UUID for the account, as Alpaca gives one."""
        return str(uuid.uuid5(VENUE_NAMESPACE, f"account:{self.name}"))


@dataclass(frozen=True, slots=True)
class Faults:
    """Failures the venue injects: into REST calls, and a lag on the stream."""

    latency: float = 0.0
    """Seconds added before every REST answer."""

    error_rate: float = 0.0
    """Fraction of REST calls answered 500 without acting."""

    lost_answer_rate: float = 0.0
    """Fraction of POST/DELETE calls that act and then answer 500 (outcome unknown)."""

    rate_limit_rate: float = 0.0
    """Fraction of REST calls answered 429 with rate-limit headers, without acting."""

    stream_delay: float = 0.0
    """Seconds each ``trade_updates`` message is held before it is sent, in
    order: REST answers run ahead of the stream, as they can at Alpaca."""

    late_reject_rate: float = 0.0
    """Fraction of accepted orders rejected afterwards: the submit is answered
    (``pending_new``) and the stream then says ``rejected``, as Alpaca does
    when its own checks refuse an order it has received. Such an order never
    reaches the market."""

    def __post_init__(self) -> None:
        if self.latency < 0 or self.stream_delay < 0:
            raise ValueError("latency and stream_delay must not be negative")
        for name in ("error_rate", "lost_answer_rate", "rate_limit_rate", "late_reject_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be within [0, 1]")


@dataclass(frozen=True, slots=True)
class VenueConfig:
    """Everything the paper venue can be told."""

    accounts: tuple[VenueAccount, ...]
    """The key pairs the venue accepts, one account each."""

    sim: SimConfig = field(default_factory=lambda: SimConfig(order_id_prefix="VENUE"))
    """The market: prices, partial fills, liquidity, ticking. ``ack_latency`` is unused."""

    faults: Faults = field(default_factory=Faults)

    fault_seed: int = 0
    """Seed of the fault dice, apart from the market's so faults do not move prices."""

    calls_per_minute: int | None = None
    """REST calls per account per minute before 429, with X-RateLimit-* headers; None: no limit."""

    stream_queue_size: int = 10_000
    """Events buffered per stream connection; a client that falls this far behind is dropped."""

    auth_timeout: float = 10.0
    """Seconds a new stream connection has to authenticate."""

    def __post_init__(self) -> None:
        if not self.accounts:
            raise ValueError("the venue needs at least one account")
        if len({a.key_id for a in self.accounts}) != len(self.accounts):
            raise ValueError("key ids must be distinct")
        if len({a.name for a in self.accounts}) != len(self.accounts):
            raise ValueError("account names must be distinct")
        if self.calls_per_minute is not None and self.calls_per_minute < 1:
            raise ValueError("calls_per_minute must be at least 1 or None")
        if self.stream_queue_size < 1 or self.auth_timeout <= 0:
            raise ValueError("stream_queue_size and auth_timeout must be positive")
