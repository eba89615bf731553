"""Layers point one way: settings load without the RPC stack."""

from __future__ import annotations

import subprocess
import sys

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway.auth.policy import SERVICE


def test_importing_the_config_does_not_import_grpc_or_protobuf() -> None:
    # A fresh interpreter: this one has grpc loaded already.
    probe = (
        "import sys, gateway.config\n"
        "loaded = sorted(m for m in sys.modules if m == 'grpc' or m.startswith("
        "('grpc.', 'google.protobuf')))\n"
        "print(','.join(loaded))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""


def test_the_policy_names_the_service_the_proto_defines() -> None:
    assert pb.DESCRIPTOR.services_by_name["ExecutionService"].full_name == SERVICE
