"""Several OS processes on one storage dir: SIGKILL of the leader, exactly one successor, recovery of its data."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from .fs_ha_testing import ChildProcess

pytestmark = pytest.mark.slow


async def test_sigkill_of_the_leader_hands_over_to_exactly_one_standby(tmp_path: Path) -> None:
    storage = str(tmp_path / "ha")
    contenders = [ChildProcess(f"jm-{i}") for i in range(3)]
    retriever = ChildProcess("retriever")
    try:
        for child in contenders:
            await child.start("contender", storage, child.name)
        await retriever.start("retriever", storage)
        for child in (*contenders, retriever):
            await child.wait_for("READY")

        # exactly one leader, which writes a plan and a checkpoint
        wrote = await _first(contenders, "WROTE")
        leader = next(c for c in contenders if c.events("WROTE"))
        job_id = wrote[1]
        await _wait_leader_seen(retriever, f"http://{leader.name}")
        assert [c.name for c in contenders if c.events("GRANTED")] == [leader.name]

        leader.kill()
        standbys = [c for c in contenders if c is not leader]
        await _first(standbys, "GRANTED")
        successor = next(c for c in standbys if c.events("GRANTED"))
        await _wait_leader_seen(retriever, f"http://{successor.name}")

        # the successor recovered what the killed leader wrote
        assert (await successor.wait_for("RECOVERED_PLAN"))[1] == job_id
        assert (await successor.wait_for("RECOVERED_CHECKPOINT"))[1:] == [job_id, "1"]
        assert not successor.events("ERROR")
        # and it is the only one: the other standby was never granted
        other = next(c for c in standbys if c is not successor)
        assert other.events("GRANTED") == []

        # a graceful stop hands over to the last one
        await successor.stop()
        await other.wait_for("GRANTED")
        await _wait_leader_seen(retriever, f"http://{other.name}")
        assert (await other.wait_for("RECOVERED_PLAN"))[1] == job_id
    finally:
        for child in (*contenders, retriever):
            with contextlib.suppress(ProcessLookupError):
                await child.stop()


async def _first(children: list[ChildProcess], event: str) -> list[str]:
    """Wait until one of ``children`` reports ``event``; its fields."""
    waiters = {asyncio.ensure_future(child.wait_for(event)): child for child in children}
    done, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError, AssertionError):
            await task
    return next(iter(done)).result()


async def _wait_leader_seen(retriever: ChildProcess, address: str) -> None:
    count = 1
    while True:
        fields = await retriever.wait_for("LEADER", count)
        if fields[1] == address:
            return
        count += 1
