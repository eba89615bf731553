"""Who may call what: bearer-token authentication and per-account authorization.

Owns the table of which account(s) each ExecutionService request names and
whether the call writes. The server's interceptor asks ``AuthPolicy`` before
a handler runs; a method missing from the table is refused (fail closed), so
a new RPC is unreachable under authentication until it is listed here.

Health is always open (probes carry no token); reflection is open unless
``reflection_requires_auth``. With no token store the policy lets everyone
in: that is the loopback default, and ``app`` refuses it on other addresses
unless the operator says ``--insecure``.

A caller is identified by its bearer token when it sends one, otherwise by
its mTLS client certificate when the table maps one (``certificates``). The
credential that identified a caller is kept with its open streams, so a
reload of the table can ask again whether it still holds (``resolve``).
"""

from __future__ import annotations

import contextvars
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gateway.auth.certificates import AuthContext, CertificateIdentity, peer_identity
from gateway.auth.tokens import Principal, TokenStore
from gateway.errors import PermissionDenied, Unauthenticated

# Fixed by the public contract (docs/API.md); a test holds it to the proto's name.
SERVICE = "execution.v1.ExecutionService"
CONTROL_SERVICE = "execution.v1.ControlService"
HEALTH_PREFIX = "/grpc.health.v1.Health/"
REFLECTION_PREFIXES = ("/grpc.reflection.v1alpha.", "/grpc.reflection.v1.")


CallerCredential = bytes | CertificateIdentity
"""What identified a caller: its token's SHA-256 digest, or its certificate's attributes."""


@dataclass(frozen=True, slots=True)
class Rule:
    """What one RPC needs: whether it writes, and what naming no account means."""

    write: bool
    none_means_granted: bool = False
    """An empty account list asks for every account the caller may see."""
    admin: bool = False
    """Only principals with the admin grant; naming no account (a gateway-wide
    halt) needs every account ("*") too when the call writes."""


