"""Client certificate identities: which attribute of an mTLS peer's certificate names it.

Owns the ``x509:KIND=VALUE`` credentials of the principals table and reading
a verified peer certificate's attributes from gRPC's auth context. gRPC has
already checked the chain against ``--tls-client-ca`` before a call arrives;
this only maps what the certificate says to a principal.

Kinds, and the auth-context property each is read from:

- ``uri``: a URI SAN, e.g. a SPIFFE id (``peer_uri``)
- ``dns``: a DNS SAN (``peer_dns``)
- ``email``: an e-mail SAN (``peer_email``)
- ``ip``: an IP address SAN (``peer_ip``)
- ``cn``: the subject's common name (``x509_common_name``)
- ``subject``: the whole subject in RFC 2253 form, as
  ``openssl x509 -noout -subject -nameopt RFC2253`` prints it (``x509_subject``)

The table is split on whitespace, so a value with a space, ``#`` or ``;`` in
it is written percent-encoded (``%20``, ``%23``, ``%3B``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from urllib.parse import unquote

PREFIX = "x509:"
PROPERTIES: dict[str, str] = {
    "uri": "peer_uri",
    "dns": "peer_dns",
    "email": "peer_email",
    "ip": "peer_ip",
    "cn": "x509_common_name",
    "subject": "x509_subject",
}
KINDS = ", ".join(PROPERTIES)
MAX_VALUE_CHARS = 1024

CertificateAttribute = tuple[str, str]
"""(kind, value): one attribute of a certificate, e.g. ("uri", "spiffe://...")."""

CertificateIdentity = tuple[CertificateAttribute, ...]
"""Every attribute of a peer's certificate the principals table could match."""

AuthContext = Mapping[str, Iterable[bytes]]


def is_certificate_credential(text: str) -> bool:
    return text.startswith(PREFIX)


def parse_identity(text: str) -> CertificateAttribute:
    """Parse ``x509:KIND=VALUE``; raise ValueError with a reason (it holds no secret)."""
    kind, sep, value = text[len(PREFIX) :].partition("=")
    if not sep or kind not in PROPERTIES:
        raise ValueError(f"certificate identity must be x509:KIND=VALUE, KIND one of {KINDS}")
    value = unquote(value)
    if not value or len(value) > MAX_VALUE_CHARS:
        raise ValueError(f"certificate identity value must be 1-{MAX_VALUE_CHARS} characters")
    return kind, value


def peer_identity(
    auth_context: Callable[[], AuthContext], kinds: Collection[str]
) -> CertificateIdentity:
    """Return the attributes of the peer's certificate of the given ``kinds`` (empty if none).

    Only asked when a call carries no bearer token and the table names
    certificates, so plaintext and token calls never build the auth context.
    """
    properties = auth_context()
    found: list[CertificateAttribute] = []
    for kind in kinds:
        for raw in properties.get(PROPERTIES[kind], ()):
            found.append((kind, raw.decode("utf-8", "replace")))
    return tuple(found)
