"""The update stream under stress: hand-over races, stalled clients, leaks.

Every loop here is bounded in count and time.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import operator
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway._proto.execution.v1 import execution_pb2_grpc as pb_grpc
from gateway.app import Gateway
from gateway.brokers.simulated import SimConfig, SimulatedBroker
from gateway.journal import MemoryJournal
from tests.conftest import gateway_test_config
from tests.support import (
    STREAM_END,
    change_sequence,
    error_metadata,
    error_reason,
    eventually,
    place_request,
)

if TYPE_CHECKING:
    from gateway._proto.execution.v1.execution_pb2_grpc import ExecutionServiceAsyncStub

Stream = grpc.aio.UnaryStreamCall[pb.SubscribeUpdatesRequest, pb.SubscribeUpdatesResponse]


@pytest.fixture
async def busy_gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    """A gateway whose market orders fill in 20 parts: many updates per order."""
    config = gateway_test_config(tmp_path, subscriber_buffer=5_000)
    broker = SimulatedBroker(SimConfig(seed=3, tick_interval=None, partial_fills=20))
    gw = Gateway(config, broker=broker, journal=MemoryJournal())
    await gw.start()
    yield gw
    await gw.stop(grace=0.5)


class Producer:
    """Places market orders back to back until stopped (or a bound is hit).

    ``pace``, if given, is awaited before each round of orders: a test whose
    point is that one reader keeps up makes the load wait for that reader, so
    a busy machine slowing the test's own client cannot fail it.
    """

    def __init__(
        self,
        stub: ExecutionServiceAsyncStub,
        limit: int = 5_000,
        pace: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.stub = stub
        self.limit = limit
        self.placed = 0
        self._pace = pace
        self._stop = asyncio.Event()
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while not self._stop.is_set() and self.placed < self.limit:
            if self._pace is not None:
                await self._pace()
            await asyncio.gather(
                *(
                    self.stub.PlaceOrder(place_request(f"p-{self.placed}-{i}", quantity="100"))
                    for i in range(10)
                )
            )
            self.placed += 10

    async def stop(self) -> None:
        self._stop.set()
        await self._task


async def collect_until(stream: Stream, last: int, within: float = 30) -> list[int]:
    """Read change sequences (orders' and positions') until one reaches ``last``."""
    sequences: list[int] = []
    async with asyncio.timeout(within):
        while not sequences or sequences[-1] < last:
            message = await stream.read()
            assert message is not STREAM_END
            assert isinstance(message, pb.SubscribeUpdatesResponse)
            if (sequence := change_sequence(message)) is not None:
                sequences.append(sequence)
    return sequences


class Collector:
    """Reads one stream in the background, keeping every update's sequence."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.sequences: list[int] = []
        self.task = asyncio.ensure_future(drain_into(stream, self.sequences))

    async def until(self, last: int) -> list[int]:
        """Wait (bounded) until the stream delivered ``last``, then close it."""
        await eventually(
            lambda: self.sequences[-1] if self.sequences else 0,
            lambda seq: seq >= last,
            within=30,
            what=f"the stream reaching {last}",
        )
        self.stream.cancel()
        return self.sequences


async def drain_into(stream: Stream, sequences: list[int]) -> None:
    """Append every update's sequence until the stream ends (its error raises)."""
    async for message in stream:
        if (sequence := change_sequence(message)) is not None:
            sequences.append(sequence)


async def test_resume_hand_over_has_no_gap_and_no_duplicate_under_load(
    busy_gateway: Gateway,
) -> None:
    async with grpc.aio.insecure_channel(busy_gateway.address) as channel:
        stub: ExecutionServiceAsyncStub = pb_grpc.ExecutionServiceStub(channel)
        producer = Producer(stub)
        readers: list[tuple[int, Collector]] = []
        # Resume from several points while updates pour in: each hand-over
        # from journal replay to live happens mid-stream.
        for round_ in range(1, 6):
            floor = 200 * round_
            await eventually(
                lambda: busy_gateway.actor.last_sequence,
                functools.partial(operator.lt, floor),
                what=f"more than {floor} updates",
            )
            after = busy_gateway.actor.last_sequence - 150
            stream = stub.SubscribeUpdates(pb.SubscribeUpdatesRequest(after_sequence=after))
            readers.append((after, Collector(stream)))
        await producer.stop()
        last = busy_gateway.actor.last_sequence
        for after, reader in readers:
            sequences = await reader.until(last)
            assert sequences == list(range(after + 1, last + 1))


