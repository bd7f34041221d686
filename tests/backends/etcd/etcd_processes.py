"""Parent side of the JobManager child processes (``etcd_jm_process.py``) used by the failover tests and the
hand-over benchmark: start, read events, send commands, SIGKILL / SIGSTOP / SIGCONT."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).with_name("etcd_jm_process.py")


class JobManagerProcess:
    """One child process; every event it printed is kept, waits have deadlines."""

    def __init__(self, name: str, process: asyncio.subprocess.Process) -> None:
        self.name = name
        self.process = process
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._ids = itertools.count(1)
        self._reader = asyncio.create_task(self._read(), name=f"read {name}")

    @staticmethod
    async def start(config: dict[str, Any], name: str) -> JobManagerProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(SCRIPT),
            json.dumps(config),
            name,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        return JobManagerProcess(name, process)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while True:
            line = await self.process.stdout.readline()
            if not line:
                break
            try:
                self.events.append(json.loads(line))
            except ValueError:
                continue
            self._changed.set()
        self._changed.set()

    def count(self, event: str) -> int:
        return sum(1 for e in self.events if e["event"] == event)

    async def wait_for(self, event: str, count: int = 1, timeout: float = 30.0) -> dict[str, Any]:
        """The ``count``-th event of this kind (waits for it)."""

        async def wait() -> dict[str, Any]:
            while True:
                matching = [e for e in self.events if e["event"] == event]
                if len(matching) >= count:
                    return matching[count - 1]
                if self._reader.done():
                    raise AssertionError(f"{self.name} exited before event {event!r} #{count}: {self.events}")
                self._changed.clear()
                await self._changed.wait()

        try:
            async with asyncio.timeout(timeout):
                return await wait()
        except TimeoutError:
            raise AssertionError(
                f"{self.name}: no {event!r} #{count} within {timeout} s: {self.events}"
            ) from None

    async def command(self, cmd: str, timeout: float = 30.0, **fields: Any) -> dict[str, Any]:
        """Send a command and wait for its result event."""
        command_id = next(self._ids)
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps({"id": command_id, "cmd": cmd, **fields}) + "\n").encode())
        await self.process.stdin.drain()

        async def wait() -> dict[str, Any]:
            while True:
                for event in self.events:
                    if event["event"] == "result" and event.get("id") == command_id:
                        return event
                if self._reader.done():
                    raise AssertionError(f"{self.name} exited before answering {cmd!r}: {self.events}")
                self._changed.clear()
                await self._changed.wait()

        try:
            async with asyncio.timeout(timeout):
                return await wait()
        except TimeoutError:
            raise AssertionError(f"{self.name}: no answer to {cmd!r} within {timeout} s") from None

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)

    def pause(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    async def exit_gracefully(self) -> None:
        """Ask the child to close its election and services (hand-over) and exit."""
        assert self.process.stdin is not None
        self.process.stdin.write(b'{"cmd": "exit"}\n')
        await self.process.stdin.drain()

    async def close(self, timeout: float = 10.0) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGCONT)
                self.process.kill()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self.process.wait()
        self._reader.cancel()
        await asyncio.wait({self._reader})
