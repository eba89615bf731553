"""Principals without a server: certificate credentials, limits, revalidation, audit lines."""

from __future__ import annotations

import logging

import pytest

from gateway.auth import AuthPolicy, Principal, TokenStore, TokenTableError, hash_token
from gateway.auth import parse_table as parse
from gateway.auth.audit import audit
from gateway.auth.limits import OrderRateLimiter, StreamRegistry
from gateway.errors import PermissionDenied, ResourceExhausted, Unauthenticated
from gateway.server.interceptor import _WarningGate

ALPHA_TOKEN = "alpha-token-0123456789abcdef"
URI = "spiffe://cluster.local/ns/trading/sa/alpha"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_certificate_credentials_sit_beside_tokens_in_one_table() -> None:
    entries = parse(
        f"""
        alpha  {hash_token(ALPHA_TOKEN)}   acct-1  rw
        alpha  x509:uri={URI}              acct-1  rw   # same principal, a second credential
        viewer x509:subject=O=Acme%20Corp,CN=risk  *   ro
        """,
        source="t",
    )
    store = TokenStore(entries)
    alpha = store.authenticate(ALPHA_TOKEN)
    assert alpha is not None
    assert store.lookup_certificate((("dns", "x"), ("uri", URI))) == [alpha]
    (viewer,) = store.lookup_certificate((("subject", "O=Acme Corp,CN=risk"),))
    assert viewer.read_only
    assert store.certificate_kinds == {"uri", "subject"}
    assert sorted(p.name for p in store.principals) == ["alpha", "viewer"]


@pytest.mark.parametrize(
    "table",
    [
        "alpha x509:uri=spiffe://a acct-1\nalpha x509:dns=a acct-2",  # grants disagree
        "alpha x509:serial=12 acct-1",  # not a kind we read
        "alpha x509:uri= acct-1",  # empty value
        "alpha x509:uri=spiffe://a acct-1\nbeta x509:uri=spiffe://a acct-2",  # shared identity
    ],
)
def test_bad_certificate_entries_are_refused(table: str) -> None:
    with pytest.raises(TokenTableError, match="t entry"):
        parse(table, source="t")


def test_an_ambiguous_or_unknown_certificate_is_unauthenticated() -> None:
    policy = AuthPolicy(
        TokenStore(parse("a x509:uri=spiffe://a acct-1\nb x509:cn=bee acct-2", source="t"))
    )
    both = {"peer_uri": [b"spiffe://a"], "x509_common_name": [b"bee"]}
    with pytest.raises(Unauthenticated) as caught:
        policy.identify(None, lambda: both)
    assert caught.value.reason == "AMBIGUOUS_CERTIFICATE"
    with pytest.raises(Unauthenticated) as caught:
        policy.identify(None, lambda: {"x509_common_name": [b"nobody"]})
    assert caught.value.reason == "UNKNOWN_CERTIFICATE"
    principal, credential = policy.identify(None, lambda: {"peer_uri": [b"spiffe://a"]})
    assert principal.name == "a"
    assert policy.resolve(credential) == principal


def test_the_rate_limiter_allows_a_burst_then_the_rate_per_principal() -> None:
    clock = Clock()
    limiter = OrderRateLimiter(rate=2.0, burst=3, clock=clock)
    for _ in range(3):
        limiter.admit("alpha")
    with pytest.raises(ResourceExhausted) as caught:
        limiter.admit("alpha")
    assert caught.value.reason == "PRINCIPAL_RATE_LIMITED"
    assert caught.value.metadata["retry_after_ms"] == "500"
    limiter.admit("beta")  # its own bucket
    clock.now += 0.5
    limiter.admit("alpha")  # one token back after 1/rate seconds
    with pytest.raises(ResourceExhausted):
        limiter.admit("alpha")
    clock.now += 3600
    for _ in range(3):  # refilled up to the burst, no further
        limiter.admit("alpha")
    with pytest.raises(ResourceExhausted):
        limiter.admit("alpha")


def test_revalidation_ends_revoked_and_narrowed_streams_only() -> None:
    table = f"alpha {hash_token(ALPHA_TOKEN)} acct-1,acct-2\nops ops-token-0123456789abcd *"
    store = TokenStore(parse(table, source="t"))
    policy = AuthPolicy(store)
    registry = StreamRegistry(max_per_principal=3)
    alpha, alpha_credential = policy.identify(ALPHA_TOKEN, None)
    ops, ops_credential = policy.identify("ops-token-0123456789abcd", None)
    keeps = registry.open(alpha, alpha_credential, frozenset({"acct-1"}), "m")
    loses = registry.open(alpha, alpha_credential, frozenset({"acct-1", "acct-2"}), "m")
    everything = registry.open(ops, ops_credential, None, "m")
    ended: list[object] = []
    loses.on_end(ended.append)
    store._install(parse(f"alpha {hash_token(ALPHA_TOKEN)} acct-1", source="t"))
    assert registry.revalidate(policy) == [loses, everything]
    assert isinstance(loses.error, PermissionDenied)
    assert loses.error.metadata == {"principal": "alpha", "account": "acct-2"}
    assert ended == [loses.error]
    assert isinstance(everything.error, Unauthenticated)
    assert everything.error.reason == "CREDENTIAL_REVOKED"
    assert keeps.error is None
    late: list[object] = []
    loses.on_end(late.append)  # registered after the end: called at once
    assert late == [loses.error]
    for stream in (keeps, loses, everything, keeps):  # closing twice is harmless
        registry.close(stream)
    assert len(registry) == 0


def test_the_stream_cap_counts_per_principal() -> None:
    registry = StreamRegistry(max_per_principal=1)
    alpha = Principal("alpha", frozenset({"a"}))
    beta = Principal("beta", frozenset({"b"}))
    first = registry.open(alpha, b"x", None, "m")
    registry.open(beta, b"y", None, "m")
    with pytest.raises(ResourceExhausted) as caught:
        registry.open(alpha, b"x", None, "m")
    assert caught.value.metadata == {"principal": "alpha", "limit": "1"}
    registry.close(first)
    registry.open(alpha, b"x", None, "m")


def test_audit_lines_quote_and_cut_what_callers_control(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gateway.audit")
    audit("authorization", outcome="PermissionDenied", principal="alpha", account="a\nb" * 100)
    (record,) = caplog.records
    message = record.getMessage()
    assert "\n" not in message
    assert message.startswith("audit event=authorization outcome=PermissionDenied principal=alpha")
    assert len(message) < 400  # the value was cut to 128 characters before escaping
    assert record.__dict__["audit_principal"] == "alpha"


def test_the_warning_gate_allows_one_line_per_client_per_interval() -> None:
    clock = Clock()
    gate = _WarningGate(10.0, clock)
    assert gate.allow("a") == 0
    assert gate.allow("a") is None
    assert gate.allow("a") is None
    assert gate.allow("b") == 0
    clock.now += 10
    assert gate.allow("a") == 2  # and how many it held back


def test_the_certificate_line_maker_percent_encodes_what_would_end_a_field(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from gateway.auth.__main__ import main as auth_main

    assert auth_main(["cert", "viewer", "subject=O=Acme Corp,CN=risk #1", "*", "--read-only"]) == 0
    line = capsys.readouterr().out.strip()
    assert line == "viewer x509:subject=O=Acme%20Corp,CN=risk%20%231 * ro"
    store = TokenStore(parse(line, source="made"))
    assert store.lookup_certificate((("subject", "O=Acme Corp,CN=risk #1"),))
