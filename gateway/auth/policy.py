"""Who may call what: bearer-token authentication and per-account authorization.

Owns the table of which account(s) each ExecutionService request names and
whether the call writes. The server's interceptor asks ``AuthPolicy`` before
a handler runs; a method missing from the table is refused (fail closed), so
a new RPC is unreachable under authentication until it is listed here.

Health is always open (probes carry no token); reflection is open unless
``reflection_requires_auth``. With no token store the policy lets everyone
in: that is the loopback default, and ``app`` refuses it on other addresses
unless the operator says ``--insecure``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway.auth.tokens import Principal, TokenStore
from gateway.errors import PermissionDenied, Unauthenticated

SERVICE = pb.DESCRIPTOR.services_by_name["ExecutionService"].full_name
HEALTH_PREFIX = "/grpc.health.v1.Health/"
REFLECTION_PREFIXES = ("/grpc.reflection.v1alpha.", "/grpc.reflection.v1.")


@dataclass(frozen=True, slots=True)
class _Rule:
    write: bool
    accounts: Callable[[Any], Sequence[str]]


def _one(request: Any) -> Sequence[str]:
    return [request.account]


# Every ExecutionService RPC, the accounts its request names, and whether it writes.
RULES: dict[str, _Rule] = {
    f"/{SERVICE}/PlaceOrder": _Rule(write=True, accounts=_one),
    f"/{SERVICE}/CancelOrder": _Rule(write=True, accounts=_one),
    f"/{SERVICE}/GetOrderStatus": _Rule(write=False, accounts=_one),
    f"/{SERVICE}/ListOrders": _Rule(write=False, accounts=_one),
    f"/{SERVICE}/SubscribeUpdates": _Rule(write=False, accounts=lambda r: list(r.accounts)),
}


def bearer_token(metadata: Sequence[tuple[str, str | bytes]] | None) -> str | None:
    """Return the token of the call's ``authorization: Bearer`` header (None if absent)."""
    values = [v for k, v in metadata or () if k == "authorization"]
    if not values:
        return None
    if len(values) > 1:
        raise Unauthenticated(
            "more than one authorization header", reason="MALFORMED_AUTHORIZATION"
        )
    value = values[0]
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    scheme, _, token = text.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated(
            "authorization header must be 'Bearer <token>'", reason="MALFORMED_AUTHORIZATION"
        )
    return token


class AuthPolicy:
    """The gateway's authentication and authorization decisions."""

    def __init__(self, tokens: TokenStore | None, *, reflection_requires_auth: bool = False):
        self.tokens = tokens
        self.reflection_requires_auth = reflection_requires_auth

    @property
    def enabled(self) -> bool:
        return self.tokens is not None

    def needs_token(self, method: str) -> bool:
        """Whether ``method`` (``/package.Service/Method``) requires a valid token."""
        if not self.enabled or method.startswith(HEALTH_PREFIX):
            return False
        if method.startswith(REFLECTION_PREFIXES):
            return self.reflection_requires_auth
        return True

    def authenticate(self, metadata: Sequence[tuple[str, str | bytes]] | None) -> Principal:
        """Return the caller's principal; raise Unauthenticated."""
        assert self.tokens is not None
        token = bearer_token(metadata)
        if token is None:
            raise Unauthenticated(
                "missing bearer token: send metadata 'authorization: Bearer <token>'",
                reason="MISSING_TOKEN",
            )
        principal = self.tokens.authenticate(token)
        if principal is None:
            raise Unauthenticated("unknown or revoked token", reason="INVALID_TOKEN")
        return principal

    def authorize(self, principal: Principal, method: str, request: Any) -> None:
        """Raise PermissionDenied unless ``principal`` may make this call.

        A SubscribeUpdates request with no ``accounts`` means "every account
        the caller may see": it is narrowed here to the principal's grants.
        """
        if not method.startswith(f"/{SERVICE}/"):
            return  # reflection: authentication was all it needed
        rule = RULES.get(method)
        if rule is None:
            raise PermissionDenied(
                f"{method} is not open to token holders", reason="METHOD_NOT_GRANTED"
            )
        if rule.write and principal.read_only:
            raise PermissionDenied(
                f"principal {principal.name!r} is read-only",
                reason="READ_ONLY_PRINCIPAL",
                metadata={"principal": principal.name},
            )
        accounts = rule.accounts(request)
        for account in accounts:
            # An empty name is malformed, not forbidden: validation answers it.
            if account and not principal.may_read(account):
                raise PermissionDenied(
                    f"principal {principal.name!r} is not granted account {account!r}",
                    reason="ACCOUNT_NOT_GRANTED",
                    metadata={"principal": principal.name, "account": account},
                )
        narrow = isinstance(request, pb.SubscribeUpdatesRequest) and not accounts
        if narrow and not principal.all_accounts:
            request.accounts.extend(sorted(principal.accounts))
