"""A leader and a hot standby as real processes on one PostgreSQL journal.

- SIGSTOP the leader past its lease: the standby takes over; on SIGCONT the
  old leader commits nothing more and steps down (its process exits).
- kill -9 the leader under load, again and again, with the paper venue as
  the shared broker: no acknowledged order or fill is lost, no
  client_order_id reaches the venue twice (the venue's own count), and a
  subscriber that resumes on each new leader sees every update once.
- Stop PostgreSQL under load: both gateways refuse orders UNAVAILABLE and
  lose nothing; when it is back, trading resumes.
- A rolling restart of both replicas under load (a new pod first, then the
  old one drained): no PlaceOrder fails once the client's retries of
  UNAVAILABLE are counted, and nothing reaches the venue twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING

import grpc
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway._proto.execution.v1 import execution_pb2_grpc as pb_grpc
from gateway.app import SERVICE_NAME
from gateway.domain import OrderFilled
from gateway.journal import records as formats
from tests.e2e.test_crash_recovery import (
    ACCOUNT,
    KEYS,
    Ledger,
    check_agreement,
    place,
    venue,
)
from tests.pg_server import PgServer, server_or_skip
from tests.processes import GATEWAY_READY, Service, clean_env, start
from tests.support import eventually, resting_buy

if TYPE_CHECKING:
    from gateway._proto.execution.v1.execution_pb2_grpc import ExecutionServiceAsyncStub

__all__ = ["venue"]  # the paper venue fixture, shared with the crash-recovery test

pytestmark = pytest.mark.e2e

LEASE = 2.0
SERVING = health_pb2.HealthCheckResponse.SERVING


def start_gateway(dsn: str, *extra: str) -> Service:
    """A gateway process on the PostgreSQL journal: it leads if the lease is free."""
    return start(
        [
            "gateway",
            "--listen=127.0.0.1:0",
            f"--journal={dsn}",
            f"--lease={LEASE}",
            "--drain-delay=0",
            "--ack-wait=1",
            *extra,
        ],
        GATEWAY_READY,
        clean_env(**KEYS),
    )


def venue_gateway(dsn: str, venue: Service) -> Service:
    return start_gateway(
        dsn,
        "--broker=alpaca",
        f"--alpaca-base-url={venue.address}",
        f"--alpaca-account={ACCOUNT}",
    )


async def status(address: str) -> int:
    """The health of the execution service at ``address`` (NOT_SERVING if unreachable)."""
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=2
            )
            return int(reply.status)
    except grpc.aio.AioRpcError:
        return int(health_pb2.HealthCheckResponse.NOT_SERVING)


async def until_serving(service: Service, within: float) -> None:
    await eventually(
        lambda: status(service.address), lambda s: s == SERVING, within=within, what="SERVING"
    )


def journal_rows(dsn: str) -> list[tuple[int, bytes]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT sequence, body FROM journal_events ORDER BY sequence")
        return [(int(sequence), bytes(body)) for sequence, body in rows]


# ------------------------------------------------------------ SIGSTOP


async def test_a_paused_leader_is_fenced_and_steps_down(pg_dsn: str) -> None:
    leader = start_gateway(pg_dsn)
    standby: Service | None = None
    try:
        await until_serving(leader, 20)
        standby = start_gateway(pg_dsn)
        assert await status(standby.address) != SERVING
        async with grpc.aio.insecure_channel(leader.address) as channel:
            stub = pb_grpc.ExecutionServiceStub(channel)
            acked = [(await stub.PlaceOrder(resting_buy(f"p-{i}"))).order for i in range(10)]
            leader.process.send_signal(signal.SIGSTOP)
            # A call to the paused leader waits in its socket until it runs again.
            late = asyncio.ensure_future(stub.PlaceOrder(resting_buy("late"), timeout=30))
            await until_serving(standby, LEASE + 5)
            async with grpc.aio.insecure_channel(standby.address) as to_standby:
                new_stub = pb_grpc.ExecutionServiceStub(to_standby)
                for order in acked:  # every acknowledged order is on the new leader
                    again = await new_stub.PlaceOrder(resting_buy(order.client_order_id))
                    assert again.order.order_id == order.order_id
                await new_stub.PlaceOrder(resting_buy("on-the-new-leader"))
            before = journal_rows(pg_dsn)
            leader.process.send_signal(signal.SIGCONT)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await late
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert await asyncio.to_thread(leader.process.wait, 15) == 1  # it stepped down
        assert "stepping down" in leader.log() or "moved past epoch" in leader.log()
        rows = journal_rows(pg_dsn)
        assert rows[: len(before)] == before
        mentions = [s for s, body in rows if b"late" in body]
        assert not mentions, "the deposed leader committed the late order"
        assert [s for s, _ in rows] == list(range(1, len(rows) + 1))
    finally:
        with contextlib.suppress(ProcessLookupError):
            leader.process.send_signal(signal.SIGCONT)
        if leader.process.poll() is None:
            leader.kill()
        if standby is not None:
            assert standby.stop() == 0, standby.log()


# ------------------------------------------------------- kill -9 under load

ROUNDS = 3
WORKERS = 3
PER_ROUND = 12


class Cluster:
    """The two gateway processes of one shard, and which one clients should call."""

    def __init__(self, dsn: str, venue: Service) -> None:
        self.dsn = dsn
        self.venue = venue
        self.processes: list[Service] = []

    def add(self) -> Service:
        service = venue_gateway(self.dsn, self.venue)
        self.processes.append(service)
        return service

    async def leader(self, within: float) -> Service:
        """The process whose execution service is SERVING."""

        async def find() -> Service | None:
            for service in self.processes:
                if service.process.poll() is None and await status(service.address) == SERVING:
                    return service
            return None

        found: Service | None = await eventually(
            find, lambda s: s is not None, within=within, what="a leader"
        )
        assert found is not None
        return found

    def close(self) -> None:
        for service in self.processes:
            if service.process.poll() is None:
                service.kill()


async def load(stub: ExecutionServiceAsyncStub, ledger: Ledger, name: str, seed: int) -> None:
    rng = random.Random(seed)
    for i in range(PER_ROUND):
        await asyncio.sleep(rng.uniform(0, 0.05))
        coid = f"{name}-{i}"
        ledger.requests[coid] = (
            resting_buy(coid, account=ACCOUNT)
            if rng.random() < 0.4
            else pb.PlaceOrderRequest(
                account=ACCOUNT,
                client_order_id=coid,
                symbol="AAPL",
                side=pb.SIDE_BUY,
                order_type=pb.ORDER_TYPE_MARKET,
                quantity="10",
                time_in_force=pb.TIME_IN_FORCE_DAY,
            )
        )
        try:
            await place(stub, ledger, coid)
        except grpc.aio.AioRpcError:
            return  # the leader died under us: the client retries on the next one


class Follower:
    """A subscriber that resumes on whichever gateway leads, with after_sequence."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.seen: list[int] = []
        self.done = asyncio.Event()

    async def run(self) -> None:
        for _ in range(100):  # bounded: one resume per leader change, and then some
            if self.done.is_set():
                return
            try:
                leader = await self.cluster.leader(within=LEASE + 20)
            except AssertionError:
                continue
            after = self.seen[-1] if self.seen else 0
            try:
                async with grpc.aio.insecure_channel(leader.address) as channel:
                    stream = pb_grpc.ExecutionServiceStub(channel).SubscribeUpdates(
                        pb.SubscribeUpdatesRequest(after_sequence=after)
                    )
                    async for message in stream:
                        if message.HasField("update"):
                            self.seen.append(message.update.sequence)
                        if self.done.is_set():
                            stream.cancel()
                            return
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.1)


