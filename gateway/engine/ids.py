"""Order ids: unique, time-ordered, opaque to clients."""

from __future__ import annotations

import secrets
import time

# Crockford's base32: no I, L, O, U, so ids survive being read aloud.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_order_id() -> str:
    """Return a 26-character ULID-style id: 48 bits of milliseconds, 80 random bits.

    Random bits, not a counter, so ids stay unique across restarts and across
    gateway replicas sharing a journal store.
    """
    value = (time.time_ns() // 1_000_000) << 80 | secrets.randbits(80)
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))
