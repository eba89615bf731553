"""The shard map file, the shard guard's decisions, and the --shard/--shard-map flags."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway.cli import build_parser, config_from_args
from gateway.errors import FailedPrecondition, InvalidArgument
from gateway.server.interceptor import _account_fields
from gateway.shards import UNKNOWN_ACCOUNT, WRONG_SHARD, ShardGuard, ShardMap, ShardMapError

MAP = """
default_shard = "b"

[shards.a]
address = "gateway-a.trading.svc:50051"
accounts = ["acct-1", "acct-2"]

[shards.b]
address = "gateway-b.trading.svc:50051"
accounts = ["acct-3"]
"""


def two_shards(*, default: str | None = "b") -> ShardMap:
    data: dict[str, Any] = {
        "shards": {
            "a": {"address": "10.0.0.1:50051", "accounts": ["acct-1", "acct-2"]},
            "b": {"address": "10.0.0.2:50051", "accounts": ["acct-3"]},
        }
    }
    if default is not None:
        data["default_shard"] = default
    return ShardMap.from_mapping(data)


def test_a_map_file_loads_with_owners_and_the_default(tmp_path: Path) -> None:
    path = tmp_path / "shards.toml"
    path.write_text(MAP)
    shard_map = ShardMap.load(path)
    assert set(shard_map.shards) == {"a", "b"}
    assert shard_map.shards["a"].address == "gateway-a.trading.svc:50051"
    assert shard_map.shards["a"].accounts == {"acct-1", "acct-2"}
    owner = shard_map.owner("acct-3")
    assert owner is not None
    assert owner.name == "b"
    unlisted = shard_map.owner("acct-99")
    assert unlisted is not None
    assert unlisted.name == "b"
    assert two_shards(default=None).owner("acct-99") is None


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({}, "at least one"),
        ({"shards": {}}, "at least one"),
        (
            {"shards": {"a": {"address": "h:1"}}, "defualt_shard": "a"},
            "unknown key 'defualt_shard'",
        ),
        ({"shards": {"a": {"address": "h:1", "acounts": ["x"]}}}, "unknown key 'acounts'"),
        ({"shards": {"A_1": {"address": "h:1"}}}, "shard name 'A_1'"),
        ({"shards": {"a": "h:1"}}, "must be a table"),
        ({"shards": {"a": {"accounts": []}}}, "address must be HOST:PORT"),
        ({"shards": {"a": {"address": "no-port"}}}, "address must be HOST:PORT"),
        ({"shards": {"a": {"address": "h:99999"}}}, "address must be HOST:PORT"),
        ({"shards": {"a": {"address": "http://h:1"}}}, "address must be HOST:PORT"),
        ({"shards": {"a": {"address": "h:1", "accounts": "acct-1"}}}, "must be a list"),
        ({"shards": {"a": {"address": "h:1", "accounts": ["bad name"]}}}, "not an account name"),
        ({"shards": {"a": {"address": "h:1", "accounts": [7]}}}, "not an account name"),
        (
            {
                "shards": {
                    "a": {"address": "h:1", "accounts": ["acct-1"]},
                    "b": {"address": "h:2", "accounts": ["acct-1"]},
                }
            },
            "listed by shards 'a' and 'b'",
        ),
        ({"shards": {"a": {"address": "h:1"}}, "default_shard": "c"}, "default_shard 'c'"),
    ],
)
def test_a_bad_map_is_refused_saying_why(data: dict[str, Any], problem: str) -> None:
    with pytest.raises(ShardMapError, match=problem):
        ShardMap.from_mapping(data)


def test_an_unreadable_map_file_names_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[shards.a\naddress = ")
    with pytest.raises(ShardMapError, match=r"broken\.toml"):
        ShardMap.load(broken)
    with pytest.raises(ShardMapError, match=r"missing\.toml"):
        ShardMap.load(tmp_path / "missing.toml")
    duplicate = tmp_path / "duplicate.toml"
    duplicate.write_text(
        '[shards.a]\naddress = "h:1"\naccounts = ["x"]\n[shards.b]\n'
        'address = "h:2"\naccounts = ["x"]\n'
    )
    with pytest.raises(ShardMapError, match=r"duplicate\.toml: account 'x'"):
        ShardMap.load(duplicate)


def test_the_guard_serves_its_own_accounts_and_names_the_owner_of_others() -> None:
    guard = ShardGuard(two_shards(), "a")
    guard.check("acct-1")
    assert guard.owns("acct-2")
    assert not guard.owns("acct-3")
    with pytest.raises(FailedPrecondition) as refused:
        guard.check("acct-3")
    assert refused.value.reason == WRONG_SHARD
    assert refused.value.metadata == {
        "account": "acct-3",
        "shard": "b",
        "address": "10.0.0.2:50051",
        "this_shard": "a",
    }
    # Unlisted: the default shard (b) owns it.
    with pytest.raises(FailedPrecondition) as unlisted:
        guard.check("acct-99")
    assert unlisted.value.reason == WRONG_SHARD
    assert unlisted.value.metadata["shard"] == "b"
    with pytest.raises(FailedPrecondition, match="acct-3"):
        guard.check_all(["acct-1", "acct-3"])


def test_the_default_shard_serves_unlisted_accounts_but_not_other_shards() -> None:
    guard = ShardGuard(two_shards(), "b")
    assert guard.catch_all
    guard.check("acct-3")
    guard.check("acct-99")
    assert guard.owns("acct-99")
    with pytest.raises(FailedPrecondition) as refused:
        guard.check("acct-1")
    assert refused.value.metadata["shard"] == "a"


def test_without_a_default_an_unlisted_account_is_nobodys() -> None:
    guard = ShardGuard(two_shards(default=None), "a")
    assert not guard.owns("acct-99")
    with pytest.raises(FailedPrecondition) as refused:
        guard.check("acct-99")
    assert refused.value.reason == UNKNOWN_ACCOUNT
    assert refused.value.metadata == {"account": "acct-99", "this_shard": "a"}
    # Malformed is not unknown: the same INVALID_ARGUMENT the service gives it.
    with pytest.raises(InvalidArgument) as malformed:
        guard.check("not an account", "scope_account")
    assert [v.field for v in malformed.value.violations] == ["scope_account"]


def test_a_guard_for_a_shard_the_map_lacks_is_refused() -> None:
    with pytest.raises(ShardMapError, match="'c' is not in the shard map"):
        ShardGuard(two_shards(), "c")


def parse(*argv: str) -> Any:
    return config_from_args(build_parser(environ={}).parse_args(list(argv)))


def test_flags_load_the_map_for_this_shard(tmp_path: Path) -> None:
    path = tmp_path / "shards.toml"
    path.write_text(MAP)
    config = parse("--shard", "a", "--shard-map", str(path))
    assert config.shard == "a"
    assert config.shard_map is not None
    assert config.shard_map.default_shard == "b"
    assert parse().shard_map is None  # no map: every account served, as before
    assert parse("--shard", "a").shard == "a"  # a name alone (e.g. for a lease) is fine
    with pytest.raises(ValueError, match="--shard-map: needs --shard"):
        parse("--shard-map", str(path))
    with pytest.raises(ValueError, match="'c' is not a shard of"):
        parse("--shard", "c", "--shard-map", str(path))
    with pytest.raises(ValueError, match=r"missing\.toml"):
        parse("--shard", "a", "--shard-map", str(tmp_path / "missing.toml"))


def test_a_bad_shard_name_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser(environ={}).parse_args(["--shard", "Shard A"])
    assert exited.value.code == 2
    assert "invalid shard name" in capsys.readouterr().err


def test_the_environment_sets_the_shard_too(tmp_path: Path) -> None:
    path = tmp_path / "shards.toml"
    path.write_text(MAP)
    args = build_parser(environ={"GATEWAY_SHARD": "b", "GATEWAY_SHARD_MAP": str(path)}).parse_args(
        []
    )
    config = config_from_args(args)
    assert config.shard == "b"
    assert config.shard_map is not None


def account_fields_of(service: str) -> dict[str, tuple[str | None, str | None]]:
    methods = pb.DESCRIPTOR.services_by_name[service].methods
    return {m.name: _account_fields(m.input_type) for m in methods}


def test_every_rpc_naming_an_account_is_checked_by_the_interceptor() -> None:
    """Read off the descriptors: a new RPC with an ``account`` field is covered as it lands."""
    found = account_fields_of("ExecutionService")
    for name in (
        "PlaceOrder",
        "CancelOrder",
        "GetOrderStatus",
        "ListOrders",
        "ReplaceOrder",
        "CancelAllOrders",
        "GetPositions",
    ):
        assert found[name] == ("account", None), name
    assert found["SubscribeUpdates"] == (None, "accounts")
    control = account_fields_of("ControlService")
    assert control["HaltTrading"] == ("scope_account", None)
    assert control["ResumeTrading"] == ("scope_account", None)


def test_the_map_accepts_exactly_the_accounts_the_service_does() -> None:
    """gateway.shards loads without protobuf (it is config), so it keeps its own copy of
    the service's account rule; this pins the two together."""
    from gateway import shards
    from gateway.service import validation

    assert shards._ACCOUNT.pattern == validation._ACCOUNT.pattern
    assert shards._ACCOUNT_RULE == validation._ACCOUNT_RULE
    assert shards._MAX_ACCOUNT_CHARS == validation._MAX_NAME_CHARS
