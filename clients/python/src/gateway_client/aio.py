"""The asyncio client: ``AsyncClient`` and its resumable ``AsyncSubscription``."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, cast

import grpc

from gateway_client import _convert as convert
from gateway_client import shards
from gateway_client._convert import DecimalLike
from gateway_client._models import (
    Event,
    HaltResult,
    Order,
    OrderType,
    OrderUpdate,
    Position,
    RiskLimitsReport,
    Side,
    TimeInForce,
    TradingMode,
    TradingState,
)
from gateway_client._options import (
    DEFAULT_TIMEOUT,
    ChannelSettings,
    ReconnectPolicy,
    RetryPolicy,
    TlsConfig,
    settings,
)
from gateway_client._proto.execution.v1 import execution_pb2_grpc as pb_grpc
from gateway_client._resume import ResumeState
from gateway_client.errors import GatewayClientError, from_rpc_error

if TYPE_CHECKING:
    from gateway_client._proto.execution.v1.execution_pb2_grpc import (
        ControlServiceAsyncStub,
        ExecutionServiceAsyncStub,
    )

R = TypeVar("R")
# The end-of-stream marker of grpc.aio reads (missing from grpc-stubs).
_EOF: Any = grpc.aio.EOF  # type: ignore[attr-defined]
E = TypeVar("E", bound=Event)


def new_client_order_id() -> str:
    """A fresh client_order_id: unique, 1-48 characters the gateway accepts."""
    return f"sdk-{uuid.uuid4().hex}"


class AsyncClient:
    """An asyncio client for one gateway.

    ``target`` is ``host:port``. Pass ``token`` to send ``authorization: Bearer
    <token>`` with every call, and ``tls=True`` (system roots) or a ``TlsConfig``
    to encrypt. Unary calls get ``timeout`` seconds per attempt; PlaceOrder,
    GetOrderStatus and ListOrders are retried on UNAVAILABLE and
    DEADLINE_EXCEEDED by ``retry`` (PlaceOrder with the same client_order_id,
    so the order exists once); CancelOrder only on UNAVAILABLE.

    Every call names its account in the ``x-gateway-account`` metadata too, so
    a proxy can route it to the account's shard. With ``shard_map`` (a
    ``shards.ShardMap`` or its file) the client sends each call straight to
    its account's shard; with ``follow_shard_redirects`` a call refused
    ``WRONG_SHARD`` is sent once to the shard the refusal names (see
    ``gateway_client.shards``).
    """

    def __init__(
        self,
        target: str,
        *,
        token: str | None = None,
        tls: TlsConfig | bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        reconnect: ReconnectPolicy | None = None,
        channel_options: Sequence[tuple[str, Any]] = (),
        shard_map: shards.ShardMap | str | Path | None = None,
        follow_shard_redirects: bool = False,
    ) -> None:
        self._settings: ChannelSettings = settings(target, token, tls, channel_options)
        self._channel = self._settings.aio_channel()
        self._stub: ExecutionServiceAsyncStub = pb_grpc.ExecutionServiceStub(self._channel)
        # Account shards (gateway_client.shards): each call to its account's shard.
        self._routes: shards.AsyncShardRoutes | None = None
        if shard_map is not None or follow_shard_redirects:
            self._routes = shards.AsyncShardRoutes(
                self._settings, self._channel, shards.as_map(shard_map), follow_shard_redirects
            )
            self._stub = cast("ExecutionServiceAsyncStub", self._routes)
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._reconnect = reconnect or ReconnectPolicy()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the channel; open subscriptions end."""
        await self._channel.close(grace=None)
        if self._routes is not None:
            await self._routes.close()

    async def place_order(
        self,
        account: str,
        symbol: str,
        side: Side,
        quantity: DecimalLike,
        *,
        order_type: OrderType = OrderType.MARKET,
        limit_price: DecimalLike | None = None,
        stop_price: DecimalLike | None = None,
        time_in_force: TimeInForce = TimeInForce.DAY,
        client_order_id: str | None = None,
        timeout: float | None = None,
    ) -> Order:
        """Place an order, idempotently; return it as the gateway knows it.

        Without ``client_order_id`` one is generated, once: every retry reuses
        it, so a retried call never places a second order. Keep the returned
        order's ``client_order_id`` to retry yourself after an error.
        """
        request = convert.place_request_to_proto(
            account=account,
            client_order_id=client_order_id or new_client_order_id(),
            symbol=symbol,
            side=side,
            quantity=quantity,
            order_type=order_type,
            limit_price=limit_price,
            stop_price=stop_price,
            time_in_force=time_in_force,
        )
        response = await self._call(
            lambda t: self._stub.PlaceOrder(request, timeout=t, metadata=self._metadata(account)),
            timeout,
        )
        return convert.order_from_proto(response.order)

    async def cancel_order(
        self,
        account: str,
        *,
        order_id: str | None = None,
        client_order_id: str | None = None,
        timeout: float | None = None,
    ) -> Order:
        """Ask to cancel an order; return it (PENDING_CANCEL or already CANCELED)."""
        request = convert.cancel_request_to_proto(account, order_id, client_order_id)
        response = await self._call(
            lambda t: self._stub.CancelOrder(request, timeout=t, metadata=self._metadata(account)),
            timeout,
            on_deadline=False,
        )
        return convert.order_from_proto(response.order)

    async def get_order(
        self,
        account: str,
        *,
        order_id: str | None = None,
        client_order_id: str | None = None,
        timeout: float | None = None,
    ) -> Order:
        """Return one order's current state, by either of its ids."""
        request = convert.status_request_to_proto(account, order_id, client_order_id)
        response = await self._call(
            lambda t: self._stub.GetOrderStatus(
                request, timeout=t, metadata=self._metadata(account)
            ),
            timeout,
        )
        return convert.order_from_proto(response.order)

    async def list_orders(
        self,
        account: str,
        *,
        open_only: bool = False,
        symbols: Sequence[str] = (),
        page_size: int = 0,
        timeout: float | None = None,
    ) -> list[Order]:
        """Return every matching order of the account, oldest first (all pages)."""
        return [
            order
            async for order in self.iter_orders(
                account, open_only=open_only, symbols=symbols, page_size=page_size, timeout=timeout
            )
        ]

    async def iter_orders(
        self,
        account: str,
        *,
        open_only: bool = False,
        symbols: Sequence[str] = (),
        page_size: int = 0,
        timeout: float | None = None,
    ) -> AsyncIterator[Order]:
        """Yield matching orders, oldest first, fetching a page at a time."""
        token = ""
        while True:
            request = convert.list_request_to_proto(account, open_only, symbols, page_size, token)
            response = await self._call(
                lambda t, r=request: self._stub.ListOrders(  # type: ignore[misc]
                    r, timeout=t, metadata=self._metadata(account)
                ),
                timeout,
            )
            for order in response.orders:
                yield convert.order_from_proto(order)
            if not response.next_page_token:
                return
            token = response.next_page_token

    # --- Trading controls: amend, mass cancel and positions (ExecutionService),
    # --- then the operator's kill switch and risk limits (ControlService).

    async def replace_order(
        self,
        account: str,
        *,
        order_id: str | None = None,
        client_order_id: str | None = None,
        quantity: DecimalLike | None = None,
        limit_price: DecimalLike | None = None,
        stop_price: DecimalLike | None = None,
        replace_id: str | None = None,
        timeout: float | None = None,
    ) -> Order:
        """Amend an open order (a new quantity and/or limit or stop price); return it.

        ``quantity`` is the new total, filled part included; what you omit
        stays. The answer is usually PENDING_REPLACE: the outcome arrives on
        the update stream as an update of kind REPLACED (new terms) or
        REPLACE_REJECTED (old terms kept, ``reject_reason`` says why). Without
        ``replace_id`` one is generated, once: every retry reuses it, so the
        broker sees the replace once.
        """
        request = convert.replace_request_to_proto(
            account=account,
            order_id=order_id,
            client_order_id=client_order_id,
            replace_id=replace_id or new_client_order_id(),
            quantity=quantity,
            limit_price=limit_price,
            stop_price=stop_price,
        )
        response = await self._call(
            lambda t: self._stub.ReplaceOrder(request, timeout=t, metadata=self._metadata(account)),
            timeout,
        )
        return convert.order_from_proto(response.order)

    async def cancel_all_orders(
        self,
        account: str,
        *,
        symbol: str | None = None,
        side: Side | None = None,
        timeout: float | None = None,
    ) -> list[Order]:
        """Ask to cancel every open order of the account (or of one symbol and/or side).

        Return the orders asked to cancel, each PENDING_CANCEL (or already
        CANCELED); each outcome arrives on the update stream. Like
        ``cancel_order``, not retried after DEADLINE_EXCEEDED.
        """
        request = convert.cancel_all_request_to_proto(account, symbol, side)
        response = await self._call(
            lambda t: self._stub.CancelAllOrders(
                request, timeout=t, metadata=self._metadata(account)
            ),
            timeout,
            on_deadline=False,
        )
        return [convert.order_from_proto(order) for order in response.orders]

    async def get_positions(
        self, account: str, symbols: Sequence[str] = (), *, timeout: float | None = None
    ) -> list[Position]:
        """Return the account's net positions by symbol (every symbol traded, or these)."""
        request = convert.positions_request_to_proto(account, symbols)
        response = await self._call(
            lambda t: self._stub.GetPositions(request, timeout=t, metadata=self._metadata(account)),
            timeout,
        )
        return [convert.position_from_proto(position) for position in response.positions]

    async def halt_trading(
        self,
        account: str | None = None,
        *,
        mode: TradingMode = TradingMode.HALTED,
        cancel_open_orders: bool = False,
        reason: str = "",
        timeout: float | None = None,
    ) -> HaltResult:
        """Halt trading for one account, or for all (None); needs the admin grant.

        HALTED refuses every new order and replace; REDUCING lets through only
        orders that reduce a position. Once this returns nothing new reaches
        the broker for the scope. Retried like a read: halting twice is one halt.
        """
        request = convert.halt_request_to_proto(account or "", mode, cancel_open_orders, reason)
        response = await self._call(
            lambda t: self._control.HaltTrading(
                request, timeout=t, metadata=self._metadata(account)
            ),
            timeout,
        )
        return convert.halt_result_from_proto(response)

    async def resume_trading(
        self, account: str | None = None, *, reason: str = "", timeout: float | None = None
    ) -> TradingState:
        """Lift one account's halt, or the gateway-wide one (None); return the halts left."""
        request = convert.resume_request_to_proto(account or "", reason)
        response = await self._call(
            lambda t: self._control.ResumeTrading(
                request, timeout=t, metadata=self._metadata(account)
            ),
            timeout,
        )
        return convert.trading_state_from_proto(response.state)

    async def get_trading_state(self, *, timeout: float | None = None) -> TradingState:
        """Return every halt in force (none: trading is ACTIVE everywhere)."""
        request = convert.trading_state_request_to_proto()
        response = await self._call(
            lambda t: self._control.GetTradingState(request, timeout=t, metadata=self._metadata()),
            timeout,
        )
        return convert.trading_state_from_proto(response.state)

    async def get_risk_limits(
        self, account: str | None = None, *, timeout: float | None = None
    ) -> RiskLimitsReport:
        """Return the risk limits in force: those of one account, or the defaults and every
        override (None), with the state of the limits file."""
        request = convert.risk_limits_request_to_proto(account or "")
        response = await self._call(
            lambda t: self._control.GetRiskLimits(
                request, timeout=t, metadata=self._metadata(account)
            ),
            timeout,
        )
        return convert.risk_report_from_proto(response)

    @functools.cached_property
    def _control(self) -> ControlServiceAsyncStub:
        # On the same channel, made on first use: most clients never halt anything.
        return pb_grpc.ControlServiceStub(self._channel)

    def subscribe(
        self,
        accounts: Sequence[str] = (),
        symbols: Sequence[str] = (),
        *,
        after_sequence: int | None = None,
        snapshot: bool = False,
    ) -> AsyncSubscription[OrderUpdate]:
        """Stream order updates; reconnect and resume on failure, each update once.

        ``after_sequence=N`` starts with every update after N (0: all the
        journal holds); ``snapshot=True`` starts with the open orders' current
        state. Iterate it with ``async for``; ``last_sequence`` says where to
        resume a new subscription later. Position and trading-state updates
        are not yielded here (``subscribe_events`` yields them).
        """
        return AsyncSubscription(
            self._stub,
            ResumeState(accounts, symbols, after_sequence, snapshot, self._reconnect),
            self._metadata(accounts[0] if accounts else None),
            OrderUpdate,
        )

    def subscribe_events(
        self,
        accounts: Sequence[str] = (),
        symbols: Sequence[str] = (),
        *,
        after_sequence: int | None = None,
        snapshot: bool = False,
    ) -> AsyncSubscription[Event]:
        """Like ``subscribe``, but also yield heartbeats, the snapshot's end, and position
        and trading-state updates (``PositionUpdate``, ``TradingStateUpdate``)."""
        return AsyncSubscription(
            self._stub,
            ResumeState(accounts, symbols, after_sequence, snapshot, self._reconnect),
            self._metadata(accounts[0] if accounts else None),
            cast(type[Event], object),
        )

    def _metadata(self, account: str | None = None) -> tuple[tuple[str, str], ...]:
        # The account as metadata too: a proxy routes on it (gateway_client.shards).
        return shards.with_account(self._settings.metadata(), account)

    async def _call(
        self,
        attempt: Callable[[float], Awaitable[R]],
        timeout: float | None,
        *,
        on_deadline: bool = True,
    ) -> R:
        per_attempt = self._timeout if timeout is None else timeout
        tries = 0
        while True:
            tries += 1
            try:
                return await attempt(per_attempt)
            except grpc.RpcError as rpc_error:
                error = from_rpc_error(rpc_error)
                if not _should_retry(error, on_deadline) or tries >= self._retry.max_attempts:
                    raise error from None
            await asyncio.sleep(self._retry.backoff.delay(tries))


