"""``python -m gateway.server.healthcheck``: exit 0 if the local gateway says SERVING.

For container HEALTHCHECKs and exec probes, where no grpc_health_probe binary
is at hand. It connects to 127.0.0.1 on the port of ``GATEWAY_LISTEN`` (or
``--address``), over TLS when ``--tls-ca`` names the CA to trust.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def _default_address() -> str:
    port = os.environ.get("GATEWAY_LISTEN", "127.0.0.1:50051").rpartition(":")[2]
    return f"127.0.0.1:{port}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.server.healthcheck")
    parser.add_argument("--address", default=_default_address(), help="HOST:PORT to check")
    parser.add_argument("--service", default="", help='service name ("" = the process)')
    parser.add_argument("--tls-ca", help="PEM CA to trust: check over TLS")
    parser.add_argument("--tls-server-name", help="name to verify in the server certificate")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds (default 3)")
    args = parser.parse_args(argv)
    if args.tls_ca:
        with open(args.tls_ca, "rb") as ca:
            credentials = grpc.ssl_channel_credentials(ca.read())
        options = (
            [("grpc.ssl_target_name_override", args.tls_server_name)]
            if args.tls_server_name
            else []
        )
        channel = grpc.secure_channel(args.address, credentials, options=options)
    else:
        channel = grpc.insecure_channel(args.address)
    with channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=args.service), timeout=args.timeout
            )
        except grpc.RpcError as error:
            print(f"unhealthy: {error}", file=sys.stderr)
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
    print(status)
    return 0 if answer.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    sys.exit(main())
