"""grpc.health.v1 statuses, derived from what the gateway knows about itself.

Owns the mapping from state to status:

=====================================  ==========  ==============================
state                                  ``""``      ``execution.v1.ExecutionService``
=====================================  ==========  ==============================
starting (journal, broker not ready)   NOT_SERVING NOT_SERVING
ready, broker healthy                  SERVING     SERVING
ready, broker unhealthy                SERVING     NOT_SERVING
draining                               NOT_SERVING NOT_SERVING
=====================================  ==========  ==============================

``""`` says "this process is up and taking calls" (liveness, startup); the
service name also says "orders can reach the broker" (readiness). Updates may
come from synchronous callbacks: they are coalesced by one publishing task,
so the last state always wins and Watch streams see it.
"""

from __future__ import annotations

import asyncio

from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class HealthReporter:
    """Keeps a HealthServicer's statuses in line with ready / broker / draining."""

    def __init__(self, servicer: HealthServicer, service: str) -> None:
        self.servicer = servicer
        self.service = service
        self.ready = False
        self.broker_healthy = True
        self.draining = False
        self._published: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    def desired(self) -> dict[str, int]:
        up = self.ready and not self.draining
        return {
            "": SERVING if up else NOT_SERVING,
            self.service: SERVING if up and self.broker_healthy else NOT_SERVING,
        }

    def update(
        self,
        *,
        ready: bool | None = None,
        broker_healthy: bool | None = None,
        draining: bool | None = None,
    ) -> None:
        """Change the state (from sync or async code on the loop) and publish it soon."""
        if ready is not None:
            self.ready = ready
        if broker_healthy is not None:
            self.broker_healthy = broker_healthy
        if draining:
            self.draining = True  # one way
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._publish(), name="health-publisher"
            )

    async def flush(self) -> None:
        """Wait until the current state is what Check and Watch report."""
        if self._task is None or self._task.done():
            self.update()
        assert self._task is not None
        await self._task

    async def _publish(self) -> None:
        while (desired := self.desired()) != self._published:
            for name, status in desired.items():
                if self._published.get(name) != status:
                    await self.servicer.set(name, status)
            self._published = desired
        if self.draining:
            await self.servicer.enter_graceful_shutdown()
