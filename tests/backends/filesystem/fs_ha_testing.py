"""Test helpers of the filesystem backend tests: a recording contender and retrieval listener, a wait helper."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from uuid import UUID

from standby.backends.filesystem import FileSystemHaServices, FileSystemHaServicesFactory
from standby.config import Configuration
from standby.ha import LeaderContender, LeaderElection, LeaderRetrievalListener, LeaderRetrievalService

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


PROCESS_SCRIPT = Path(__file__).with_name("fs_ha_process.py")


class ChildProcess:
    """A ``fs_ha_process.py`` child; its stdout lines ``EVENT <monotonic time> fields...`` are collected."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lines: list[list[str]] = []
        self.process: asyncio.subprocess.Process | None = None
        self._changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def start(self, *args: str) -> ChildProcess:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-u",
            str(PROCESS_SCRIPT),
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.get_running_loop().create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            self.lines.append(line.decode().split())
            self._changed.set()
        self._changed.set()

    def events(self, event: str) -> list[list[str]]:
        return [line for line in self.lines if line and line[0] == event]

    async def wait_for(self, event: str, count: int = 1, limit: float = TIMEOUT) -> list[str]:
        """The ``count``-th line of ``event`` (its fields after the event name)."""
        deadline = time.monotonic() + limit
        while len(self.events(event)) < count:
            if (
                self.process is not None
                and self.process.returncode is not None
                and self._reader is not None
                and self._reader.done()
            ):
                raise AssertionError(
                    f"{self.name} exited ({self.process.returncode}) before {event}: {self.lines}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {event} of {self.name}: {self.lines}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                continue
        return self.events(event)[count - 1][1:]

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()

    async def stop(self, limit: float = TIMEOUT) -> None:
        """Graceful stop (stdin closed), else SIGKILL; waits for the exit."""
        if self.process is None:
            return
        if self.process.returncode is None and self.process.stdin is not None:
            self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), limit)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        if self._reader is not None:
            await self._reader


class Cluster:
    """Several "JobManagers" (services instances) on one storage dir; everything is closed at the end."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.services: list[FileSystemHaServices] = []
        self.elections: list[LeaderElection] = []
        self.retrievers: list[LeaderRetrievalService] = []

    async def new_services(self, **overrides: str) -> FileSystemHaServices:
        services = await FileSystemHaServicesFactory().create_ha_services(
            Configuration({**self.values, **overrides})
        )
        assert isinstance(services, FileSystemHaServices)
        self.services.append(services)
        return services

    async def contend(
        self, services: FileSystemHaServices, address: str, component: str = "dispatcher"
    ) -> RecordingContender:
        election = (
            services.get_dispatcher_leader_election()
            if component == "dispatcher"
            else services.get_resource_manager_leader_election()
        )
        self.elections.append(election)
        contender = RecordingContender(election, address)
        await election.start_leader_election(contender)
        return contender

    async def retrieve(
        self, services: FileSystemHaServices, component: str = "dispatcher"
    ) -> RecordingListener:
        retriever = (
            services.get_dispatcher_leader_retriever()
            if component == "dispatcher"
            else services.get_resource_manager_leader_retriever()
        )
        self.retrievers.append(retriever)
        listener = RecordingListener()
        await retriever.start(listener)
        return listener

    async def close(self) -> None:
        for retriever in self.retrievers:
            await retriever.stop()
        for election in self.elections:
            await election.close()
        for services in self.services:
            with contextlib.suppress(Exception):
                await services.close()
