"""Run the scenarios against the gateway and the echo ceiling; write the report.

``python -m bench`` runs them all (``make bench``); ``--only NAME ...`` runs
some (see ``bench.scenarios`` for the order and what each measures),
``--quick`` shrinks every duration and size for a smoke run, and
``--render`` rewrites the page from the last run's JSON without measuring.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from bench import report
from bench.scenarios import SCENARIOS, Bench, log
from bench.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def _tool(path: str | None, name: str) -> Path:
    found = Path(path) if path else ROOT / ".tools" / "bin" / name
    if not found.exists():
        found = Path(shutil.which(name) or found)
    if not found.exists():
        raise SystemExit(f"bench: {name} not found (make bench installs it into .tools/bin)")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument(
        "--only",
        nargs="*",
        choices=SCENARIOS,
        metavar="SCENARIO",
        help=f"scenarios to run (default: all): {', '.join(SCENARIOS)}",
    )
    parser.add_argument("--ghz", help="ghz binary (default .tools/bin/ghz)")
    parser.add_argument(
        "--stream-client", help="stream client (default .tools/bin/bench-streamclient)"
    )
    parser.add_argument(
        "--gateway-tree",
        type=Path,
        help="run the gateway package in this directory (e.g. an older commit's, "
        "from `git archive REV gateway | tar -x -C DIR`) for a before/after comparison",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where to write the report")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument(
        "--render",
        action="store_true",
        help="only rewrite benchmarks.md from benchmarks.json (e.g. after editing "
        "bench/optimisations.md); measures nothing",
    )
    args = parser.parse_args(argv)
    if args.render:
        document = json.loads((args.out / "benchmarks.json").read_text())
        report.render(args.out, document["machine"], document["results"])
        return 0
    settings = Settings.quick() if args.quick else Settings()
    ghz = _tool(args.ghz, "ghz")
    client = _tool(args.stream_client, "bench-streamclient")
    work = Path(
        tempfile.mkdtemp(prefix="bench-", dir=ROOT / ".bench" if _mk(ROOT / ".bench") else None)
    )
    bench = Bench(settings, ghz, client, work, args.gateway_tree)
    scenarios = bench.scenarios()
    # In the fixed order whatever order they were named in: saturation first.
    chosen = [name for name in scenarios if name in (args.only or scenarios)]
    started = time.perf_counter()
    log(f"scratch directory {work}")
    try:
        for name in chosen:
            scenarios[name]()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - started
    meta = report.describe_machine(
        ghz, bench.ghz.version(), settings, args.gateway_tree, elapsed, quick=args.quick
    )
    summary = report.write(args.out, meta, bench.results)
    print(summary)
    return 0


def _mk(path: Path) -> bool:
    # On the repo's disk, not /tmp: the journal's fsyncs must hit a real disk.
    path.mkdir(exist_ok=True)
    return True
