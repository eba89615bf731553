"""deploy/kubernetes-ha: the two-replica variant on PostgreSQL, checked like deploy/kubernetes.

Valid for an older and the newest supported Kubernetes, with flags and
environment the gateway's own parser accepts, and the properties the HA
design rests on: two replicas that roll one at a time, a budget that
lets one go, probes that let a standby be ready, the database's password
from a Secret and never on the command line.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.cli import build_parser, config_from_args
from tests.e2e.test_deploy_files import documents, validator
from tests.ops_support import REPO_ROOT, token_table

pytestmark = pytest.mark.e2e

HA = REPO_ROOT / "deploy" / "kubernetes-ha"
MANIFESTS = sorted(p for p in HA.glob("*.yaml") if p.name != "kustomization.yaml")


def resource(kind: str) -> dict[str, Any]:
    found = [d for p in MANIFESTS for d in documents(p) if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def container() -> dict[str, Any]:
    containers = resource("Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


@pytest.mark.parametrize("version", ["1.28.0", "1.37.0"])
def test_ha_manifests_pass_strict_schema_validation(version: str) -> None:
    assert MANIFESTS
    result = subprocess.run(
        [validator(), "--strict", "-k", version, *map(str, MANIFESTS)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((HA / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in MANIFESTS)


def test_args_and_secret_environment_make_a_postgresql_gateway(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(token_table())
    spec = container()
    args = [
        f"--auth-tokens-file={tokens}" if a.startswith("--auth-tokens-file=") else a
        for a in spec["args"]
    ]
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in spec["env"]}
    assert env["GATEWAY_JOURNAL"] == {"name": "gateway-postgres", "key": "url"}
    assert env["PGPASSWORD"] == {"name": "gateway-postgres", "key": "password"}
    assert not any("postgresql://" in a for a in args), "no database URL on the command line"
    # What the Secret's url would be, through the same variable.
    environ = {"GATEWAY_JOURNAL": "postgresql://gateway@postgres:5432/journal"}
    config = config_from_args(build_parser(environ=environ).parse_args(args))
    assert config.postgres is not None
    assert config.postgres.url == environ["GATEWAY_JOURNAL"]
    assert config.postgres.shard == "default"
    assert config.postgres.lease == 5.0
    assert config.tokens is not None


def test_two_replicas_roll_one_at_a_time_and_the_budget_lets_one_go() -> None:
    deployment = resource("Deployment")["spec"]
    assert deployment["replicas"] == 2
    assert deployment["strategy"]["type"] == "RollingUpdate"
    assert deployment["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    labels = deployment["template"]["metadata"]["labels"]
    budget = resource("PodDisruptionBudget")["spec"]
    assert budget["minAvailable"] == 1
    assert budget["selector"]["matchLabels"].items() <= labels.items()
    service = resource("Service")["spec"]
    assert service["selector"].items() <= labels.items()
    assert next(p for p in service["ports"] if p["name"] == "grpc")["appProtocol"] == "grpc"
    anti = deployment["template"]["spec"]["affinity"]["podAntiAffinity"]
    term = anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"].items() <= labels.items()


def test_no_volume_and_probes_a_standby_passes() -> None:
    pod = resource("Deployment")["spec"]["template"]["spec"]
    assert all("persistentVolumeClaim" not in v for v in pod["volumes"])
    assert all(d["kind"] != "PersistentVolumeClaim" for p in MANIFESTS for d in documents(p))
    spec = container()
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        # "" is SERVING on a standby (tests/integration/test_standby.py): probes on
        # the service would restart or never ready a standby.
        assert "service" not in spec[probe]["grpc"], probe
    command = spec["lifecycle"]["preStop"]["exec"]["command"]
    args = {a.split("=", 1)[0]: a.split("=", 1)[1] for a in spec["args"] if "=" in a}
    budget = float(command[1]) + float(args["--drain-delay"]) + float(args["--shutdown-grace"])
    assert pod["terminationGracePeriodSeconds"] >= budget + 3
