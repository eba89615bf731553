"""The gateway's settings as one typed value, with mesh-friendly defaults.

The command line (``gateway.cli``) fills it from flags and ``GATEWAY_*``
environment variables; tests build it directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.auth.limits import PrincipalLimits
from gateway.auth.tokens import TokenStore
from gateway.brokers.alpaca import AlpacaConfig
from gateway.brokers.faults import FaultConfig
from gateway.brokers.fix import FixConfig
from gateway.brokers.simulated import SimConfig
from gateway.engine import EngineConfig
from gateway.ha.config import PostgresConfig
from gateway.observability.logs import LogConfig
from gateway.service.config import ServiceConfig
from gateway.shards import ShardMap

if TYPE_CHECKING:
    # gateway.security builds grpc credentials; a config is plain values and
    # must load without grpc (tests/unit/test_config_imports.py).
    from gateway.security import TlsConfig

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """Everything a running gateway needs to know."""

    listen: str = "127.0.0.1:50051"
    """HOST:PORT to serve gRPC on (h2c, or TLS with a certificate); port 0 picks a free port."""

    data_dir: Path = Path("gateway-data")
    """Directory of the journal, locked by one gateway at a time; created if missing."""

    salvage_journal: bool = False
    """If the journal is damaged, keep its good records before the damage and start.

    Off, a damaged journal stops the start (exit code 65) and changes nothing:
    dropping records is an operator's decision (docs/durability.md). The
    damaged file is always kept aside."""

    reflection: bool = True
    """Serve gRPC server reflection (for grpcurl and other tools)."""

    shutdown_grace: float = 5.0
    """Seconds in-flight calls get to finish when the gateway stops."""

    drain_delay: float = 2.0
    """On SIGTERM/SIGINT: seconds between health turning NOT_SERVING and refusing new calls.

    Lets health-checking proxies stop routing here first. The whole drain takes
    at most ``drain_delay + shutdown_grace`` (plus the broker's close)."""

    insecure: bool = False
    """Allow a non-loopback listen address with no tokens.

    Only behind something that authenticates callers (a mesh, a proxy)."""

    tokens: TokenStore | None = None
    """Bearer tokens and their principals; None: no authentication (loopback only)."""

    reflection_requires_auth: bool = False
    """Require a valid token for server reflection (when tokens are configured)."""

    auth_reload_interval: float = 2.0
    """Seconds between checks of the principals file for changes."""

    limits: PrincipalLimits = field(default_factory=PrincipalLimits)
    """What each authenticated principal may hold at once (streams, order rate)."""

    tls: TlsConfig | None = None
    """Serve TLS (mTLS if it names a client CA) instead of plaintext h2c."""

    metrics_listen: str | None = None
    """Serve Prometheus metrics at http://HOST:PORT/metrics (default: off)."""

    otlp_endpoint: str | None = None
    """Export OpenTelemetry traces over OTLP/gRPC to this URL, e.g. http://collector:4317.

    Off by default, and then tracing costs nothing. Needs the ``otel`` extra
    (``pip install execution-gateway[otel]``); see docs/operations.md."""

    max_message_bytes: int = 4 * MIB
    """Largest request or response message accepted or sent."""

    keepalive_time: float = 30.0
    """Seconds between server keepalive pings on an idle connection."""

    keepalive_timeout: float = 10.0
    """Seconds to wait for a ping's answer before closing the connection."""

    min_client_ping_interval: float = 10.0
    """Clients may ping this often (seconds) without being told to calm down."""

    permit_keepalive_without_calls: bool = True
    """Accept (and send) keepalive pings on connections with no call open."""

    max_connection_idle: float = 0.0
    """Close connections idle this long (seconds, with GOAWAY); 0: never."""

    max_connection_age: float = 0.0
    """Ask clients to reconnect after this long (seconds, GOAWAY); 0: never."""

    max_connection_age_grace: float = 0.0
    """After max_connection_age, seconds calls get before the connection is cut; 0: no limit."""

    max_concurrent_streams: int = 1000
    """Concurrent calls per connection (HTTP/2 SETTINGS); 0: no limit."""

    engine: EngineConfig = field(default_factory=EngineConfig)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    sim: SimConfig = field(default_factory=SimConfig)
    log: LogConfig = field(default_factory=LogConfig)
    broker: str = "simulated"
    """simulated (in-process), alpaca (Alpaca's Trading API, paper by default; keys
    from APCA_API_KEY_ID / APCA_API_SECRET_KEY or --alpaca-credentials-file) or fix
    (a FIX 4.4 session, configured by --fix-config)."""

    alpaca: AlpacaConfig | None = None
    """The Alpaca adapter's settings when ``broker`` is "alpaca"."""

    fix: FixConfig | None = None
    """The FIX 4.4 session's settings (host, CompIDs, accounts, schedule, TLS), from a
    TOML file; needed by --broker fix (docs/brokers.md)."""

    sim_faults: FaultConfig | None = None
    """Faults to inject between the gateway and the simulated broker, from a TOML file.

    Errors, lost acks, rate limits, latency, duplicate and reordered reports,
    disconnects; see docs/faults.md."""

    risk_limits: Path | None = None
    """Pre-trade risk limits file (TOML; see docs/operations.md), reloaded when it
    changes; a bad version keeps the last good limits. None: no limits."""

    risk_limits_reload_interval: float = 2.0
    """Seconds between checks of the risk limits file for changes."""
    postgres: PostgresConfig | None = None
    """The PostgreSQL journal and leadership (``--journal``); None: SQLite under data_dir."""

    shard: str | None = None
    """This gateway's shard: it serves only the accounts the shard map gives that shard.

    Needed with ``shard_map``; see docs/operations.md (account shards)."""

    shard_map: ShardMap | None = None
    """Which shard owns each account, and each shard's address, from a TOML file.

    None: every account is served here. An account owned by another shard is
    refused FAILED_PRECONDITION (reason WRONG_SHARD, naming that shard and its
    address) before the order actor sees the request."""

    def server_options(self) -> list[tuple[str, int]]:
        """Return the grpc.aio server channel options these settings mean."""
        options = [
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.max_send_message_length", self.max_message_bytes),
            ("grpc.keepalive_time_ms", int(self.keepalive_time * 1000)),
            ("grpc.keepalive_timeout_ms", int(self.keepalive_timeout * 1000)),
            # Streams may sit idle between heartbeats: allow client pings anyway.
            ("grpc.keepalive_permit_without_calls", int(self.permit_keepalive_without_calls)),
            (
                "grpc.http2.min_ping_interval_without_data_ms",
                int(self.min_client_ping_interval * 1000),
            ),
            # What the server enforces on clients' pings (core default: 5 minutes).
            (
                "grpc.http2.min_recv_ping_interval_without_data_ms",
                int(self.min_client_ping_interval * 1000),
            ),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.so_reuseport", 0),
        ]
        optional = (
            ("grpc.max_connection_idle_ms", int(self.max_connection_idle * 1000)),
            ("grpc.max_connection_age_ms", int(self.max_connection_age * 1000)),
            ("grpc.max_connection_age_grace_ms", int(self.max_connection_age_grace * 1000)),
            ("grpc.max_concurrent_streams", self.max_concurrent_streams),
        )
        options += [(name, value) for name, value in optional if value > 0]
        return options
