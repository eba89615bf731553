"""FIX tag=value encoding and parsing, through ``simplefix``; nothing else imports it.

``simplefix`` frames the byte stream (BodyLength) and builds messages with the
right BodyLength and CheckSum. It does not check a received CheckSum: ``Framer``
does, so a garbled message is refused here, never handed to the session.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import simplefix  # type: ignore[import-untyped]  # no type hints shipped

from gateway.brokers.fix.config import BEGIN_STRING

# Header tags the session writes itself; a body passed to ``encode`` must not hold them.
BEGIN, BODY_LENGTH, CHECKSUM = 8, 9, 10
MSG_TYPE, SEQ_NUM, SENDER, TARGET, SENDING_TIME = 35, 34, 49, 56, 52
POSS_DUP, POSS_RESEND, ORIG_SENDING_TIME = 43, 97, 122
HEADER_TAGS = frozenset(
    {BEGIN, BODY_LENGTH, CHECKSUM, MSG_TYPE, SEQ_NUM, SENDER, TARGET, SENDING_TIME, POSS_DUP}
    | {POSS_RESEND, ORIG_SENDING_TIME}
)

Field = tuple[int, str]


class GarbledMessage(ValueError):
    """Bytes that are not a FIX message (bad checksum, missing header fields)."""


@dataclass(frozen=True, slots=True)
class Message:
    """One received FIX message: its fields in wire order, and the first of each tag."""

    fields: tuple[Field, ...]

    def get(self, tag: int, default: str | None = None) -> str | None:
        for t, v in self.fields:
            if t == tag:
                return v
        return default

    def require(self, tag: int) -> str:
        value = self.get(tag)
        if value is None:
            raise GarbledMessage(f"message {self.msg_type!r} lacks tag {tag}")
        return value

    @property
    def msg_type(self) -> str:
        return self.get(MSG_TYPE) or ""

    @property
    def seq_num(self) -> int:
        return int(self.require(SEQ_NUM))

    @property
    def poss_dup(self) -> bool:
        return self.get(POSS_DUP) == "Y"

    @property
    def poss_resend(self) -> bool:
        return self.get(POSS_RESEND) == "Y"

    def body(self) -> tuple[Field, ...]:
        """The fields after the standard header (and before the CheckSum)."""
        return tuple((t, v) for t, v in self.fields if t not in HEADER_TAGS)

    def __str__(self) -> str:
        return "|".join(f"{t}={v}" for t, v in self.fields)


def sending_time(now: datetime) -> str:
    """FIX UTCTimestamp with milliseconds: 20260129-14:03:07.123."""
    return now.astimezone(UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


def parse_time(text: str | None) -> datetime | None:
    """Read a UTCTimestamp (with or without fractions); None when absent or bad."""
    if not text:
        return None
    for fmt in ("%Y%m%d-%H:%M:%S.%f", "%Y%m%d-%H:%M:%S"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def encode(
    msg_type: str,
    seq_num: int,
    sender: str,
    target: str,
    now: datetime,
    body: Iterable[Field],
    *,
    poss_dup_of: datetime | None = None,
) -> bytes:
    """Build one message; ``poss_dup_of`` (the original SendingTime) marks a resend."""
    message = simplefix.FixMessage()
    message.append_pair(BEGIN, BEGIN_STRING, header=True)
    message.append_pair(MSG_TYPE, msg_type, header=True)
    message.append_pair(SENDER, sender, header=True)
    message.append_pair(TARGET, target, header=True)
    message.append_pair(SEQ_NUM, seq_num, header=True)
    message.append_pair(SENDING_TIME, sending_time(now), header=True)
    if poss_dup_of is not None:
        message.append_pair(POSS_DUP, "Y", header=True)
        message.append_pair(ORIG_SENDING_TIME, sending_time(poss_dup_of), header=True)
    for tag, value in body:
        message.append_pair(tag, value)
    data: bytes = message.encode()
    return data


def encode_body(body: Iterable[Field]) -> bytes:
    """The body as stored for a later resend: tag=value pairs, SOH-separated."""
    return b"".join(f"{t}={v}\x01".encode() for t, v in body)


def decode_body(data: bytes) -> tuple[Field, ...]:
    """The inverse of ``encode_body``."""
    fields: list[Field] = []
    for part in data.split(b"\x01"):
        if part:
            tag, _, value = part.partition(b"=")
            fields.append((int(tag), value.decode()))
    return tuple(fields)


class Framer:
    """Cut a TCP byte stream into checked messages."""

    def __init__(self) -> None:
        self._parser = simplefix.FixParser()

    def feed(self, data: bytes) -> Iterator[Message]:
        """Add received bytes; yield every complete message; raise GarbledMessage."""
        self._parser.append_buffer(data)
        while (parsed := self._parser.get_message()) is not None:
            yield _checked(parsed)


def _checked(parsed: simplefix.FixMessage) -> Message:
    raw: bytes = parsed.encode(raw=True)
    cut = raw.rfind(b"\x0110=")
    if cut < 0:
        raise GarbledMessage("message without a CheckSum")
    declared = raw[cut + 4 : -1]
    if not declared.isdigit() or int(declared) != sum(raw[: cut + 1]) % 256:
        raise GarbledMessage(f"bad CheckSum {declared!r}")
    fields = tuple((int(tag), value.decode(errors="replace")) for tag, value in parsed.pairs)
    if not fields or fields[0] != (BEGIN, BEGIN_STRING):
        raise GarbledMessage(f"not a {BEGIN_STRING} message")
    return Message(fields)
