"""A failed journal write stops the actor, and every caller hears so at once.

Callers whose commands were still queued behind the failed commit get
UNAVAILABLE straight away, not after the drain's grace (when their
deadline would pass first and leave them guessing).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

import grpc

from gateway._proto.execution.v1 import execution_pb2_grpc as pb_grpc
from gateway.app import Gateway
from gateway.brokers.simulated import SimConfig, SimulatedBroker
from gateway.journal import JournalRecord, MemoryJournal
from tests.conftest import gateway_test_config
from tests.support import error_reason, eventually, resting_buy


class BreakingJournal(MemoryJournal):
    """Appends normally until ``armed``; then the next append waits for ``fail`` and raises."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False
        self.waiting = False
        self.fail = asyncio.Event()

    async def append(self, records: Sequence[JournalRecord]) -> None:
        if self.armed:
            self.waiting = True
            await self.fail.wait()
            raise OSError("the disk went away")
        await super().append(records)


async def test_commands_queued_behind_a_failed_commit_are_refused_at_once(
    tmp_path: Path,
) -> None:
    journal = BreakingJournal()
    gateway = Gateway(
        gateway_test_config(tmp_path),
        broker=SimulatedBroker(SimConfig(seed=1, tick_interval=0.01)),
        journal=journal,
    )
    await gateway.start()
    try:
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            stub = pb_grpc.ExecutionServiceStub(channel)
            await stub.PlaceOrder(resting_buy("before"))
            journal.armed = True
            calls = [
                asyncio.ensure_future(stub.PlaceOrder(resting_buy(f"q-{i}"), timeout=30))
                for i in range(20)
            ]
            await eventually(lambda: journal.waiting, bool, what="a commit under way")
            await eventually(
                lambda: gateway.actor.inbox_depth, lambda n: n > 0, what="commands queued"
            )
            started = time.monotonic()
            journal.fail.set()
            results = await asyncio.gather(*calls, return_exceptions=True)
            assert time.monotonic() - started < 2.0, "queued callers waited for the drain"
        assert all(isinstance(r, grpc.aio.AioRpcError) for r in results), results
        errors = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
        assert {e.code() for e in errors} == {grpc.StatusCode.UNAVAILABLE}
        assert {error_reason(e) for e in errors} == {"JOURNAL_FAILED"}
        assert isinstance(await gateway.actor.wait_failed(), OSError)
    finally:
        await gateway.stop(grace=0.5)
