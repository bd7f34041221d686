"""``cancel_and_wait``: the task's own end is swallowed, a cancellation of the caller is not."""

from __future__ import annotations

import asyncio

import pytest

from standby.runtime._util import cancel_and_wait


async def _stubborn(release: asyncio.Event, started: asyncio.Event) -> None:
    """Ignores the first cancellation until released (like a store write that must finish)."""
    started.set()
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        await asyncio.wait_for(release.wait(), 30)


async def test_the_tasks_own_cancellation_and_failure_are_swallowed() -> None:
    async def fails() -> None:
        raise RuntimeError("boom")

    failing = asyncio.ensure_future(fails())
    await asyncio.sleep(0)
    await cancel_and_wait(failing, 5)
    sleeper = asyncio.ensure_future(asyncio.sleep(3600))
    await cancel_and_wait(sleeper, 5)
    assert sleeper.cancelled()


async def test_a_cancellation_of_the_caller_propagates() -> None:
    release, started = asyncio.Event(), asyncio.Event()
    stubborn = asyncio.ensure_future(_stubborn(release, started))
    await asyncio.wait_for(started.wait(), 5)
    stopping = asyncio.ensure_future(cancel_and_wait(stubborn, 30))
    await asyncio.sleep(0)  # the stop is now waiting for the stubborn task
    stopping.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(stopping, 10)
    assert stopping.cancelled()
