"""Connection options: TLS, the bearer token, deadlines and retry policies."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

DEFAULT_TIMEOUT = 10.0
"""Seconds each unary call may take, per attempt, unless told otherwise."""


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """TLS for the channel. All fields optional: the default trusts the system's roots."""

    root_certificates: bytes | None = None
    """PEM roots to trust instead of the system's (a private CA)."""
    private_key: bytes | None = None
    """PEM client key, for mutual TLS (with ``certificate_chain``)."""
    certificate_chain: bytes | None = None
    """PEM client certificate chain, for mutual TLS."""
    server_name: str | None = None
    """Expect this name in the server's certificate instead of the target's host."""

    @classmethod
    def from_files(
        cls,
        ca: str | Path | None = None,
        cert: str | Path | None = None,
        key: str | Path | None = None,
        server_name: str | None = None,
    ) -> TlsConfig:
        """Read PEM files (any may be None)."""

        def read(path: str | Path | None) -> bytes | None:
            return Path(path).read_bytes() if path is not None else None

        return cls(read(ca), read(key), read(cert), server_name)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter, capped."""

    initial: float = 0.2
    """Seconds before the first retry (the mean is half of it, with jitter)."""
    maximum: float = 5.0
    """Longest wait between two tries."""
    multiplier: float = 2.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1 for the first retry)."""
        ceiling = min(self.maximum, self.initial * self.multiplier ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How unary calls are retried (PlaceOrder always with the same client_order_id)."""

    max_attempts: int = 5
    """Tries in all, the first included; 1 disables retries."""
    backoff: Backoff = field(default_factory=Backoff)


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """How an update stream reconnects after it broke."""

    max_attempts: int | None = 10
    """Reconnects in a row without receiving anything before giving up; None: forever."""
    backoff: Backoff = field(default_factory=lambda: Backoff(initial=0.2, maximum=10.0))


@dataclass(frozen=True, slots=True)
class ChannelSettings:
    """Everything needed to open a channel and authorise calls on it."""

    target: str
    token: str | None = None
    tls: TlsConfig | None = None
    options: Sequence[tuple[str, Any]] = ()

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """Call metadata: the bearer token, when there is one."""
        return (("authorization", f"Bearer {self.token}"),) if self.token else ()

    def channel_options(self) -> list[tuple[str, Any]]:
        # Keepalive pings keep idle update streams alive through NATs and proxies.
        defaults: dict[str, Any] = {
            "grpc.keepalive_time_ms": 30_000,
            "grpc.keepalive_timeout_ms": 10_000,
            "grpc.keepalive_permit_without_calls": 1,
        }
        if self.tls and self.tls.server_name:
            defaults["grpc.ssl_target_name_override"] = self.tls.server_name
        defaults.update(dict(self.options))
        return list(defaults.items())

    def credentials(self) -> grpc.ChannelCredentials | None:
        if self.tls is None:
            return None
        return grpc.ssl_channel_credentials(
            self.tls.root_certificates, self.tls.private_key, self.tls.certificate_chain
        )

    def sync_channel(self) -> grpc.Channel:
        credentials = self.credentials()
        if credentials is None:
            return grpc.insecure_channel(self.target, options=self.channel_options())
        return grpc.secure_channel(self.target, credentials, options=self.channel_options())

    def aio_channel(self) -> grpc.aio.Channel:
        credentials = self.credentials()
        if credentials is None:
            return grpc.aio.insecure_channel(self.target, options=self.channel_options())
        return grpc.aio.secure_channel(self.target, credentials, options=self.channel_options())


def settings(
    target: str,
    token: str | None,
    tls: TlsConfig | bool,
    channel_options: Sequence[tuple[str, Any]],
) -> ChannelSettings:
    """Normalise the clients' keyword arguments (``tls=True``: system roots)."""
    tls_config = TlsConfig() if tls is True else (tls or None)
    return ChannelSettings(target, token, tls_config, tuple(channel_options))
