"""The chaos run: thousands of orders, every broker fault on, and the table stays right.

Concurrent clients place (and cancel) orders through real stubs while the
broker errs, loses answers, rate-limits, hangs, duplicates, reorders and
drops reports, and disconnects. Clients retry safely, with the same
client_order_id. When the bad day ends, the gateway must agree with the
venue on every order, nothing may have been submitted twice, and every
update streamed must have kept the invariants.

CI runs a fixed seed; `GATEWAY_CHAOS_SEED=random make test PYTEST_ARGS="-k chaos -s"`
runs a fresh one (printed in the summary, to replay a failure).
"""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway._proto.execution.v1 import execution_pb2_grpc as pb_grpc
from gateway.app import Gateway
from gateway.brokers.faults import CallFaults, FaultConfig, FaultyBroker
from gateway.brokers.simulated import SimConfig, SimulatedBroker
from gateway.brokers.testing import RecordingBroker
from gateway.domain import OrderFilled
from gateway.journal import MemoryJournal
from tests.conftest import gateway_test_config
from tests.support import (
    change_sequence,
    eventually,
    order_updates,
    place_request,
    resting_buy,
)

if TYPE_CHECKING:
    from gateway._proto.execution.v1.execution_pb2_grpc import ExecutionServiceAsyncStub

ORDERS = int(os.environ.get("GATEWAY_CHAOS_ORDERS", "2000"))
CLIENTS = 16
TERMINAL = {
    pb.ORDER_STATUS_FILLED,
    pb.ORDER_STATUS_CANCELED,
    pb.ORDER_STATUS_REJECTED,
    pb.ORDER_STATUS_EXPIRED,
}
IN_DOUBT = {pb.ORDER_STATUS_PENDING_NEW, pb.ORDER_STATUS_PENDING_CANCEL}
RETRYABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.DEADLINE_EXCEEDED,
}


def chaos_seed() -> int:
    setting = os.environ.get("GATEWAY_CHAOS_SEED", "20261124")
    return random.SystemRandom().randrange(2**32) if setting == "random" else int(setting)


def bad_day(seed: int) -> FaultConfig:
    calls = CallFaults(
        error_rate=0.03,
        lost_answer_rate=0.03,
        rate_limit_rate=0.02,
        retry_after=0.01,
        hang_rate=0.005,
        hang_seconds=5,
        latency_max=0.002,
    )
    return FaultConfig(
        seed=seed,
        submit=calls,
        cancel=calls,
        status=CallFaults(error_rate=0.03, lost_answer_rate=0.02),
        duplicate_report_rate=0.05,
        reorder_report_rate=0.05,
        disconnect_rate=0.002,
        disconnect_seconds=0.1,
    )


async def with_retries(call: object, counter: Counter[str], what: str) -> object:
    """Retry a call on retryable codes (bounded); the same request every time."""
    for _ in range(200):
        try:
            return await call()  # type: ignore[operator]
        except grpc.aio.AioRpcError as error:
            if error.code() not in RETRYABLE:
                raise
            counter[f"{what} retried ({error.code().name})"] += 1
            await asyncio.sleep(0.01)
    raise AssertionError(f"{what} never went through")


async def client(
    stub: ExecutionServiceAsyncStub, name: str, orders: int, rng: random.Random, stats: Counter[str]
) -> None:
    for i in range(orders):
        coid = f"{name}-{i}"
        market = rng.random() < 0.5
        request = place_request(coid) if market else resting_buy(coid)

        async def place(request: pb.PlaceOrderRequest = request) -> pb.PlaceOrderResponse:
            return await stub.PlaceOrder(request, timeout=2)

        await with_retries(place, stats, "place")
        stats["placed"] += 1
        if not market and rng.random() < 0.6:
            cancel = pb.CancelOrderRequest(account="acct-1", client_order_id=coid)

            async def send_cancel(cancel: pb.CancelOrderRequest = cancel) -> object:
                try:
                    return await stub.CancelOrder(cancel, timeout=2)
                except grpc.aio.AioRpcError as error:
                    if error.code() == grpc.StatusCode.FAILED_PRECONDITION:
                        stats["cancel after end"] += 1
                        return None
                    raise

            await with_retries(send_cancel, stats, "cancel")
            stats["cancel requested"] += 1


class StreamChecker:
    """Watches every update and checks the invariants on each one."""

    def __init__(self) -> None:
        self.filled: dict[str, Decimal] = defaultdict(Decimal)
        self.terminal: dict[str, int] = {}
        self.last_sequence = 0
        self.count = 0

    def other(self, sequence: int) -> None:
        """A change that is not an order's (a position's) still takes the next sequence."""
        assert sequence > self.last_sequence, "sequences strictly increase"
        self.last_sequence = sequence

    def check(self, update: pb.OrderUpdate) -> None:
        assert update.sequence > self.last_sequence, "sequences strictly increase"
        self.last_sequence = update.sequence
        self.count += 1
        order = update.order
        filled = Decimal(order.filled_quantity)
        assert filled >= self.filled[order.order_id], "filled_quantity never decreases"
        assert filled <= Decimal(order.quantity), "never overfilled"
        self.filled[order.order_id] = filled
        if order.status not in TERMINAL:
            assert filled + Decimal(order.leaves_quantity) == Decimal(order.quantity)
        ended = self.terminal.get(order.order_id)
        if ended is not None:
            assert order.status in TERMINAL, "terminal orders stay terminal"
            if order.status != ended:  # a late fill completing a cancelled order
                assert order.status == pb.ORDER_STATUS_FILLED
        if order.status in TERMINAL:
            self.terminal[order.order_id] = order.status