async def test_kill_9_of_the_leader_under_load_the_standby_loses_and_repeats_nothing(
    pg_dsn: str, venue: Service
) -> None:
    cluster = Cluster(pg_dsn, venue)
    ledger = Ledger()
    rng = random.Random(17)
    follower = Follower(cluster)
    following: asyncio.Future[None] | None = None
    try:
        cluster.add()
        await cluster.leader(within=20)
        cluster.add()  # the standby
        following = asyncio.ensure_future(follower.run())
        for round_ in range(ROUNDS):
            leader = await cluster.leader(within=LEASE + 10)
            async with grpc.aio.insecure_channel(leader.address) as channel:
                stub = pb_grpc.ExecutionServiceStub(channel)
                # Orders whose answer died with the last leader: the same client_order_id
                # on the new one finds them (or places them, if they never committed).
                for coid in ledger.unacked:
                    await place(stub, ledger, coid)
                workers = [
                    asyncio.ensure_future(
                        load(stub, ledger, f"k{round_}w{w}", rng.randrange(2**32))
                    )
                    for w in range(WORKERS)
                ]
                await asyncio.sleep(rng.uniform(0.3, 1.0))
                leader.kill()  # SIGKILL mid-flight
                await asyncio.wait_for(asyncio.gather(*workers), 15)
            cluster.add()  # the restarted pod: a standby now
        leader = await cluster.leader(within=LEASE + 10)
        async with grpc.aio.insecure_channel(leader.address) as channel:
            stub = pb_grpc.ExecutionServiceStub(channel)
            for coid in ledger.unacked:
                await place(stub, ledger, coid)
            await check_agreement(stub, venue, ledger)
        newest = journal_rows(pg_dsn)[-1][0]
        await eventually(
            lambda: follower.seen[-1] if follower.seen else 0,
            lambda last: last >= newest,
            within=20,
            what="the subscriber caught up",
        )
    finally:
        follower.done.set()
        if following is not None:
            following.cancel()
            await asyncio.gather(following, return_exceptions=True)
        cluster.close()
    # Every update once, in order, across every leader change.
    assert follower.seen[:newest] == list(range(1, newest + 1))
    rows = journal_rows(pg_dsn)
    assert [s for s, _ in rows] == list(range(1, len(rows) + 1))
    fills = Counter(
        (event.order_id, event.fill.exec_id)
        for event in (formats.decode(body).event for _, body in rows)
        if isinstance(event, OrderFilled)
    )
    assert fills, "the test made no fills"
    assert max(fills.values()) == 1, "an exec_id was applied twice"


