"""Account shards: the shard map, and which accounts this gateway may serve.

A shard map is a TOML file naming each shard, the address its clients (and a
redirect) use, and the accounts it owns; one shard may be the ``default_shard``
that owns every account the map does not list::

    default_shard = "b"          # optional; without it an unlisted account is refused

    [shards.a]
    address = "gateway-a.trading.svc:50051"
    accounts = ["acct-1", "acct-2"]

    [shards.b]
    address = "gateway-b.trading.svc:50051"
    accounts = ["acct-3"]

``ShardGuard`` answers, for the gateway's own shard, whether a request naming
an account may be served here; the interceptor asks it before the request
reaches the actor. Pure code: no gRPC, no asyncio.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from gateway.errors import FailedPrecondition, FieldViolation, InvalidArgument

ACCOUNT_METADATA = "x-gateway-account"
"""Call metadata naming the request's account, so a proxy can route on it."""

WRONG_SHARD = "WRONG_SHARD"
"""ErrorInfo reason: another shard owns the account (metadata names it and its address)."""

UNKNOWN_ACCOUNT = "UNKNOWN_ACCOUNT"
"""ErrorInfo reason: no shard owns the account (the map lists it nowhere, no default)."""

SHARD_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_SHARD_NAME_RULE = "1-63 characters of a-z 0-9 -, starting and ending with a letter or digit"
# As the service validates accounts (gateway.service.validation): a listed
# account the service would refuse could never be served anyway.
_ACCOUNT = re.compile(r"[A-Za-z0-9._-]{1,64}")
_ACCOUNT_RULE = "must be 1-64 characters of A-Z a-z 0-9 . _ -"
_MAX_ACCOUNT_CHARS = 64  # checked before the regex: a 1 MB string costs one len()
MAX_MAP_BYTES = 16 * 1024 * 1024  # far above any real map; bounds what a bad path can cost


class ShardMapError(ValueError):
    """The shard map cannot be used; the message names the file and the problem."""


@dataclass(frozen=True, slots=True)
class Shard:
    """One shard: its name, where its clients reach it, and the accounts it owns."""

    name: str
    address: str
    """HOST:PORT of the shard's gateway (its Service in Kubernetes), for clients and redirects."""
    accounts: frozenset[str]


@dataclass(frozen=True, slots=True)
class ShardMap:
    """Every shard, and which one owns each account."""

    shards: Mapping[str, Shard]
    default_shard: str | None = None
    """The shard owning every account no shard lists; None: those accounts are refused."""

    def owner(self, account: str) -> Shard | None:
        """Return the shard that owns ``account``, or None if none does."""
        for shard in self.shards.values():
            if account in shard.accounts:
                return shard
        return self.shards[self.default_shard] if self.default_shard is not None else None

    @classmethod
    def load(cls, path: Path) -> ShardMap:
        """Read and check a shard map file; raise ``ShardMapError`` saying what is wrong."""
        try:
            with path.open("rb") as file:
                raw = file.read(MAX_MAP_BYTES + 1)
            if len(raw) > MAX_MAP_BYTES:
                raise ShardMapError(f"shard map {path}: larger than {MAX_MAP_BYTES} bytes")
            data = tomllib.loads(raw.decode())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ShardMapError(f"cannot read shard map {path}: {exc}") from None
        try:
            return cls.from_mapping(data)
        except ShardMapError as exc:
            raise ShardMapError(f"shard map {path}: {exc}") from None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ShardMap:
        """Build a map from parsed TOML; raise ``ShardMapError`` for anything off."""
        _no_unknown_keys(data, {"shards", "default_shard"}, "the top level")
        tables = data.get("shards")
        if not isinstance(tables, dict) or not tables:
            raise ShardMapError("needs at least one [shards.NAME] table")
        shards: dict[str, Shard] = {}
        owners: dict[str, str] = {}
        for name, table in tables.items():
            shard = _shard(name, table)
            for account in shard.accounts:
                if (other := owners.setdefault(account, name)) != name:
                    raise ShardMapError(
                        f"account {account!r} is listed by shards {other!r} and {name!r}; "
                        "an account has one owner"
                    )
            shards[name] = shard
        default = data.get("default_shard")
        if default is not None and (not isinstance(default, str) or default not in shards):
            raise ShardMapError(
                f"default_shard {default!r} is not one of the shards ({', '.join(shards)})"
            )
        return cls(MappingProxyType(shards), default)


