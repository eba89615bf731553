"""``gateway journal show``: the operator's view of the journal.

Reads the journal read-only (safe while the gateway runs) and prints events
for one order or a sequence range, as a table or as JSON lines.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from gateway.journal import JournalError, JournalRecord
from gateway.journal.datadir import JOURNAL_FILE
from gateway.journal.inspect import format_jsonl, format_table, iter_records


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateway journal",
        description="Inspect the gateway's journal (read-only; safe while it runs).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser(
        "show",
        help="print journal events",
        description="Print the events of one order or of a sequence range, oldest first.",
    )
    show.add_argument(
        "--data-dir", type=Path, default=Path("gateway-data"), help="the gateway's --data-dir"
    )
    show.add_argument("--order-id", help="only this order (the gateway's order_id)")
    show.add_argument(
        "--client-order-id", help="only this client_order_id (with --account if ambiguous)"
    )
    show.add_argument("--account", help="only this account")
    show.add_argument("--from", dest="from_sequence", type=int, help="first sequence")
    show.add_argument("--to", dest="to_sequence", type=int, help="last sequence")
    show.add_argument("--format", choices=("table", "jsonl"), default="table", help="output format")
    return parser


def _selected(args: argparse.Namespace) -> Iterator[JournalRecord]:
    records = iter_records(
        args.data_dir / JOURNAL_FILE,
        order_id=args.order_id,
        from_sequence=args.from_sequence,
        to_sequence=args.to_sequence,
    )
    for record in records:
        spec = record.update.order.spec
        if args.account and spec.account != args.account:
            continue
        if args.client_order_id and spec.client_order_id != args.client_order_id:
            continue
        yield record


def main(argv: Sequence[str]) -> int:
    """Run ``gateway journal ...``; exit 1 if the journal cannot be read."""
    args = build_parser().parse_args(argv)
    formatter = format_table if args.format == "table" else format_jsonl
    try:
        for line in formatter(_selected(args)):
            print(line)
    except FileNotFoundError:
        print(f"gateway journal: no journal in {args.data_dir}", file=sys.stderr)
        return 1
    except JournalError as exc:
        print(f"gateway journal: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `| head` closed the pipe: not an error
        return 0
    return 0
