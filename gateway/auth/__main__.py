"""``python -m gateway.auth``: make a token and its token-file line.

    python -m gateway.auth new alpha acct-1,acct-2          # read-write
    python -m gateway.auth new viewer '*' --read-only
    python -m gateway.auth new ops '*' --admin               # may halt and resume trading
    python -m gateway.auth hash < token.txt                  # digest of an existing token
    python -m gateway.auth cert alpha uri=spiffe://td/ns/trading/sa/alpha acct-1
                                                             # an mTLS client certificate

``new`` prints the token (give it to the client; it is shown once) on stdout's
first line and the line for the token file, holding only its digest, on the
second. ``cert`` prints the line for a client certificate identity (no token:
the certificate is the credential); KIND is one of uri, dns, email, ip, cn,
subject.
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
    new_mode = new.add_mutually_exclusive_group()
    new_mode.add_argument("--read-only", action="store_true")
    new_mode.add_argument(
        "--admin", action="store_true", help="read-write and the ControlService (halts)"
    )
    commands.add_parser("hash", help="print sha256:<digest> of the token on stdin")
    cert = commands.add_parser("cert", help="the line for an mTLS client certificate identity")
    cert.add_argument("name")
    cert.add_argument("identity", help="KIND=VALUE, e.g. uri=spiffe://td/ns/trading/sa/alpha")
    cert.add_argument("accounts", help="comma-separated accounts, or '*' for all")
    cert.add_argument("--read-only", action="store_true")
    args = parser.parse_args(argv)
    mode = "ro" if args.read_only else "admin" if getattr(args, "admin", False) else "rw"
    if args.command == "cert":
        # Spaces, '#' and ';' would end the field in the table: percent-encode them.
        value = args.identity.replace("%", "%25").replace(" ", "%20")
        value = value.replace("#", "%23").replace(";", "%3B")
        line = f"{args.name} x509:{value} {args.accounts} {mode}"
        try:
            parse_table(line, source="new entry")
        except TokenTableError as exc:
            parser.error(str(exc))
        print(line)
        return 0
    if args.command == "hash":
        token = sys.stdin.readline().strip()
        if not token:
            parser.error("no token on stdin")
        print(hash_token(token))
        return 0
    token = new_token()
    line = f"{args.name} {hash_token(token)} {args.accounts} {mode}"
    try:
        parse_table(line, source="new entry")
    except TokenTableError as exc:
        parser.error(str(exc))
    print(token)
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
