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
then holds no secret), the token itself (hashed on load), or a client
certificate identity ``x509:KIND=VALUE`` (see ``certificates``), so callers
over mTLS need no token. ``accounts`` is a comma-separated list, or ``*`` for
every account. ``mode`` is ``rw`` (default), ``ro`` (read-only: no
PlaceOrder or CancelOrder) or ``admin`` (``rw`` plus the ControlService:
halt and resume trading for its accounts, or for all with ``*``).

A principal may have several credentials (a token and a certificate, or a
token being rotated): one line each, with the same accounts and mode.
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

from gateway.auth.certificates import (
    CertificateAttribute,
    CertificateIdentity,
    is_certificate_credential,
    parse_identity,
)

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
    admin: bool = False
    """May call the ControlService (halt, resume, trading state, risk limits)."""

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


Credential = bytes | CertificateAttribute
"""A token's SHA-256 digest, or a certificate attribute (kind, value)."""


def parse_table(text: str, *, source: str) -> list[tuple[Credential, Principal]]:
    """Parse a table into (credential, principal) pairs; raise TokenTableError."""
    entries: list[tuple[Credential, Principal]] = []
    names: dict[str, Principal] = {}
    credentials: set[Credential] = set()
    lines = text.replace(";", "\n").splitlines()
    for number, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{source} entry {number}"
        fields = line.split()
        if len(fields) not in (3, 4):
            raise TokenTableError(f"{where}: expected NAME TOKEN ACCOUNTS [rw|ro|admin]")
        name, token, accounts_text = fields[:3]
        mode = fields[3] if len(fields) == 4 else "rw"
        if not _NAME.fullmatch(name):
            raise TokenTableError(f"{where}: bad principal name (1-64 of A-Z a-z 0-9 . _ @ -)")
        if mode not in ("rw", "ro", "admin"):
            raise TokenTableError(f"{where}: mode must be rw, ro or admin")
        credential = _credential_of(token, where)
        if credential in credentials:
            raise TokenTableError(f"{where}: principal {name!r} reuses another entry's credential")
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
        principal = Principal(name, accounts, read_only=mode == "ro", admin=mode == "admin")
        if names.setdefault(name, principal) != principal:
            # One principal, one set of grants: two lines that disagree are a typo.
            raise TokenTableError(
                f"{where}: principal {name!r} appears twice with different accounts or mode"
            )
        credentials.add(credential)
        entries.append((credential, principal))
    return entries


def _credential_of(token: str, where: str) -> Credential:
    if is_certificate_credential(token):
        try:
            return parse_identity(token)
        except ValueError as exc:
            raise TokenTableError(f"{where}: {exc}") from None
    return _digest_of(token, where)


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
        entries: Iterable[tuple[Credential, Principal]] = (),
        *,
        path: Path | None = None,
        env_text: str | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._entries: tuple[tuple[bytes, Principal], ...] = ()
        self._certificates: dict[CertificateAttribute, Principal] = {}
        self._install(entries)
        self._path = path
        self._env_text = env_text
        self._stamp: tuple[int, int] | None = None
        self.generation = 0
        """Incremented by every reload that replaced the table."""

    def _install(self, entries: Iterable[tuple[Credential, Principal]]) -> None:
        tokens: list[tuple[bytes, Principal]] = []
        certificates: dict[CertificateAttribute, Principal] = {}
        for credential, principal in entries:
            if isinstance(credential, bytes):
                tokens.append((credential, principal))
            else:
                certificates[credential] = principal
        with self._lock:
            self._entries, self._certificates = tuple(tokens), certificates

    @classmethod
    def load(cls, path: Path | None = None, env_text: str | None = None) -> TokenStore:
        """Build a store from a token file and/or the environment's table."""
        store = cls(path=path, env_text=env_text)
        store._install(store._read())
        return store

    def _read(self) -> list[tuple[Credential, Principal]]:
        entries: list[tuple[Credential, Principal]] = []
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
        names: dict[str, Principal] = {}
        for _, principal in entries:
            if names.setdefault(principal.name, principal) != principal:
                raise TokenTableError(
                    f"principal {principal.name!r} has different grants in the file "
                    "and the environment"
                )
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
        self._install(entries)
        self.generation += 1
        return None

    @property
    def principals(self) -> list[Principal]:
        """Every principal once (one may have several credentials)."""
        found = {p.name: p for _, p in self._entries}
        found.update((p.name, p) for p in self._certificates.values())
        return list(found.values())

    @property
    def certificate_kinds(self) -> frozenset[str]:
        """The certificate attributes (``uri``, ``cn``, ...) the table names."""
        return frozenset(kind for kind, _ in self._certificates)

    def __len__(self) -> int:
        return len(self.principals)

    def __repr__(self) -> str:
        return f"TokenStore({len(self)} principals, file={self._path})"

    def authenticate(self, token: str) -> Principal | None:
        """Return the principal ``token`` belongs to, or None; time independent of which."""
        return self.lookup_digest(hashlib.sha256(token.encode()).digest())

    def lookup_digest(self, candidate: bytes) -> Principal | None:
        """Return the principal of the token with this SHA-256 digest, or None."""
        found: Principal | None = None
        for digest, principal in self._entries:
            if hmac.compare_digest(digest, candidate):
                found = principal
        return found

    def lookup_certificate(self, identity: CertificateIdentity) -> list[Principal]:
        """Return the distinct principals the certificate's attributes name.

        More than one means an ambiguous certificate, which the policy refuses
        rather than resolving it by an order of precedence nobody reads.
        """
        table = self._certificates
        found: list[Principal] = []
        for attribute in identity:
            principal = table.get(attribute)
            if principal is not None and principal not in found:
                found.append(principal)
        return found
