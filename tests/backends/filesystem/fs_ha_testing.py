"""Test helpers of the filesystem backend tests: a recording contender and retrieval listener, a wait helper."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from uuid import UUID

from standby.ha import LeaderContender, LeaderElection, LeaderRetrievalListener

TIMEOUT = 10.0


async def wait_until(condition: Callable[[], bool], limit: float = TIMEOUT, what: str = "condition") -> None:
    """Poll ``condition`` until it holds; fail after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit}s waiting for {what}")
        await asyncio.sleep(0.005)


class RecordingContender(LeaderContender):
    """Confirms every grant with ``address`` and records what happened."""

    def __init__(self, election: LeaderElection, address: str) -> None:
        self.election = election
        self.address = address
        self.session_id: UUID | None = None
        self.grants: list[UUID] = []
        self.revokes = 0
        self.errors: list[Exception] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def grant_leadership(self, session_id: UUID) -> None:
        self.session_id = session_id
        self.grants.append(session_id)
        task = asyncio.get_running_loop().create_task(
            self.election.confirm_leadership(session_id, self.address)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def revoke_leadership(self) -> None:
        self.session_id = None
        self.revokes += 1

    def handle_error(self, error: Exception) -> None:
        self.errors.append(error)

    @property
    def is_leader(self) -> bool:
        return self.session_id is not None


class RecordingListener(LeaderRetrievalListener):
    def __init__(self) -> None:
        self.address: str | None = None
        self.session_id: UUID | None = None
        self.history: list[str | None] = []
        self.errors: list[Exception] = []

    def notify_leader_address(self, address: str | None, session_id: UUID | None) -> None:
        self.address = address
        self.session_id = session_id
        self.history.append(address)

    def handle_error(self, error: Exception) -> None:
        self.errors.append(error)


def exited_process() -> tuple[int, float]:
    """The pid and start time (as the backend records them) of a process that has exited."""
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, psutil; print(os.getpid(), round(psutil.Process().create_time(), 2))",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    pid, create_time = run.stdout.split()
    return int(pid), float(create_time)


def tree(root: Path, skip: str = "") -> list[str]:
    """All paths below ``root`` (those with a part named ``skip`` left out), sorted."""
    return sorted(str(p) for p in root.rglob("*") if not skip or skip not in p.parts)


def pid_namespace() -> int | None:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None
