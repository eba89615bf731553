"""The actor's mailbox: results ahead of commands, bounds and their overload behaviour."""

from __future__ import annotations

import asyncio

import pytest

from gateway.engine.mailbox import Mailbox, MailboxFull


async def test_results_are_taken_before_commands_queued_earlier() -> None:
    box: Mailbox[str, str] = Mailbox(10, 10)
    box.command("place-1")
    box.command("place-2")
    box.result("fill-1")

    assert await box.take(10) == (["fill-1"], ["place-1", "place-2"])
    assert len(box) == 0


async def test_a_full_command_queue_refuses_at_once_and_keeps_what_it_has() -> None:
    box: Mailbox[int, str] = Mailbox(2, 10)
    box.command(1)
    box.command(2)
    with pytest.raises(MailboxFull):
        box.command(3)
    assert await box.take(10) == ([], [1, 2])


async def test_a_flood_of_results_leaves_commands_a_share_of_each_batch() -> None:
    box: Mailbox[str, int] = Mailbox(100, 100)
    for i in range(20):
        box.result(i)
    box.command("cancel")

    results, commands = await box.take(8)
    assert results == list(range(8))
    assert commands == ["cancel"]


async def test_take_waits_for_work() -> None:
    box: Mailbox[str, str] = Mailbox(10, 10)
    taker = asyncio.ensure_future(box.take(10))
    await asyncio.sleep(0)
    assert not taker.done()

    box.command("x")
    assert await asyncio.wait_for(taker, 5) == ([], ["x"])


async def test_a_stream_waits_for_room_and_nothing_is_dropped() -> None:
    box: Mailbox[str, int] = Mailbox(10, 2)
    await box.result_when_room(1)
    await box.result_when_room(2)
    third = asyncio.ensure_future(box.result_when_room(3))
    await asyncio.sleep(0)
    assert not third.done()  # backpressure on the producer

    assert await box.take(10) == ([1, 2], [])
    await asyncio.wait_for(third, 5)
    assert await box.take(10) == ([3], [])


async def test_task_outcomes_are_never_refused() -> None:
    box: Mailbox[str, int] = Mailbox(1, 1)
    for i in range(5):
        box.result(i)
    assert await box.take(10) == ([0, 1, 2, 3, 4], [])


async def test_drain_commands_empties_the_command_queue() -> None:
    box: Mailbox[str, int] = Mailbox(10, 10)
    box.command("a")
    box.result(1)
    assert box.drain_commands() == ["a"]
    assert await box.take(10) == ([1], [])
