"""ExecutionService: protobuf in, domain calls on the actor, protobuf out.

The only layer that sees protobuf. Each RPC validates its request into a
domain value (``validation``), asks the actor, and encodes the answer
(``wire``, over ``convert``); every ``GatewayError`` becomes a status via
``errors``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import grpc

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway.auth.limits import current_stream
from gateway.domain import OrderUpdate, SubscriptionFilter
from gateway.domain.controls import AnyUpdate, flat
from gateway.engine import OrderActor, Subscriber
from gateway.errors import FieldViolation, GatewayError, InvalidArgument
from gateway.observability import tracing
from gateway.service import control_convert, convert, validation
from gateway.service.config import ServiceConfig
from gateway.service.errors import abort_with
from gateway.service.wire import OrderEncoder

log = logging.getLogger(__name__)

_Request = TypeVar("_Request")
_Response = TypeVar("_Response")
Context = grpc.aio.ServicerContext[Any, Any]


def _unary(
    handler: Callable[[Any, _Request, Context], Awaitable[_Response]],
) -> Callable[[Any, _Request, Context], Awaitable[_Response]]:
    """Translate GatewayErrors raised by ``handler`` into statuses."""

    @functools.wraps(handler)
    async def wrapper(self: Any, request: _Request, context: Context) -> _Response:
        try:
            return await handler(self, request, context)
        except GatewayError as error:
            await abort_with(context, error)
            raise AssertionError("abort returned") from error  # abort always raises

    return wrapper


class ExecutionServicer:
    """The gRPC face of the order actor."""

    def __init__(self, actor: OrderActor, config: ServiceConfig | None = None) -> None:
        self._actor = actor
        self._config = config or ServiceConfig()
        # Answers and updates share each order state's encoding (see ``wire``).
        self._wire = OrderEncoder()

    # The unary RPCs answer with the encoded response (``add_to_server``
    # registers them with a pass-through serializer).

    @_unary
    async def PlaceOrder(self, request: pb.PlaceOrderRequest, context: Context) -> bytes:
        spec = _validate_place(request)
        order = await self._actor.place_order(spec, ack_wait=_ack_wait(context))
        return self._wire.order_response(order)

    @_unary
    async def CancelOrder(self, request: pb.CancelOrderRequest, context: Context) -> bytes:
        order = await self._actor.cancel_order(validation.order_ref_from_proto(request))
        return self._wire.order_response(order)

    @_unary
    async def GetOrderStatus(self, request: pb.GetOrderStatusRequest, context: Context) -> bytes:
        order = await self._actor.get_order(validation.order_ref_from_proto(request))
        return self._wire.order_response(order)

    @_unary
    async def ListOrders(self, request: pb.ListOrdersRequest, context: Context) -> bytes:
        query = validation.list_query_from_proto(request)
        orders, more = await self._actor.list_orders(query)
        token = (
            validation.encode_page_token(query, orders[-1].created_sequence)
            if more and orders
            else ""
        )
        return self._wire.list_response(orders, token)

    @_unary
    async def ReplaceOrder(self, request: pb.ReplaceOrderRequest, context: Context) -> bytes:
        ref, terms = validation.replace_order_from_proto(request)
        order = await self._actor.replace_order(ref, terms)
        return self._wire.order_response(order)

    @_unary
    async def CancelAllOrders(self, request: pb.CancelAllOrdersRequest, context: Context) -> bytes:
        account, symbol, side = validation.cancel_all_from_proto(request)
        orders = await self._actor.cancel_all(account, symbol, side)
        # Same layout as ListOrdersResponse: repeated Order orders = 1.
        return self._wire.list_response(orders, "")

    async def SubscribeUpdates(
        self, request: pb.SubscribeUpdatesRequest, context: Context
    ) -> AsyncIterator[bytes]:
        """Stream encoded SubscribeUpdatesResponse messages (see ``add_to_server``)."""
        try:
            filter_ = validation.subscription_from_proto(request)
            subscriber = await self._subscribe(filter_)
        except GatewayError as error:
            await abort_with(context, error)
            return
        # From here on the subscriber is ours to release, whatever ends the stream.
        try:
            stream = current_stream.get()
            if stream is not None:
                # A reload that revokes the caller's credential ends the stream now,
                # not at its next update or heartbeat.
                stream.on_end(subscriber.end_with)
            async for wire in self._stream(filter_, subscriber):
                yield wire
        except GatewayError as error:
            await abort_with(context, error)
        finally:
            self._actor.unsubscribe(subscriber)

    async def _subscribe(self, filter_: SubscriptionFilter) -> Subscriber:
        """Register a subscriber with the actor; never leave one behind if cancelled.

        The actor registers the subscriber in its own task and then answers.
        A stream cancelled between the two (the client went away just then)
        would get CancelledError from the await with the subscriber already
        registered and no handle to release it: it would stay in the fan-out
        forever. So the registration runs as its own task, shielded from this
        stream's cancellation, and a cancelled stream releases whatever that
        task produces once it is done.
        """
        registering = asyncio.ensure_future(self._actor.subscribe(filter_))
        try:
            return await asyncio.shield(registering)
        except asyncio.CancelledError:
            registering.add_done_callback(self._release_abandoned)
            raise

    def _release_abandoned(self, registering: asyncio.Future[Subscriber]) -> None:
        """Release the subscriber of a stream that was cancelled while it registered."""
        if registering.cancelled() or registering.exception() is not None:
            return  # nothing was registered (refused, or the actor stopped)
        self._actor.unsubscribe(registering.result())

    async def _stream(
        self, filter_: SubscriptionFilter, subscriber: Subscriber
    ) -> AsyncIterator[bytes]:
        """Yield what one subscriber is sent: snapshot or replay, then live updates."""
        after = filter_.after_sequence
        if after is not None and after > subscriber.live_after:
            raise InvalidArgument(
                [
                    FieldViolation(
                        "after_sequence",
                        f"{after} is beyond the newest sequence {subscriber.live_after}; "
                        "was the gateway's journal replaced?",
                    )
                ]
            )
        yield self._heartbeat()
        if filter_.snapshot:
            for order in subscriber.snapshot:
                subscriber.check_open()
                snapshot = OrderUpdate(order.last_sequence, order, order.updated_at, snapshot=True)
                yield self._wire.update_response(snapshot)
            complete = pb.SnapshotComplete(
                sequence=subscriber.live_after, order_count=len(subscriber.snapshot)
            )
            subscriber.snapshot = []
            yield pb.SubscribeUpdatesResponse(snapshot_complete=complete).SerializeToString()
        cursor = after if after is not None else subscriber.live_after
        while cursor < subscriber.live_after:
            updates, cursor = await self._actor.replay(
                filter_, cursor, subscriber.live_after, self._config.replay_page
            )
            for update in updates:
                subscriber.check_open()  # a replay ends as promptly as live updates do
                yield self._encode_update(update)
                subscriber.last_sent = update.sequence
        while True:
            published = await subscriber.next(self._config.heartbeat_interval)
            if published is None:
                yield self._heartbeat()
            else:
                yield published.wire(self._encode_update)

    def _encode_update(self, update: AnyUpdate) -> bytes:
        """An order update through the order cache; a position or halt as itself."""
        if type(update) is OrderUpdate:
            return self._wire.update_response(update)
        assert not isinstance(update, OrderUpdate)
        return control_convert.control_update_response(update)

    @_unary
    async def GetPositions(self, request: pb.GetPositionsRequest, context: Context) -> bytes:
        account, symbols = validation.positions_query_from_proto(request)
        positions = await self._actor.get_positions(account, symbols)
        by_symbol = {p.symbol: p for p in positions}
        now = datetime.now(UTC)
        # A symbol asked for and never traded comes back flat.
        found = [by_symbol.get(s) or flat(account, s, now) for s in sorted(symbols)]
        return pb.GetPositionsResponse(
            positions=[control_convert.position_to_proto(p) for p in (found or positions)]
        ).SerializeToString()

    def _heartbeat(self) -> bytes:
        heartbeat = convert.heartbeat_to_proto(self._actor.last_sequence, datetime.now(UTC))
        return pb.SubscribeUpdatesResponse(heartbeat=heartbeat).SerializeToString()


def _pre_encoded(wire: bytes) -> bytes:
    return wire


def add_to_server(servicer: ExecutionServicer, server: grpc.aio.Server) -> None:
    """Register ``servicer`` like the generated ``add_..._to_server``, except that
    every handler returns bytes it encoded itself (each order state once, each
    update once for all subscribers) instead of messages the server encodes."""
    handlers = {
        "PlaceOrder": grpc.unary_unary_rpc_method_handler(
            servicer.PlaceOrder,
            request_deserializer=pb.PlaceOrderRequest.FromString,
            response_serializer=_pre_encoded,
        ),
        "CancelOrder": grpc.unary_unary_rpc_method_handler(
            servicer.CancelOrder,
            request_deserializer=pb.CancelOrderRequest.FromString,
            response_serializer=_pre_encoded,
        ),
        "GetOrderStatus": grpc.unary_unary_rpc_method_handler(
            servicer.GetOrderStatus,
            request_deserializer=pb.GetOrderStatusRequest.FromString,
            response_serializer=_pre_encoded,
        ),
        "ListOrders": grpc.unary_unary_rpc_method_handler(
            servicer.ListOrders,
            request_deserializer=pb.ListOrdersRequest.FromString,
            response_serializer=_pre_encoded,
        ),
        "ReplaceOrder": grpc.unary_unary_rpc_method_handler(
            servicer.ReplaceOrder,
            request_deserializer=pb.ReplaceOrderRequest.FromString,
            response_serializer=_pre_encoded,
        ),
        "CancelAllOrders": grpc.unary_unary_rpc_method_handler(
            servicer.CancelAllOrders,
            request_deserializer=pb.CancelAllOrdersRequest.FromString,
            response_serializer=_pre_encoded,
        ),
        "SubscribeUpdates": grpc.unary_stream_rpc_method_handler(
            servicer.SubscribeUpdates,
            request_deserializer=pb.SubscribeUpdatesRequest.FromString,
            response_serializer=_pre_encoded,
        ),
        "GetPositions": grpc.unary_unary_rpc_method_handler(
            servicer.GetPositions,
            request_deserializer=pb.GetPositionsRequest.FromString,
            response_serializer=_pre_encoded,
        ),
    }
    name = pb.DESCRIPTOR.services_by_name["ExecutionService"].full_name
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, handlers),))


def _place_attributes(request: pb.PlaceOrderRequest) -> dict[str, Any]:
    # Identifiers only: what the request names, never its body.
    return {"gateway.account": request.account, "gateway.client_order_id": request.client_order_id}


_validate_place = tracing.traced(
    "validate.PlaceOrder", validation.place_order_from_proto, _place_attributes
)


def _ack_wait(context: Context) -> float | None:
    """Wait for the broker no longer than the caller's deadline allows (less a margin)."""
    remaining = context.time_remaining()
    if remaining is None:
        return None
    return max(0.0, remaining - 0.05)
