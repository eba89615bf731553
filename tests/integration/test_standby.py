"""Leader and hot standby on one PostgreSQL journal, both in this process.

The standby follows the journal while NOT_SERVING, takes over when the lease
frees, and serves everything the leader committed; a leader whose lease
moves on steps down. Real processes (SIGSTOP, kill -9, PostgreSQL stopped)
are in tests/e2e/test_high_availability.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway._proto.execution.v1 import execution_pb2_grpc as pb_grpc
from gateway.app import SERVICE_NAME, Gateway, LeadershipLost
from gateway.brokers.simulated import SimConfig, SimulatedBroker
from gateway.ha.config import PostgresConfig
from gateway.ha.lease import Lease
from tests.conftest import gateway_test_config
from tests.support import error_reason, eventually, resting_buy

if TYPE_CHECKING:
    from gateway._proto.execution.v1.execution_pb2_grpc import ExecutionServiceAsyncStub

LEASE = 2.0


def make_gateway(tmp_path: Path, dsn: str, name: str, broker: SimulatedBroker) -> Gateway:
    config = dataclasses.replace(
        gateway_test_config(tmp_path / name), postgres=PostgresConfig(dsn, lease=LEASE)
    )
    return Gateway(config, broker=broker)


def current_lease(dsn: str) -> tuple[int, str] | None:
    """(epoch, holder) of the default shard's lease row."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT epoch, holder FROM gateway_leases WHERE shard = 'default'"
        ).fetchone()
    return None if row is None else (int(row[0]), str(row[1]))


def venue() -> SimulatedBroker:
    return SimulatedBroker(SimConfig(seed=1, tick_interval=0.01))


async def health(address: str, service: str = SERVICE_NAME) -> int:
    async with grpc.aio.insecure_channel(address) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5
        )
        return int(reply.status)


async def test_a_standby_follows_refuses_and_takes_over_with_every_order(
    pg_dsn: str, tmp_path: Path
) -> None:
    # A venue each (closing a gateway closes its broker); the process tests
    # share one paper venue between them.
    leader = make_gateway(tmp_path, pg_dsn, "a", venue())
    await leader.start()
    await asyncio.wait_for(leader.serving.wait(), 10)
    standby = make_gateway(tmp_path, pg_dsn, "b", venue())
    await standby.start()
    try:
        assert await health(standby.address) == health_pb2.HealthCheckResponse.NOT_SERVING
        # Alive, though: a liveness probe on "" must not restart a standby.
        assert await health(standby.address, "") == health_pb2.HealthCheckResponse.SERVING
        async with (
            grpc.aio.insecure_channel(leader.address) as to_leader,
            grpc.aio.insecure_channel(standby.address) as to_standby,
        ):
            stub: ExecutionServiceAsyncStub = pb_grpc.ExecutionServiceStub(to_leader)
            placed = [(await stub.PlaceOrder(resting_buy(f"ha-{i}"))).order for i in range(20)]
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await pb_grpc.ExecutionServiceStub(to_standby).PlaceOrder(resting_buy("ha-x"))
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            assert error_reason(refused.value) == "GATEWAY_NOT_SERVING"
            assert standby.metrics.registry.get_sample_value("gateway_lease_epoch") == 0
            assert leader.metrics.registry.get_sample_value("gateway_lease_epoch") == 1
            # The standby's table follows the leader's journal (LISTEN/NOTIFY).
            await eventually(
                lambda: standby.actor.last_sequence,
                lambda seen: seen == leader.actor.last_sequence,
                what="the standby caught up",
            )
            seen_before = leader.actor.last_sequence
        await leader.stop()  # a clean stop releases the lease: no wait for it to expire
        await asyncio.wait_for(standby.serving.wait(), LEASE + 5)
        assert await health(standby.address) == health_pb2.HealthCheckResponse.SERVING
        assert standby.metrics.registry.get_sample_value("gateway_lease_epoch") == 2
        async with grpc.aio.insecure_channel(standby.address) as channel:
            stub = pb_grpc.ExecutionServiceStub(channel)
            for order in placed:
                again = (await stub.PlaceOrder(resting_buy(order.client_order_id))).order
                assert again.order_id == order.order_id  # same key, same order: not sent again
            await stub.PlaceOrder(resting_buy("ha-after"))
            newest = standby.actor.last_sequence
            assert newest > seen_before  # numbering carries on after the leader's
            # A subscriber of the old leader resumes here after its last sequence: no gap.
            stream = stub.SubscribeUpdates(pb.SubscribeUpdatesRequest(after_sequence=0))
            sequences: list[int] = []
            async with asyncio.timeout(10):
                async for message in stream:
                    if message.HasField("update"):
                        sequences.append(message.update.sequence)
                        if message.update.sequence >= newest:
                            break
            stream.cancel()
            assert sequences == list(range(1, newest + 1))
    finally:
        await standby.stop()
        await leader.stop()


