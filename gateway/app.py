"""The composition root: builds the broker, journal, actor and gRPC server.

``Gateway`` is what ``python -m gateway`` runs and what integration tests
start on port 0. It owns the start-up order (journal recovered and broker
connected before the health check says SERVING) and the shutdown order.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path
from typing import Any, cast
from wsgiref.simple_server import WSGIServer

import grpc
from grpc_health.v1 import health, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway.auth import AuthPolicy, Principal
from gateway.auth.audit import audit
from gateway.auth.limits import StreamRegistry
from gateway.auth.policy import CONTROL_SERVICE
from gateway.brokers import Broker
from gateway.brokers.base import Reconnects, SessionHealth
from gateway.config import GatewayConfig
from gateway.engine import OrderActor
from gateway.ha.config import PostgresConfig
from gateway.ha.leader import Leadership
from gateway.journal import Journal, JournalDamaged, JournalError, SqliteJournal
from gateway.journal.datadir import DataDir, DataDirBusy
from gateway.journal.postgres import REPLAY_BATCH, PostgresJournal
from gateway.observability import (
    GatewayMetrics,
    MeteredBroker,
    MeteredJournal,
    serve_metrics,
    tracing,
)
from gateway.observability.control_metrics import ControlCollector
from gateway.risk import LimitsFile, LimitsFileError
from gateway.security import ReloadingCredentials, TlsError
from gateway.server import ClosableHealthServicer, DrainGate, GatewayInterceptor, HealthReporter
from gateway.server.listen import add_port, exposure_problem
from gateway.service.control import ControlServicer
from gateway.service.control import add_to_server as add_control_to_server
from gateway.service.servicer import ExecutionServicer, add_to_server
from gateway.shards import ShardGuard, ShardMapError

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ExecutionService"].full_name


class StartupError(Exception):
    """The gateway cannot start (port in use, bad data dir, ...); a one-line reason."""


class JournalNeedsSalvage(StartupError):
    """The journal is damaged: the gateway will not drop records on its own."""

    def __init__(self, damaged: JournalDamaged, data_dir: Path) -> None:
        super().__init__(
            f"{damaged}; nothing was changed. Keeping its good records before the damage "
            f"drops the rest, so that is an operator's decision: run `gateway journal salvage "
            f"--data-dir {data_dir}` (the damaged file is kept aside), then start again "
            "(docs/durability.md)"
        )


class LeadershipLost(Exception):
    """This gateway no longer holds its shard's lease: it must not take another order."""