def _no_unknown_keys(table: Mapping[str, Any], known: set[str], where: str) -> None:
    # A misspelt key ("acounts") would otherwise silently move accounts elsewhere.
    unknown = sorted(set(table) - known)
    if unknown:
        raise ShardMapError(
            f"unknown key {unknown[0]!r} in {where} (known: {', '.join(sorted(known))})"
        )


def _is_host_port(text: str) -> bool:
    host, sep, port = text.rpartition(":")
    return bool(
        sep and host and port.isdigit() and port.isascii() and int(port) <= 65535
    ) and not any(c.isspace() or c == "/" for c in text)


def _shard(name: str, table: Any) -> Shard:
    if not SHARD_NAME.fullmatch(name):
        raise ShardMapError(f"shard name {name!r}: must be {_SHARD_NAME_RULE}")
    if not isinstance(table, dict):
        raise ShardMapError(f"shards.{name} must be a table with address and accounts")
    _no_unknown_keys(table, {"address", "accounts"}, f"[shards.{name}]")
    address = table.get("address")
    if not isinstance(address, str) or not _is_host_port(address):
        raise ShardMapError(f"shards.{name}.address must be HOST:PORT, not {address!r}")
    accounts = table.get("accounts", [])
    if not isinstance(accounts, list):
        raise ShardMapError(f"shards.{name}.accounts must be a list of account names")
    for account in accounts:
        if not isinstance(account, str) or not _ACCOUNT.fullmatch(account):
            raise ShardMapError(
                f"shards.{name}.accounts: {account!r} is not an account name ({_ACCOUNT_RULE})"
            )
    return Shard(name, address, frozenset(accounts))


class ShardGuard:
    """Decide, for this gateway's shard, whether an account may be served here.

    ``check`` is called for each account a request names; the common case (an
    account of this shard) is one set lookup.
    """

    def __init__(self, shard_map: ShardMap, shard: str) -> None:
        if shard not in shard_map.shards:
            raise ShardMapError(
                f"this gateway's shard {shard!r} is not in the shard map "
                f"({', '.join(shard_map.shards)})"
            )
        self.shard = shard
        self.shard_map = shard_map
        self._mine = shard_map.shards[shard].accounts
        self._elsewhere = {
            account: other
            for other in shard_map.shards.values()
            if other.name != shard
            for account in other.accounts
        }
        self.catch_all = shard_map.default_shard == shard

    def owns(self, account: str) -> bool:
        """Whether this shard serves ``account``."""
        if account in self._mine:
            return True
        return self.catch_all and account not in self._elsewhere

    def check(self, account: str, field: str = "account") -> None:
        """Return if this shard serves ``account``; else raise FailedPrecondition.

        The reason is WRONG_SHARD (another shard owns it: its name and address
        are in the metadata, so a client can go there) or UNKNOWN_ACCOUNT (no
        shard does). A malformed account is INVALID_ARGUMENT naming ``field``,
        as the service would answer it.
        """
        if account in self._mine:
            return
        owner = self._elsewhere.get(account)
        if owner is None:
            if self.catch_all:
                return  # served here, or refused by the service's validation
            if len(account) > _MAX_ACCOUNT_CHARS or not _ACCOUNT.fullmatch(account):
                raise InvalidArgument([FieldViolation(field, _ACCOUNT_RULE)])
            default = self.shard_map.default_shard
            owner = self.shard_map.shards[default] if default is not None else None
        if owner is None:
            raise FailedPrecondition(
                f"account {account!r} belongs to no shard in the shard map "
                f"(this gateway serves shard {self.shard!r})",
                reason=UNKNOWN_ACCOUNT,
                metadata={"account": account, "this_shard": self.shard},
            )
        raise FailedPrecondition(
            f"account {account!r} is served by shard {owner.name!r} at {owner.address}, "
            f"not by this gateway (shard {self.shard!r}); nothing was done",
            reason=WRONG_SHARD,
            metadata={
                "account": account,
                "shard": owner.name,
                "address": owner.address,
                "this_shard": self.shard,
            },
        )

    def check_all(self, accounts: Sequence[str]) -> None:
        """``check`` each account in turn (the first not served here raises)."""
        for index, account in enumerate(accounts):
            self.check(account, f"accounts[{index}]")
