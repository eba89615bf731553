"""FIX 4.4 words <-> the gateway's domain: the one place that knows both.

Outgoing: ``new_order`` (D), ``cancel_request`` (F), ``status_request`` (H),
``mass_status_request`` (AF). Incoming: ``ExecutionReport`` (8) through
ExecType (150) and OrdStatus (39), ``OrderCancelReject`` (9) and
``BusinessMessageReject`` (j). Quantities and prices stay decimal strings
from the wire to ``Decimal``: never a float in between.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

from gateway.brokers.base import BrokerOrderState, ExecutionReport, ReportKind
from gateway.brokers.fix.codec import Field, Message, parse_time, sending_time
from gateway.domain import Fill, OrderSpec, OrderStatus, OrderType, Side, TimeInForce

# Message types.
EXECUTION_REPORT, ORDER_CANCEL_REJECT, BUSINESS_REJECT = "8", "9", "j"
NEW_ORDER_SINGLE, ORDER_CANCEL_REQUEST, ORDER_STATUS_REQUEST = "D", "F", "H"
ORDER_CANCEL_REPLACE_REQUEST = "G"
ORDER_MASS_STATUS_REQUEST = "AF"

# Tags.
ACCOUNT, AVG_PX, CL_ORD_ID, CUM_QTY, EXEC_ID = 1, 6, 11, 14, 17
LAST_PX, LAST_QTY, ORDER_ID, ORDER_QTY, ORD_STATUS = 31, 32, 37, 38, 39
ORD_TYPE, ORIG_CL_ORD_ID, PRICE, REF_SEQ_NUM, SIDE = 40, 41, 44, 45, 54
SYMBOL, TEXT, TIME_IN_FORCE, TRANSACT_TIME, STOP_PX = 55, 58, 59, 60, 99
ORD_REJ_REASON, CXL_REJ_RESPONSE_TO, CXL_REJ_REASON = 103, 434, 102
EXEC_TYPE, LEAVES_QTY, REF_MSG_TYPE, BUSINESS_REJECT_REASON = 150, 151, 372, 380
MASS_STATUS_REQ_ID, MASS_STATUS_REQ_TYPE, ORD_STATUS_REQ_ID = 584, 585, 790
TOT_NUM_REPORTS, LAST_RPT_REQUESTED = 911, 912

ORD_REJ_UNKNOWN_ORDER = "5"
CXL_REJ_TO_REPLACE = "2"
MASS_STATUS_ALL_ORDERS = "7"

_SIDE = {Side.BUY: "1", Side.SELL: "2"}
SIDE_FROM_FIX = {v: k for k, v in _SIDE.items()}
_ORD_TYPE = {
    OrderType.MARKET: "1",
    OrderType.LIMIT: "2",
    OrderType.STOP: "3",
    OrderType.STOP_LIMIT: "4",
}
_TIF = {TimeInForce.DAY: "0", TimeInForce.GTC: "1", TimeInForce.IOC: "3", TimeInForce.FOK: "4"}
_ORD_TYPE_FROM_FIX = {v: k for k, v in _ORD_TYPE.items()}
_TIF_FROM_FIX = {v: k for k, v in _TIF.items()}

# ExecType (150) -> what the engine hears. Absent ones carry nothing new for it:
# PendingNew (A), PendingCancel (6) and PendingReplace (E) are states the
# gateway entered itself; Restated (D) changes nothing it models.
# FIX 4.2's Partial fill (1) and Fill (2) are read as Trade (F): older engines
# (and QuickFIX's ordermatch example) still send them on 4.4 sessions.
_EXEC_KIND = {
    "0": ReportKind.ACCEPTED,
    "F": ReportKind.FILL,
    "1": ReportKind.FILL,
    "2": ReportKind.FILL,
    "4": ReportKind.CANCELED,
    "5": ReportKind.REPLACED,
    "8": ReportKind.REJECTED,
    "C": ReportKind.EXPIRED,
    "3": ReportKind.EXPIRED,  # Done for day: the venue will not work the order again
}
EXEC_TYPE_ORDER_STATUS = "I"
EXEC_TYPES_IGNORED = frozenset({"A", "6", "D", "E"})

# OrdStatus (39) -> the venue's view of the order, for reconciliation.
_ORD_STATUS = {
    "0": OrderStatus.ACCEPTED,
    "1": OrderStatus.PARTIALLY_FILLED,
    "2": OrderStatus.FILLED,
    "3": OrderStatus.EXPIRED,
    "4": OrderStatus.CANCELED,
    "5": OrderStatus.ACCEPTED,  # Replaced: the order lives on under new terms
    "6": OrderStatus.PENDING_CANCEL,
    "8": OrderStatus.REJECTED,
    "A": OrderStatus.PENDING_NEW,
    "C": OrderStatus.EXPIRED,
    "E": OrderStatus.ACCEPTED,  # Pending replace
}


class UnmappableMessage(ValueError):
    """A message the adapter cannot turn into a domain value (logged, then dropped)."""


def new_order(spec: OrderSpec, fix_account: str | None, now: datetime) -> list[Field]:
    """The body of a NewOrderSingle (D) for ``spec``."""
    body: list[Field] = [(CL_ORD_ID, spec.client_order_id)]
    if fix_account is not None:
        body.append((ACCOUNT, fix_account))
    body += [
        (SYMBOL, spec.symbol),
        (SIDE, _SIDE[spec.side]),
        (TRANSACT_TIME, sending_time(now)),
        (ORDER_QTY, str(spec.quantity)),
        (ORD_TYPE, _ORD_TYPE[spec.order_type]),
    ]
    if spec.limit_price is not None:
        body.append((PRICE, str(spec.limit_price)))
    if spec.stop_price is not None:
        body.append((STOP_PX, str(spec.stop_price)))
    body.append((TIME_IN_FORCE, _TIF[spec.time_in_force]))
    return body


def cancel_request(
    cancel_id: str,
    orig_cl_ord_id: str,
    order_id: str,
    fix_account: str | None,
    symbol: str,
    side: str,
    quantity: str,
    now: datetime,
) -> list[Field]:
    """The body of an OrderCancelRequest (F)."""
    body: list[Field] = [(ORIG_CL_ORD_ID, orig_cl_ord_id), (CL_ORD_ID, cancel_id)]
    if order_id:
        body.append((ORDER_ID, order_id))
    if fix_account is not None:
        body.append((ACCOUNT, fix_account))
    body += [
        (SYMBOL, symbol),
        (SIDE, side),
        (TRANSACT_TIME, sending_time(now)),
        (ORDER_QTY, quantity),
    ]
    return body


def replace_request(
    replace_cl_ord_id: str,
    orig_cl_ord_id: str,
    order_id: str,
    fix_account: str | None,
    spec: OrderSpec,
    now: datetime,
) -> list[Field]:
    """The body of an OrderCancelReplaceRequest (G): the order's whole new terms."""
    body: list[Field] = [(ORIG_CL_ORD_ID, orig_cl_ord_id), (CL_ORD_ID, replace_cl_ord_id)]
    if order_id:
        body.append((ORDER_ID, order_id))
    fields = new_order(spec, fix_account, now)
    return body + [(tag, value) for tag, value in fields if tag != CL_ORD_ID]