# --------------------------------------------------- PostgreSQL goes away


@pytest.fixture
def own_server() -> Iterator[PgServer]:
    """A server of this test's own: it is stopped and started again."""
    with server_or_skip() as server:
        yield server


async def test_postgresql_stopped_under_load_refuses_then_resumes(own_server: PgServer) -> None:
    dsn = own_server.new_database()
    first = start_gateway(dsn)
    second: Service | None = None
    ledger = Ledger()
    outcomes: Counter[str] = Counter()
    done = asyncio.Event()
    try:
        await until_serving(first, 20)
        second = start_gateway(dsn)
        async with (
            grpc.aio.insecure_channel(first.address) as to_first,
            grpc.aio.insecure_channel(second.address) as to_second,
        ):
            stubs = [pb_grpc.ExecutionServiceStub(c) for c in (to_first, to_second)]

            async def load(worker: int) -> None:
                # Alternating between the two, as a client behind a mesh might.
                for i in range(5_000):  # bounded; stopped by ``done`` long before
                    if done.is_set():
                        return
                    coid = f"load{worker}-{i}"
                    ledger.requests[coid] = resting_buy(coid)
                    try:
                        await place(stubs[i % 2], ledger, coid)
                        outcomes["OK"] += 1
                    except grpc.aio.AioRpcError as exc:
                        outcomes[exc.code().name] += 1
                    await asyncio.sleep(0.01)

            workers = [asyncio.ensure_future(load(w)) for w in range(3)]
            await eventually(lambda: outcomes["OK"], lambda n: n >= 20, what="load flowing")
            await asyncio.to_thread(own_server.stop)
            refused_before = outcomes["UNAVAILABLE"]
            await eventually(
                lambda: outcomes["UNAVAILABLE"],
                lambda n: n >= refused_before + 20,
                what="refusals while the database is away",
            )
            # The leader could not commit: it exited, to be restarted as a standby.
            assert await asyncio.to_thread(first.process.wait, 15) == 1
            ok_while_down = outcomes["OK"]
            await asyncio.to_thread(own_server.start)
            # Trading resumes on the standby, which takes the lease now.
            await until_serving(second, LEASE + 10)
            await eventually(
                lambda: outcomes["OK"], lambda n: n >= ok_while_down + 20, what="trading again"
            )
            done.set()
            await asyncio.wait_for(asyncio.gather(*workers), 30)
            assert set(outcomes) <= {"OK", "UNAVAILABLE"}, outcomes
            for coid in ledger.unacked:  # the refused ones, retried: each placed once
                await place(stubs[1], ledger, coid)
            for coid, order_id in ledger.acked.items():
                found = await stubs[1].GetOrderStatus(
                    pb.GetOrderStatusRequest(account="acct-1", client_order_id=coid)
                )
                assert found.order.order_id == order_id, f"acknowledged {coid} lost"
    finally:
        done.set()
        for service in (first, second):
            if service is not None and service.process.poll() is None:
                service.kill()
    rows = journal_rows(dsn)
    assert [s for s, _ in rows] == list(range(1, len(rows) + 1))


