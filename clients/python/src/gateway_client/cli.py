"""``gatewayctl``: place, amend, cancel, look up, list and watch orders from a shell;
read positions; and, for an operator, halt and resume trading and read the risk limits.

Human-readable by default, ``--json`` for scripts. Exit codes say what
happened (see ``EXIT_CODES``), so a script can tell "no such order" from
"gateway down, try again".
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TextIO

from gateway_client import errors
from gateway_client._models import (
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    RejectCode,
    RiskLimits,
    RiskLimitsReport,
    Side,
    TimeInForce,
    TradingMode,
    TradingState,
)
from gateway_client._options import TlsConfig
from gateway_client._watch import (
    ORDER_COLUMNS,
    POSITION_COLUMNS,
    WatchTable,
    halt_text,
    order_row,
    position_row,
    show,
    table,
    to_json,
)
from gateway_client.sync import Client

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4
EXIT_UNAVAILABLE = 5
EXIT_DENIED = 6
EXIT_REJECTED = 7
EXIT_INTERRUPTED = 130

EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_ERROR: "any other error",
    EXIT_USAGE: "bad command line or INVALID_ARGUMENT",
    EXIT_NOT_FOUND: "no such order (NOT_FOUND)",
    EXIT_CONFLICT: "refused in the order's state: ALREADY_EXISTS, FAILED_PRECONDITION",
    EXIT_UNAVAILABLE: "try again later: UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED",
    EXIT_DENIED: "UNAUTHENTICATED or PERMISSION_DENIED",
    EXIT_REJECTED: "place: the order was REJECTED",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}

# Checked in order: the first family the error belongs to decides.
_ERROR_EXITS: tuple[tuple[type[errors.GatewayClientError], int], ...] = (
    (errors.InvalidArgument, EXIT_USAGE),
    (errors.NotFound, EXIT_NOT_FOUND),
    (errors.AlreadyExists, EXIT_CONFLICT),
    (errors.FailedPrecondition, EXIT_CONFLICT),
    (errors.Unavailable, EXIT_UNAVAILABLE),
    (errors.DeadlineExceeded, EXIT_UNAVAILABLE),
    (errors.ResourceExhausted, EXIT_UNAVAILABLE),
    (errors.SubscriptionLost, EXIT_UNAVAILABLE),
    (errors.Unauthenticated, EXIT_DENIED),
    (errors.PermissionDenied, EXIT_DENIED),
)


def exit_code_for(error: errors.GatewayClientError) -> int:
    """The exit code that names ``error``'s family."""
    return next((code for kind, code in _ERROR_EXITS if isinstance(error, kind)), EXIT_ERROR)


