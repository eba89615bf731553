"""Account shards on the client side: route each call to the shard that owns its account.

A deployment with several shards gives each shard's gateway a set of accounts
(the gateway's ``--shard-map``, docs/operations.md). A client reaches the
right one in one of three ways:

- through a proxy that routes on the ``x-gateway-account`` metadata, which the
  SDK always sends (nothing to configure);
- from the same shard map (``ShardMap.load``, passed as ``shard_map=``): the
  client holds one channel per shard and sends each call straight to its
  account's shard;
- by following a ``WRONG_SHARD`` refusal (``follow_shard_redirects=True``):
  the refusing gateway names the owner's address; the call is sent there
  once, and the account's address is remembered for later calls and streams.
  A stream refused before its first message is reopened there the same way.

A refused call changed nothing (the gateway refuses before its order table),
so sending it again elsewhere is safe, PlaceOrder included.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import grpc

from gateway_client._options import ChannelSettings
from gateway_client._proto.execution.v1 import execution_pb2 as pb
from gateway_client._proto.execution.v1 import execution_pb2_grpc as pb_grpc
from gateway_client.errors import from_rpc_error

ACCOUNT_METADATA = "x-gateway-account"
"""Call metadata naming the call's account (proxies route on it; the gateway checks it)."""

WRONG_SHARD = "WRONG_SHARD"
"""ErrorInfo reason of a call sent to a gateway that does not serve its account."""

MAX_SHARD_CHANNELS = 64
"""Most gateways one client opens channels to; a redirect beyond that is not followed."""

_MAX_LEARNED = 100_000  # account -> address entries remembered from redirects

_SHARD_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_SERVICE = pb.DESCRIPTOR.services_by_name["ExecutionService"]
_STREAMING = frozenset(m.name for m in _SERVICE.methods if m.server_streaming)


class ShardMapError(ValueError):
    """The shard map cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class Shard:
    """One shard: its name, its gateway's address, and the accounts it owns."""

    name: str
    address: str
    accounts: frozenset[str]


@dataclass(frozen=True, slots=True)
class ShardMap:
    """The gateways' shard map (the same TOML file as their ``--shard-map``)."""

    shards: Mapping[str, Shard]
    default_shard: str | None = None

    def owner(self, account: str) -> Shard | None:
        """Return the shard owning ``account`` (the default shard for unlisted ones), or None."""
        for shard in self.shards.values():
            if account in shard.accounts:
                return shard
        return self.shards[self.default_shard] if self.default_shard is not None else None

    @classmethod
    def load(cls, path: str | Path) -> ShardMap:
        """Read a shard map file; raise ``ShardMapError`` naming the file."""
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ShardMapError(f"cannot read shard map {path}: {exc}") from None
        try:
            return cls.from_mapping(data)
        except ShardMapError as exc:
            raise ShardMapError(f"shard map {path}: {exc}") from None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ShardMap:
        """Build a map from parsed TOML (``{"shards": {name: {address, accounts}}, ...}``)."""
        tables = data.get("shards")
        if not isinstance(tables, dict) or not tables:
            raise ShardMapError("needs at least one [shards.NAME] table")
        shards: dict[str, Shard] = {}
        owners: dict[str, str] = {}
        for name, table in tables.items():
            address = table.get("address") if isinstance(table, dict) else None
            accounts = table.get("accounts", []) if isinstance(table, dict) else None
            if not _SHARD_NAME.fullmatch(name) or not isinstance(address, str) or not address:
                raise ShardMapError(f"shards.{name} needs a name of a-z 0-9 - and an address")
            if not isinstance(accounts, list) or not all(isinstance(a, str) for a in accounts):
                raise ShardMapError(f"shards.{name}.accounts must be a list of account names")
            for account in accounts:
                if owners.setdefault(account, name) != name:
                    raise ShardMapError(f"account {account!r} is listed by two shards")
            shards[name] = Shard(name, address, frozenset(accounts))
        default = data.get("default_shard")
        if default is not None and default not in shards:
            raise ShardMapError(f"default_shard {default!r} is not one of the shards")
        return cls(MappingProxyType(shards), default)