async def test_a_leader_whose_lease_moves_on_steps_down(pg_dsn: str, tmp_path: Path) -> None:
    leader = make_gateway(tmp_path, pg_dsn, "a", venue())
    await leader.start()
    await asyncio.wait_for(leader.serving.wait(), 10)
    try:
        async with grpc.aio.insecure_channel(leader.address) as channel:
            stub: ExecutionServiceAsyncStub = pb_grpc.ExecutionServiceStub(channel)
            await stub.PlaceOrder(resting_buy("before"))
            committed = leader.actor.last_sequence
            # Another gateway takes the lease (as after this one was paused past it).
            with psycopg.connect(pg_dsn, autocommit=True) as conn:
                conn.execute(
                    "UPDATE gateway_leases SET epoch = epoch + 1, holder = 'other', "
                    "expires_at = now() + interval '1 minute'"
                )
            failure = await asyncio.wait_for(leader.actor.wait_failed(), LEASE * 2)
            assert isinstance(failure, LeadershipLost)
            assert leader.metrics.registry.get_sample_value("gateway_lease_epoch") == 0
            assert "moved past epoch" in str(failure)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.PlaceOrder(resting_buy("after"))
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            assert await health(leader.address) == health_pb2.HealthCheckResponse.NOT_SERVING
        with psycopg.connect(pg_dsn) as conn:
            newest = conn.execute("SELECT max(sequence) FROM journal_events").fetchone()
        assert newest == (committed,), "a deposed leader committed nothing more"
    finally:
        await leader.stop()
    # It stepped down: it does not release a lease that is no longer its own.
    assert current_lease(pg_dsn) == (2, "other")


async def test_the_lease_is_taken_once_and_renewed_only_by_its_epoch(pg_dsn: str) -> None:
    from gateway.journal.postgres import PostgresJournal

    await PostgresJournal.open(pg_dsn).close()  # the schema
    first = Lease(pg_dsn, "east", 1.0, "first")
    second = Lease(pg_dsn, "east", 1.0, "second")
    other_shard = Lease(pg_dsn, "west", 1.0, "second")
    try:
        epoch = first.try_acquire()
        assert epoch == 1
        assert second.try_acquire() is None  # held, not expired
        assert other_shard.try_acquire() == 1  # shards are independent
        assert first.renew(epoch)
        first.release(epoch)
        assert second.try_acquire() == 2  # released: taken at once, with the next epoch
        assert not first.renew(epoch)  # the old epoch renews nothing
        current = second.current()
        assert current is not None
        assert current[:2] == (2, "second")
        await eventually(
            lambda: asyncio.to_thread(first.try_acquire),
            lambda taken: taken == 3,
            within=5,
            what="the unrenewed lease to expire",
        )
    finally:
        for lease in (first, second, other_shard):
            lease.close()


async def test_a_standby_stops_cleanly_and_leaves_the_leader_its_lease(
    pg_dsn: str, tmp_path: Path
) -> None:
    leader = make_gateway(tmp_path, pg_dsn, "a", venue())
    await leader.start()
    await asyncio.wait_for(leader.serving.wait(), 10)
    standby = make_gateway(tmp_path, pg_dsn, "b", venue())
    await standby.start()
    try:
        assert leader.leadership is not None
        assert current_lease(pg_dsn) == (1, leader.leadership.holder)
        await asyncio.wait_for(standby.stop(), 10)
        assert not standby.serving.is_set()
        assert current_lease(pg_dsn) == (1, leader.leadership.holder)
        async with grpc.aio.insecure_channel(leader.address) as channel:
            stub: ExecutionServiceAsyncStub = pb_grpc.ExecutionServiceStub(channel)
            await stub.PlaceOrder(resting_buy("still-leading"))
    finally:
        await standby.stop()
        await leader.stop()