def _parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="gatewayctl",
        description="Place, amend, cancel, look up, list and watch orders at an execution "
        "gateway; read positions; halt and resume trading (with an admin token).",
        epilog="exit codes: "
        + "; ".join(f"{code} {meaning}" for code, meaning in EXIT_CODES.items()),
    )
    parser.add_argument(
        "--target",
        default=env("GATEWAYCTL_TARGET", "127.0.0.1:50051"),
        help="gateway address HOST:PORT (env GATEWAYCTL_TARGET; default %(default)s)",
    )
    parser.add_argument(
        "--token", default=env("GATEWAYCTL_TOKEN"), help="bearer token (env GATEWAYCTL_TOKEN)"
    )
    parser.add_argument("--tls", action="store_true", help="use TLS (system roots unless --ca)")
    parser.add_argument("--ca", help="PEM file of roots to trust (implies --tls)")
    parser.add_argument("--cert", help="PEM client certificate for mutual TLS (implies --tls)")
    parser.add_argument("--key", help="PEM client key for mutual TLS")
    parser.add_argument("--server-name", help="name expected in the server's certificate")
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds per call (default %(default)s)"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    place = commands.add_parser("place", help="place an order (a limit order with --limit)")
    place.add_argument("account")
    place.add_argument("symbol")
    place.add_argument("side", type=str.upper, choices=[s.value for s in Side])
    place.add_argument("quantity", help="a decimal number, e.g. 10 or 0.5")
    place.add_argument("--limit", help="limit price: makes a LIMIT (or STOP_LIMIT) order")
    place.add_argument("--stop", help="stop price: makes a STOP (or STOP_LIMIT) order")
    place.add_argument(
        "--tif",
        type=str.upper,
        choices=[t.value for t in TimeInForce],
        help="time in force (default DAY; GTC for a limit order)",
    )
    place.add_argument("--client-order-id", help="your id for the order; reuse it to retry")

    for name, text in (("cancel", "ask to cancel an order"), ("status", "show one order")):
        command = commands.add_parser(name, help=text)
        command.add_argument("account")
        which = command.add_mutually_exclusive_group(required=True)
        which.add_argument("--order-id")
        which.add_argument("--client-order-id")

    listing = commands.add_parser("list", help="list an account's orders, oldest first")
    listing.add_argument("account")
    listing.add_argument("--open", action="store_true", help="only orders still working")
    listing.add_argument("--symbol", action="append", default=[], help="repeatable")

    watch = commands.add_parser("watch", help="a live table of orders and fills")
    watch.add_argument("--account", action="append", default=[], help="repeatable; none: all")
    watch.add_argument("--symbol", action="append", default=[], help="repeatable; none: all")
    start = watch.add_mutually_exclusive_group()
    start.add_argument("--after-sequence", type=int, help="replay every update after this one")
    start.add_argument("--snapshot", action="store_true", help="start with the open orders")
    watch.add_argument("--max-updates", type=int, help="stop after this many updates")
    watch.add_argument("--duration", type=float, help="stop after this many seconds")
    _add_control_commands(commands)
    return parser


