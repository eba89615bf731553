"""Where and how the server listens: the exposure rule, plaintext or TLS ports.

Owns the refusal to serve a non-loopback address with no authentication
(unless the operator says ``--insecure``): an order gateway open to a network
with no token check is one typo away from letting anyone trade.
"""

from __future__ import annotations

import ipaddress

import grpc

from gateway.config import GatewayConfig
from gateway.security import ReloadingCredentials


def is_loopback(listen: str) -> bool:
    """Whether HOST of ``HOST:PORT`` is only reachable from this machine."""
    host = listen.rpartition(":")[0].strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def exposure_problem(config: GatewayConfig) -> str | None:
    """Return why ``config`` must not be served as is (None: fine)."""
    if config.tokens is not None or config.insecure or is_loopback(config.listen):
        return None
    return (
        f"refusing to serve {config.listen} with no authentication: configure tokens "
        "(--auth-tokens-file or GATEWAY_AUTH_TOKENS), listen on a loopback address, "
        "or pass --insecure if something in front of the gateway authenticates callers"
    )


def add_port(
    server: grpc.aio.Server, config: GatewayConfig, tls: ReloadingCredentials | None
) -> int:
    """Bind the server's port; return it (0 if it could not be bound)."""
    if tls is None:
        return server.add_insecure_port(config.listen)
    return server.add_secure_port(config.listen, tls.server_credentials())