def status_request(
    request_id: str, cl_ord_id: str, order_id: str, symbol: str, side: str
) -> list[Field]:
    """The body of an OrderStatusRequest (H)."""
    body: list[Field] = [(CL_ORD_ID, cl_ord_id)]
    if order_id:
        body.append((ORDER_ID, order_id))
    body += [(ORD_STATUS_REQ_ID, request_id), (SYMBOL, symbol), (SIDE, side)]
    return body


def mass_status_request(request_id: str) -> list[Field]:
    """The body of an OrderMassStatusRequest (AF) for all our orders."""
    return [(MASS_STATUS_REQ_ID, request_id), (MASS_STATUS_REQ_TYPE, MASS_STATUS_ALL_ORDERS)]


def order_key(msg: Message) -> str:
    """The ClOrdID of the order a report is about.

    After a cancel request, FIX reports carry the cancel's ClOrdID in 11 and
    the order's own in 41 (OrigClOrdID); the order is the one in 41.
    """
    return msg.get(ORIG_CL_ORD_ID) or msg.require(CL_ORD_ID)


def decimal(msg: Message, tag: int) -> Decimal | None:
    text = msg.get(tag)
    if text is None or text == "":
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise UnmappableMessage(f"tag {tag} is not a number: {text!r}") from None
    if not value.is_finite():
        raise UnmappableMessage(f"tag {tag} is not a finite number: {text!r}")
    return value


