"""The audit trail: one structured line per security decision worth keeping.

Owns the ``gateway.audit`` logger and the shape of its lines. Written for
every refused authentication, permission or per-principal limit, every
stream ended because its credential was revoked or narrowed, and every
administrative change (a reload of the principals table or of the TLS
certificate).

Each line is ``audit event=... outcome=... principal=... rpc=... account=...
reason=... peer=...`` (logfmt, fields absent when unknown); with
``--log-format json`` the same fields are also top-level keys of the JSON
object. Values are the principal's *name*, never a token, digest or
certificate; any value a caller controls (an account name) is quoted and
cut short, so a crafted request cannot forge or flood a line.
"""

from __future__ import annotations

import json
import logging

log = logging.getLogger("gateway.audit")

MAX_VALUE_CHARS = 128
_FIELDS = ("outcome", "principal", "rpc", "account", "reason", "peer", "detail")
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/:@*,[]")


def _value(text: str) -> str:
    if len(text) > MAX_VALUE_CHARS:
        text = text[:MAX_VALUE_CHARS] + "..."
    if text and all(c in _PLAIN for c in text):
        return text
    return json.dumps(text)  # quotes, escapes newlines and control characters


def audit(event: str, *, level: int = logging.INFO, **fields: str | None) -> None:
    """Write one audit line for ``event`` with ``fields`` (see the module's docstring)."""
    if not log.isEnabledFor(level):
        return
    present = {key: fields[key] for key in _FIELDS if fields.get(key) is not None}
    parts = [f"event={event}"]
    parts += [f"{key}={_value(str(value))}" for key, value in present.items()]
    extra = {f"audit_{key}": str(value)[:MAX_VALUE_CHARS] for key, value in present.items()}
    extra["audit_event"] = event
    log.log(level, "audit %s", " ".join(parts), extra=extra)