def _should_retry(error: GatewayClientError, on_deadline: bool) -> bool:
    if error.code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return on_deadline
    return error.retryable


class AsyncSubscription(Generic[E]):
    """An update stream that survives disconnects: ``async for event in subscription``."""

    def __init__(
        self,
        stub: ExecutionServiceAsyncStub,
        state: ResumeState,
        metadata: tuple[tuple[str, str], ...],
        kind: type[E],
    ) -> None:
        self._stub = stub
        self._state = state
        self._metadata = metadata
        self._kind = kind
        self._call: Any = None
        self._pending: Event | None = None
        self._closed = False

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    async def open(self) -> Self:
        """Connect now and wait for the gateway's first message; return self.

        Iteration connects by itself, but lazily: a live subscription (no
        ``after_sequence``) opened with ``open()`` or ``async with`` is sure to
        see every update from the moment it returns.
        """
        if self._call is None:
            self._call = self._connect()
            try:
                first = await self._call.read()
            except grpc.RpcError as rpc_error:
                raise from_rpc_error(rpc_error) from None
            if first is not _EOF:
                self._pending = self._state.accept(first)
        return self

    def _connect(self) -> Any:
        return self._stub.SubscribeUpdates(self._state.request(), metadata=self._metadata)

    @property
    def last_sequence(self) -> int | None:
        """Resume a later subscription with ``after_sequence`` = this."""
        return self._state.last_sequence

    @property
    def reconnects(self) -> int:
        """How many times the stream was re-established."""
        return self._state.reconnects

    def __aiter__(self) -> AsyncIterator[E]:
        return self._events()

    async def _events(self) -> AsyncIterator[E]:
        while not self._closed:
            error: GatewayClientError | None = None
            if self._call is None:
                self._call = self._connect()
            try:
                pending, self._pending = self._pending, None
                if pending is not None and isinstance(pending, self._kind):
                    yield pending
                # read(), not `async for`: open() has read already, and
                # grpc.aio refuses to mix the two styles on one call.
                while (message := await self._call.read()) is not _EOF:
                    event = self._state.accept(message)
                    if event is not None and isinstance(event, self._kind):
                        yield event
            except asyncio.CancelledError:
                if self._closed:  # our own close(), not the task's cancellation
                    return
                raise
            except grpc.RpcError as rpc_error:
                if self._closed:
                    return
                error = from_rpc_error(rpc_error)
            finally:
                self._call.cancel()
                self._call = None
            if self._closed:
                return
            await asyncio.sleep(self._state.next_delay(error))

    def close(self) -> None:
        """End the subscription; the iteration stops."""
        self._closed = True
        if self._call is not None:
            self._call.cancel()
