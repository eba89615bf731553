"""The token table: parsing, hashing, lookup, reload, and messages that never leak a token."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.auth import (
    AuthPolicy,
    Principal,
    TokenStore,
    TokenTableError,
    bearer_token,
    hash_token,
    parse_table,
)
from gateway.auth.__main__ import main as auth_main
from gateway.errors import PermissionDenied, Unauthenticated
from gateway.server.listen import exposure_problem, is_loopback
from tests.conftest import gateway_test_config

SECRET = "s3cret-token-that-must-not-leak"


def test_a_table_of_digests_and_plaintext_tokens_authenticates_both() -> None:
    table = f"""
        # name  token  accounts  mode
        alpha   {hash_token("alpha-token-0123456789")}   acct-1,acct-2
        viewer  viewer-token-0123456789                   *    ro
    """
    store = TokenStore(parse_table(table, source="t"))
    alpha = store.authenticate("alpha-token-0123456789")
    viewer = store.authenticate("viewer-token-0123456789")
    assert alpha == Principal("alpha", frozenset({"acct-1", "acct-2"}), read_only=False)
    assert viewer is not None
    assert viewer.all_accounts
    assert viewer.read_only
    assert store.authenticate("alpha-token-012345678") is None
    assert store.authenticate("") is None


def test_environment_form_separates_entries_with_semicolons() -> None:
    entries = parse_table(
        "a aaaaaaaaaaaaaaaaaaaa acct-1; b bbbbbbbbbbbbbbbbbbbb acct-2 ro", source="e"
    )
    assert [p.name for _, p in entries] == ["a", "b"]


@pytest.mark.parametrize(
    "line",
    [
        f"alpha {SECRET}",  # too few fields
        f"alpha {SECRET} acct-1 root",  # bad mode
        f"al/pha {SECRET} acct-1",  # bad name
        f"alpha {SECRET} bad!account",
        f"alpha {SECRET} *,acct-1",
        "alpha short acct-1",  # too short to be a real token
        "alpha sha256:abc acct-1",
        f"alpha {SECRET} acct-1\nalpha other-{SECRET} acct-2",  # duplicate name
        f"alpha {SECRET} acct-1\nbeta {SECRET} acct-2",  # duplicate token
    ],
)
def test_a_bad_table_is_refused_without_echoing_any_token(line: str) -> None:
    with pytest.raises(TokenTableError) as caught:
        parse_table(line, source="tokens.txt")
    assert SECRET not in str(caught.value)
    assert "tokens.txt entry" in str(caught.value)


def test_the_store_holds_only_digests() -> None:
    store = TokenStore(parse_table(f"alpha {SECRET} acct-1", source="t"))
    assert SECRET not in repr(store)
    assert SECRET not in repr(store.principals)
    assert all(SECRET.encode() not in digest for digest, _ in store._entries)


def test_the_file_is_reloaded_when_it_changes_and_a_bad_edit_keeps_the_old(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"alpha {hash_token('first-token-0123456789')} acct-1\n")
    store = TokenStore.load(path)
    assert store.authenticate("first-token-0123456789") is not None
    assert store.reload_if_changed() is None  # unchanged
    path.write_text(f"alpha {hash_token('second-token-0123456789')} acct-1\n")
    os.utime(path, ns=(1, 1))  # a different stamp even within one clock tick
    assert store.reload_if_changed() is None
    assert store.authenticate("first-token-0123456789") is None
    assert store.authenticate("second-token-0123456789") is not None
    path.write_text(f"alpha {SECRET}\n")  # broken
    problem = store.reload_if_changed()
    assert problem is not None
    assert SECRET not in problem
    assert store.authenticate("second-token-0123456789") is not None


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ((("authorization", "Token abc"),), "MALFORMED_AUTHORIZATION"),
        ((("authorization", "Bearer "),), "MALFORMED_AUTHORIZATION"),
        ((("authorization", "Bearer a"), ("authorization", "Bearer b")), "MALFORMED_AUTHORIZATION"),
    ],
)
def test_malformed_authorization_headers(
    metadata: tuple[tuple[str, str], ...], reason: str
) -> None:
    with pytest.raises(Unauthenticated) as caught:
        bearer_token(metadata)
    assert caught.value.reason == reason


def test_bearer_scheme_is_case_insensitive() -> None:
    assert bearer_token((("authorization", "bearer tok"),)) == "tok"
    assert bearer_token(()) is None


def test_unlisted_methods_of_the_service_are_refused_under_authentication() -> None:
    policy = AuthPolicy(TokenStore(parse_table(f"ops {SECRET} *", source="t")))
    principal = policy.authenticate((("authorization", f"Bearer {SECRET}"),))
    with pytest.raises(PermissionDenied) as caught:
        policy.authorize(principal, "/execution.v1.ExecutionService/DropAllOrders")
    assert caught.value.reason == "METHOD_NOT_GRANTED"
    assert policy.needs_token("/execution.v1.ExecutionService/PlaceOrder")
    assert not policy.needs_token("/grpc.health.v1.Health/Check")
    assert not policy.needs_token("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")


@pytest.mark.parametrize(
    ("listen", "loopback"),
    [
        ("127.0.0.1:1", True),
        ("127.8.9.10:1", True),
        ("localhost:1", True),
        ("[::1]:1", True),
        ("0.0.0.0:1", False),
        ("[::]:1", False),
        ("10.1.2.3:1", False),
        ("gateway.internal:1", False),
    ],
)
def test_loopback_addresses(listen: str, loopback: bool) -> None:
    assert is_loopback(listen) is loopback


def test_no_auth_on_a_public_address_needs_insecure(tmp_path: Path) -> None:
    import dataclasses

    config = dataclasses.replace(gateway_test_config(tmp_path), listen="0.0.0.0:50051")
    problem = exposure_problem(config)
    assert problem is not None
    assert "--insecure" in problem
    assert exposure_problem(dataclasses.replace(config, insecure=True)) is None
    tokens = TokenStore(parse_table(f"ops {SECRET} *", source="t"))
    assert exposure_problem(dataclasses.replace(config, tokens=tokens)) is None


def test_the_token_maker_prints_a_token_and_a_digest_only_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert auth_main(["new", "alpha", "acct-1,acct-2", "--read-only"]) == 0
    token, line = capsys.readouterr().out.splitlines()
    assert token not in line
    ((_, principal),) = parse_table(line, source="made")
    assert principal.read_only
    assert principal.accounts == {"acct-1", "acct-2"}
    assert TokenStore(parse_table(line, source="made")).authenticate(token) == principal


def test_the_admin_mode_grants_the_control_service_and_old_modes_do_not(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert auth_main(["new", "ops", "*", "--admin"]) == 0
    _, line = capsys.readouterr().out.splitlines()
    ((_, admin),) = parse_table(line, source="made")
    assert admin.admin
    assert not admin.read_only
    table = f"alpha {hash_token('alpha-token-0123456789')} acct-1\nviewer {SECRET} * ro"
    assert not any(p.admin for _, p in parse_table(table, source="old"))
