"""deploy/: manifests valid for Kubernetes, consistent with the gateway's real flags and drain.

Kubernetes manifests are checked with kubernetes-validate (schemas ship in
the package: no network), strictly, for an older and the newest supported
version. The container's flags are parsed by the gateway's own parser, so a
renamed flag breaks this test, not a rollout.
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.app import Gateway
from gateway.brokers.simulated import SimConfig, SimulatedBroker
from gateway.cli import FLAGS, build_parser, config_from_args
from gateway.journal import MemoryJournal
from tests.conftest import gateway_test_config
from tests.ops_support import REPO_ROOT, token_table

pytestmark = pytest.mark.e2e

DEPLOY = REPO_ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def resource(kind: str) -> dict[str, Any]:
    found = [d for p in MANIFESTS for d in documents(p) if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def validator() -> str:
    found = shutil.which("kubernetes-validate") or str(
        Path(sys.executable).parent / "kubernetes-validate"
    )
    if not Path(found).exists():
        pytest.fail("kubernetes-validate missing: `make setup` installs the dev extras")
    return found


@pytest.mark.parametrize("version", ["1.28.0", "1.37.0"])
def test_manifests_pass_strict_schema_validation(version: str) -> None:
    assert MANIFESTS
    result = subprocess.run(
        [validator(), "--strict", "-k", version, *map(str, MANIFESTS)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in MANIFESTS)


def container() -> dict[str, Any]:
    containers = resource("Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def test_container_args_are_real_flags_of_the_gateway(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(token_table())
    args = [
        f"--auth-tokens-file={tokens}" if a.startswith("--auth-tokens-file=") else a
        for a in container()["args"]
    ]
    config = config_from_args(build_parser(environ={}).parse_args(args))
    assert config.listen == "0.0.0.0:50051"
    assert config.tokens is not None  # a public address needs authentication
    assert config.metrics_listen is not None


def flag_value(name: str) -> float:
    for arg in container()["args"]:
        if arg.startswith(f"--{name}="):
            return float(arg.split("=", 1)[1])
    raise AssertionError(f"--{name} not set in the Deployment")


def test_termination_grace_covers_prestop_drain_delay_and_shutdown_grace() -> None:
    pod = resource("Deployment")["spec"]["template"]["spec"]
    command = container()["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    budget = float(command[1]) + flag_value("drain-delay") + flag_value("shutdown-grace")
    assert pod["terminationGracePeriodSeconds"] >= budget + 3, (pod, budget)


def test_probes_use_grpc_health_and_readiness_follows_the_service() -> None:
    spec = container()
    port = next(p["containerPort"] for p in spec["ports"] if p["name"] == "grpc")
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert spec[probe]["grpc"]["port"] == port
    assert spec["readinessProbe"]["grpc"]["service"] == "execution.v1.ExecutionService"
    assert "service" not in spec["livenessProbe"]["grpc"]  # a broker outage is no reason to restart
    assert spec["resources"]["requests"]
    assert spec["resources"]["limits"]
    assert spec["securityContext"]["allowPrivilegeEscalation"] is False


def test_service_speaks_grpc_and_the_budget_selects_the_pods() -> None:
    labels = resource("Deployment")["spec"]["template"]["metadata"]["labels"]
    service = resource("Service")
    grpc_port = next(p for p in service["spec"]["ports"] if p["name"] == "grpc")
    assert grpc_port["appProtocol"] == "grpc"
    assert service["spec"]["selector"].items() <= labels.items()
    budget = resource("PodDisruptionBudget")
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_envoy_routes_never_time_out_streams_and_health_check_the_service() -> None:
    config = yaml.safe_load((DEPLOY / "envoy" / "envoy.yaml").read_text())
    manager = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    routes = manager["typed_config"]["route_config"]["virtual_hosts"][0]["routes"]
    assert routes
    assert all(r["route"]["timeout"] == "0s" for r in routes)
    cluster = config["static_resources"]["clusters"][0]
    check = cluster["health_checks"][0]["grpc_health_check"]
    assert check["service_name"] == "execution.v1.ExecutionService"
    options = cluster["typed_extension_protocol_options"]
    http2 = next(iter(options.values()))["explicit_http_config"]["http2_protocol_options"]
    interval = int(http2["connection_keepalive"]["interval"].rstrip("s"))
    assert interval >= 10  # not below the gateway's --min-client-ping-interval


def test_dockerfile_is_slim_non_root_with_a_working_healthcheck() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\s*$", text, re.M)
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user
    assert not user[-1].startswith(("0", "root"))
    healthcheck = re.search(r'^HEALTHCHECK .*CMD \["python", "-m", "([\w.]+)"', text, re.M | re.S)
    assert healthcheck
    assert importlib.util.find_spec(healthcheck.group(1))
    variables = {f.env for f in FLAGS if f.env is not None}
    for name in re.findall(r"(GATEWAY_[A-Z_]+)=", text):
        assert name in variables, name


async def test_the_healthcheck_command_says_serving_or_fails(tmp_path: Path) -> None:
    gw = Gateway(
        gateway_test_config(tmp_path),
        broker=SimulatedBroker(SimConfig(seed=7, tick_interval=0.01)),
        journal=MemoryJournal(),
    )
    await gw.start()
    try:
        ok = await asyncio.to_thread(run_healthcheck, gw.address)
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.strip() == "SERVING"
        service = await asyncio.to_thread(
            run_healthcheck, gw.address, "--service", "execution.v1.ExecutionService"
        )
        assert service.returncode == 0
        gw.set_broker_health(False)
        down = await asyncio.to_thread(
            run_healthcheck, gw.address, "--service", "execution.v1.ExecutionService"
        )
        assert down.returncode == 1
        assert down.stdout.strip() == "NOT_SERVING"
    finally:
        await gw.stop(grace=0.5)
    gone = await asyncio.to_thread(run_healthcheck, gw.address, "--timeout", "1")
    assert gone.returncode == 1


def run_healthcheck(address: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.server.healthcheck", "--address", address, *extra],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
