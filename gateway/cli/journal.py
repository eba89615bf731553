"""``gateway journal show|salvage|migrate``: the operator's view of the journal, and its repair.

``show`` reads the journal read-only (safe while the gateway runs) and prints
events for one order or a sequence range, as a table or as JSON lines.

``salvage`` is the one way records are ever dropped: a gateway refuses to
start on a damaged journal (exit code 65), and an operator who accepts losing
what follows the damage runs this (with the gateway stopped: it takes the
data directory's lock). The damaged file is kept aside, untouched.

``migrate`` rewrites a journal's records of formats 1 and 2 as format 3
(optional: they are read as they are), also with the gateway stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from gateway.domain import OrderUpdate
from gateway.domain.controls import PositionUpdate
from gateway.journal import JournalDamaged, JournalError, JournalRecord, SqliteJournal
from gateway.journal.datadir import JOURNAL_FILE, DataDir, DataDirBusy
from gateway.journal.inspect import format_jsonl, format_table, iter_records
from gateway.journal.migrate import migrate as journal_migrate

EXIT_JOURNAL_DAMAGED = 65  # as the gateway's own start (gateway.cli)


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
    show.add_argument(
        "--journal",
        metavar="URL",
        help="read the PostgreSQL journal at this URL instead of --data-dir "
        "(as the gateway's --journal; GATEWAY_JOURNAL works too)",
        default=os.environ.get("GATEWAY_JOURNAL"),
    )
    show.add_argument("--order-id", help="only this order (the gateway's order_id)")
    show.add_argument(
        "--client-order-id", help="only this client_order_id (with --account if ambiguous)"
    )
    show.add_argument("--account", help="only this account")
    show.add_argument("--from", dest="from_sequence", type=int, help="first sequence")
    show.add_argument("--to", dest="to_sequence", type=int, help="last sequence")
    show.add_argument("--format", choices=("table", "jsonl"), default="table", help="output format")
    salvage = commands.add_parser(
        "salvage",
        help="keep a damaged journal's good records, dropping the rest (gateway stopped)",
        description="Check the journal (SQLite quick_check, every row's checksum, every "
        "record's decoding). If it is damaged, move the damaged file aside (kept, untouched, "
        "as journal.db.corrupt-<time>) and put in its place a journal of every good record "
        "before the first bad one; new sequences start above any the lost records could "
        "have had. Records after the damage are dropped: reconciliation with the broker "
        "brings back the orders it still knows. Needs the gateway stopped.",
    )
    salvage.add_argument(
        "--data-dir", type=Path, default=Path("gateway-data"), help="the gateway's --data-dir"
    )
    migrate = commands.add_parser(
        "migrate",
        help="rewrite older records in the current format (gateway stopped; optional)",
        description="Rewrite a journal written before format 3 (JSON records with the whole "
        "order) as event-only records, about a ninth of the size. Not required: the gateway "
        "reads older records as they are. Every record keeps its sequence; the old file is "
        "kept as journal.db.format-<N>-<time>. Needs the gateway stopped.",
    )
    migrate.add_argument(
        "--data-dir", type=Path, default=Path("gateway-data"), help="the gateway's --data-dir"
    )
    return parser


def _locked(data_dir: Path) -> DataDir | None:
    """``data_dir`` with its journal, locked against a running gateway; None (said
    on stderr) if it has no journal or is in use."""
    directory = DataDir(data_dir)
    if not directory.journal_path.is_file():
        print(f"gateway journal: no journal in {data_dir}", file=sys.stderr)
        return None
    try:
        directory.acquire()
    except (DataDirBusy, OSError) as exc:
        print(f"gateway journal: {exc}", file=sys.stderr)
        return None
    return directory


def salvage(data_dir: Path) -> int:
    """Salvage the journal in ``data_dir``; exit 0 (salvaged or sound) or 1."""
    directory = _locked(data_dir)
    if directory is None:
        return 1
    try:
        journal = SqliteJournal.open(directory.journal_path, salvage=True)
        # Decoding every record finds what checksums cannot (and salvages it too).
        replayed = sum(1 for _ in journal.replay())
        asyncio.run(journal.close())
    except (JournalError, OSError) as exc:
        print(f"gateway journal: cannot salvage: {exc}", file=sys.stderr)
        return 1
    finally:
        directory.release()
    report = journal.recovery
    if report is None:
        print(f"journal {directory.journal_path} is sound ({replayed} records): nothing to do")
        return 0
    print(
        f"journal {directory.journal_path} salvaged: {report.problem}; kept {report.kept} "
        f"records up to sequence {report.last_good_sequence}; new records start after "
        f"sequence {report.sequence_floor}; the damaged file is kept as {report.moved_to}"
    )
    return 0


def migrate(data_dir: Path) -> int:
    """Migrate the journal in ``data_dir``; exit 0 (migrated or current), 65 if damaged, or 1."""
    directory = _locked(data_dir)
    if directory is None:
        return 1
    try:
        done = journal_migrate(directory.journal_path)
    except JournalDamaged as exc:
        print(
            f"gateway journal: cannot migrate: {exc}; run `gateway journal salvage "
            f"--data-dir {data_dir}` first",
            file=sys.stderr,
        )
        return EXIT_JOURNAL_DAMAGED
    except (JournalError, OSError, sqlite3.Error) as exc:
        print(f"gateway journal: cannot migrate: {exc}", file=sys.stderr)
        return 1
    finally:
        directory.release()
    if done.kept_as is None:
        print(f"journal {directory.journal_path} is in the current format: nothing to do")
        return 0
    print(
        f"journal {directory.journal_path} migrated from format {done.from_version}: "
        f"{done.records} records, {done.bytes_before:,} -> {done.bytes_after:,} bytes; "
        f"the old file is kept as {done.kept_as}"
    )
    return 0


def _selected(args: argparse.Namespace) -> Iterator[JournalRecord]:
    select = {
        "order_id": args.order_id,
        "from_sequence": args.from_sequence,
        "to_sequence": args.to_sequence,
    }
    if args.journal:
        from gateway.journal import postgres

        records = postgres.iter_records(args.journal, **select)
    else:
        records = iter_records(args.data_dir / JOURNAL_FILE, **select)
    for record in records:
        update = record.update
        if not isinstance(update, OrderUpdate):
            # A position change or a halt: selected by its account, not by an order.
            account = (
                update.position.account
                if isinstance(update, PositionUpdate)
                else update.halt.scope_account
            )
            if not args.client_order_id and (not args.account or account == args.account):
                yield record
            continue
        spec = update.order.spec
        if args.account and spec.account != args.account:
            continue
        if args.client_order_id and spec.client_order_id != args.client_order_id:
            continue
        yield record


def main(argv: Sequence[str]) -> int:
    """Run ``gateway journal ...``; exit 1 if the journal cannot be read."""
    args = build_parser().parse_args(argv)
    if args.command == "salvage":
        return salvage(args.data_dir)
    if args.command == "migrate":
        return migrate(args.data_dir)
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
