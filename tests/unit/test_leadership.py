"""When a leader steps down: the renewal loop against a scripted lease.

The clock is the real monotonic one plus an offset a test can jump (a
process paused and resumed); renewals answer from a script, and "hang"
blocks one as a database that does not answer would.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest

from gateway.ha.config import PostgresConfig
from gateway.ha.leader import Leadership
from gateway.journal.postgres import JournalUnavailable

# Short, so the loop's real waits keep the test quick: renew every 0.5 s,
# step down 1.2 s after the last good renewal started.
SETTINGS = PostgresConfig("postgresql://gw@db/journal", lease=1.5)
SLACK = 0.3
"""Scheduling slack allowed on a shared 2-core machine."""


@dataclasses.dataclass
class ScriptedLease:
    """Answers renewals from a script: True (kept), False (moved on), an error, or "hang"."""

    answers: list[bool | Exception | str]
    renewals: int = 0
    released: list[int] = dataclasses.field(default_factory=list)

    def renew(self, epoch: int) -> bool:
        self.renewals += 1
        answer = self.answers.pop(0) if self.answers else True
        if answer == "hang":
            time.sleep(SETTINGS.lease * 2)  # on a worker thread; abandoned, not awaited
            return True
        if isinstance(answer, Exception):
            raise answer
        return bool(answer)

    def release(self, epoch: int) -> None:
        self.released.append(epoch)

    def close(self) -> None:
        return None


@dataclasses.dataclass
class Clock:
    offset: float = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


def leader(lease: ScriptedLease, clock: Clock) -> Leadership:
    leadership = Leadership(SETTINGS, clock=clock)
    leadership.lease = lease  # type: ignore[assignment]
    leadership.epoch = 4
    leadership._renewed_at = clock()  # as ``acquire`` leaves it
    return leadership


async def keep(leadership: Leadership) -> tuple[list[str], float]:
    """Run the loop to its end; return the reasons given and when (on the real clock)."""
    reasons: list[str] = []
    await asyncio.wait_for(leadership.keep(reasons.append), 10)
    return reasons, time.monotonic()


async def test_a_renewal_that_finds_another_epoch_steps_down_at_once() -> None:
    lease = ScriptedLease([True, False])
    leadership = leader(lease, Clock())
    reasons, _ = await keep(leadership)
    assert reasons == ["the lease moved past epoch 4"]
    assert lease.renewals == 2
    assert leadership.deposed
    leadership.release()
    assert lease.released == [], "a deposed leader does not release another's lease"


async def test_failed_renewals_step_down_at_the_deadline_not_later() -> None:
    lease = ScriptedLease([JournalUnavailable("connection refused")] * 10)
    leadership = leader(lease, Clock())
    started = time.monotonic()
    reasons, ended = await keep(leadership)
    assert reasons == [f"lease not renewed for {SETTINGS.step_down_after:.1f}s"]
    assert SETTINGS.step_down_after <= ended - started < SETTINGS.step_down_after + SLACK
    assert lease.renewals == 2  # at 0.5 s and 1.0 s; the next would be after the deadline


async def test_a_renewal_that_hangs_is_abandoned_at_the_deadline() -> None:
    lease = ScriptedLease([True, "hang"])
    leadership = leader(lease, Clock())
    started = time.monotonic()
    reasons, ended = await keep(leadership)
    assert reasons == [f"lease not renewed for {SETTINGS.step_down_after:.1f}s"]
    # The last good renewal started at about 0.5 s: the deadline is 1.2 s after it,
    # well before the lease (1.5 s after it) can end on the server.
    renewed = SETTINGS.renew_interval
    assert ended - started < renewed + SETTINGS.step_down_after + SLACK
    assert ended - started < renewed + SETTINGS.lease


async def test_a_process_paused_past_its_lease_steps_down_before_renewing() -> None:
    clock = Clock()
    lease = ScriptedLease([])
    leadership = leader(lease, clock)

    async def pause() -> None:
        await asyncio.sleep(SETTINGS.renew_interval / 2)
        clock.offset += 60.0  # SIGSTOP, then SIGCONT a minute later

    paused = asyncio.create_task(pause())
    reasons, _ = await keep(leadership)
    await paused
    assert reasons == [f"lease not renewed for {SETTINGS.step_down_after:.1f}s"]
    assert lease.renewals == 0, "no renewal of a lease that may have passed to another"


async def test_a_healthy_leader_renews_and_releases_on_a_clean_stop() -> None:
    lease = ScriptedLease([True] * 10)
    leadership = leader(lease, Clock())
    task = asyncio.create_task(leadership.keep(pytest.fail))
    await asyncio.sleep(SETTINGS.renew_interval * 3.5)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert lease.renewals >= 3
    leadership.release()
    assert lease.released == [4]


def test_the_timings_follow_the_lease() -> None:
    assert SETTINGS.renew_interval == pytest.approx(0.5)
    assert SETTINGS.step_down_after == pytest.approx(1.2)
    assert SETTINGS.step_down_after < SETTINGS.lease
    with pytest.raises(ValueError, match="at least 1 second"):
        PostgresConfig("postgresql://x", lease=0.2)
