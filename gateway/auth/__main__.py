"""``python -m gateway.auth``: make a token and its token-file line.

    python -m gateway.auth new alpha acct-1,acct-2          # read-write
    python -m gateway.auth new viewer '*' --read-only
    python -m gateway.auth hash < token.txt                  # digest of an existing token

``new`` prints the token (give it to the client; it is shown once) on stdout's
first line and the line for the token file, holding only its digest, on the
second.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from gateway.auth.tokens import TokenTableError, hash_token, new_token, parse_table


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.auth", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    new = commands.add_parser("new", help="make a token for a principal")
    new.add_argument("name")
    new.add_argument("accounts", help="comma-separated accounts, or '*' for all")
    new.add_argument("--read-only", action="store_true")
    commands.add_parser("hash", help="print sha256:<digest> of the token on stdin")
    args = parser.parse_args(argv)
    if args.command == "hash":
        token = sys.stdin.readline().strip()
        if not token:
            parser.error("no token on stdin")
        print(hash_token(token))
        return 0
    token = new_token()
    line = f"{args.name} {hash_token(token)} {args.accounts} {'ro' if args.read_only else 'rw'}"
    try:
        parse_table(line, source="new entry")
    except TokenTableError as exc:
        parser.error(str(exc))
    print(token)
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