class Gateway:
    """One running gateway: server, actor, broker and journal."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        broker: Broker | None = None,
        journal: Journal | None = None,
        tracer_provider: Any = None,
    ) -> None:
        self.config = config
        self.data_dir: DataDir | None = None
        # A gateway on the PostgreSQL journal stands by until it holds its shard's lease.
        self.leadership: Leadership | None = None
        if journal is None and config.postgres is not None:
            journal = _open_postgres(config.postgres)
            self.leadership = Leadership(config.postgres)
        if journal is None:
            self.data_dir, journal = _open_data_dir(config)
        self.broker = broker or _default_broker(config)
        self.journal = journal
        self.metrics = GatewayMetrics()
        # The actor sees metered wrappers: latency and counts without touching the engine.
        self.actor = OrderActor(
            cast(Broker, MeteredBroker(self.broker, self.metrics)),
            cast(Journal, MeteredJournal(self.journal, self.metrics)),
            config.engine,
        )
        self.metrics.watch_actor(self.actor)
        self.limits_file = (
            LimitsFile(config.risk_limits, self.actor.use_limits)
            if config.risk_limits is not None
            else None
        )
        self.metrics.registry.register(ControlCollector(self.actor, self.limits_file))
        # A broker that stops answering turns the execution service NOT_SERVING.
        self.actor.on_broker_health(self.set_broker_health)
        if isinstance(self.broker, Reconnects):
            # Reports sent while the stream was away are lost: reconcile.
            self.broker.add_reconnect_listener(self.actor.request_reconcile)
        if isinstance(self.broker, SessionHealth):
            # A broker session that is down (a refused FIX logon) is NOT_SERVING too.
            self.broker.add_health_listener(self.set_broker_health)
        self.tracing_interceptor: Any = None
        if config.otlp_endpoint is not None or tracer_provider is not None:
            self.tracing_interceptor = _start_tracing(config.otlp_endpoint, tracer_provider)
        self.health = ClosableHealthServicer()
        self.health_reporter = HealthReporter(self.health, SERVICE_NAME, (CONTROL_SERVICE,))
        self.gate = DrainGate()
        self.policy = AuthPolicy(
            config.tokens, reflection_requires_auth=config.reflection_requires_auth
        )
        self.streams = StreamRegistry(config.limits.max_streams)
        self._server: grpc.aio.Server | None = None
        self._metrics_server: WSGIServer | None = None
        self._background: list[asyncio.Task[None]] = []
        self._stopped = False
        self.serving = asyncio.Event()
        """Set once the gateway serves (at once with SQLite; a standby once it leads)."""
        self.port = 0
        self.metrics_port = 0

    @property
    def address(self) -> str:
        host = self.config.listen.rpartition(":")[0]
        return f"{host}:{self.port}"

    async def start(self) -> None:
        """Recover, connect, listen; the health check says SERVING once all are up."""
        config = self.config
        if problem := exposure_problem(config):
            raise StartupError(problem)
        if self.limits_file is not None:
            try:
                self.limits_file.load()
            except LimitsFileError as exc:
                raise StartupError(f"risk limits: {exc}") from None
        try:
            tls = ReloadingCredentials(config.tls) if config.tls is not None else None
        except TlsError as exc:
            raise StartupError(str(exc)) from None
        names_certificates = config.tokens is not None and config.tokens.certificate_kinds
        if names_certificates and (config.tls is None or not config.tls.mutual):
            log.warning(
                "the principals table names client certificates, but without "
                "--tls-client-ca no client presents one: those entries never match"
            )
        interceptor = GatewayInterceptor(
            self.policy,
            self.gate,
            self.metrics,
            limits=config.limits,
            streams=self.streams,
            shards=_shard_guard(config),
        )
        interceptors: list[grpc.aio.ServerInterceptor[Any, Any]] = [interceptor]
        if self.tracing_interceptor is not None:
            # First: the server span (continuing the client's trace) covers our policy too.
            interceptors.insert(0, self.tracing_interceptor)
        server = grpc.aio.server(interceptors=interceptors, options=config.server_options())
        add_to_server(ExecutionServicer(self.actor, config.service), server)
        add_control_to_server(ControlServicer(self.actor, self.limits_file), server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        await self.health_reporter.flush()  # NOT_SERVING until recovered and connected
        if config.reflection:
            reflection.enable_server_reflection(
                (SERVICE_NAME, CONTROL_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME),
                server,
            )
        try:
            self.port = add_port(server, config, tls)
        except RuntimeError as exc:
            raise StartupError(f"cannot listen on {config.listen}: {exc}") from None
        if self.port == 0:
            raise StartupError(f"cannot listen on {config.listen} (address in use?)")
        if config.metrics_listen:
            try:
                self._metrics_server, self.metrics_port = serve_metrics(
                    self.metrics, config.metrics_listen
                )
            except OSError as exc:
                raise StartupError(
                    f"cannot serve metrics on {config.metrics_listen}: {exc.strerror}"
                ) from None
        await server.start()
        self._server = server
        if self.leadership is not None:
            await self._stand_by()
            return
        await self._serve()

    async def _serve(self, *, recovered: bool = False) -> None:
        """Connect the broker, start the actor, and turn SERVING."""
        config = self.config
        await self.broker.connect()
        try:
            await self.actor.start(recovered=recovered)
        except JournalDamaged as exc:  # a row that only fails when replayed
            raise JournalNeedsSalvage(exc, config.data_dir) from None
        if config.tokens is not None:
            self._background.append(asyncio.create_task(self._reload_tokens(), name="tokens"))
        if self.limits_file is not None:
            watch = self.limits_file.watch(config.risk_limits_reload_interval)
            self._background.append(asyncio.create_task(watch, name="risk-limits"))
        self.health_reporter.update(ready=True, standing_by=False)
        await self.health_reporter.flush()
        self.metrics.serving.set(1)
        self.serving.set()
        self.metrics.broker_up.set(int(self.health_reporter.broker_healthy))
        security = ("mTLS" if config.tls.mutual else "TLS") if config.tls else "plaintext"
        auth = f"{len(config.tokens)} principals" if config.tokens else "no authentication"
        log.info(
            "gateway ready: listening on %s (%s, %s; broker %s)",
            self.address,
            security,
            auth,
            self.broker.name,
        )
        if self.metrics_port:
            host = config.metrics_listen.rpartition(":")[0] if config.metrics_listen else ""
            log.info("metrics on http://%s:%d/metrics", host, self.metrics_port)

    # ------------------------------------------------- leadership (PostgreSQL)

    async def _stand_by(self) -> None:
        """Recover the table, then take over in the background once the lease is ours.

        Until then the gateway listens NOT_SERVING (its calls are refused
        UNAVAILABLE, so the mesh routes to the leader) and follows the journal.
        """
        try:
            await asyncio.to_thread(self.actor.recover)
        except JournalError as exc:
            raise StartupError(f"cannot recover from the journal: {exc}") from None
        assert self.leadership is not None
        self.health_reporter.update(standing_by=True)
        await self.health_reporter.flush()
        log.info(
            "standby of shard %r listening on %s (NOT_SERVING until it holds the lease)",
            self.leadership.settings.shard,
            self.address,
        )
        self._background.append(asyncio.create_task(self._take_over(), name="leadership"))

    async def _take_over(self) -> None:
        """Wait for the lease; fence the journal, replay its tail, reconcile, serve."""
        leadership = self.leadership
        journal = self.journal
        assert leadership is not None
        assert isinstance(journal, PostgresJournal)
        try:
            epoch = await leadership.acquire(self._catch_up)
            await asyncio.to_thread(journal.lead, epoch)  # every commit is fenced by it
            # Whatever the old leader committed before the epoch moved is readable now;
            # anything later was refused by the fence.
            await self._catch_up()
            # The actor's start reconciles open orders with the broker, as after a crash.
            await self._serve(recovered=True)
            self.metrics.lease_epoch.set(epoch)
            self._background.append(
                asyncio.create_task(leadership.keep(self._step_down), name="lease")
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("taking over as leader failed")
            self.actor.halt(exc)

    async def _catch_up(self) -> None:
        """Apply what the leader committed since the table was last brought up to date."""
        journal = self.journal
        assert isinstance(journal, PostgresJournal)
        for _ in range(1_000_000):  # bounded: a batch each, until the journal's end
            records = await asyncio.to_thread(journal.follow, self.actor.last_sequence)
            if records:
                await asyncio.to_thread(self.actor.catch_up, records)
            if len(records) < REPLAY_BATCH:
                return

    def _step_down(self, reason: str) -> None:
        """Leadership is lost: refuse everything from now on; the process then exits."""
        journal = self.journal
        if isinstance(journal, PostgresJournal):
            journal.depose()
        self.metrics.serving.set(0)
        self.metrics.lease_epoch.set(0)
        self.health_reporter.update(ready=False)
        self.actor.halt(LeadershipLost(reason))

    def set_broker_health(self, ok: bool) -> None:
        """Reflect broker health: ExecutionService's health status is SERVING iff ``ok``.

        ``""`` (the process) stays SERVING. Safe to call from synchronous code
        on the event loop (e.g. a circuit breaker's listener), any number of times.
        """
        self.metrics.broker_up.set(int(ok))
        self.health_reporter.update(broker_healthy=ok)

    async def drain(self) -> None:
        """The SIGTERM/SIGINT path: ``stop`` after the configured drain delay."""
        await self.stop(delay=self.config.drain_delay)

    async def stop(self, grace: float | None = None, *, delay: float = 0.0) -> None:
        """Drain and stop; safe to call more than once.

        Health goes NOT_SERVING; after ``delay`` seconds new calls are refused
        with UNAVAILABLE; unary calls in flight get up to ``grace`` seconds to
        finish; then streams end UNAVAILABLE with their last sequence, the
        journal is flushed and closed, and the broker closed.
        """
        if self._stopped:
            return
        self._stopped = True
        loop = asyncio.get_running_loop()
        grace = self.config.shutdown_grace if grace is None else grace
        self.metrics.serving.set(0)
        self.health_reporter.update(draining=True)
        await self.health_reporter.flush()
        if delay > 0:
            log.info("draining: health NOT_SERVING; refusing new calls in %.1fs", delay)
            await asyncio.sleep(delay)
        self.gate.close()
        deadline = loop.time() + grace
        if not await self.gate.wait_idle(grace):
            log.warning(
                "draining: %d unary calls still running after %.1fs; they end UNAVAILABLE",
                self.gate.in_flight,
                grace,
            )
        await self.actor.stop()  # streams end UNAVAILABLE (last sequence); journal closed
        if self.leadership is not None:
            # Nothing more can commit: hand the lease to a standby now, not after it
            # expires. Bounded: a database that does not answer must not eat the grace.
            try:
                await asyncio.wait_for(asyncio.to_thread(self.leadership.release), 2.0)
            except TimeoutError:
                log.warning("lease not released in time; a standby waits for it to expire")
        self.health.close_watches()  # or an open Watch holds server.stop for all its grace
        if self._server is not None:
            await self._server.stop(max(0.0, deadline - loop.time()))
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._metrics_server is not None:
            await asyncio.to_thread(self._metrics_server.shutdown)
            self._metrics_server.server_close()
        await self.broker.close()
        if self.tracing_interceptor is not None:
            await asyncio.to_thread(tracing.shutdown)  # flushes the exporter: blocking I/O
        if self.data_dir is not None:
            self.data_dir.release()

    async def _reload_tokens(self) -> None:
        """Pick up changes to the token file (e.g. a rotated Kubernetes Secret)."""
        tokens = self.config.tokens
        assert tokens is not None
        reported: str | None = None
        while True:
            await asyncio.sleep(self.config.auth_reload_interval)
            before = {p.name: p for p in tokens.principals}
            generation = tokens.generation
            problem = tokens.reload_if_changed()
            if problem and problem != reported:
                log.error("token file not reloaded: %s; the previous tokens stay valid", problem)
                audit("principals.reload", outcome="failed", detail=problem)
            elif not problem and tokens.generation != generation:
                self._reloaded(before, {p.name: p for p in tokens.principals})
            reported = problem

    def _reloaded(self, before: dict[str, Principal], after: dict[str, Principal]) -> None:
        """Audit a reload of the principals table and end the streams it no longer allows."""
        added = sorted(after.keys() - before.keys())
        removed = sorted(before.keys() - after.keys())
        changed = sorted(n for n in after.keys() & before.keys() if after[n] != before[n])
        log.info("token file reloaded: %d principals (was %d)", len(after), len(before))
        audit(
            "principals.reload",
            outcome="applied",
            detail=f"added={','.join(added) or '-'} removed={','.join(removed) or '-'} "
            f"changed={','.join(changed) or '-'}",
        )
        # Credentials can change without a name changing (a rotated token): every
        # open stream is asked again, not only those of the names listed above.
        for stream in self.streams.revalidate(self.policy):
            error = stream.error
            assert error is not None
            audit(
                "stream.ended",
                outcome=type(error).__name__,
                reason=error.reason,
                principal=stream.principal.name,
                rpc=stream.method,
                account=error.metadata.get("account"),
            )

    async def wait_for_termination(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()


def _shard_guard(config: GatewayConfig) -> ShardGuard | None:
    """The account check of this gateway's shard; None without a shard map."""
    if config.shard_map is None:
        return None
    if config.shard is None:
        raise StartupError("a shard map needs this gateway's shard (--shard)")
    try:
        guard = ShardGuard(config.shard_map, config.shard)
    except ShardMapError as exc:
        raise StartupError(str(exc)) from None
    log.info(
        "shard %s: serving %d listed accounts%s",
        guard.shard,
        len(config.shard_map.shards[guard.shard].accounts),
        " and every unlisted one (default shard)" if guard.catch_all else "",
    )
    return guard


def _start_tracing(endpoint: str | None, provider: Any) -> Any:
    try:
        return tracing.enable(endpoint, provider=provider)
    except ImportError:
        raise StartupError(
            "--otlp-endpoint needs OpenTelemetry: pip install 'execution-gateway[otel]'"
        ) from None


def _default_broker(config: GatewayConfig) -> Broker:
    if config.broker == "alpaca":
        return _alpaca_broker(config)
    if config.broker == "fix":
        return _fix_broker(config)
    from gateway.brokers.faults import FaultyBroker
    from gateway.brokers.simulated import SimulatedBroker

    broker: Broker = SimulatedBroker(config.sim)
    if config.sim_faults is not None:
        log.warning("fault injection on: the simulated broker will misbehave on purpose")
        broker = FaultyBroker(broker, config.sim_faults)
    return broker


def _alpaca_broker(config: GatewayConfig) -> Broker:
    from gateway.brokers.alpaca import AlpacaBroker, LiveTradingRefused

    if config.alpaca is None:
        raise StartupError("--broker alpaca needs Alpaca settings")
    try:
        return AlpacaBroker(config.alpaca)
    except (LiveTradingRefused, ValueError) as exc:
        raise StartupError(str(exc)) from None


def _fix_broker(config: GatewayConfig) -> Broker:
    from gateway.brokers.fix import FixBroker

    if config.fix is None:
        raise StartupError("--broker fix needs --fix-config FILE")
    fix = config.fix
    # Sequence numbers live with the gateway's data: they survive what it survives.
    store = fix.store_path or (
        config.data_dir / f"fix-{fix.sender_comp_id}-{fix.target_comp_id}.sqlite"
    )
    return FixBroker(fix, store)


def _open_data_dir(config: GatewayConfig) -> tuple[DataDir, Journal]:
    """Lock the data dir and open (recovering if need be) its journal."""
    data_dir = DataDir(config.data_dir)
    try:
        data_dir.acquire()
    except (DataDirBusy, OSError) as exc:
        raise StartupError(str(exc)) from None
    try:
        journal = SqliteJournal.open(data_dir.journal_path, salvage=config.salvage_journal)
    except JournalDamaged as exc:
        data_dir.release()
        raise JournalNeedsSalvage(exc, config.data_dir) from None
    except (JournalError, OSError, sqlite3.Error) as exc:
        data_dir.release()
        raise StartupError(f"cannot open the journal {data_dir.journal_path}: {exc}") from None
    if journal.recovery is not None:
        log.warning("journal salvaged as asked (--salvage-journal): %s", journal.recovery)
    return data_dir, journal


def _open_postgres(settings: PostgresConfig) -> Journal:
    """Connect to the PostgreSQL journal, migrating its schema (``--journal``)."""
    assert settings.url is not None
    try:
        return PostgresJournal.open(settings.url, shard=settings.shard)
    except JournalError as exc:
        raise StartupError(f"cannot open the journal: {exc}") from None
