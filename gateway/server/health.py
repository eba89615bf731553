"""grpc.health.v1 statuses, derived from what the gateway knows about itself.

Owns the mapping from state to status:

=====================================  ==========  ==============================
state                                  ``""``      ``execution.v1.ExecutionService``
=====================================  ==========  ==============================
starting (journal, broker not ready)   NOT_SERVING NOT_SERVING
ready, broker healthy                  SERVING     SERVING
ready, broker unhealthy                SERVING     NOT_SERVING
draining                               NOT_SERVING NOT_SERVING
standby (another gateway leads)        SERVING     NOT_SERVING
=====================================  ==========  ==============================

``""`` says "this process is up and taking calls" (liveness, startup); the
service name also says "orders can reach the broker" (readiness). Updates may
come from synchronous callbacks: they are coalesced by one publishing task,
so the last state always wins and Watch streams see it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class ClosableHealthServicer(HealthServicer):  # type: ignore[misc]  # untyped package
    """grpc's health servicer, whose Watch streams can be ended at shutdown.

    The stock Watch waits for the next status change forever, so one open
    stream (a mesh sidecar, a dashboard) held ``server.stop`` until its whole
    grace had passed. ``close_watches`` ends them with UNAVAILABLE instead,
    which tells a watcher to reconnect, as the health protocol expects.
    """

    def __init__(self) -> None:
        super().__init__()
        self._watches: set[asyncio.Task[Any]] = set()
        self._closing = False

    async def Watch(  # noqa: N802 - the gRPC method name
        self, request: health_pb2.HealthCheckRequest, context: Any
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        if self._closing:
            await context.abort(grpc.StatusCode.UNAVAILABLE, _CLOSED)
        self._watches.add(task)
        try:
            await super().Watch(request, context)
        except asyncio.CancelledError:
            if not self._closing or task.cancelling() > 1:
                raise  # the call itself was cancelled, not just by close_watches
            task.uncancel()
            context.set_code(grpc.StatusCode.UNAVAILABLE)
            context.set_details(_CLOSED)
        finally:
            self._watches.discard(task)

    def close_watches(self) -> None:
        """End every open Watch stream (UNAVAILABLE) and refuse new ones."""
        self._closing = True
        for task in self._watches:
            task.cancel()


_CLOSED = "gateway shutting down; watch again once it is back"


class HealthReporter:
    """Keeps a HealthServicer's statuses in line with ready / broker / draining."""

    def __init__(
        self, servicer: HealthServicer, service: str, operator_services: tuple[str, ...] = ()
    ) -> None:
        self.servicer = servicer
        self.service = service
        # Serving whenever the process is (ControlService: an operator must be
        # able to halt trading while the broker is down).
        self.operator_services = operator_services
        self.ready = False
        self.broker_healthy = True
        self.draining = False
        self.standing_by = False
        self._published: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    def desired(self) -> dict[str, int]:
        up = self.ready and not self.draining
        # A standby is alive (liveness must not restart it) but takes no orders.
        alive = (up or self.standing_by) and not self.draining
        desired = {
            "": SERVING if alive else NOT_SERVING,
            self.service: SERVING if up and self.broker_healthy else NOT_SERVING,
        }
        for name in self.operator_services:
            desired[name] = SERVING if up else NOT_SERVING
        return desired

    def update(
        self,
        *,
        ready: bool | None = None,
        broker_healthy: bool | None = None,
        draining: bool | None = None,
        standing_by: bool | None = None,
    ) -> None:
        """Change the state (from sync or async code on the loop) and publish it soon."""
        if ready is not None:
            self.ready = ready
        if standing_by is not None:
            self.standing_by = standing_by
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
