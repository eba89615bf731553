"""``FixBroker``: the ``Broker`` protocol over a FIX 4.4 initiator session.

One task owns the connection: it connects (with backoff), logs on, reads,
feeds the ``Session`` state machine and writes what it says. Commands
(``submit``, ``cancel``, status questions) number and write their message
synchronously, so messages leave in sequence-number order without a lock.
Answers are matched to their question by ClOrdID (D), OrdStatusReqID (H),
MassStatusReqID (AF), or RefSeqNum (a reject of any of them).

If the counterparty refuses the Logon, or cannot be reached, ``connect``
still returns: the gateway serves reads, health says NOT_SERVING for the
execution service, and orders are refused as unavailable until a later
attempt logs on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from gateway.brokers.base import (
    BrokerOrderState,
    ExecutionReport,
    ReplaceAck,
    ReportKind,
    SubmitAck,
)
from gateway.brokers.errors import BrokerRejected, BrokerTimeout, BrokerUnavailable
from gateway.brokers.fix import mapping
from gateway.brokers.fix.codec import Framer, GarbledMessage, Message
from gateway.brokers.fix.config import FixConfig
from gateway.brokers.fix.session import REJECT, NotLoggedOn, Session, State, Step
from gateway.brokers.fix.store import OrderTerms, SessionStore
from gateway.brokers.fix.transport import Connection, open_connection
from gateway.brokers.fix.waiters import MassStatus, RecentExecIds, Waiters
from gateway.domain import OrderSpec

log = logging.getLogger(__name__)

_SEEN_EXEC_IDS = 100_000  # ExecIDs remembered to drop PossDup/PossResend repeats
_REFS = 100_000  # our sent messages remembered for matching rejects (RefSeqNum)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class FixBroker:
    """Trade through one FIX 4.4 session, for the accounts of its account table."""

    name: str = "fix"

    def __init__(
        self,
        config: FixConfig,
        store_path: Path | str,
        *,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._config = config
        self._clock = clock
        self._store = SessionStore(store_path)
        self._session = Session(
            self._store,
            sender=config.sender_comp_id,
            target=config.target_comp_id,
            heartbeat_interval=config.heartbeat_interval,
            logon_timeout=config.logon_timeout,
        )
        # Overload: when full, the connection task stops reading; TCP pushes back.
        self._queue: asyncio.Queue[Sequence[ExecutionReport] | None] = asyncio.Queue(
            maxsize=config.report_queue_size
        )
        self._conn: Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._first_outcome = asyncio.Event()
        self._gone = asyncio.Event()  # set while there is no connection
        self._gone.set()
        self._waiting = Waiters(_REFS)
        self._recent = RecentExecIds(_SEEN_EXEC_IDS)
        self._health_listeners: list[Callable[[bool], None]] = []
        self._reconnect_listeners: list[Callable[[], None]] = []
        self._healthy: bool | None = None
        # What the counterparty answers; turned off when it says it does not (j, 380=3).
        self._status_requests = config.status_requests
        self._mass_status_requests = config.mass_status
        self._closed = False
        self.logons = 0
        self.last_error = ""

    # --- the Broker protocol ------------------------------------------------

    @property
    def config(self) -> FixConfig:
        return self._config

    @property
    def logged_on(self) -> bool:
        return self._session.state is State.ACTIVE and self._conn is not None

    @property
    def store(self) -> SessionStore:
        return self._store

    def add_reconnect_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every Logon but the first (the engine reconciles)."""
        self._reconnect_listeners.append(listener)

    def add_health_listener(self, listener: Callable[[bool], None]) -> None:
        """Call ``listener(logged_on)`` whenever the session goes up or down."""
        self._health_listeners.append(listener)
        if self._healthy is not None:
            listener(self._healthy)

    async def connect(self) -> None:
        """Start the session; return once logged on, refused, or unreachable.

        Never raises for the counterparty's sake: a refusal is logged with its
        reason and the session keeps trying with backoff.
        """
        if self._closed:
            raise BrokerUnavailable("FIX broker is closed")
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="fix-session")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_outcome.wait(), self._config.logon_timeout + 5)
        if not self.logged_on:
            log.error(
                "FIX session %s->%s at %s:%d not logged on: %s; reads are served, orders "
                "are refused until it is (retrying with backoff)",
                self._config.sender_comp_id,
                self._config.target_comp_id,
                self._config.host,
                self._config.port,
                self.last_error or "no answer yet",
            )

    async def close(self) -> None:
        """Log out, stop the session task, close the store; ``reports()`` ends."""
        if self._closed:
            return
        self._closed = True
        conn = self._conn
        if conn is not None and self._session.state is State.ACTIVE:
            with contextlib.suppress(OSError):
                await conn.write(self._session.logout(self._clock(), "gateway stopping").send)
            # An orderly Logout: the counterparty's answer ends the connection (bounded).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._gone.wait(), 2.0)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._waiting.fail_all("FIX broker closed")
        self._store.close()
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    async def submit(self, spec: OrderSpec) -> SubmitAck:
        """Send a NewOrderSingle (D) and wait for the venue's first report on it."""
        fix_account = self._fix_account(spec.account)
        body = mapping.new_order(spec, fix_account, self._clock())
        terms = OrderTerms(
            spec.account, spec.symbol, body_value(body, mapping.SIDE), str(spec.quantity)
        )
        cl_ord_id = spec.client_order_id
        existing = self._store.order(cl_ord_id)
        if existing is not None:
            if (existing.account, existing.symbol, existing.side, existing.quantity) != (
                terms.account,
                terms.symbol,
                terms.side,
                terms.quantity,
            ):
                raise BrokerRejected(f"ClOrdID {cl_ord_id!r} already used for another order")
            # Sent before (perhaps by a process that died since): the FIX session
            # delivers it, by resend if need be. A second D would be a second order.
            if existing.ord_status == "8":
                raise BrokerRejected("rejected by the venue")
            if existing.ord_status:
                return SubmitAck(existing.order_id)
            return await self._await_ack(self._waiting.ack_for(cl_ord_id))
        conn = self._ready()
        answer = self._waiting.ack_for(cl_ord_id)  # before sending: it may come at once
        self._store.remember_order(cl_ord_id, terms)
        await self._send(conn, mapping.NEW_ORDER_SINGLE, body, cl_ord_id)
        return await self._await_ack(answer)

    async def cancel(self, account: str, client_order_id: str, broker_order_id: str) -> None:
        """Send an OrderCancelRequest (F); the outcome comes as a report (8 or 9)."""
        terms = self._store.order(client_order_id)
        if terms is None or terms.account != account:
            raise BrokerRejected("unknown order")
        fix_account = self._fix_account(account)
        conn = self._ready()
        cancel_id = f"{client_order_id}-X{self._store.next_out}"
        body = mapping.cancel_request(
            cancel_id,
            self._store.current(client_order_id),
            broker_order_id or terms.order_id,
            fix_account,
            terms.symbol,
            terms.side,
            terms.quantity,
            self._clock(),
        )
        await self._send(conn, mapping.ORDER_CANCEL_REQUEST, body, client_order_id)

    async def replace(
        self,
        account: str,
        client_order_id: str,
        broker_order_id: str,
        spec: OrderSpec,
        replace_id: str,
    ) -> ReplaceAck:
        """Send an OrderCancelReplaceRequest (G) and wait for Replaced (8) or a reject (9).

        The replace's ClOrdID is derived from ``replace_id``, so a retry of the
        same replace finds the first one (sent, or answered) instead of sending
        a second.
        """
        terms = self._store.order(client_order_id)
        if terms is None or terms.account != account:
            raise BrokerRejected("unknown order")
        fix_account = self._fix_account(account)
        replace_cl_ord_id = f"{client_order_id}-R{replace_id}"
        if self._store.replace_accepted(replace_cl_ord_id):
            return ReplaceAck(broker_order_id or terms.order_id)
        answer = self._waiting.replace_for(replace_cl_ord_id)
        if self._store.add_alias(replace_cl_ord_id, client_order_id):
            conn = self._ready()
            body = mapping.replace_request(
                replace_cl_ord_id,
                self._store.current(client_order_id),
                broker_order_id or terms.order_id,
                fix_account,
                spec,
                self._clock(),
            )
            await self._send(conn, mapping.ORDER_CANCEL_REPLACE_REQUEST, body, replace_cl_ord_id)
        try:
            return await asyncio.wait_for(asyncio.shield(answer), self._config.request_timeout)
        except TimeoutError:
            raise BrokerTimeout("no answer to OrderCancelReplaceRequest yet") from None

    async def reports(self) -> AsyncIterator[Sequence[ExecutionReport]]:
        """Yield each received message's reports until ``close()``."""
        while not self._closed:
            reports = await self._queue.get()
            if reports is None:
                if not self._queue.full():
                    self._queue.put_nowait(None)  # wake the next reader too
                return
            yield reports

    async def order_status(self, account: str, client_order_id: str) -> BrokerOrderState | None:
        """The venue's view of one order: asked with H, or the session's last word."""
        terms = self._store.order(client_order_id)
        if terms is None or terms.account != account:
            # Every D this adapter ever sent is in the store first: the venue cannot have it.
            return None
        if not self._status_requests:
            if not terms.ord_status:
                raise BrokerTimeout("no report on the order yet, and no status requests")
            return _state_from_terms(client_order_id, terms)
        conn = self._ready()
        request_id = f"S{self._store.next_out}"
        future: asyncio.Future[BrokerOrderState | None] = asyncio.get_running_loop().create_future()
        self._waiting.status[request_id] = (account, future)
        body = mapping.status_request(
            request_id, client_order_id, terms.order_id, terms.symbol, terms.side
        )
        try:
            await self._send(conn, mapping.ORDER_STATUS_REQUEST, body, request_id)
            return await asyncio.wait_for(future, self._config.request_timeout)
        except TimeoutError:
            raise BrokerTimeout("no answer to OrderStatusRequest") from None
        finally:
            self._waiting.status.pop(request_id, None)

    async def open_orders(self, account: str | None = None) -> list[BrokerOrderState]:
        """Open orders: by OrderMassStatusRequest (AF), or the session's last word on ours."""
        if self._mass_status_requests:
            states = await self._mass_status()
        else:
            states = [
                _state_from_terms(cl_ord_id, terms)
                for cl_ord_id, terms in self._store.open_orders()
                if terms.ord_status
            ]
        return [
            s
            for s in states
            if not s.status.is_terminal and (account is None or s.account == account)
        ]

    async def orders_since(self, account: str, since: datetime) -> list[BrokerOrderState]:
        """AF's answer for ``account`` where supported; else nothing (then H per order)."""
        if not self._mass_status_requests:
            return []
        return [s for s in await self._mass_status() if s.account == account]

    # --- the connection task ----------------------------------------------

    async def _run(self) -> None:
        config = self._config
        backoff = config.reconnect_backoff
        while not self._closed:
            now = self._clock()
            if config.schedule is not None and not config.schedule.is_open(now):
                self._outcome(False, "outside the session schedule")
                # Checked every second, not slept through: the clock may jump (NTP, tests).
                await asyncio.sleep(min(config.schedule.seconds_until_open(now), 1.0))
                continue
            try:
                conn = await open_connection(config, config.logon_timeout)
            except (OSError, TimeoutError) as exc:
                self._outcome(False, f"cannot reach {config.host}:{config.port}: {exc!r}")
            else:
                self._conn = conn
                self._gone.clear()
                was_logged_on = False
                try:
                    was_logged_on = await self._pump(conn)
                except (OSError, ConnectionError) as exc:
                    log.warning("FIX connection lost: %r", exc)
                except Exception:
                    # A bug must not end the session for good: log it, reconnect.
                    log.exception("FIX session failed; reconnecting")
                finally:
                    self._conn = None
                    self._gone.set()
                    self._session.lost(self._clock())
                    self._waiting.fail_all("FIX connection lost")
                    self._outcome(False, self.last_error or "FIX connection lost")
                    await conn.close()
                if was_logged_on:
                    backoff = config.reconnect_backoff
            if self._closed:
                return
            delay = random.uniform(backoff / 2, backoff)
            backoff = min(backoff * 2, config.reconnect_backoff_max)
            await asyncio.sleep(delay)

    async def _pump(self, conn: Connection) -> bool:
        """Run one connection until it ends; return whether it got logged on."""
        config = self._config
        now = self._clock()
        schedule = config.schedule
        reset = config.reset_on_logon or (
            schedule is not None and self._store.started < schedule.session_start(now)
        )
        await conn.write(self._session.connected(now, reset=reset).send)
        framer = Framer()
        tick = min(1.0, config.heartbeat_interval / 4)
        logged_on = False
        while True:
            data = await conn.read(tick)
            now = self._clock()
            if data == b"":
                if self._session.state is State.LOGON_SENT:
                    # QuickFIX acceptors hang up on a Logon for a session they do not know.
                    self._outcome(
                        False,
                        "logon refused: connection closed before any Logon answer (check "
                        "sender_comp_id, target_comp_id and the counterparty's hours)",
                    )
                    log.error("FIX %s", self.last_error)
                    return logged_on
                self.last_error = self.last_error or "connection closed by the counterparty"
                log.warning("FIX connection closed by the counterparty")
                return logged_on
            steps: list[Step] = []
            if data:
                try:
                    for msg in framer.feed(data):
                        step = self._session.received(msg, now)
                        logged_on |= await self._apply(step, conn)
                        if step.disconnect:
                            return logged_on
                except GarbledMessage as exc:
                    # FIX: a garbled message is ignored (its number is not consumed).
                    log.error("FIX garbled message ignored: %s", exc)
                    framer = Framer()
            closing = schedule is not None and not schedule.is_open(now)
            if closing and self._session.state is State.ACTIVE:
                log.info("FIX session schedule: end of session, logging out")
                steps.append(self._session.logout(now, "end of session"))
            steps.append(self._session.tick(now))
            for step in steps:
                logged_on |= await self._apply(step, conn)
                if step.disconnect:
                    return logged_on

    async def _apply(self, step: Step, conn: Connection) -> bool:
        await conn.write(step.send)
        if step.refused is not None:
            self._outcome(False, f"logon refused: {step.refused}")
            log.error("FIX logon refused by %s: %s", self._config.target_comp_id, step.refused)
        if step.disconnect:
            if step.refused is None:
                self.last_error = step.disconnect
            log.warning("FIX session ends: %s", step.disconnect)
        if step.logged_on:
            self.logons += 1
            self.last_error = ""
            log.info(
                "FIX session logged on (%s->%s, next out %d, next in %d)",
                self._config.sender_comp_id,
                self._config.target_comp_id,
                self._store.next_out,
                self._store.next_in,
            )
            self._outcome(True, "")
            if self.logons > 1:
                for listener in self._reconnect_listeners:
                    listener()
        # After the Logon: what came with it is read by a session known to be up.
        for msg in step.deliver:
            await self._on_app_message(msg)
        return step.logged_on

    def _outcome(self, ok: bool, error: str) -> None:
        if not ok and error:
            self.last_error = error
        self._first_outcome.set()
        if ok != self._healthy:
            self._healthy = ok
            for listener in self._health_listeners:
                listener(ok)

    # --- sending -------------------------------------------------------------

    def _ready(self) -> Connection:
        conn = self._conn
        if self._closed or conn is None or self._session.state is not State.ACTIVE:
            raise BrokerUnavailable(
                f"FIX session not logged on ({self.last_error or 'connecting'})"
            )
        return conn

    async def _send(
        self, conn: Connection, msg_type: str, body: list[tuple[int, str]], ref: str
    ) -> None:
        try:
            data = self._session.send_app(msg_type, body, self._clock())
        except NotLoggedOn as exc:
            raise BrokerUnavailable(str(exc)) from None
        self._waiting.sent(self._store.next_out - 1, msg_type, ref)
        try:
            await conn.write([data])
        except OSError as exc:
            # Numbered and kept: the counterparty gets it by resend, or not at all.
            raise BrokerTimeout(f"FIX connection lost while sending: {exc!r}") from None

    async def _await_ack(self, future: asyncio.Future[SubmitAck]) -> SubmitAck:
        try:
            return await asyncio.wait_for(asyncio.shield(future), self._config.request_timeout)
        except TimeoutError:
            raise BrokerTimeout("no ExecutionReport for the order yet") from None

    async def _mass_status(self) -> list[BrokerOrderState]:
        conn = self._ready()
        request_id = f"M{self._store.next_out}"
        pending = MassStatus(asyncio.get_running_loop().create_future())
        self._waiting.mass[request_id] = pending
        try:
            await self._send(
                conn,
                mapping.ORDER_MASS_STATUS_REQUEST,
                mapping.mass_status_request(request_id),
                request_id,
            )
            await asyncio.wait_for(pending.done, self._config.request_timeout)
        except TimeoutError:
            raise BrokerTimeout("no complete answer to OrderMassStatusRequest") from None
        finally:
            self._waiting.mass.pop(request_id, None)
        return pending.states

    def _fix_account(self, account: str) -> str | None:
        try:
            return self._config.fix_account(account)
        except KeyError:
            raise BrokerRejected(f"account {account!r} is not traded on this FIX session") from None

    # --- receiving -------------------------------------------------------------

    async def _on_app_message(self, msg: Message) -> None:
        try:
            kind = msg.msg_type
            if kind == mapping.EXECUTION_REPORT:
                await self._on_execution_report(msg)
            elif kind == mapping.ORDER_CANCEL_REJECT:
                await self._on_cancel_reject(msg)
            elif kind in (mapping.BUSINESS_REJECT, REJECT):
                await self._on_reject(msg)
            elif self._conn is not None:
                log.warning("FIX message type %r not supported: %s", kind, msg)
                body = [(mapping.REF_SEQ_NUM, str(msg.seq_num)), (mapping.REF_MSG_TYPE, kind)]
                body.append((mapping.BUSINESS_REJECT_REASON, "3"))  # unsupported message type
                await self._send(self._conn, mapping.BUSINESS_REJECT, body, "")
        except (mapping.UnmappableMessage, GarbledMessage, ValueError) as exc:
            # A report we cannot read is a human's problem: say so loudly and keep
            # the session (reconciliation asks about the order again).
            log.error("FIX message not applied (%s): %s", exc, msg)

    def _account_of(self, msg: Message, cl_ord_id: str) -> tuple[str | None, OrderTerms | None]:
        terms = self._store.order(cl_ord_id)
        if terms is not None:
            return terms.account, terms
        tag1 = msg.get(mapping.ACCOUNT)
        return (self._config.gateway_account(tag1) if tag1 is not None else None), None

    def _repeat(self, msg: Message) -> bool:
        """Whether this report is a PossDup/PossResend repeat of one already applied."""
        exec_id = msg.get(mapping.EXEC_ID)
        marked = msg.poss_dup or msg.poss_resend
        return exec_id is not None and self._recent.repeated(exec_id, marked=marked)

    async def _on_execution_report(self, msg: Message) -> None:
        exec_type = msg.require(mapping.EXEC_TYPE)
        if exec_type == mapping.EXEC_TYPE_ORDER_STATUS:
            self._on_status_report(msg)
            return
        cl_ord_id = self._order_of(msg)
        account, terms = self._account_of(msg, cl_ord_id)
        if account is None:
            log.warning("FIX report for an order that is not ours ignored: %s", msg)
            return
        if self._repeat(msg):
            log.info("FIX repeated report (PossDup) dropped: ExecID %s", msg.get(mapping.EXEC_ID))
            return
        if terms is not None:
            self._record(cl_ord_id, msg)
        report = mapping.execution_report(msg, account, self._clock(), cl_ord_id)
        if report is not None and report.kind is ReportKind.REPLACED:
            replace_cl_ord_id = msg.require(mapping.CL_ORD_ID)
            self._store.accept_alias(replace_cl_ord_id, msg.get(mapping.ORDER_QTY) or "")
            ack = ReplaceAck(msg.get(mapping.ORDER_ID) or "")
            self._waiting.answer_replace(replace_cl_ord_id, ack)
        elif msg.get(mapping.CL_ORD_ID) == cl_ord_id and msg.get(mapping.ORIG_CL_ORD_ID) is None:
            # About the order itself under its own ClOrdID: the answer to its D.
            if report is not None and report.kind is ReportKind.REJECTED:
                rejected = BrokerRejected(report.reason or "rejected by the venue")
                self._waiting.answer_ack(cl_ord_id, rejected)
            else:
                self._waiting.answer_ack(cl_ord_id, SubmitAck(msg.get(mapping.ORDER_ID) or ""))
        if report is not None:
            await self._queue.put((report,))

    def _order_of(self, msg: Message) -> str:
        """Our order's own ClOrdID for a report, through a replace's ClOrdID if need be."""
        named = mapping.order_key(msg)
        return self._store.original(named) or named

    def _record(self, cl_ord_id: str, msg: Message) -> None:
        self._store.record_report(
            cl_ord_id,
            msg.get(mapping.ORDER_ID) or "",
            msg.get(mapping.ORD_STATUS) or "",
            msg.get(mapping.CUM_QTY) or "",
            msg.get(mapping.AVG_PX) or "",
        )

    def _on_status_report(self, msg: Message) -> None:
        # An answer about no order at all (an empty OrderMassStatus) names none.
        named = msg.get(mapping.ORIG_CL_ORD_ID) or msg.get(mapping.CL_ORD_ID)
        cl_ord_id = (self._store.original(named) or named) if named else None
        account, terms = self._account_of(msg, cl_ord_id) if cl_ord_id else (None, None)
        known = msg.get(mapping.ORD_REJ_REASON) != mapping.ORD_REJ_UNKNOWN_ORDER
        if cl_ord_id and terms is not None and known:
            self._record(cl_ord_id, msg)
        self._on_status_answer(msg, account, cl_ord_id)

    def _on_status_answer(self, msg: Message, account: str | None, cl_ord_id: str | None) -> None:
        request_id = msg.get(mapping.ORD_STATUS_REQ_ID)
        mass_id = msg.get(mapping.MASS_STATUS_REQ_ID)
        if request_id is not None and request_id in self._waiting.status:
            asker, future = self._waiting.status[request_id]
            if not future.done():
                future.set_result(mapping.order_state(msg, asker, cl_ord_id))
        elif mass_id is not None and mass_id in self._waiting.mass:
            pending = self._waiting.mass[mass_id]
            if account is not None and msg.get(mapping.CL_ORD_ID):
                state = mapping.order_state(msg, account, cl_ord_id)
                if state is not None:
                    pending.states.append(state)
            total = msg.get(mapping.TOT_NUM_REPORTS)
            last = msg.get(mapping.LAST_RPT_REQUESTED) == "Y"
            if (last or (total is not None and len(pending.states) >= int(total))) and not (
                pending.done.done()
            ):
                pending.done.set_result(None)
        else:
            log.debug("FIX unsolicited status report: %s", msg)

    async def _on_cancel_reject(self, msg: Message) -> None:
        cl_ord_id = self._order_of(msg)
        account, _ = self._account_of(msg, cl_ord_id)
        if account is None:
            log.warning("FIX cancel reject for an order that is not ours: %s", msg)
            return
        report = mapping.cancel_reject(msg, account, self._clock(), cl_ord_id)
        if report.kind is ReportKind.REPLACE_REJECTED:
            refused = BrokerRejected(report.reason)
            self._waiting.answer_replace(msg.get(mapping.CL_ORD_ID) or "", refused)
        await self._queue.put((report,))

    async def _on_reject(self, msg: Message) -> None:
        ref_seq = msg.get(mapping.REF_SEQ_NUM)
        text = msg.get(mapping.TEXT) or f"{msg.msg_type} reject"
        ref = self._waiting.rejected(int(ref_seq)) if ref_seq and ref_seq.isdigit() else None
        log.warning("FIX reject of our message %s (%s): %s", ref_seq, ref, text)
        if ref is None:
            return
        kind, key = ref
        now = self._clock()
        if kind == mapping.NEW_ORDER_SINGLE:
            terms = self._store.order(key)
            self._waiting.answer_ack(key, BrokerRejected(text))
            if terms is not None:
                self._store.record_report(key, "", "8", "0", "")
                report = ExecutionReport(ReportKind.REJECTED, terms.account, key, now, reason=text)
                await self._queue.put((report,))
        elif kind == mapping.ORDER_CANCEL_REPLACE_REQUEST:
            original = self._store.original(key) or key
            terms = self._store.order(original)
            self._waiting.answer_replace(key, BrokerRejected(text))
            if terms is not None:
                report = ExecutionReport(
                    ReportKind.REPLACE_REJECTED, terms.account, original, now, reason=text
                )
                await self._queue.put((report,))
        elif kind == mapping.ORDER_CANCEL_REQUEST:
            terms = self._store.order(key)
            if terms is not None:
                report = ExecutionReport(
                    ReportKind.CANCEL_REJECTED, terms.account, key, now, reason=text
                )
                await self._queue.put((report,))
        elif kind in (mapping.ORDER_STATUS_REQUEST, mapping.ORDER_MASS_STATUS_REQUEST):
            # The question was refused, not the order: its fate stays unknown.
            unsupported = msg.get(mapping.BUSINESS_REJECT_REASON) == "3"
            futures: list[asyncio.Future[Any]]
            if kind == mapping.ORDER_STATUS_REQUEST:
                self._status_requests &= not unsupported
                status = self._waiting.status.get(key)
                futures = [status[1]] if status is not None else []
            else:
                self._mass_status_requests &= not unsupported
                mass = self._waiting.mass.get(key)
                futures = [mass.done] if mass is not None else []
            if unsupported:
                log.warning(
                    "FIX counterparty does not support %s: answering from its last "
                    "reports instead (set status_requests/mass_status = false)",
                    kind,
                )
            for future in futures:
                if not future.done():
                    future.set_exception(BrokerTimeout(f"{kind} refused: {text}"))


def body_value(body: list[tuple[int, str]], tag: int) -> str:
    return next(v for t, v in body if t == tag)


def _state_from_terms(cl_ord_id: str, terms: OrderTerms) -> BrokerOrderState:
    status = mapping.order_status_code(terms.ord_status)
    return BrokerOrderState(
        account=terms.account,
        client_order_id=cl_ord_id,
        broker_order_id=terms.order_id,
        status=status,
        filled_quantity=Decimal(terms.cum_qty or "0"),
        average_fill_price=Decimal(terms.avg_px) if terms.avg_px else None,
    )
