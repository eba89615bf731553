"""deploy/shards/: the proxy samples route each account to the shard the shard map names.

Each sample (nginx, Envoy, Istio) is read as its proxy would read it, as far
as routing goes: every account the sample shard map lists, an unlisted
account and a call with no account must reach the address the map gives
(the default shard for the last two). The nginx sample also runs, for real,
in tests/e2e/test_shards.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from gateway_client.shards import ShardMap as ClientShardMap

from gateway.shards import ACCOUNT_METADATA, ShardMap
from tests.ops_support import REPO_ROOT

pytestmark = pytest.mark.e2e

SHARDS = REPO_ROOT / "deploy" / "shards"
UNLISTED = "acct-unlisted"


def sample_map() -> ShardMap:
    return ShardMap.load(SHARDS / "shards.toml")


def expected_routes() -> dict[str | None, str]:
    """Account (None: no metadata) -> the address the shard map sends it to."""
    shard_map = sample_map()
    routes: dict[str | None, str] = {}
    for account in [*(a for s in shard_map.shards.values() for a in s.accounts), UNLISTED, None]:
        owner = shard_map.owner(account or UNLISTED)
        assert owner is not None, "the sample map has a default shard"
        routes[account] = owner.address
    return routes


def test_the_sample_map_loads_in_the_gateway_and_the_sdk_alike() -> None:
    gateway_map = sample_map()
    client_map = ClientShardMap.load(SHARDS / "shards.toml")
    assert len(gateway_map.shards) >= 2
    assert gateway_map.default_shard == client_map.default_shard
    for name, shard in gateway_map.shards.items():
        assert client_map.shards[name].address == shard.address
        assert client_map.shards[name].accounts == shard.accounts


# ---------------------------------------------------------------------- nginx


def nginx_route(text: str, account: str | None) -> str:
    block = re.search(r"map \$http_x_gateway_account \$(\w+) \{(.*?)\}", text, re.S)
    assert block, "no map on $http_x_gateway_account"
    variable, body = str(block.group(1)), str(block.group(2))
    entries: dict[str, str] = dict(re.findall(r"^\s*(\S+)\s+(\S+);", body, re.M))
    upstream = entries["default"]
    if account is not None:
        # nginx compares map strings ignoring case.
        by_key = {k.lower(): v for k, v in entries.items()}
        upstream = by_key.get(account.lower(), upstream)
    assert re.search(rf"grpc_pass grpc://\${variable};", text)
    servers = re.search(rf"upstream {re.escape(upstream)} \{{(.*?)\}}", text, re.S)
    assert servers, f"no upstream {upstream}"
    found = re.findall(r"^\s*server (\S+);", servers.group(1), re.M)
    assert len(found) == 1
    return str(found[0])


def test_nginx_routes_each_account_to_its_shard() -> None:
    text = (SHARDS / "nginx.conf").read_text()
    for account, address in expected_routes().items():
        assert nginx_route(text, account) == address, account
    reads = re.findall(r"grpc_read_timeout (\d+)s;", text)
    assert reads
    assert all(int(r) > 5 for r in reads)  # above the heartbeat interval


# ---------------------------------------------------------------------- Envoy


def header_matches(matcher: dict[str, Any], value: str | None) -> bool:
    if value is None:
        return False
    string_match = matcher["string_match"]
    if "exact" in string_match:
        return bool(string_match["exact"] == value)
    return re.fullmatch(string_match["safe_regex"]["regex"], value) is not None


def envoy_route(config: dict[str, Any], account: str | None) -> str:
    manager = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    routes = manager["typed_config"]["route_config"]["virtual_hosts"][0]["routes"]
    for route in routes:
        match = route["match"]
        headers = match.get("headers", [])
        assert all(h["name"] == ACCOUNT_METADATA for h in headers)
        if "/execution.v1.ExecutionService/PlaceOrder".startswith(match["prefix"]) and all(
            header_matches(h, account) for h in headers
        ):
            cluster_name = route["route"]["cluster"]
            break
    else:
        raise AssertionError(f"no route for {account}")
    cluster = next(c for c in config["static_resources"]["clusters"] if c["name"] == cluster_name)
    (endpoint,) = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
    socket = endpoint["endpoint"]["address"]["socket_address"]
    return f"{socket['address']}:{socket['port_value']}"


def test_envoy_routes_each_account_to_its_shard_and_never_times_out_streams() -> None:
    config = yaml.safe_load((SHARDS / "envoy.yaml").read_text())
    for account, address in expected_routes().items():
        assert envoy_route(config, account) == address, account
    manager = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    routes = manager["typed_config"]["route_config"]["virtual_hosts"][0]["routes"]
    assert all(r["route"]["timeout"] == "0s" for r in routes)
    for cluster in config["static_resources"]["clusters"]:
        check = cluster["health_checks"][0]["grpc_health_check"]
        assert check["service_name"] == "execution.v1.ExecutionService"


# ---------------------------------------------------------------------- Istio


def istio_header_matches(match: dict[str, Any], account: str | None) -> bool:
    condition = match["headers"][ACCOUNT_METADATA]
    if account is None:
        return False
    if "exact" in condition:
        return bool(condition["exact"] == account)
    return re.fullmatch(condition["regex"], account) is not None


def istio_route(service: dict[str, Any], account: str | None) -> str:
    for route in service["spec"]["http"]:
        matches = route.get("match")
        if matches is None or any(istio_header_matches(m, account) for m in matches):
            (target,) = route["route"]
            destination = target["destination"]
            return f"{destination['host']}:{destination['port']['number']}"
    raise AssertionError(f"no route for {account}")


def test_istio_routes_each_account_to_its_shard_and_never_times_out_streams() -> None:
    service = yaml.safe_load((SHARDS / "istio.yaml").read_text())
    assert service["kind"] == "VirtualService"
    assert service["apiVersion"].startswith("networking.istio.io/")
    for account, address in expected_routes().items():
        assert istio_route(service, account) == address, account
    assert all(route["timeout"] == "0s" for route in service["spec"]["http"])
    assert "match" not in service["spec"]["http"][-1]  # the default shard catches the rest


def test_the_samples_are_documented() -> None:
    operations = (REPO_ROOT / "docs" / "operations.md").read_text()
    for sample in sorted(Path(SHARDS).iterdir()):
        assert f"deploy/shards/{sample.name}" in operations, sample.name