async def test_chaos_run_keeps_the_order_table_right(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = chaos_seed()
    venue = RecordingBroker(SimulatedBroker(SimConfig(seed=seed, tick_interval=0.02)))
    faulty = FaultyBroker(venue, bad_day(seed))
    journal = MemoryJournal()
    config = gateway_test_config(
        tmp_path,
        ack_wait=0.5,
        broker_call_timeout=0.2,
        broker_attempts=4,
        broker_backoff=0.005,
        broker_backoff_max=0.05,
        absence_grace=1.0,
        reconcile_interval=0.5,
        unhealthy_probe_interval=0.05,
        subscriber_buffer=1_000_000,
    )
    gateway = Gateway(config, broker=faulty, journal=journal)
    await gateway.start()
    stats: Counter[str] = Counter()
    checker = StreamChecker()
    try:
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            stub: ExecutionServiceAsyncStub = pb_grpc.ExecutionServiceStub(channel)
            stream = stub.SubscribeUpdates(pb.SubscribeUpdatesRequest(after_sequence=0))

            async def watch() -> None:
                async for message in stream:
                    if message.HasField("update"):
                        checker.check(message.update)
                    elif (sequence := change_sequence(message)) is not None:
                        checker.other(sequence)  # a position change: same sequence space

            watcher = asyncio.ensure_future(watch())
            rng = random.Random(seed)
            per_client = ORDERS // CLIENTS
            await asyncio.wait_for(
                asyncio.gather(
                    *(
                        client(stub, f"k{c}", per_client, random.Random(rng.random()), stats)
                        for c in range(CLIENTS)
                    )
                ),
                timeout=240,
            )

            # The bad day ends; reconciliation settles what is still in doubt.
            faulty.enabled = False
            gateway.actor.request_reconcile()
            exchange = venue.inner.exchange  # type: ignore[attr-defined]

            async def disagreements() -> list[str]:
                page = await stub.ListOrders(pb.ListOrdersRequest(account="acct-1", page_size=1000))
                ours = {o.client_order_id: o for o in page.orders}
                token = page.next_page_token
                while token:
                    page = await stub.ListOrders(
                        pb.ListOrdersRequest(account="acct-1", page_size=1000, page_token=token)
                    )
                    ours.update({o.client_order_id: o for o in page.orders})
                    token = page.next_page_token
                problems = []
                for coid, mine in ours.items():
                    theirs = exchange.order_status("acct-1", coid)
                    if mine.status in IN_DOUBT:
                        # Reconciliation re-sends a lost cancel (or gives it up):
                        # nothing may stay in doubt once the faults stop.
                        problems.append(f"{coid}: still {pb.OrderStatus.Name(mine.status)}")
                    elif theirs is None:
                        if mine.status != pb.ORDER_STATUS_REJECTED:
                            problems.append(
                                f"{coid}: {pb.OrderStatus.Name(mine.status)}, not at venue"
                            )
                    elif Decimal(mine.filled_quantity) != theirs.filled_quantity:
                        problems.append(
                            f"{coid}: filled {mine.filled_quantity} vs {theirs.filled_quantity}"
                        )
                    elif (mine.status in TERMINAL) != theirs.status.is_terminal:
                        problems.append(
                            f"{coid}: {pb.OrderStatus.Name(mine.status)} vs {theirs.status}"
                        )
                return problems

            await eventually(disagreements, lambda found: not found, within=60, what="agreement")
            await eventually(
                lambda: checker.last_sequence,
                lambda seq: seq == gateway.actor.last_sequence,
                what="the watcher caught up",
            )
            stream.cancel()
            watcher.cancel()
    finally:
        await gateway.stop(grace=0.5)

    # What reached the venue (a submit cut off by our timeout before the
    # venue saw it, then asked about and re-sent, arrived once).
    sent = exchange.received
    assert stats["placed"] == per_client * CLIENTS
    assert max(sent.values()) == 1, "an order reached the venue twice"
    fills = Counter(
        (r.event.order_id, r.event.fill.exec_id)
        for r in journal.records
        if isinstance(r.event, OrderFilled)
    )
    assert max(fills.values()) == 1, "an exec_id was applied twice"
    final = {u.order.order_id: u.order for u in order_updates(journal.records)}
    statuses = Counter(order.status.name for order in final.values())
    with capsys.disabled():
        print(
            f"\nchaos run (seed {seed}): {stats['placed']} orders from {CLIENTS} clients, "
            f"{checker.count} updates checked, {len(fills)} fills applied once each\n"
            f"  final statuses: {dict(sorted(statuses.items()))}\n"
            f"  injected: {dict(sorted(faulty.injected.items()))}\n"
            f"  clients saw: {dict(sorted((k, v) for k, v in stats.items() if k != 'placed'))}\n"
            f"  refused as illegal (logged): {gateway.actor.illegal_transitions}\n"
            f"  venue submissions per order: max {max(sent.values())}"
        )
    assert sum(faulty.injected.values()) > 100, "too few faults to prove anything"
    # Nothing is left in doubt, and nothing the broker said was out of place.
    assert not {"PENDING_NEW", "PENDING_CANCEL"} & set(statuses), statuses
    assert gateway.actor.illegal_transitions == 0