# ------------------------------------------------------- a rolling restart


class RetryingClient:
    """A client that retries UNAVAILABLE on every gateway it knows, as a mesh would."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.channels: dict[str, grpc.aio.Channel] = {}
        self.retries = 0
        self.cut_by_exit = 0

    @staticmethod
    async def _exited(service: Service) -> bool:
        """Whether ``service`` is exiting: it has ended within a few seconds."""
        try:
            await asyncio.to_thread(service.process.wait, 10)
        except subprocess.TimeoutExpired:
            return False
        return True

    def stub(self, address: str) -> ExecutionServiceAsyncStub:
        if address not in self.channels:
            self.channels[address] = grpc.aio.insecure_channel(address)
        return pb_grpc.ExecutionServiceStub(self.channels[address])

    async def place(self, ledger: Ledger, coid: str) -> None:
        for _ in range(400):  # bounded: about 20 s of retries
            for service in list(self.cluster.processes):
                if service.process.poll() is not None:
                    continue
                try:
                    await place(self.stub(service.address), ledger, coid)
                    return
                except grpc.aio.AioRpcError as exc:
                    if exc.code() == grpc.StatusCode.CANCELLED and await self._exited(service):
                        # The call was cut by its server's exit (a drain that ran out
                        # of grace under load): its outcome is unknown, and retrying
                        # the same client_order_id is safe.
                        self.cut_by_exit += 1
                    elif exc.code() != grpc.StatusCode.UNAVAILABLE:
                        raise
                    self.retries += 1
            await asyncio.sleep(0.05)
        raise AssertionError(f"{coid}: no gateway took it")

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close(None)


async def test_a_rolling_restart_under_load_fails_no_call_and_repeats_nothing(
    pg_dsn: str, venue: Service
) -> None:
    cluster = Cluster(pg_dsn, venue)
    client = RetryingClient(cluster)
    ledger = Ledger()
    rolled = asyncio.Event()

    async def worker(name: str) -> None:
        for i in range(300):  # bounded; ends soon after the rollout
            coid = f"{name}-{i}"
            ledger.requests[coid] = resting_buy(coid, account=ACCOUNT)
            await client.place(ledger, coid)
            if rolled.is_set() and i >= 12:
                return
            await asyncio.sleep(0.03)

    try:
        cluster.add()
        await cluster.leader(within=20)
        cluster.add()
        workers = [asyncio.ensure_future(worker(f"roll{w}")) for w in range(3)]
        for _ in range(2):  # replace both pods, one at a time, as a Deployment does
            old = await cluster.leader(within=LEASE + 10)
            cluster.add()  # the new pod starts (a standby) before an old one goes
            assert await asyncio.to_thread(old.stop) == 0, old.log()  # drain, release
            await cluster.leader(within=LEASE + 10)
        rolled.set()
        await asyncio.wait_for(asyncio.gather(*workers), 60)
        leader = await cluster.leader(within=LEASE + 10)
        async with grpc.aio.insecure_channel(leader.address) as channel:
            await check_agreement(pb_grpc.ExecutionServiceStub(channel), venue, ledger)
    finally:
        await client.close()
        cluster.close()
    assert not ledger.unacked, "a PlaceOrder failed for good"
    assert len(ledger.acked) >= 3 * 13