def with_account(
    metadata: tuple[tuple[str, str], ...], account: str | None
) -> tuple[tuple[str, str], ...]:
    """``metadata`` plus the ``x-gateway-account`` entry for ``account`` (if any)."""
    return (*metadata, (ACCOUNT_METADATA, account)) if account else metadata


def _account_of(metadata: Sequence[tuple[str, str]] | None) -> str | None:
    for key, value in metadata or ():
        if key == ACCOUNT_METADATA:
            return value
    return None


class _Routes:
    """Which address serves an account, and one stub per address, made on first use."""

    def __init__(
        self,
        settings: ChannelSettings,
        default_stub: Any,
        make_stub: Callable[[ChannelSettings], tuple[Any, Any]],
        shard_map: ShardMap | None,
        follow_redirects: bool,
    ) -> None:
        self._settings = settings
        self._default_stub = default_stub
        self._make_stub = make_stub
        self._map = shard_map
        self._follow = follow_redirects
        self._stubs: dict[str, Any] = {settings.target: default_stub}
        self.channels: list[Any] = []
        """Channels opened here (not the client's own), for the client to close."""
        self._learned: dict[str, str] = {}

    def route(self, account: str | None) -> tuple[str, Any]:
        """Return (address, stub) for a call on ``account``."""
        if account is None:
            return self._settings.target, self._default_stub
        address = self._learned.get(account)
        if address is None and self._map is not None:
            owner = self._map.owner(account)
            address = owner.address if owner is not None else None
        if address is None:
            return self._settings.target, self._default_stub
        return address, self._stub(address) or self._default_stub

    def redirect(self, rpc_error: grpc.RpcError, account: str | None, tried: str) -> Any:
        """Return the stub of the shard a WRONG_SHARD ``rpc_error`` names, or None."""
        if not self._follow or account is None:
            return None
        error = from_rpc_error(rpc_error)
        address = error.metadata.get("address", "")
        if error.reason != WRONG_SHARD or not address or address == tried:
            return None
        stub = self._stub(address)
        if stub is not None:
            if len(self._learned) >= _MAX_LEARNED:
                self._learned.clear()
            self._learned[account] = address
        return stub

    def _stub(self, address: str) -> Any:
        stub = self._stubs.get(address)
        if stub is None and len(self._stubs) < MAX_SHARD_CHANNELS:
            # The same TLS, token and options as the client's own channel.
            stub, channel = self._make_stub(dataclasses.replace(self._settings, target=address))
            self._stubs[address] = stub
            self.channels.append(channel)
        return stub


class AsyncShardRoutes(_Routes):
    """An asyncio ``ExecutionServiceStub`` look-alike that routes each call by account."""

    def __init__(
        self,
        settings: ChannelSettings,
        channel: grpc.aio.Channel,
        shard_map: ShardMap | None,
        follow_redirects: bool,
    ) -> None:
        def make(target: ChannelSettings) -> tuple[Any, Any]:
            opened = target.aio_channel()
            return pb_grpc.ExecutionServiceStub(opened), opened

        super().__init__(
            settings, pb_grpc.ExecutionServiceStub(channel), make, shard_map, follow_redirects
        )

    def __getattr__(self, method: str) -> Callable[..., Any]:
        # Only for a method's first use: the callable is kept as an attribute.
        if method not in _SERVICE.methods_by_name:
            raise AttributeError(method)
        call = self._stream(method) if method in _STREAMING else self._unary(method)
        setattr(self, method, call)
        return call

    def _stream(self, method: str) -> Callable[..., Any]:
        def call(request: Any, *, metadata: Any = None, **kwargs: Any) -> Any:
            account = _account_of(metadata)
            address, stub = self.route(account)

            def reopen(rpc_error: grpc.RpcError) -> Any:
                elsewhere = self.redirect(rpc_error, account, address)
                if elsewhere is None:
                    return None
                return getattr(elsewhere, method)(request, metadata=metadata, **kwargs)

            opened = getattr(stub, method)(request, metadata=metadata, **kwargs)
            return _AsyncRedirectingStream(opened, reopen)

        return call

    def _unary(self, method: str) -> Callable[..., Awaitable[Any]]:
        async def call(request: Any, *, metadata: Any = None, **kwargs: Any) -> Any:
            account = _account_of(metadata)
            address, stub = self.route(account)
            try:
                return await getattr(stub, method)(request, metadata=metadata, **kwargs)
            except grpc.RpcError as rpc_error:
                elsewhere = self.redirect(rpc_error, account, address)
                if elsewhere is None:
                    raise
            return await getattr(elsewhere, method)(request, metadata=metadata, **kwargs)

        return call

    async def close(self) -> None:
        """Close the channels opened to other shards."""
        for channel in self.channels:
            await channel.close(grace=None)


