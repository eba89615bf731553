"""The ceiling: a bare grpc.aio server of the gateway's API that does no work.

Each unary method decodes its request and answers with canned bytes of the
size the gateway's answer has; SubscribeUpdates sends one pre-encoded update
(stamped with the time it was made, like a fill) to every stream at a fixed
rate. Same service name and messages as the gateway, so ``ghz`` and the
stream client drive it with the very same arguments.

Run as ``python -m bench.echo --listen 127.0.0.1:0``; it logs
``listening on HOST:PORT`` like the gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import grpc

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway.domain import Fill, Order, OrderSpec, OrderStatus, OrderType, OrderUpdate, Side
from gateway.domain.enums import TimeInForce
from gateway.service import convert

SERVICE = "execution.v1.ExecutionService"


def sample_order(now: datetime) -> Order:
    """Return an order shaped like the benchmark's: a filled market order."""
    spec = OrderSpec(
        "acct-1", "p-0-1234567", "AAPL", Side.BUY, OrderType.MARKET, Decimal(10), TimeInForce.DAY
    )
    return Order(
        order_id="01JD4ZQ0K7T3X9V5N2B8M6C4R1",
        spec=spec,
        status=OrderStatus.FILLED,
        created_at=now,
        updated_at=now,
        created_sequence=123456,
        last_sequence=123460,
        broker_order_id="SIM-123456",
        filled_quantity=Decimal(10),
        fill_notional=Decimal("1000.37"),
    )


def update_bytes(sequence: int, now: datetime) -> bytes:
    """Return an encoded fill update as the gateway streams it."""
    order = sample_order(now)
    fill = Fill("SIM-123456-3", Decimal(3), Decimal("100.04"), now)
    update = OrderUpdate(sequence, order, now, fill)
    return pb.SubscribeUpdatesResponse(update=convert.update_to_proto(update)).SerializeToString()


class EchoServer:
    """Canned answers for the unary methods, a steady feed for the streams."""

    def __init__(self, stream_rate: float) -> None:
        now = datetime.now(UTC)
        order = convert.order_to_proto(sample_order(now))
        self.answers = {
            "PlaceOrder": pb.PlaceOrderResponse(order=order).SerializeToString(),
            "CancelOrder": pb.CancelOrderResponse(order=order).SerializeToString(),
            "GetOrderStatus": pb.GetOrderStatusResponse(order=order).SerializeToString(),
        }
        self.requests: dict[str, Callable[[bytes], Any]] = {
            "PlaceOrder": pb.PlaceOrderRequest.FromString,
            "CancelOrder": pb.CancelOrderRequest.FromString,
            "GetOrderStatus": pb.GetOrderStatusRequest.FromString,
        }
        self.stream_rate = stream_rate
        # Bounded like the gateway's subscriber buffers (overflow ends the stream).
        self.streams: set[asyncio.Queue[bytes]] = set()

    def unary(self, method: str) -> grpc.RpcMethodHandler[Any, Any]:
        answer = self.answers[method]

        async def handle(request: Any, context: Any) -> bytes:
            return answer

        return grpc.unary_unary_rpc_method_handler(
            handle, request_deserializer=self.requests[method], response_serializer=_identity
        )

    def subscribe(self) -> grpc.RpcMethodHandler[Any, Any]:
        async def handle(request: Any, context: Any) -> AsyncIterator[bytes]:
            queue: asyncio.Queue[bytes] = asyncio.Queue(10_000)
            yield pb.SubscribeUpdatesResponse(
                heartbeat=pb.Heartbeat(sequence=0)
            ).SerializeToString()
            self.streams.add(queue)
            try:
                while True:
                    yield await queue.get()
            finally:
                self.streams.discard(queue)

        return grpc.unary_stream_rpc_method_handler(
            handle,
            request_deserializer=pb.SubscribeUpdatesRequest.FromString,
            response_serializer=_identity,
        )

    async def publish(self) -> None:
        """Send one update to every stream, ``stream_rate`` times a second."""
        if self.stream_rate <= 0:
            return
        loop = asyncio.get_running_loop()
        interval, sequence = 1 / self.stream_rate, 0
        next_at = loop.time()
        while True:
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            if not self.streams:
                continue
            sequence += 1
            wire = update_bytes(sequence, datetime.now(UTC))
            for queue in list(self.streams):
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(wire)


def _identity(data: bytes) -> bytes:
    return data


async def serve(listen: str, stream_rate: float) -> None:
    echo = EchoServer(stream_rate)
    handlers = {name: echo.unary(name) for name in echo.answers}
    handlers["SubscribeUpdates"] = echo.subscribe()
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port(listen)
    await server.start()
    print(
        f"echo ready: listening on {listen.rpartition(':')[0]}:{port}", file=sys.stderr, flush=True
    )
    publisher = asyncio.create_task(echo.publish())
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    publisher.cancel()
    await server.stop(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.echo")
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--stream-rate", type=float, default=0.0, help="updates/s to every stream")
    args = parser.parse_args()
    asyncio.run(serve(args.listen, args.stream_rate))


if __name__ == "__main__":
    main()
