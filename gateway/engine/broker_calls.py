"""Broker calls as they run outside the actor, with retries.

Each function runs as its own task and returns the message the actor gets
back; none of them touches the order table. Only transient errors are
retried (tenacity, exponential backoff with jitter), and the retry machinery
is built only once a first attempt failed transiently: the common call that
succeeds at once costs one timeout and one await. An unknown outcome is
settled by asking the broker by client_order_id before anything is re-sent,
and a re-send always uses the same client_order_id, so the broker can never
end up with two orders for one key.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_any,
    wait_random_exponential,
)
from tenacity.stop import stop_base

from gateway.brokers import (
    Broker,
    BrokerError,
    BrokerOrderState,
    BrokerRejected,
    BrokerTimeout,
    BrokerTransientError,
    BrokerUnavailable,
    BulkOrderStates,
    CancelsAll,
    Replaces,
    SubmitAck,
)
from gateway.domain import OrderSpec
from gateway.engine.breaker import BrokerHealth
from gateway.engine.config import EngineConfig
from gateway.engine.messages import Absent, BulkCancelDone, CancelDone, ReplaceDone, SubmitDone

log = logging.getLogger(__name__)

_T = TypeVar("_T")
# Where the broker's view of an order goes: into the actor, which applies it.
StateSink = Callable[[BrokerOrderState], Awaitable[None]]


class _PastDeadline(stop_base):
    """Stop once ``deadline`` (monotonic seconds) has passed; never if None.

    A module-level class: defined inside ``_retrying`` it was a new class
    (an ABCMeta construction) for every broker call.
    """

    def __init__(self, deadline: float | None) -> None:
        self.deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline


def _retrying(config: EngineConfig, deadline: float | None) -> AsyncRetrying:
    """Retry transient errors: bounded by attempts and by ``deadline`` (monotonic)."""
    backoff = wait_random_exponential(
        multiplier=config.broker_backoff, max=config.broker_backoff_max
    )

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, BrokerTransientError) and error.retry_after is not None:
            # The venue said when to come back (429 Retry-After): honour it.
            delay = min(error.retry_after, config.retry_after_max)
        else:
            # Full jitter: a random delay up to an exponentially growing cap, so
            # retries from many orders spread out instead of arriving together.
            delay = backoff(state)
        if deadline is not None:
            delay = max(0.0, min(delay, deadline - time.monotonic()))
        return delay

    return AsyncRetrying(
        retry=retry_if_exception_type(BrokerTransientError),
        stop=stop_any(stop_after_attempt(config.broker_attempts), _PastDeadline(deadline)),
        wait=wait,
        reraise=True,
        before_sleep=lambda state: log.warning(
            "broker call failed (attempt %d), retrying in %.3fs: %r",
            state.attempt_number,
            state.upcoming_sleep,
            state.outcome.exception() if state.outcome else None,
        ),
    )


async def _with_retries(
    config: EngineConfig, deadline: float | None, attempt: Callable[[], Awaitable[_T]]
) -> _T:
    """Run ``attempt``; retry it on transient errors, bounded by attempts and ``deadline``.

    The first try runs bare. Only after it failed transiently is tenacity
    built, and its first attempt re-raises that failure instead of calling
    again, so the attempt count, backoff and logging are tenacity's own.
    """
    try:
        return await attempt()
    except BrokerTransientError as error:
        first: BrokerTransientError | None = error
    async for retry in _retrying(config, deadline):
        with retry:
            if first is not None:
                failure, first = first, None
                raise failure
            return await attempt()
    raise AssertionError("unreachable: tenacity either returns or raises")


async def _call(config: EngineConfig, health: BrokerHealth, call: Awaitable[_T]) -> _T:
    """Run one broker call with the call timeout, recording its outcome in ``health``."""
    try:
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel.
        async with asyncio.timeout(config.broker_call_timeout):
            result = await call
    except TimeoutError:
        error = BrokerTimeout(f"no answer within {config.broker_call_timeout}s")
        health.record(error)
        raise error from None
    except BrokerError as error:
        health.record(error)
        raise
    health.record(None)
    return result


async def submit_order(
    broker: Broker,
    config: EngineConfig,
    health: BrokerHealth,
    order_id: str,
    spec: OrderSpec,
    deliver: StateSink,
    *,
    ask_first: bool = False,
    deadline: float | None = None,
) -> SubmitDone:
    """Submit ``spec``; on an unknown outcome ask the broker before re-sending.

    ``ask_first`` starts by asking (used on recovery, when an earlier process
    may have sent the order before it died). Re-sends use the same
    client_order_id, so the venue can never hold two orders for one key.

    Once the outcome was unknown, it stays unknown: a later "unavailable"
    (even to the question) does not prove the order never arrived, so the
    failure is reported as a timeout and the order stays PENDING_NEW for
    reconciliation, never rejected.
    """
    outcome_unknown = ask_first

    async def attempt() -> SubmitDone:
        nonlocal ask_first, outcome_unknown
        if ask_first:
            state = await _call(
                config, health, broker.order_status(spec.account, spec.client_order_id)
            )
            if state is not None:
                await deliver(state)
                return SubmitDone(order_id, ack=SubmitAck(state.broker_order_id))
            ask_first = False
        try:
            ack = await _call(config, health, broker.submit(spec))
        except BrokerTimeout:
            # The order may exist now: ask before the next try re-sends.
            ask_first = outcome_unknown = True
            raise
        return SubmitDone(order_id, ack=ack)

    try:
        return await _with_retries(config, deadline, attempt)
    except asyncio.CancelledError:
        raise
    except BrokerUnavailable as exc:
        if outcome_unknown:
            return SubmitDone(order_id, error=BrokerTimeout(f"outcome unknown; then: {exc}"))
        return SubmitDone(order_id, error=exc)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a message for the actor
        return SubmitDone(order_id, error=exc)


async def recheck_submit(
    broker: Broker,
    config: EngineConfig,
    health: BrokerHealth,
    order_id: str,
    spec: OrderSpec,
    deliver: StateSink,
) -> Absent | None:
    """Ask the broker about an order whose submit ended in doubt.

    Settles it now rather than at the next reconciliation pass (which may be
    ``reconcile_interval`` away): found, its state is delivered (ACCEPTED,
    fills); absent, the actor applies the absence grace. Waits a probe
    interval first, since the broker just failed to answer. Still no answer:
    the order stays PENDING_NEW and reconciliation keeps asking.
    """
    await asyncio.sleep(config.unhealthy_probe_interval)
    try:
        state = await _with_retries(
            config,
            None,
            lambda: check_order(broker, config, health, spec.account, spec.client_order_id),
        )
    except Exception as exc:  # noqa: BLE001 - reconciliation asks again
        log.warning(
            "order %s still in doubt after asking (%r); reconciliation asks again", order_id, exc
        )
        return None
    if state is None:
        return Absent(order_id)
    await deliver(state)
    return None


async def cancel_order(
    broker: Broker,
    config: EngineConfig,
    health: BrokerHealth,
    order_id: str,
    account: str,
    client_order_id: str,
    broker_order_id: str,
    deliver: StateSink,
) -> CancelDone:
    """Ask the broker to cancel; cancels are idempotent there, so retries are safe.

    A cancel whose outcome stays unknown is settled by asking the broker for
    the order, never assumed either way. That includes a retry refused because
    the first, timed-out try already cancelled the order.
    """
    outcome_unknown = False

    async def attempt() -> CancelDone:
        nonlocal outcome_unknown
        try:
            await _call(config, health, broker.cancel(account, client_order_id, broker_order_id))
        except BrokerTimeout:
            outcome_unknown = True
            raise
        return CancelDone(order_id)

    try:
        return await _with_retries(config, None, attempt)
    except asyncio.CancelledError:
        raise
    except BrokerError as exc:
        if outcome_unknown:
            return await _settle_unknown_cancel(
                broker, config, health, order_id, account, client_order_id, deliver, exc
            )
        return CancelDone(order_id, error=exc)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a message for the actor
        return CancelDone(order_id, error=exc)


async def _settle_unknown_cancel(
    broker: Broker,
    config: EngineConfig,
    health: BrokerHealth,
    order_id: str,
    account: str,
    client_order_id: str,
    deliver: StateSink,
    cause: BrokerError,
) -> CancelDone:
    try:
        state = await _call(config, health, broker.order_status(account, client_order_id))
    except BrokerError:
        # Still unknown: the order stays PENDING_CANCEL and reconciliation asks again.
        log.warning("cancel of %s unresolved (%s); reconciliation will ask", order_id, cause)
        return CancelDone(order_id, unresolved=True)
    if state is None:
        return CancelDone(order_id, error=BrokerRejected("order unknown at the broker"))
    await deliver(state)
    if state.status.is_terminal:
        return CancelDone(order_id)
    return CancelDone(order_id, error=BrokerRejected("cancel not confirmed: still open at broker"))


async def replace_order(
    broker: Broker,
    replacer: Replaces,
    config: EngineConfig,
    health: BrokerHealth,
    order_id: str,
    broker_order_id: str,
    spec: OrderSpec,
    replace_id: str,
) -> ReplaceDone:
    """Ask the broker (``replacer``, the same object) to give the order ``spec``'s terms.

    Retried only while it certainly did not arrive (unavailable, rate
    limited). Once an attempt timed out the replace may have happened, and a
    venue that makes a replacement order (Alpaca) would refuse or repeat a
    second one: the broker is asked for the order instead, and its state
    comes back with the ``unresolved`` outcome for the desk to compare with
    the pending terms (no state: reconciliation asks later).
    """

    async def attempt() -> ReplaceDone:
        try:
            ack = await _call(
                config,
                health,
                replacer.replace(
                    spec.account, spec.client_order_id, broker_order_id, spec, replace_id
                ),
            )
        except BrokerTimeout as exc:
            raise _OutcomeUnknown(exc) from None  # not transient: ends the retries
        return ReplaceDone(order_id, ack=ack)

    try:
        return await _with_retries(config, None, attempt)
    except asyncio.CancelledError:
        raise
    except _OutcomeUnknown as unknown:
        try:
            state = await _call(
                config, health, broker.order_status(spec.account, spec.client_order_id)
            )
        except BrokerError:
            log.warning("replace of %s unresolved (%s); reconciliation will ask", order_id, unknown)
            return ReplaceDone(order_id, unresolved=True)
        return ReplaceDone(order_id, unresolved=True, state=state)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a message for the actor
        return ReplaceDone(order_id, error=exc)


async def cancel_all_orders(
    broker: CancelsAll,
    config: EngineConfig,
    health: BrokerHealth,
    account: str,
    order_ids: list[str],
) -> BulkCancelDone:
    """Ask the broker to cancel every open order of ``account`` in one call.

    Retried like a cancel (it is idempotent at the venue). An outcome left
    unknown is settled order by order by reconciliation, as a single
    cancel's is.
    """
    unknown = False

    async def attempt() -> BulkCancelDone:
        nonlocal unknown
        try:
            await _call(config, health, broker.cancel_all_orders(account))
        except BrokerTimeout:
            unknown = True
            raise
        return BulkCancelDone(account, order_ids)

    try:
        return await _with_retries(config, None, attempt)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure becomes a message for the actor
        return BulkCancelDone(account, order_ids, error=exc, unresolved=unknown)


class _OutcomeUnknown(Exception):
    """A replace timed out: carried past the retries, which would re-send it."""


async def check_order(
    broker: Broker, config: EngineConfig, health: BrokerHealth, account: str, client_order_id: str
) -> BrokerOrderState | None:
    """Ask the broker for one order (one try; reconciliation comes back anyway)."""
    return await _call(config, health, broker.order_status(account, client_order_id))


async def check_orders_since(
    broker: BulkOrderStates,
    config: EngineConfig,
    health: BrokerHealth,
    account: str,
    since: datetime,
) -> list[BrokerOrderState]:
    """Ask the broker for an account's orders submitted after ``since``, in bulk (one try)."""
    return await _call(config, health, broker.orders_since(account, since))


async def check_open_orders(
    broker: Broker, config: EngineConfig, health: BrokerHealth
) -> list[BrokerOrderState]:
    """Ask the broker for every open order it holds (one try)."""
    return await _call(config, health, broker.open_orders())