class ShardRoutes(_Routes):
    """A blocking ``ExecutionServiceStub`` look-alike that routes each call by account."""

    def __init__(
        self,
        settings: ChannelSettings,
        channel: grpc.Channel,
        shard_map: ShardMap | None,
        follow_redirects: bool,
    ) -> None:
        def make(target: ChannelSettings) -> tuple[Any, Any]:
            opened = target.sync_channel()
            return pb_grpc.ExecutionServiceStub(opened), opened

        super().__init__(
            settings, pb_grpc.ExecutionServiceStub(channel), make, shard_map, follow_redirects
        )

    def __getattr__(self, method: str) -> Callable[..., Any]:
        # Only for a method's first use: the callable is kept as an attribute.
        if method not in _SERVICE.methods_by_name:
            raise AttributeError(method)
        streaming = method in _STREAMING

        def call(request: Any, *, metadata: Any = None, **kwargs: Any) -> Any:
            account = _account_of(metadata)
            address, stub = self.route(account)
            if streaming:

                def reopen(rpc_error: grpc.RpcError) -> Any:
                    elsewhere = self.redirect(rpc_error, account, address)
                    if elsewhere is None:
                        return None
                    return getattr(elsewhere, method)(request, metadata=metadata, **kwargs)

                opened = getattr(stub, method)(request, metadata=metadata, **kwargs)
                return _RedirectingStream(opened, reopen)
            try:
                return getattr(stub, method)(request, metadata=metadata, **kwargs)
            except grpc.RpcError as rpc_error:
                elsewhere = self.redirect(rpc_error, account, address)
                if elsewhere is None:
                    raise
            return getattr(elsewhere, method)(request, metadata=metadata, **kwargs)

        setattr(self, method, call)
        return call

    def close(self) -> None:
        """Close the channels opened to other shards."""
        for channel in self.channels:
            channel.close()


class _AsyncRedirectingStream:
    """A server stream that, refused WRONG_SHARD before its first message, reopens
    once on the shard the refusal names (``reopen`` returns None if it may not)."""

    def __init__(self, call: Any, reopen: Callable[[grpc.RpcError], Any]) -> None:
        self._call = call
        self._reopen: Callable[[grpc.RpcError], Any] | None = reopen

    async def read(self) -> Any:
        try:
            message = await self._call.read()
        except grpc.RpcError as rpc_error:
            reopened = self._reopen(rpc_error) if self._reopen is not None else None
            self._reopen = None
            if reopened is None:
                raise
            self._call = reopened
            message = await self._call.read()
        self._reopen = None  # a stream that has spoken is not redirected
        return message

    def cancel(self) -> bool:
        return bool(self._call.cancel())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._call, name)


class _RedirectingStream:
    """The blocking twin of ``_AsyncRedirectingStream``: an iterator of messages."""

    def __init__(self, call: Any, reopen: Callable[[grpc.RpcError], Any]) -> None:
        self._call = call
        self._reopen: Callable[[grpc.RpcError], Any] | None = reopen

    def __iter__(self) -> _RedirectingStream:
        return self

    def __next__(self) -> Any:
        try:
            message = next(self._call)
        except grpc.RpcError as rpc_error:
            reopened = self._reopen(rpc_error) if self._reopen is not None else None
            self._reopen = None
            if reopened is None:
                raise
            self._call = reopened
            message = next(self._call)
        self._reopen = None  # a stream that has spoken is not redirected
        return message

    def cancel(self) -> bool:
        return bool(self._call.cancel())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._call, name)


def as_map(shard_map: ShardMap | str | Path | None) -> ShardMap | None:
    """Accept a ``ShardMap`` or the path of its file."""
    if shard_map is None or isinstance(shard_map, ShardMap):
        return shard_map
    return ShardMap.load(shard_map)
