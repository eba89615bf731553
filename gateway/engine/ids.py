"""Order ids: unique, time-ordered, opaque to clients."""

from __future__ import annotations

import secrets
import time

# Crockford's base32: no I, L, O, U, so ids survive being read aloud.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Every 10-bit value as its two characters: 13 lookups make an id, where
# 26 big-integer divisions did.
_PAIRS = tuple(a + b for a in _ALPHABET for b in _ALPHABET)


def new_order_id() -> str:
    """Return a 26-character ULID-style id: 48 bits of milliseconds, 80 random bits.

    Random bits, not a counter, so ids stay unique across restarts and across
    gateway replicas sharing a journal store.
    """
    value = (time.time_ns() // 1_000_000) << 80 | secrets.randbits(80)
    pairs = _PAIRS
    return "".join([pairs[(value >> shift) & 0x3FF] for shift in range(120, -1, -10)])
