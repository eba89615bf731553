"""Logging set-up: human text or one JSON object per line, with call context.

Owns the log format. ``bind`` attaches fields (the RPC method, principal,
trace id from a W3C ``traceparent`` header) to every record logged in the
current task; fields passed with ``extra=`` (e.g. ``order_id``) are carried
too. Secrets never get here on purpose, and as a second line of defence the
formatter masks anything shaped like a bearer token or a token digest.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

_CONTEXT: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "gateway_log_context", default=None
)
_SECRET = re.compile(r"(?i)(bearer\s+)[^\s\"',;]+|sha256:[0-9a-f]{64}")
# LogRecord's own attributes: everything else on a record came in through extra=.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")


def redact(text: str) -> str:
    """Mask bearer tokens and token digests in ``text``."""
    return _SECRET.sub(lambda m: (m.group(1) or "") + "[REDACTED]", text)


@contextmanager
def bind(**fields: str) -> Iterator[None]:
    """Add ``fields`` to every record logged inside the block (in this task)."""
    token = _CONTEXT.set({**(_CONTEXT.get() or {}), **fields})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def set_fields(**fields: str) -> None:
    """Add ``fields`` to every later record of the current task (one gRPC call's task)."""
    _CONTEXT.set({**(_CONTEXT.get() or {}), **fields})


def add_fields(fields: Mapping[str, str]) -> None:
    """``set_fields`` for a mapping the caller keeps unchanged: shared, not copied,
    when nothing is bound yet (the usual case at the start of a call)."""
    current = _CONTEXT.get()
    _CONTEXT.set(fields if not current else {**current, **fields})


def trace_fields(traceparent: str | None) -> dict[str, str]:
    """Return trace_id/span_id from a W3C traceparent header (empty if absent or bad)."""
    if traceparent and (match := _TRACEPARENT.fullmatch(traceparent.strip())):
        return {"trace_id": match.group(1), "parent_span_id": match.group(2)}
    return {}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, context, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        entry.update(_CONTEXT.get() or {})
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, int | float | bool) else str(value)
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """The classic one-line text format, with the same masking as the JSON one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


@dataclass(frozen=True, slots=True)
class LogConfig:
    """Where log lines go and how they look."""

    level: str = "INFO"
    """Lowest level logged: DEBUG, INFO, WARNING or ERROR."""

    format: str = "text"
    """text, or json (one JSON object per line, for log collectors)."""


def configure(level: str = "INFO", fmt: str = "text", stream: TextIO | None = None) -> None:
    """Send the root logger's records to ``stream`` (stderr) as ``text`` or ``json``."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