def execution_report(
    msg: Message, account: str, now: datetime, client_order_id: str | None = None
) -> ExecutionReport | None:
    """Map an ExecutionReport (8) onto a domain report; None if it changes nothing."""
    exec_type = msg.require(EXEC_TYPE)
    if exec_type in EXEC_TYPES_IGNORED:
        return None
    kind = _EXEC_KIND.get(exec_type)
    if kind is None:
        # Trade Cancel (H), Trade Correct (G), Restated, ...: busts and corrections
        # are not modelled; the caller logs them for a human.
        raise UnmappableMessage(f"ExecType {exec_type!r} is not supported")
    when = parse_time(msg.get(TRANSACT_TIME)) or now
    fill = None
    if kind is ReportKind.FILL:
        quantity, price = decimal(msg, LAST_QTY), decimal(msg, LAST_PX)
        if quantity is None or price is None or quantity <= 0:
            raise UnmappableMessage("a Trade report without LastQty/LastPx")
        fill = Fill(msg.require(EXEC_ID), quantity, price, when)
    return ExecutionReport(
        kind=kind,
        account=account,
        client_order_id=client_order_id or order_key(msg),
        time=when,
        broker_order_id=msg.get(ORDER_ID) or "",
        fill=fill,
        reason=msg.get(TEXT) or "",
        filled_quantity=decimal(msg, CUM_QTY),
    )


def order_state(
    msg: Message, account: str, client_order_id: str | None = None
) -> BrokerOrderState | None:
    """The venue's view of an order from a status answer (ExecType I); None if unknown."""
    status_code = msg.require(ORD_STATUS)
    if status_code == "8" and msg.get(ORD_REJ_REASON) == ORD_REJ_UNKNOWN_ORDER:
        return None
    status = _ORD_STATUS.get(status_code)
    if status is None:
        raise UnmappableMessage(f"OrdStatus {status_code!r} is not supported")
    return BrokerOrderState(
        account=account,
        client_order_id=client_order_id or order_key(msg),
        broker_order_id=msg.get(ORDER_ID) or "",
        status=status,
        filled_quantity=decimal(msg, CUM_QTY) or Decimal(0),
        reason=msg.get(TEXT) or "",
        average_fill_price=decimal(msg, AVG_PX),
        spec=order_terms(msg, account, client_order_id),
    )


def order_terms(msg: Message, account: str, client_order_id: str | None = None) -> OrderSpec | None:
    """The order's terms as a report states them (for adopting an order we lost);
    None when it leaves any out or uses values the gateway does not trade."""
    side = SIDE_FROM_FIX.get(msg.get(SIDE) or "")
    order_type = _ORD_TYPE_FROM_FIX.get(msg.get(ORD_TYPE) or "")
    time_in_force = _TIF_FROM_FIX.get(msg.get(TIME_IN_FORCE) or "0")
    symbol = msg.get(SYMBOL)
    try:
        quantity = decimal(msg, ORDER_QTY)
        limit_price, stop_price = decimal(msg, PRICE), decimal(msg, STOP_PX)
    except UnmappableMessage:
        return None
    if side is None or order_type is None or time_in_force is None or not symbol:
        return None
    if quantity is None or quantity <= 0:
        return None
    priced = order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
    stopped = order_type in (OrderType.STOP, OrderType.STOP_LIMIT)
    if (limit_price is None and priced) or (stop_price is None and stopped):
        return None
    return OrderSpec(
        account,
        client_order_id or order_key(msg),
        symbol,
        side,
        order_type,
        quantity,
        time_in_force,
        limit_price=limit_price if priced else None,
        stop_price=stop_price if stopped else None,
    )


def cancel_reject(
    msg: Message, account: str, now: datetime, client_order_id: str | None = None
) -> ExecutionReport:
    """An OrderCancelReject (9): the order stays as it was, whether a cancel
    (CxlRejResponseTo 1) or a replace (2) was refused."""
    replace = msg.get(CXL_REJ_RESPONSE_TO) == CXL_REJ_TO_REPLACE
    return ExecutionReport(
        kind=ReportKind.REPLACE_REJECTED if replace else ReportKind.CANCEL_REJECTED,
        account=account,
        client_order_id=client_order_id or order_key(msg),
        time=now,
        broker_order_id=msg.get(ORDER_ID) or "",
        reason=msg.get(TEXT) or f"rejected (CxlRejReason {msg.get(CXL_REJ_REASON)})",
    )


def order_status_code(code: str) -> OrderStatus:
    """An OrdStatus (39) value as the domain's status; raise UnmappableMessage if unknown."""
    status = _ORD_STATUS.get(code)
    if status is None:
        raise UnmappableMessage(f"OrdStatus {code!r} is not supported")
    return status
