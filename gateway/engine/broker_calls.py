"""Broker calls as they run outside the actor, with retries.

Each function runs as its own task and returns the message the actor gets
back; none of them touches the order table. Only transient errors are
retried (tenacity, exponential backoff with jitter). An unknown outcome is
settled by asking the broker by client_order_id before anything is re-sent,
and a re-send always uses the same client_order_id, so the broker can never
end up with two orders for one key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from gateway.brokers import (
    Broker,
    BrokerOrderState,
    BrokerTimeout,
    BrokerTransientError,
    ExecutionReport,
    ReportKind,
    SubmitAck,
)
from gateway.domain import OrderSpec, OrderStatus
from gateway.engine.config import EngineConfig
from gateway.engine.messages import CancelDone, SubmitDone

log = logging.getLogger(__name__)

_T = TypeVar("_T")
ReportSink = Callable[[ExecutionReport], Awaitable[None]]


def _retrying(config: EngineConfig) -> AsyncRetrying:
    return AsyncRetrying(
        retry=retry_if_exception_type(BrokerTransientError),
        stop=stop_after_attempt(config.broker_attempts),
        # Full jitter: a random delay up to an exponentially growing cap, so
        # retries from many orders spread out instead of arriving together.
        wait=wait_random_exponential(
            multiplier=config.broker_backoff, max=config.broker_backoff_max
        ),
        reraise=True,
        before_sleep=lambda state: log.warning(
            "broker call failed (attempt %d), retrying: %s",
            state.attempt_number,
            state.outcome.exception() if state.outcome else "",
        ),
    )


async def _timed(config: EngineConfig, call: Awaitable[_T]) -> _T:
    try:
        return await asyncio.wait_for(call, config.broker_call_timeout)
    except TimeoutError as exc:
        raise BrokerTimeout(f"no answer within {config.broker_call_timeout}s") from exc


async def submit_order(
    broker: Broker,
    config: EngineConfig,
    order_id: str,
    spec: OrderSpec,
    deliver: ReportSink,
    *,
    ask_first: bool = False,
) -> SubmitDone:
    """Submit ``spec``; on an unknown outcome ask the broker before re-sending.

    ``ask_first`` starts by asking (used on recovery, when an earlier process
    may have sent the order before it died).
    """
    try:
        async for attempt in _retrying(config):
            with attempt:
                if ask_first:
                    state = await _timed(
                        config, broker.order_status(spec.account, spec.client_order_id)
                    )
                    if state is not None:
                        await _deliver_state(state, deliver)
                        return SubmitDone(order_id, ack=SubmitAck(state.broker_order_id))
                try:
                    ack = await _timed(config, broker.submit(spec))
                except BrokerTimeout:
                    # The order may exist now: ask before the next try re-sends.
                    ask_first = True
                    raise
                return SubmitDone(order_id, ack=ack)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure becomes a message for the actor
        return SubmitDone(order_id, error=exc)
    raise AssertionError("unreachable: tenacity either returns or raises")


async def cancel_order(
    broker: Broker,
    config: EngineConfig,
    order_id: str,
    account: str,
    client_order_id: str,
    broker_order_id: str,
) -> CancelDone:
    """Ask the broker to cancel; cancels are idempotent there, so retries are safe."""
    try:
        async for attempt in _retrying(config):
            with attempt:
                await _timed(config, broker.cancel(account, client_order_id, broker_order_id))
                return CancelDone(order_id)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure becomes a message for the actor
        return CancelDone(order_id, error=exc)
    raise AssertionError("unreachable: tenacity either returns or raises")


_TERMINAL_REPORTS = {
    OrderStatus.CANCELED: ReportKind.CANCELED,
    OrderStatus.EXPIRED: ReportKind.EXPIRED,
    OrderStatus.REJECTED: ReportKind.REJECTED,
}


def reports_from_state(state: BrokerOrderState) -> list[ExecutionReport]:
    """Turn the broker's view of an order into the reports that would have led to it."""
    fill_times = [f.time for f in state.fills]
    time = max(fill_times) if fill_times else None
    reports = []
    if state.status is not OrderStatus.REJECTED:
        reports.append(_report(state, ReportKind.ACCEPTED, time))
    reports += [
        ExecutionReport(
            kind=ReportKind.FILL,
            account=state.account,
            client_order_id=state.client_order_id,
            broker_order_id=state.broker_order_id,
            time=fill.time,
            fill=fill,
        )
        for fill in state.fills
    ]
    if state.status in _TERMINAL_REPORTS:
        reports.append(_report(state, _TERMINAL_REPORTS[state.status], time))
    return reports


def _report(state: BrokerOrderState, kind: ReportKind, time: datetime | None) -> ExecutionReport:
    return ExecutionReport(
        kind=kind,
        account=state.account,
        client_order_id=state.client_order_id,
        broker_order_id=state.broker_order_id,
        time=time or datetime.now(UTC),
        reason=state.reason,
    )


async def _deliver_state(state: BrokerOrderState, deliver: ReportSink) -> None:
    for report in reports_from_state(state):
        await deliver(report)