# Every ExecutionService RPC and whether it writes. Which accounts a request
# names is the service layer's to read (``validation.accounts_named``): this
# module never sees a protobuf message.
RULES: dict[str, Rule] = {
    f"/{SERVICE}/PlaceOrder": Rule(write=True),
    f"/{SERVICE}/CancelOrder": Rule(write=True),
    f"/{SERVICE}/ReplaceOrder": Rule(write=True),
    f"/{SERVICE}/CancelAllOrders": Rule(write=True),
    f"/{SERVICE}/GetOrderStatus": Rule(write=False),
    f"/{SERVICE}/ListOrders": Rule(write=False),
    f"/{SERVICE}/SubscribeUpdates": Rule(write=False, none_means_granted=True),
    f"/{SERVICE}/GetPositions": Rule(write=False),
    f"/{CONTROL_SERVICE}/HaltTrading": Rule(write=True, admin=True),
    f"/{CONTROL_SERVICE}/ResumeTrading": Rule(write=True, admin=True),
    f"/{CONTROL_SERVICE}/GetTradingState": Rule(write=False, admin=True),
    f"/{CONTROL_SERVICE}/GetRiskLimits": Rule(write=False, admin=True),
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
    return token_of(values[0])


def token_of(value: str | bytes) -> str:
    """Return the token of one ``authorization`` header value; raise Unauthenticated."""
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
        """Return the principal of the call's bearer token; raise Unauthenticated."""
        principal, _ = self.identify(bearer_token(metadata), None)
        return principal

    def identify(
        self, token: str | None, auth_context: Callable[[], AuthContext] | None
    ) -> tuple[Principal, CallerCredential]:
        """Return the caller's principal and the credential that proved it.

        A bearer token, when sent, decides (and must be valid). Without one,
        the mTLS peer certificate does, if the table maps any certificates;
        ``auth_context`` is only called then.
        """
        tokens = self.tokens
        assert tokens is not None
        if token is not None:
            digest = hashlib.sha256(token.encode()).digest()
            principal = tokens.lookup_digest(digest)
            if principal is None:
                raise Unauthenticated("unknown or revoked token", reason="INVALID_TOKEN")
            return principal, digest
        kinds = tokens.certificate_kinds
        if kinds and auth_context is not None:
            identity = peer_identity(auth_context, kinds)
            if identity:
                found = tokens.lookup_certificate(identity)
                if len(found) == 1:
                    return found[0], identity
                if found:
                    raise Unauthenticated(
                        "the client certificate names more than one principal",
                        reason="AMBIGUOUS_CERTIFICATE",
                    )
                raise Unauthenticated(
                    "the client certificate is not mapped to a principal; "
                    "send metadata 'authorization: Bearer <token>'",
                    reason="UNKNOWN_CERTIFICATE",
                )
        raise Unauthenticated(
            "missing bearer token: send metadata 'authorization: Bearer <token>'",
            reason="MISSING_TOKEN",
        )

    def resolve(self, credential: CallerCredential) -> Principal | None:
        """Return whom ``credential`` identifies under the current table (None: nobody)."""
        assert self.tokens is not None
        if isinstance(credential, bytes):
            return self.tokens.lookup_digest(credential)
        found = self.tokens.lookup_certificate(credential)
        return found[0] if len(found) == 1 else None

    def authorize(
        self, principal: Principal, method: str, accounts: Sequence[str] = ()
    ) -> Sequence[str]:
        """Raise PermissionDenied unless ``principal`` may make this call.

        Return the accounts the call is for (see ``check``).
        """
        if not method.startswith((f"/{SERVICE}/", f"/{CONTROL_SERVICE}/")):
            return ()  # reflection: authentication was all it needed
        return self.check(principal, method, RULES.get(method), accounts)

    @staticmethod
    def _check_admin(
        principal: Principal, method: str, rule: Rule, accounts: Sequence[str]
    ) -> None:
        if not principal.admin:
            raise PermissionDenied(
                f"principal {principal.name!r} has no admin grant; {method} needs one",
                reason="ADMIN_REQUIRED",
                metadata={"principal": principal.name},
            )
        if rule.write and not any(accounts) and not principal.all_accounts:
            raise PermissionDenied(
                f"principal {principal.name!r} may not act on every account; "
                "name one of its accounts",
                reason="ACCOUNT_NOT_GRANTED",
                metadata={"principal": principal.name},
            )

    def check(
        self, principal: Principal, method: str, rule: Rule | None, accounts: Sequence[str]
    ) -> Sequence[str]:
        """Raise PermissionDenied unless ``principal`` may make a ``method`` call under ``rule``.

        ``accounts`` are those the request names. Return the accounts the call
        is for: empty means every account, and only for a principal granted
        all. Where ``rule`` says no account means "every account the caller
        may see", that is narrowed here to the principal's grants.
        """
        if rule is None:
            raise PermissionDenied(
                f"{method} is not open to token holders", reason="METHOD_NOT_GRANTED"
            )
        if rule.admin:
            self._check_admin(principal, method, rule, accounts)
        if rule.write and principal.read_only:
            raise PermissionDenied(
                f"principal {principal.name!r} is read-only",
                reason="READ_ONLY_PRINCIPAL",
                metadata={"principal": principal.name},
            )
        for account in accounts:
            # An empty name is malformed, not forbidden: validation answers it.
            if account and not principal.may_read(account):
                raise PermissionDenied(
                    f"principal {principal.name!r} is not granted account {account!r}",
                    reason="ACCOUNT_NOT_GRANTED",
                    metadata={"principal": principal.name, "account": account},
                )
        if rule.none_means_granted and not accounts and not principal.all_accounts:
            return tuple(sorted(principal.accounts))
        return accounts


current_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "gateway_control_principal", default=None
)
"""Who makes the ControlService call in progress (set by the interceptor for
those calls only, so the halts and the audit trail can name them)."""