def _add_control_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The trading-controls commands: amend, mass cancel, positions; halt, resume, state, limits."""
    replace = commands.add_parser(
        "replace", help="amend an open order: a new quantity and/or limit or stop price"
    )
    replace.add_argument("account")
    which = replace.add_mutually_exclusive_group(required=True)
    which.add_argument("--order-id")
    which.add_argument("--client-order-id")
    replace.add_argument("--quantity", help="the new total quantity, filled part included")
    replace.add_argument("--limit", help="the new limit price")
    replace.add_argument("--stop", help="the new stop price")
    replace.add_argument("--replace-id", help="your id for this replace; reuse it to retry")

    cancel_all = commands.add_parser("cancel-all", help="ask to cancel every open order")
    cancel_all.add_argument("account")
    cancel_all.add_argument("--symbol", help="only this symbol's orders")
    cancel_all.add_argument("--side", type=str.upper, choices=[s.value for s in Side])

    positions = commands.add_parser("positions", help="an account's net positions by symbol")
    positions.add_argument("account")
    positions.add_argument("--symbol", action="append", default=[], help="repeatable; none: all")

    halt = commands.add_parser("halt", help="halt trading for an account or all (admin)")
    halt.add_argument("--account", help="the account to halt; none: every account")
    halt.add_argument(
        "--mode",
        type=str.upper,
        choices=[TradingMode.HALTED.value, TradingMode.REDUCING.value],
        default=TradingMode.HALTED.value,
        help="HALTED: no new orders; REDUCING: only orders that reduce a position "
        "(default %(default)s)",
    )
    halt.add_argument(
        "--cancel-open-orders", action="store_true", help="also cancel the open orders"
    )
    halt.add_argument("--reason", default="", help="why; recorded with the halt")

    resume = commands.add_parser("resume", help="lift a halt (admin)")
    resume.add_argument("--account", help="the account to resume; none: the gateway-wide halt")
    resume.add_argument("--reason", default="", help="why; recorded in the audit log")

    commands.add_parser("state", help="every halt in force (admin)")

    limits = commands.add_parser("limits", help="the risk limits in force (admin)")
    limits.add_argument("--account", help="only the limits that apply to this account")


def _client(args: argparse.Namespace) -> Client:
    tls: TlsConfig | bool = False
    if args.tls or args.ca or args.cert:
        tls = TlsConfig.from_files(args.ca, args.cert, args.key, args.server_name)
    return Client(args.target, token=args.token, tls=tls, timeout=args.timeout)


def _print_order(out: TextIO, order: Order, verb: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps(to_json(order), sort_keys=True), file=out)
        return
    price = f" @ {order.limit_price}" if order.limit_price is not None else ""
    filled = f", filled {order.filled_quantity}"
    if order.average_fill_price is not None:
        filled += f" @ avg {order.average_fill_price}"
    reason = f" ({order.reject_reason})" if order.reject_reason else ""
    if order.reject_code is not RejectCode.UNSPECIFIED:
        reason = f" ({order.reject_code.value}: {order.reject_reason})"
    print(
        f"{verb} {order.order_id} (client id {order.client_order_id}): {order.account} "
        f"{order.side.value} {order.quantity} {order.symbol} {order.order_type.value}{price} "
        f"{order.time_in_force.value} -> {order.status.value}{filled}{reason}",
        file=out,
    )


def _place(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    if args.limit and args.stop:
        order_type = OrderType.STOP_LIMIT
    elif args.limit:
        order_type = OrderType.LIMIT
    elif args.stop:
        order_type = OrderType.STOP
    else:
        order_type = OrderType.MARKET
    default_tif = TimeInForce.DAY if order_type is OrderType.MARKET else TimeInForce.GTC
    order = client.place_order(
        args.account,
        args.symbol,
        Side(args.side),
        args.quantity,
        order_type=order_type,
        limit_price=args.limit,
        stop_price=args.stop,
        time_in_force=TimeInForce(args.tif) if args.tif else default_tif,
        client_order_id=args.client_order_id,
    )
    _print_order(out, order, "placed", args.json)
    return EXIT_REJECTED if order.status is OrderStatus.REJECTED else EXIT_OK


def _cancel(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    order = client.cancel_order(
        args.account, order_id=args.order_id, client_order_id=args.client_order_id
    )
    _print_order(out, order, "cancel requested for", args.json)
    return EXIT_OK


def _status(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    order = client.get_order(
        args.account, order_id=args.order_id, client_order_id=args.client_order_id
    )
    _print_order(out, order, "order", args.json)
    return EXIT_OK


def _list(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    orders = client.list_orders(args.account, open_only=args.open, symbols=args.symbol)
    if args.json:
        print(json.dumps([to_json(o) for o in orders], sort_keys=True), file=out)
    else:
        print(table(ORDER_COLUMNS[1:], [order_row(o)[1:] for o in orders]), file=out)
    return EXIT_OK


def _watch(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    subscription = client.subscribe_events(
        args.account, args.symbol, after_sequence=args.after_sequence, snapshot=args.snapshot
    )
    timer = threading.Timer(args.duration, subscription.close) if args.duration else None
    if timer:
        timer.daemon = True
        timer.start()
    screen = WatchTable()
    live = out.isatty() and not args.json
    updates = 0
    try:
        for event in subscription:
            show(out, screen, event, as_json=args.json, live=live)
            if isinstance(event, OrderUpdate):
                updates += 1
                if args.max_updates is not None and updates >= args.max_updates:
                    break
    finally:
        subscription.close()
        if timer:
            timer.cancel()
    return EXIT_OK


def _replace(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    order = client.replace_order(
        args.account,
        order_id=args.order_id,
        client_order_id=args.client_order_id,
        quantity=args.quantity,
        limit_price=args.limit,
        stop_price=args.stop,
        replace_id=args.replace_id,
    )
    _print_order(out, order, f"replace {order.replace_id} requested for", args.json)
    return EXIT_OK


def _cancel_all(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    side = Side(args.side) if args.side else None
    orders = client.cancel_all_orders(args.account, symbol=args.symbol, side=side)
    if args.json:
        print(json.dumps([to_json(o) for o in orders], sort_keys=True), file=out)
    else:
        print(f"cancel requested for {len(orders)} orders", file=out)
        if orders:
            print(table(ORDER_COLUMNS[1:], [order_row(o)[1:] for o in orders]), file=out)
    return EXIT_OK


def _positions(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    positions = client.get_positions(args.account, args.symbol)
    if args.json:
        print(json.dumps([to_json(p) for p in positions], sort_keys=True), file=out)
    else:
        print(table(POSITION_COLUMNS, [position_row(p) for p in positions]), file=out)
    return EXIT_OK


def _print_state(out: TextIO, state: TradingState, as_json: bool) -> None:
    if as_json:
        print(json.dumps(to_json(state), sort_keys=True), file=out)
    elif not state.halts:
        print("trading ACTIVE everywhere", file=out)
    else:
        for halt in state.halts:
            since = f" since {halt.since.isoformat(timespec='seconds')}" if halt.since else ""
            print(f"{halt_text(halt)}{since}", file=out)


def _halt(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    result = client.halt_trading(
        args.account,
        mode=TradingMode(args.mode),
        cancel_open_orders=args.cancel_open_orders,
        reason=args.reason,
    )
    if args.json:
        print(json.dumps(to_json(result), sort_keys=True), file=out)
        return EXIT_OK
    _print_state(out, result.state, as_json=False)
    if args.cancel_open_orders:
        print(f"cancel requested for {len(result.canceled_orders)} open orders", file=out)
    return EXIT_OK


def _resume(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    _print_state(out, client.resume_trading(args.account, reason=args.reason), args.json)
    return EXIT_OK


def _state(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    _print_state(out, client.get_trading_state(), args.json)
    return EXIT_OK


def _limits_text(limits: RiskLimits) -> str:
    values = [
        f"{name} {format(value, 'f') if isinstance(value, Decimal) else value}"
        for name, value in (
            ("max_order_quantity", limits.max_order_quantity),
            ("max_order_notional", limits.max_order_notional),
            ("max_open_orders", limits.max_open_orders),
            ("max_position", limits.max_position),
            ("max_order_rate", limits.max_order_rate),
            ("order_rate_burst", limits.order_rate_burst),
            ("price_collar_percent", limits.price_collar_percent),
        )
        if value is not None
    ]
    if limits.allowed_symbols:
        values.append("allowed_symbols " + ",".join(limits.allowed_symbols))
    if limits.denied_symbols:
        values.append("denied_symbols " + ",".join(limits.denied_symbols))
    return f"{limits.account or 'defaults'}: {'; '.join(values) or 'no limits'}"


def _limits(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    report: RiskLimitsReport = client.get_risk_limits(args.account)
    if args.json:
        print(json.dumps(to_json(report), sort_keys=True), file=out)
        return EXIT_OK
    loaded = (
        f", loaded {report.loaded_at.isoformat(timespec='seconds')}" if report.loaded_at else ""
    )
    print(f"limits from {report.source or '(no limits file)'}{loaded}", file=out)
    for limits in report.limits:
        print(_limits_text(limits), file=out)
    if report.last_error:
        print(f"last change refused (last good limits in force): {report.last_error}", file=out)
    return EXIT_OK


COMMANDS: dict[str, Callable[[Client, argparse.Namespace, TextIO], int]] = {
    "place": _place,
    "cancel": _cancel,
    "status": _status,
    "list": _list,
    "watch": _watch,
    "replace": _replace,
    "cancel-all": _cancel_all,
    "positions": _positions,
    "halt": _halt,
    "resume": _resume,
    "state": _state,
    "limits": _limits,
}


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run one command; return its exit code (see ``EXIT_CODES``)."""
    args = _parser().parse_args(argv)
    out = out or sys.stdout
    try:
        with _client(args) as client:
            return COMMANDS[args.command](client, args, out)
    except errors.GatewayClientError as error:
        if args.json:
            print(json.dumps(_error_json(error), sort_keys=True), file=sys.stderr)
        else:
            print(f"gatewayctl: {error}", file=sys.stderr)
        return exit_code_for(error)
    except (ValueError, TypeError, OSError) as error:
        print(f"gatewayctl: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _error_json(error: errors.GatewayClientError) -> dict[str, object]:
    return {
        "error": type(error).__name__,
        "code": error.code.name if error.code else None,
        "message": error.message,
        "reason": error.reason,
        "metadata": error.metadata,
        "field_violations": [to_json(v) for v in error.field_violations],
    }


if __name__ == "__main__":
    sys.exit(main())
