"""The composition root: builds the broker, journal, actor and gRPC server.

``Gateway`` is what ``python -m gateway`` runs and what integration tests
start on port 0. It owns the start-up order (journal recovered and broker
connected before the health check says SERVING) and the shutdown order.
"""

from __future__ import annotations

import logging

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway.brokers import Broker
from gateway.config import GatewayConfig
from gateway.engine import OrderActor
from gateway.journal import Journal, MemoryJournal
from gateway.service.servicer import ExecutionServicer, add_to_server

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ExecutionService"].full_name


class StartupError(Exception):
    """The gateway cannot start (port in use, bad data dir, ...); a one-line reason."""


class Gateway:
    """One running gateway: server, actor, broker and journal."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        broker: Broker | None = None,
        journal: Journal | None = None,
    ) -> None:
        self.config = config
        self.broker = broker or _default_broker(config)
        self.journal = journal or _default_journal(config)
        self.actor = OrderActor(self.broker, self.journal, config.engine)
        self.health = HealthServicer()
        self._server: grpc.aio.Server | None = None
        self.port = 0

    @property
    def address(self) -> str:
        host = self.config.listen.rpartition(":")[0]
        return f"{host}:{self.port}"

    async def start(self) -> None:
        """Recover, connect, listen; the health check says SERVING once all are up."""
        server = grpc.aio.server(options=self.config.server_options())
        add_to_server(ExecutionServicer(self.actor, self.config.service), server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        if self.config.reflection:
            reflection.enable_server_reflection(
                (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
            )
        try:
            self.port = server.add_insecure_port(self.config.listen)
        except RuntimeError as exc:
            raise StartupError(f"cannot listen on {self.config.listen}: {exc}") from None
        if self.port == 0:
            raise StartupError(f"cannot listen on {self.config.listen} (address in use?)")
        await server.start()
        self._server = server
        await self.broker.connect()
        await self.actor.start()
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("gateway ready: listening on %s (broker %s)", self.address, self.broker.name)

    async def stop(self, grace: float | None = None) -> None:
        """Stop serving: health NOT_SERVING, streams end UNAVAILABLE, journal closed."""
        await self.health.enter_graceful_shutdown()
        await self.actor.stop()
        if self._server is not None:
            await self._server.stop(self.config.shutdown_grace if grace is None else grace)
        await self.broker.close()

    async def wait_for_termination(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()


def _default_broker(config: GatewayConfig) -> Broker:
    from gateway.brokers.faults import FaultyBroker
    from gateway.brokers.simulated import SimulatedBroker

    broker: Broker = SimulatedBroker(config.sim)
    if config.sim_faults is not None:
        log.warning("fault injection on: the simulated broker will misbehave on purpose")
        broker = FaultyBroker(broker, config.sim_faults)
    return broker


def _default_journal(config: GatewayConfig) -> Journal:
    return MemoryJournal()
