"""Fault injection for any broker: a bad day at the venue, on demand.

``FaultyBroker`` wraps a broker and, driven by a seeded random generator,
makes calls fail before reaching the venue, lose their answer after the venue
acted (the lost ack), get rate limited with a Retry-After, hang, or run slow;
and makes the report stream deliver duplicates, swap neighbours, and drop
everything during disconnects (reports lost in a disconnect are what
reconciliation exists for). Users load a profile with ``--sim-faults FILE``
(TOML, see ``FaultConfig.from_toml``) to test their strategies against it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from gateway.brokers.base import Broker, BrokerOrderState, ExecutionReport, SubmitAck
from gateway.brokers.errors import BrokerTransientError, BrokerUnavailable
from gateway.domain import OrderSpec

log = logging.getLogger(__name__)

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class CallFaults:
    """Faults of one kind of call; rates are probabilities per call (0 to 1)."""

    error_rate: float = 0.0
    """The call fails before reaching the venue (connection refused, 503)."""

    lost_answer_rate: float = 0.0
    """The venue acts, then the answer is lost: the caller sees a timeout."""

    rate_limit_rate: float = 0.0
    """The venue answers 429 with ``retry_after`` seconds; nothing happens."""

    retry_after: float = 0.05
    """The Retry-After of a rate-limited call, in seconds."""

    hang_rate: float = 0.0
    """The call hangs for ``hang_seconds`` before going through."""

    hang_seconds: float = 30.0

    latency_min: float = 0.0
    """Every call takes a uniform random latency in [latency_min, latency_max] seconds."""

    latency_max: float = 0.0


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """A profile of faults for calls and for the report stream."""

    seed: int = 0
    submit: CallFaults = field(default_factory=CallFaults)
    cancel: CallFaults = field(default_factory=CallFaults)
    status: CallFaults = field(default_factory=CallFaults)
    """Faults of order_status and open_orders (reconciliation's questions)."""

    duplicate_report_rate: float = 0.0
    """A report is delivered twice."""

    reorder_report_rate: float = 0.0
    """A report is held back and delivered after the next one."""

    disconnect_rate: float = 0.0
    """Per report: the venue connection drops; the stream ends with an error."""

    disconnect_seconds: float = 0.5
    """How long a disconnect lasts: every call fails and every report is lost."""

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> FaultConfig:
        """Build a config from nested tables, refusing unknown keys and bad values."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for name, value in data.items():
            if name in ("submit", "cancel", "status"):
                if not isinstance(value, Mapping):
                    raise ValueError(f"[{name}] must be a table")
                call_known = {f.name for f in fields(CallFaults)}
                bad = set(value) - call_known
                if bad:
                    raise ValueError(f"unknown [{name}] settings: {', '.join(sorted(bad))}")
                values[name] = CallFaults(
                    **{k: _number(f"{name}.{k}", v) for k, v in value.items()}
                )
            elif name == "seed":
                if not isinstance(value, int) or isinstance(value, bool):
                    raise ValueError("seed must be an integer")
                values[name] = value
            else:
                values[name] = _number(name, value)
        config = cls(**values)
        config.validate()
        return config

    @classmethod
    def from_toml(cls, path: Path) -> FaultConfig:
        """Load a profile, e.g.::

        seed = 7
        duplicate_report_rate = 0.05
        [submit]
        lost_answer_rate = 0.1
        latency_max = 0.02
        """
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"cannot read fault profile {path}: {exc}") from None
        return cls.from_mapping(data)

    def validate(self) -> None:
        rates = {
            "duplicate_report_rate": self.duplicate_report_rate,
            "reorder_report_rate": self.reorder_report_rate,
            "disconnect_rate": self.disconnect_rate,
        }
        for call in ("submit", "cancel", "status"):
            faults: CallFaults = getattr(self, call)
            for name in ("error_rate", "lost_answer_rate", "rate_limit_rate", "hang_rate"):
                rates[f"{call}.{name}"] = getattr(faults, name)
            if not 0 <= faults.latency_min <= faults.latency_max:
                raise ValueError(f"{call}: need 0 <= latency_min <= latency_max")
        for name, rate in rates.items():
            if not 0 <= rate <= 1:
                raise ValueError(f"{name} must be between 0 and 1, got {rate}")


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must not be negative")
    return float(value)


class FaultyBroker:
    """A broker that misbehaves as its ``FaultConfig`` says, around a real one."""

    def __init__(self, inner: Broker, faults: FaultConfig) -> None:
        self.inner = inner
        self.faults = faults
        self.name = f"faulty({inner.name})"
        self._random = random.Random(faults.seed)
        self._down_until = 0.0
        # Reports one by one (faults act on each); ``reports()`` regroups what is waiting.
        self._queue: asyncio.Queue[ExecutionReport | BaseException] = asyncio.Queue(10_000)
        self._pump: asyncio.Task[None] | None = None
        self.injected: dict[str, int] = {}
        self.enabled = True

    def _count(self, what: str) -> None:
        self.injected[what] = self.injected.get(what, 0) + 1

    def _roll(self, rate: float) -> bool:
        return self.enabled and rate > 0 and self._random.random() < rate

    def _disconnected(self) -> bool:
        return self.enabled and asyncio.get_running_loop().time() < self._down_until

    async def connect(self) -> None:
        await self.inner.connect()
        self._pump = asyncio.create_task(self._pump_reports(), name="faulty-broker-reports")

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        await self.inner.close()
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(StopAsyncIteration())

    async def _call(self, faults: CallFaults, act: Callable[[], Awaitable[_T]]) -> _T:
        if faults.latency_max > 0 and self.enabled:
            await asyncio.sleep(self._random.uniform(faults.latency_min, faults.latency_max))
        if self._disconnected():
            raise BrokerUnavailable("injected: venue disconnected")
        if self._roll(faults.error_rate):
            self._count("error")
            raise BrokerUnavailable("injected: connection refused")
        if self._roll(faults.rate_limit_rate):
            self._count("rate_limit")
            raise BrokerTransientError(
                "injected: 429 too many requests", retry_after=faults.retry_after
            )
        if self._roll(faults.hang_rate):
            self._count("hang")
            await asyncio.sleep(faults.hang_seconds)
        result = await act()
        if self._roll(faults.lost_answer_rate):
            self._count("lost_answer")
            raise TimeoutError  # the venue acted; the answer never came back
        return result

    async def submit(self, spec: OrderSpec) -> SubmitAck:
        return await self._call(self.faults.submit, lambda: self.inner.submit(spec))

    async def cancel(self, account: str, client_order_id: str, broker_order_id: str) -> None:
        await self._call(
            self.faults.cancel,
            lambda: self.inner.cancel(account, client_order_id, broker_order_id),
        )

    def __getattr__(self, name: str) -> Any:
        """The optional ports (replace, cancel-all), faulted as cancels, when ``inner`` has them.

        Present here exactly when the inner broker has them, so the engine's
        capability checks see through the wrapper.
        """
        if name not in ("replace", "cancel_all_orders"):
            raise AttributeError(name)
        call = getattr(self.inner, name)

        async def faulted(*args: Any) -> Any:
            # A replace is a cancel-replace at most venues: the cancel's profile.
            return await self._call(self.faults.cancel, lambda: call(*args))

        return faulted

    async def order_status(self, account: str, client_order_id: str) -> BrokerOrderState | None:
        return await self._call(
            self.faults.status, lambda: self.inner.order_status(account, client_order_id)
        )

    async def open_orders(self, account: str | None = None) -> list[BrokerOrderState]:
        return await self._call(self.faults.status, lambda: self.inner.open_orders(account))

    async def reports(self) -> AsyncIterator[Sequence[ExecutionReport]]:
        held: ExecutionReport | None = None
        while True:
            batch: list[ExecutionReport] = []
            item = await self._queue.get()
            while True:
                if isinstance(item, BaseException):
                    if batch:
                        yield batch
                    if isinstance(item, StopAsyncIteration):
                        return
                    raise item
                if held is None and self._roll(self.faults.reorder_report_rate):
                    self._count("reorder")
                    held = item
                else:
                    batch.append(item)
                    if held is not None:
                        batch.append(held)
                        held = None
                if self._queue.empty():
                    break
                item = self._queue.get_nowait()
            if batch:
                yield batch

    async def _pump_reports(self) -> None:
        """Move reports from the venue to our stream, losing or doubling some.

        ``put`` waits when the stream's buffer is full: backpressure, never a
        silent drop (drops happen only as injected disconnects).
        """
        async for reports in self.inner.reports():
            for report in reports:
                await self._pass_on(report)

    async def _pass_on(self, report: ExecutionReport) -> None:
        if self._disconnected():
            self._count("lost_report")
            return
        if self._roll(self.faults.disconnect_rate):
            self._count("disconnect")
            self._down_until = asyncio.get_running_loop().time() + self.faults.disconnect_seconds
            log.warning("injected: venue disconnected for %.2fs", self.faults.disconnect_seconds)
            await self._queue.put(BrokerUnavailable("injected: stream disconnected"))
            return  # this report is lost with the connection
        await self._queue.put(report)
        if self._roll(self.faults.duplicate_report_rate):
            self._count("duplicate")
            await self._queue.put(report)
