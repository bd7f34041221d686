"""The processes of a chaos run: JobManagers and TaskManagers as real ``standby`` processes, and their REST API.

Each process is ``python -m standby.cli jobmanager|taskmanager --config <file> [-D key=value ...]`` in its own
session, its output appended to ``<work>/logs/<name>.log`` across restarts. A JobManager keeps its REST port (and
its own coordination-server proxy) across restarts, so a restarted process is the same "machine" again.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import httpx

from standby.testing._ports import free_port

__all__ = ["ChaosCluster", "ChaosProcess", "ClusterTimeoutError", "wait_for"]

_T = TypeVar("_T")

#: REST calls of the runner: short, since a paused JobManager never answers
_HTTP_TIMEOUT = 2.0


class ClusterTimeoutError(TimeoutError):
    """Something the runner waited for did not happen in time; the message names it."""


async def wait_for(
    what: str, check: Callable[[], Awaitable[_T | None]], timeout_s: float, interval_s: float = 0.1
) -> _T:
    """Poll ``check`` until it returns a truthy value; :class:`ClusterTimeoutError` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    # bounded by the deadline
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise ClusterTimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        await asyncio.sleep(interval_s)


@dataclass
class ChaosProcess:
    """One JobManager or TaskManager "machine": restarted processes keep the name, port and extra options."""

    name: str
    kind: str
    args: list[str]
    log: Path
    port: int | None = None
    proc: asyncio.subprocess.Process | None = None
    paused: bool = False
    #: set while the runner keeps it down on purpose (killed, not yet restarted)
    down: bool = False
    starts: int = 0
    pids: list[int] = field(default_factory=list)
    #: one start at a time (the supervisor and the runner may both want to restart a process)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def _open_log(path: Path) -> BinaryIO:
    # a local append: quick enough for the event loop
    return open(path, "ab")


