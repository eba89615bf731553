"""Bearer tokens to principals: parsing, hashing, constant-time lookup.

Owns the token table. Only SHA-256 digests of tokens are kept in memory, and
a presented token is compared against every digest with
``hmac.compare_digest`` (no early exit), so neither storage nor timing gives
a token away. Nothing here ever formats a token into a message.

Table format, one principal per line (a file, or the ``GATEWAY_AUTH_TOKENS``
environment variable where ``;`` also separates lines)::

    # name        token               accounts          mode
    alpha         sha256:<64 hex>     acct-1,acct-2     rw
    risk-viewer   sha256:<64 hex>     *                 ro

``token`` is ``sha256:`` plus the hex digest of the token (preferred: the file
then holds no secret), or the token itself (hashed on load). ``accounts`` is a
comma-separated list, or ``*`` for every account. ``mode`` is ``rw``
(default) or ``ro`` (read-only: no PlaceOrder or CancelOrder).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ALL_ACCOUNTS = "*"
MAX_ACCOUNTS_PER_PRINCIPAL = 1000  # the SubscribeUpdates filter's own limit
MIN_TOKEN_CHARS = 16
_DIGEST_PREFIX = "sha256:"
_NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")
_ACCOUNT = re.compile(r"[A-Za-z0-9._-]{1,64}")
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a token speaks for, and what it may touch."""

    name: str
    accounts: frozenset[str]
    """Granted accounts; ``{"*"}`` means every account."""
    read_only: bool = False

    @property
    def all_accounts(self) -> bool:
        return ALL_ACCOUNTS in self.accounts

    def may_read(self, account: str) -> bool:
        return self.all_accounts or account in self.accounts

    def may_write(self, account: str) -> bool:
        return not self.read_only and self.may_read(account)


def hash_token(token: str) -> str:
    """Return the stored form of ``token``: ``sha256:<hex digest>``."""
    return _DIGEST_PREFIX + hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """Return a fresh random token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


class TokenTableError(ValueError):
    """The token table is malformed; the message names the line, never a token."""


def parse_table(text: str, *, source: str) -> list[tuple[bytes, Principal]]:
    """Parse a token table into (digest, principal) pairs; raise TokenTableError."""
    entries: list[tuple[bytes, Principal]] = []
    names: set[str] = set()
    digests: set[bytes] = set()
    lines = text.replace(";", "\n").splitlines()
    for number, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{source} entry {number}"
        fields = line.split()
        if len(fields) not in (3, 4):
            raise TokenTableError(f"{where}: expected NAME TOKEN ACCOUNTS [rw|ro]")
        name, token, accounts_text = fields[:3]
        mode = fields[3] if len(fields) == 4 else "rw"
        if not _NAME.fullmatch(name):
            raise TokenTableError(f"{where}: bad principal name (1-64 of A-Z a-z 0-9 . _ @ -)")
        if name in names:
            raise TokenTableError(f"{where}: principal {name!r} appears twice")
        if mode not in ("rw", "ro"):
            raise TokenTableError(f"{where}: mode must be rw or ro")
        digest = _digest_of(token, where)
        if digest in digests:
            raise TokenTableError(f"{where}: principal {name!r} reuses another entry's token")
        accounts = frozenset(a for a in accounts_text.split(",") if a)
        if not accounts:
            raise TokenTableError(f"{where}: principal {name!r} has no accounts")
        if ALL_ACCOUNTS in accounts and len(accounts) > 1:
            raise TokenTableError(f"{where}: '*' stands alone")
        if len(accounts) > MAX_ACCOUNTS_PER_PRINCIPAL:
            raise TokenTableError(f"{where}: more than {MAX_ACCOUNTS_PER_PRINCIPAL} accounts")
        for account in accounts - {ALL_ACCOUNTS}:
            if not _ACCOUNT.fullmatch(account):
                raise TokenTableError(f"{where}: bad account name {account!r}")
        names.add(name)
        digests.add(digest)
        entries.append((digest, Principal(name, accounts, read_only=mode == "ro")))
    return entries


def _digest_of(token: str, where: str) -> bytes:
    if token.startswith(_DIGEST_PREFIX):
        hex_digest = token[len(_DIGEST_PREFIX) :].lower()
        if not _HEX_DIGEST.fullmatch(hex_digest):
            raise TokenTableError(f"{where}: sha256: needs 64 hex digits")
        return bytes.fromhex(hex_digest)
    if len(token) < MIN_TOKEN_CHARS:
        raise TokenTableError(f"{where}: token shorter than {MIN_TOKEN_CHARS} characters")
    return hashlib.sha256(token.encode()).digest()


class TokenStore:
    """The principals and the digests of their tokens; reloads its file on change.

    ``authenticate`` is safe to call from any thread; a reload swaps the whole
    table at once. A file that becomes malformed keeps the last good table
    (and the error is reported through ``reload_if_changed``'s return value).
    """

    def __init__(
        self,
        entries: Iterable[tuple[bytes, Principal]] = (),
        *,
        path: Path | None = None,
        env_text: str | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._entries: tuple[tuple[bytes, Principal], ...] = tuple(entries)
        self._path = path
        self._env_text = env_text
        self._stamp: tuple[int, int] | None = None

    @classmethod
    def load(cls, path: Path | None = None, env_text: str | None = None) -> TokenStore:
        """Build a store from a token file and/or the environment's table."""
        store = cls(path=path, env_text=env_text)
        store._entries = tuple(store._read())
        return store

    def _read(self) -> list[tuple[bytes, Principal]]:
        entries: list[tuple[bytes, Principal]] = []
        if self._env_text:
            entries += parse_table(self._env_text, source="GATEWAY_AUTH_TOKENS")
        if self._path is not None:
            try:
                stat = os.stat(self._path)
                text = self._path.read_text()
            except OSError as exc:
                problem = f"cannot read token file {self._path}: {exc.strerror}"
                raise TokenTableError(problem) from None
            self._stamp = (stat.st_mtime_ns, stat.st_size)
            entries += parse_table(text, source=str(self._path))
        names = [p.name for _, p in entries]
        if len(names) != len(set(names)):
            raise TokenTableError("a principal is named both in the file and the environment")
        return entries

    def reload_if_changed(self) -> str | None:
        """Re-read the token file if it changed; return an error text if it is bad."""
        if self._path is None:
            return None
        try:
            stat = os.stat(self._path)
        except OSError as exc:
            return f"cannot read token file {self._path}: {exc.strerror}"
        if (stat.st_mtime_ns, stat.st_size) == self._stamp:
            return None
        try:
            entries = self._read()
        except TokenTableError as exc:
            return str(exc)
        with self._lock:
            self._entries = tuple(entries)
        return None

    @property
    def principals(self) -> list[Principal]:
        return [principal for _, principal in self._entries]

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"TokenStore({len(self._entries)} principals, file={self._path})"

    def authenticate(self, token: str) -> Principal | None:
        """Return the principal ``token`` belongs to, or None; time independent of which."""
        candidate = hashlib.sha256(token.encode()).digest()
        found: Principal | None = None
        for digest, principal in self._entries:
            if hmac.compare_digest(digest, candidate):
                found = principal
        return found