async def test_a_stalled_client_is_cut_off_while_a_healthy_one_keeps_up(
    busy_gateway: Gateway,
) -> None:
    # The stalled client reads nothing; without BDP probing its receive
    # window stays small, so the gateway's writes to it back up quickly.
    stalled_options = [("grpc.http2.bdp_probe", 0)]
    async with (
        grpc.aio.insecure_channel(busy_gateway.address) as healthy_channel,
        grpc.aio.insecure_channel(busy_gateway.address, options=stalled_options) as stalled_ch,
    ):
        stub: ExecutionServiceAsyncStub = pb_grpc.ExecutionServiceStub(healthy_channel)
        stalled_stub: ExecutionServiceAsyncStub = pb_grpc.ExecutionServiceStub(stalled_ch)
        healthy = stub.SubscribeUpdates(pb.SubscribeUpdatesRequest(after_sequence=0))
        stalled = stalled_stub.SubscribeUpdates(pb.SubscribeUpdatesRequest(after_sequence=0))
        await eventually(
            lambda: busy_gateway.actor.subscriber_count,
            lambda n: n == 2,
            what="both subscribed",
        )
        healthy_reader = Collector(healthy)

        async def healthy_keeps_up() -> int:
            # Well inside the buffer (5,000): only the stalled client can overflow.
            return await eventually(
                lambda: busy_gateway.actor.last_sequence - (healthy_reader.sequences or [0])[-1],
                lambda lag: lag <= 1_000,
                within=30,
                interval=0.005,
                what="the healthy reader keeping up",
            )

        producer = Producer(stub, limit=20_000, pace=healthy_keeps_up)
        # Produce until the gateway gives up on the stalled client (bounded).
        await eventually(
            lambda: busy_gateway.actor.subscriber_count,
            lambda n: n == 1,
            within=60,
            interval=0.05,
            what="the stalled subscriber cut off",
        )
        await producer.stop()
        last = busy_gateway.actor.last_sequence
        assert await healthy_reader.until(last) == list(range(1, last + 1))

        # The stalled client gets what was sent, then RESOURCE_EXHAUSTED
        # naming the last sequence it was sent; resuming from it loses nothing.
        received: list[int] = []
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await drain_into(stalled, received)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error_reason(caught.value) == "SUBSCRIBER_TOO_SLOW"
        assert error_metadata(caught.value)["last_sequence"] == str(received[-1])
        assert received == list(range(1, len(received) + 1))
        resume = stalled_stub.SubscribeUpdates(
            pb.SubscribeUpdatesRequest(after_sequence=received[-1] if received else 0)
        )
        rest = await collect_until(resume, last)
        resume.cancel()
        assert received + rest == list(range(1, last + 1))


async def test_many_subscribe_cycles_leave_nothing_behind(busy_gateway: Gateway) -> None:
    async with grpc.aio.insecure_channel(busy_gateway.address) as channel:
        stub: ExecutionServiceAsyncStub = pb_grpc.ExecutionServiceStub(channel)
        await stub.PlaceOrder(place_request("warm-up"))

        async def cycle(i: int) -> None:
            request = pb.SubscribeUpdatesRequest(after_sequence=0)
            if i % 2:
                request = pb.SubscribeUpdatesRequest(snapshot=True)
            stream = stub.SubscribeUpdates(request, timeout=5 if i % 3 else None)
            message = await stream.read()
            assert message is not STREAM_END
            stream.cancel()

        async def cycles(count: int) -> None:
            for start in range(0, count, 50):
                await asyncio.gather(*(cycle(i) for i in range(start, start + 50)))

        await cycles(200)  # warm caches before measuring
        await eventually(lambda: busy_gateway.actor.subscriber_count, lambda n: n == 0)
        gc.collect()
        tasks_before = len(asyncio.all_tasks())
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        await cycles(2_000)
        await eventually(
            lambda: busy_gateway.actor.subscriber_count,
            lambda n: n == 0,
            what="every subscriber released",
        )
        await eventually(
            lambda: len(asyncio.all_tasks()),
            lambda n: n <= tasks_before,
            what="no task left behind",
        )
        gc.collect()
        growth = sum(
            stat.size_diff for stat in tracemalloc.take_snapshot().compare_to(before, "filename")
        )
        tracemalloc.stop()
        # 2,000 leaked subscribers (buffers, events, closures) would be far
        # more; this bound leaves room for allocator noise only.
        assert growth < 512 * 1024, f"memory grew by {growth} bytes over 2,000 cycles"