class ChaosCluster:
    def __init__(self, work_dir: Path, config_file: Path, env: dict[str, str] | None = None) -> None:
        self.work_dir = work_dir
        self.config_file = config_file
        self.env = dict(env if env is not None else os.environ)
        self.jobmanagers: list[ChaosProcess] = []
        self.taskmanagers: list[ChaosProcess] = []
        self.http = httpx.AsyncClient(timeout=_HTTP_TIMEOUT)

    @property
    def processes(self) -> list[ChaosProcess]:
        return self.jobmanagers + self.taskmanagers

    def add(self, kind: str, extra: dict[str, str] | None = None) -> ChaosProcess:
        group = self.jobmanagers if kind == "jobmanager" else self.taskmanagers
        name = f"{'jm' if kind == 'jobmanager' else 'tm'}-{len(group) + 1}"
        args = [sys.executable, "-m", "standby.cli", kind, "--config", str(self.config_file)]
        port = None
        if kind == "jobmanager":
            port = free_port()
            args += ["-D", f"rest.port={port}"]
        for key, value in (extra or {}).items():
            args += ["-D", f"{key}={value}"]
        process = ChaosProcess(name, kind, args, self.work_dir / "logs" / f"{name}.log", port)
        group.append(process)
        return process

    async def start(self, process: ChaosProcess) -> None:
        """Start the process unless it runs already."""
        async with process.lock:
            if process.alive():
                return
            await self._spawn(process)

    async def _spawn(self, process: ChaosProcess) -> None:
        process.log.parent.mkdir(parents=True, exist_ok=True)
        with _open_log(process.log) as log:
            log.write(f"===== start #{process.starts + 1} at {time.time():.3f}\n".encode())
            log.flush()
            process.proc = await asyncio.create_subprocess_exec(
                *process.args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
        process.starts += 1
        process.paused = False
        process.down = False
        process.pids.append(process.proc.pid)

    async def kill(self, process: ChaosProcess) -> None:
        """SIGKILL (a paused process is killed too) and reap it."""
        if process.proc is None or process.proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.proc.send_signal(signal.SIGKILL)
        await process.proc.wait()
        process.paused = False

    def pause(self, process: ChaosProcess) -> None:
        if process.alive() and process.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                process.proc.send_signal(signal.SIGSTOP)
            process.paused = True

    def resume(self, process: ChaosProcess) -> None:
        if process.proc is not None and process.paused:
            with contextlib.suppress(ProcessLookupError):
                process.proc.send_signal(signal.SIGCONT)
        process.paused = False

    async def stop_all(self, timeout_s: float = 15.0) -> list[str]:
        """SIGTERM every live process, SIGKILL what is still alive after ``timeout_s``; the names killed."""
        killed: list[str] = []
        live = [p for p in self.processes if p.alive()]
        for p in live:
            self.resume(p)
            assert p.proc is not None
            with contextlib.suppress(ProcessLookupError):
                p.proc.send_signal(signal.SIGTERM)
        for p in live:
            assert p.proc is not None
            try:
                await asyncio.wait_for(p.proc.wait(), timeout_s)
            except TimeoutError:
                killed.append(p.name)
                await self.kill(p)
        return killed

    async def wait_exited(self, timeout_s: float) -> list[ChaosProcess]:
        """Wait until every process has exited; the ones still running after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        for p in self.processes:
            if p.proc is None:
                continue
            remaining = max(0.0, deadline - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(p.proc.wait(), remaining)
        return [p for p in self.processes if p.alive()]

    async def close(self) -> None:
        await self.stop_all()
        await self.http.aclose()

    # ------------------------------------------------------------------------------------------------ REST

    async def get(self, process: ChaosProcess, path: str) -> Any:
        response = await self.http.get(f"{process.url}{path}")
        response.raise_for_status()
        return response.json()

    def responsive_jobmanagers(self) -> list[ChaosProcess]:
        return [p for p in self.jobmanagers if p.alive() and not p.paused]

    async def leader(self) -> ChaosProcess | None:
        """The JobManager whose REST endpoint and Dispatcher lead, as some responsive JobManager reports it."""
        for jm in self.responsive_jobmanagers():
            try:
                body = await self.get(jm, "/cluster/leaders")
            except (httpx.HTTPError, ValueError):
                continue
            leaders = body.get("leaders") or {}
            rest = (leaders.get("rest_server") or {}).get("address") or ""
            dispatcher = (leaders.get("dispatcher") or {}).get("address") or ""
            for candidate in self.jobmanagers:
                if (
                    candidate.alive()
                    and rest.endswith(f":{candidate.port}")
                    and f":{candidate.port}/" in dispatcher
                ):
                    return candidate
        return None

    async def leader_get(self, path: str) -> Any:
        leader = await self.leader()
        if leader is None or leader.paused:
            return None
        try:
            return await self.get(leader, path)
        except (httpx.HTTPError, ValueError):
            return None

    async def ready(self, task_managers: int, timeout_s: float) -> ChaosProcess:
        async def check() -> ChaosProcess | None:
            leader = await self.leader()
            if leader is None or leader.paused:
                return None
            try:
                overview = await self.get(leader, "/overview")
            except (httpx.HTTPError, ValueError):
                return None
            return leader if int(overview.get("taskmanagers", 0)) >= task_managers else None

        return await wait_for("a leading JobManager with all TaskManagers registered", check, timeout_s, 0.1)

    async def submit(self, job_id: str, code: bytes, args: list[str], parallelism: int) -> tuple[bool, str]:
        """Submit through the current leader: (accepted, detail). A job id the cluster already knows counts as
        accepted (a submission whose answer was lost)."""
        leader = await self.leader()
        if leader is None or leader.paused:
            return False, "no leader"
        try:
            response = await self.http.post(
                f"{leader.url}/jobs",
                json={
                    "jobFile": base64.b64encode(code).decode(),
                    "jobFileName": "counter.py",
                    "programArgsList": args,
                    "parallelism": parallelism,
                    "jobName": f"chaos-counter-{job_id[:8]}",
                    "jobId": job_id,
                },
                timeout=10.0,
            )
        except httpx.HTTPError as e:
            return False, f"{type(e).__name__}: {e}"
        if response.status_code == 202:
            return True, "accepted"
        text = response.text[:300]
        if "DuplicateJobSubmissionException" in text:
            return True, f"known already: {text}"
        return False, f"HTTP {response.status_code}: {text}"

    async def job_result(self, job_id: str) -> dict[str, Any] | None:
        body = await self.leader_get(f"/jobs/{job_id}/execution-result")
        if body and (body.get("status") or {}).get("id") == "COMPLETED":
            result = body.get("job-execution-result")
            return dict(result) if isinstance(result, dict) else {}
        return None

    async def shutdown_cluster(self) -> bool:
        """``DELETE /cluster`` on the leader: standbys and TaskManagers stop, then the leader removes the HA data."""
        leader = await self.leader()
        if leader is None:
            return False
        try:
            response = await self.http.delete(f"{leader.url}/cluster", timeout=10.0)
        except httpx.HTTPError:
            return False
        return response.status_code < 300
