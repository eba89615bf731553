"""The gateway's settings as one typed value, with mesh-friendly defaults.

The command line (``gateway.cli``) fills it from flags and ``GATEWAY_*``
environment variables; tests build it directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gateway.brokers.faults import FaultConfig
from gateway.brokers.simulated import SimConfig
from gateway.engine import EngineConfig
from gateway.service.servicer import ServiceConfig

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """Everything a running gateway needs to know."""

    listen: str = "127.0.0.1:50051"
    """HOST:PORT to serve gRPC on (plaintext h2c); port 0 picks a free port."""

    data_dir: Path = Path("gateway-data")
    """Directory for the journal; created if missing."""

    reflection: bool = True
    """Serve gRPC server reflection (for grpcurl and other tools)."""

    shutdown_grace: float = 5.0
    """Seconds in-flight calls get to finish when the gateway stops."""

    max_message_bytes: int = 4 * MIB
    """Largest request or response message accepted or sent."""

    keepalive_time: float = 30.0
    """Seconds between server keepalive pings on an idle connection."""

    keepalive_timeout: float = 10.0
    """Seconds to wait for a ping's answer before closing the connection."""

    min_client_ping_interval: float = 10.0
    """Clients may ping this often (seconds) without being told to calm down."""

    engine: EngineConfig = field(default_factory=EngineConfig)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    sim: SimConfig = field(default_factory=SimConfig)
    sim_faults: FaultConfig | None = None
    """Faults injected between the gateway and the simulated broker (None: none)."""

    def server_options(self) -> list[tuple[str, int]]:
        """Return the grpc.aio server channel options these settings mean."""
        return [
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.max_send_message_length", self.max_message_bytes),
            ("grpc.keepalive_time_ms", int(self.keepalive_time * 1000)),
            ("grpc.keepalive_timeout_ms", int(self.keepalive_timeout * 1000)),
            # Streams may sit idle between heartbeats: allow client pings anyway.
            ("grpc.keepalive_permit_without_calls", 1),
            (
                "grpc.http2.min_ping_interval_without_data_ms",
                int(self.min_client_ping_interval * 1000),
            ),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.so_reuseport", 0),
        ]
