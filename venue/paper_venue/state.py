"""What one running venue shares between its REST and stream handlers."""

from __future__ import annotations

import dataclasses
import hmac
import random
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web

from paper_venue.book import PaperVenue
from paper_venue.config import Faults, VenueAccount, VenueConfig


@dataclass(slots=True)
class VenueState:
    """The venue's book, accounts, live faults and open stream connections."""

    config: VenueConfig
    venue: PaperVenue
    faults: Faults
    rng: random.Random
    sockets: set[web.WebSocketResponse] = field(default_factory=set)
    # Per account: (epoch minute of the window, calls in it).
    windows: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Per (account, client_order_id): order submissions received, duplicates
    # included, so tests can prove nobody sent an order twice.
    submissions: dict[tuple[str, str], int] = field(default_factory=dict)
    # REST calls received per (method, route), faulted ones included: what a
    # client's habits cost against a rate limit.
    calls: Counter[tuple[str, str]] = field(default_factory=Counter)

    @classmethod
    def create(cls, config: VenueConfig) -> VenueState:
        return cls(
            config=config,
            venue=PaperVenue(config.sim),
            faults=config.faults,
            rng=random.Random(config.fault_seed),
        )

    def authenticate(self, key_id: str | None, secret_key: str | None) -> VenueAccount | None:
        """Return the account of a key pair, or None if the pair is wrong."""
        if not key_id or not secret_key:
            return None
        for account in self.config.accounts:
            # Compare in constant time, as for any secret.
            same_key = hmac.compare_digest(account.key_id.encode(), key_id.encode())
            same_secret = hmac.compare_digest(account.secret_key.encode(), secret_key.encode())
            if same_key and same_secret:
                return account
        return None

    def set_faults(self, **changes: float) -> Faults:
        self.faults = dataclasses.replace(self.faults, **changes)
        return self.faults


STATE = web.AppKey("venue_state", VenueState)
