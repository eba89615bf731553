"""A small FIX 4.4 acceptor of our own that misbehaves on purpose, on loopback.

QuickFIX's acceptors prove that we speak FIX as a real engine does; this one
makes the things happen that a real engine does rarely and never on cue:

- ``drop_after_fill``: cut the TCP connection after an order's k-th fill; the
  rest of its reports are numbered and kept as if sent into the dead socket,
  so the gateway sees a gap on its next Logon and must ask for a resend;
- ``skip_next``: number one message and never write it (a gap in a live
  session, answered by the gateway's ResendRequest);
- ``duplicate_fills``: repeat each fill with PossDupFlag (same MsgSeqNum) and
  with PossResend (a new MsgSeqNum, same ExecID);
- ``reject_cancels``: answer cancels with OrderCancelReject (9);
- ``hold_orders``: take NewOrderSingles and never answer them, nor status
  requests (orders in doubt);
- ``fill_orders`` false: acknowledge orders and let them rest;
- ``refuse_logon``: answer Logon with Logout and this Text;
- ``business_reject``: answer these message types with BusinessMessageReject (j);
- ``reject_replaces``: answer OrderCancelReplaceRequest (G) with
  OrderCancelReject (9, CxlRejResponseTo 2); otherwise it replaces, and
  ``hold_replaces`` replaces without saying so (the answer is lost);
- ``lose_next``: lose the gateway's next application message (as a crash of
  ours between numbering and writing would), so its next one shows a gap and
  the gateway must replay what it sent.

It answers OrderStatusRequest (H) and OrderMassStatusRequest (AF), keeps its
orders and sequence numbers across connections (as a venue does), and
records what it received for the tests to check.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from gateway.brokers.fix.codec import Field, Framer, Message, encode

_ADMIN = {"0", "1", "2", "3", "4", "5", "A"}


@dataclass
class VenueOrder:
    cl_ord_id: str
    order_id: str
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    account: str | None
    cum: Decimal = Decimal(0)
    status: str = "0"
    current: str = ""  # the ClOrdID it goes by (a replace's, once replaced)
    ord_type: str = "1"

    def __post_init__(self) -> None:
        self.current = self.current or self.cl_ord_id


@dataclass
class FaultAcceptor:
    """The venue; ``await start()`` listens on 127.0.0.1 (``port``)."""

    sender: str = "VENUE"
    target: str = "GATEWAY"
    fills_per_order: int = 1
    fill_orders: bool = True
    fill_price: Decimal = Decimal("100.25")
    drop_after_fill: int | None = None
    skip_next: bool = False
    duplicate_fills: bool = False
    reject_cancels: bool = False
    hold_orders: bool = False
    answer_status: bool = True
    refuse_logon: str | None = None
    business_reject: frozenset[str] = frozenset()
    lose_next: bool = False
    reject_replaces: bool = False
    hold_replaces: bool = False
    port: int = 0
    tls: ssl.SSLContext | None = None
    # What happened, for assertions.
    received: list[Message] = field(default_factory=list)
    logons: int = 0
    resend_requests: int = 0
    orders: dict[str, VenueOrder] = field(default_factory=dict)
    # Session state, kept across connections.
    next_out: int = 1
    next_in: int = 1
    sent: dict[int, tuple[str, tuple[Field, ...]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._exec_ids = 0
        self._missing: set[int] = set()
        self._aliases: dict[str, str] = {}  # a replace's ClOrdID -> the order's own

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.hang_up()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def hang_up(self) -> None:
        """Cut the current connection (as a network failure would)."""
        if self._writer is not None:
            self._writer.transport.abort()
            self._writer = None

    def send(self, msg_type: str, body: list[Field]) -> None:
        """Send any message now (e.g. one the gateway does not support)."""
        self._send(msg_type, body)

    def count(self, msg_type: str) -> Counter[str]:
        """How many messages of ``msg_type`` arrived, by ClOrdID."""
        return Counter(m.get(11) or "" for m in self.received if m.msg_type == msg_type)

    @property
    def connected(self) -> bool:
        return self._writer is not None

    # --- the session ---------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._writer is not None:
            writer.close()  # one session at a time
            return
        self._writer = writer
        framer = Framer()
        try:
            while self._writer is writer and (data := await reader.read(65536)):
                for msg in framer.feed(data):
                    self._on_message(msg)
                    if self._writer is not writer:
                        break
        except (ConnectionError, OSError):
            pass
        finally:
            if self._writer is writer:
                self._writer = None
            writer.close()

    def _send(self, msg_type: str, body: list[Field], *, write: bool = True) -> int:
        seq = self.next_out
        self.next_out += 1
        fields = tuple(body)
        self.sent[seq] = (msg_type, fields)
        if write and self.skip_next and msg_type not in _ADMIN:
            self.skip_next = False
            write = False  # the gap
        if write and self._writer is not None:
            now = datetime.now(UTC)
            self._writer.write(encode(msg_type, seq, self.sender, self.target, now, fields))
        return seq

    def _resend_raw(self, seq: int, *, poss_resend: bool = False) -> None:
        """Write a kept message again: same MsgSeqNum with PossDupFlag, or a new one."""
        if self._writer is None:
            return
        msg_type, body = self.sent[seq]
        now = datetime.now(UTC)
        if poss_resend:
            self._send(msg_type, [*body, (97, "Y")])
        else:
            self._writer.write(
                encode(msg_type, seq, self.sender, self.target, now, body, poss_dup_of=now)
            )

    def _on_message(self, msg: Message) -> None:
        self.received.append(msg)
        kind, seq = msg.msg_type, msg.seq_num
        if kind == "A":
            self._on_logon(msg)
            return
        if kind == "4" and msg.get(123) == "Y":
            self._missing -= set(range(seq, int(msg.require(36))))
            self.next_in = max(self.next_in, int(msg.require(36)))
            return
        if self.lose_next and kind not in _ADMIN:
            self.lose_next = False
            return
        if seq < self.next_in:
            if seq not in self._missing:
                return  # a PossDup repeat of what was processed
            self._missing.discard(seq)
        else:
            self._gap_to(seq)
            self.next_in = seq + 1
        if kind == "1":
            self._send("0", [(112, msg.get(112) or "")])
        elif kind == "2":
            self.resend_requests += 1
            self._replay(int(msg.require(7)), int(msg.require(16)))
        elif kind == "5":
            self._send("5", [])
            self.hang_up()
        elif kind in self.business_reject:
            body = [(45, str(seq)), (372, kind), (380, "3"), (58, f"{kind} not supported")]
            self._send("j", body)
        elif kind == "D":
            self._on_new_order(msg)
        elif kind == "F":
            self._on_cancel(msg)
        elif kind == "G":
            self._on_replace(msg)
        elif kind == "H":
            self._on_status(msg)
        elif kind == "AF":
            self._on_mass_status(msg)

    def _gap_to(self, seq: int) -> None:
        """Ask for what is missing before ``seq``; the resent ones are processed late."""
        if seq > self.next_in:
            self._missing |= set(range(self.next_in, seq))
            self._send("2", [(7, str(self.next_in)), (16, str(seq - 1))])

    def _on_logon(self, msg: Message) -> None:
        if self.refuse_logon is not None:
            self._send("5", [(58, self.refuse_logon)])
            self.hang_up()
            return
        self.logons += 1
        if msg.get(141) == "Y":
            self.next_in, self.next_out, self.sent = 1, 1, {}
            self._missing = set()
        self._send("A", [(98, "0"), (108, msg.get(108) or "30")])
        seq = msg.seq_num
        self._gap_to(seq)
        self.next_in = max(self.next_in, seq + 1)

    def _replay(self, begin: int, end: int) -> None:
        end = self.next_out - 1 if end == 0 else end
        for seq in range(begin, end + 1):
            msg_type, _ = self.sent.get(seq, ("0", ()))
            if msg_type in _ADMIN:
                self._write_gap_fill(seq, seq + 1)
            else:
                self._resend_raw(seq)

    def _write_gap_fill(self, seq: int, new: int) -> None:
        if self._writer is not None:
            now = datetime.now(UTC)
            body = [(123, "Y"), (36, str(new))]
            self._writer.write(
                encode("4", seq, self.sender, self.target, now, body, poss_dup_of=now)
            )

    # --- orders --------------------------------------------------------------

    def _report(self, order: VenueOrder, exec_type: str, extra: list[Field]) -> int:
        self._exec_ids += 1
        body: list[Field] = [
            (37, order.order_id),
            (11, order.current),
            (17, f"E{self._exec_ids}"),
            (150, exec_type),
            (39, order.status),
        ]
        if order.account is not None:
            body.append((1, order.account))
        body += [
            (55, order.symbol),
            (54, order.side),
            (38, str(order.quantity)),
            (40, order.ord_type),
            *([(44, str(order.price))] if order.ord_type == "2" else []),
            (59, "0"),
            (151, str(order.quantity - order.cum if order.status in "012" else 0)),
            (14, str(order.cum)),
            (6, str(self.fill_price if order.cum else 0)),
            *extra,
        ]
        return self._send("8", body, write=self._writer is not None)

    def _on_new_order(self, msg: Message) -> None:
        cl_ord_id = msg.require(11)
        order = VenueOrder(
            cl_ord_id,
            f"O-{cl_ord_id}",
            msg.require(55),
            msg.require(54),
            Decimal(msg.require(38)),
            Decimal(msg.get(44) or self.fill_price),
            msg.get(1),
            ord_type=msg.get(40) or "1",
        )
        if cl_ord_id in self.orders or self.hold_orders:
            if cl_ord_id not in self.orders:
                self.orders[cl_ord_id] = order
            return
        self.orders[cl_ord_id] = order
        self._report(order, "0", [])
        if not self.fill_orders:
            return
        parts = self.fills_per_order
        step = order.quantity / parts
        for n in range(1, parts + 1):
            quantity = step if n < parts else order.quantity - order.cum
            order.cum += quantity
            order.status = "2" if order.cum == order.quantity else "1"
            seq = self._report(order, "F", [(32, str(quantity)), (31, str(self.fill_price))])
            if self.duplicate_fills and self._writer is not None:
                self._resend_raw(seq)  # same MsgSeqNum, PossDupFlag=Y
                self._resend_raw(seq, poss_resend=True)  # new MsgSeqNum, same ExecID
            if self.drop_after_fill == n:
                self.drop_after_fill = None
                self.hang_up()

    def fill_now(self, cl_ord_id: str, quantity: Decimal) -> None:
        """Fill part of a resting order now (as a crossing order elsewhere would)."""
        order = self.orders[cl_ord_id]
        order.cum += quantity
        order.status = "2" if order.cum == order.quantity else "1"
        self._report(order, "F", [(32, str(quantity)), (31, str(self.fill_price))])

    def _on_replace(self, msg: Message) -> None:
        named = msg.require(41)
        order = self.orders.get(self._aliases.get(named, named))
        new_id = msg.require(11)
        quantity = Decimal(msg.require(38))
        if order is None or self.reject_replaces or order.status not in ("0", "1"):
            body: list[Field] = [
                (37, order.order_id if order else "NONE"),
                (11, new_id),
                (41, named),
                (39, order.status if order else "8"),
                (434, "2"),
                (102, "0" if order else "1"),
                (58, "cannot replace now" if order else "unknown order"),
            ]
            self._send("9", body)
            return
        self._aliases[new_id] = order.cl_ord_id
        order.current, order.quantity = new_id, quantity
        order.price = Decimal(msg.get(44) or order.price)
        if not self.hold_replaces:
            self._report(order, "5", [(41, named)])

    def _on_cancel(self, msg: Message) -> None:
        named = msg.require(41)
        orig = self._aliases.get(named, named)
        order = self.orders.get(orig)
        if order is None or self.reject_cancels or order.status not in ("0", "1"):
            body: list[Field] = [
                (37, order.order_id if order else "NONE"),
                (11, msg.require(11)),
                (41, orig),
                (39, order.status if order else "8"),
                (434, "1"),
                (102, "0" if order else "1"),
                (58, "too late to cancel" if order else "unknown order"),
            ]
            self._send("9", body)
            return
        order.status = "4"
        self._report(order, "4", [(41, orig)])

    def _on_status(self, msg: Message) -> None:
        if self.hold_orders:
            return  # a venue that is silent about orders is silent about their status
        if not self.answer_status:
            self._send("j", [(45, str(msg.seq_num)), (372, "H"), (380, "3")])
            return
        cl_ord_id = msg.require(11)
        order = self.orders.get(cl_ord_id)
        request = [(790, msg.require(790))]
        if order is None:
            unknown = VenueOrder(
                cl_ord_id,
                "NONE",
                msg.get(55) or "?",
                msg.get(54) or "1",
                Decimal(0),
                Decimal(0),
                None,
                status="8",
            )
            self._report(unknown, "I", [*request, (103, "5")])
        else:
            self._report(order, "I", request)

    def _on_mass_status(self, msg: Message) -> None:
        request = msg.require(584)
        orders = list(self.orders.values())
        for n, order in enumerate(orders, 1):
            last = "Y" if n == len(orders) else "N"
            self._report(order, "I", [(584, request), (911, str(len(orders))), (912, last)])
        if not orders:
            self._send(
                "8",
                [
                    (584, request),
                    (911, "0"),
                    (912, "Y"),
                    (150, "I"),
                    (39, "8"),
                    (37, "NONE"),
                    (17, "NONE"),
                    (55, "NONE"),
                    (54, "1"),
                ],
            )


async def started(acceptor: FaultAcceptor) -> FaultAcceptor:
    await acceptor.start()
    return acceptor


async def stop_quietly(acceptor: FaultAcceptor) -> None:
    with contextlib.suppress(Exception):
        await acceptor.stop()
