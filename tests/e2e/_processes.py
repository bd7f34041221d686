"""A cluster of real ``standby`` processes on the filesystem HA backend, for end-to-end tests."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import socket
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
COUNTER = (ROOT / "examples" / "counter.py").read_bytes()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_for(what: str, check: Callable[[], Awaitable[T | None]], timeout_s: float = 30.0) -> T:
    deadline = time.monotonic() + timeout_s
    # bounded by the deadline
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.05)


class Proc:
    def __init__(self, name: str, kind: str, args: list[str], log: Path, port: int | None) -> None:
        self.name = name
        self.kind = kind
        self.args = args
        self.log = log
        self.port = port
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _open_append(path: Path) -> Any:
    return open(path, "ab")


class ProcessCluster:
    def __init__(
        self, tmp: Path, extra: dict[str, str] | None = None, pythonpath: list[str] | None = None
    ) -> None:
        self.tmp = tmp
        self.storage = tmp / "ha"
        self.cluster_id = f"e2e-{uuid.uuid4().hex[:8]}"
        settings = {
            "high-availability.type": "filesystem",
            "high-availability.storageDir": str(self.storage),
            "high-availability.cluster-id": self.cluster_id,
            "heartbeat.interval": "200 ms",
            "heartbeat.timeout": "3 s",
            "execution.checkpointing.interval": "100 ms",
            "restart-strategy.type": "fixed-delay",
            "restart-strategy.fixed-delay.attempts": "10",
            "restart-strategy.fixed-delay.delay": "100 ms",
            "cleanup-strategy.type": "fixed-delay",
            "cleanup-strategy.fixed-delay.delay": "200 ms",
            "taskmanager.numberOfTaskSlots": "2",
        }
        settings.update(extra or {})
        self.config = tmp / "config.yaml"
        self.config.write_text(yaml.safe_dump(settings))
        self.env = dict(os.environ)
        paths = [*(pythonpath or []), self.env.get("PYTHONPATH", "")]
        self.env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        self.procs: list[Proc] = []
        self.http = httpx.AsyncClient(timeout=5.0)

    @property
    def checkpoints(self) -> Path:
        return self.storage / "checkpoints"

    @property
    def ha_dir(self) -> Path:
        return self.storage / self.cluster_id

    async def start(self, kind: str, port: int | None = None) -> Proc:
        index = sum(1 for p in self.procs if p.kind == kind) + 1
        name = f"{'jm' if kind == 'jobmanager' else 'tm'}-{index}"
        args = [sys.executable, "-m", "standby.cli", kind, "--config", str(self.config)]
        if kind == "jobmanager":
            port = port or free_port()
            args += ["-D", f"rest.port={port}"]
        proc = Proc(name, kind, args, self.tmp / f"{name}.log", port)
        await self._spawn(proc)
        self.procs.append(proc)
        return proc

    async def _spawn(self, proc: Proc) -> None:
        log = _open_append(proc.log)
        try:
            proc.proc = await asyncio.create_subprocess_exec(
                *proc.args, stdout=log, stderr=asyncio.subprocess.STDOUT, env=self.env, start_new_session=True
            )
        finally:
            log.close()

    async def restart(self, proc: Proc) -> None:
        await self._spawn(proc)

    async def kill(self, proc: Proc) -> None:
        assert proc.proc is not None
        proc.proc.send_signal(signal.SIGKILL)
        await proc.proc.wait()

    async def close(self) -> None:
        await self.http.aclose()
        alive = [p for p in self.procs if p.alive()]
        for p in alive:
            assert p.proc is not None
            with contextlib.suppress(ProcessLookupError):
                p.proc.send_signal(signal.SIGTERM)
        for p in alive:
            assert p.proc is not None
            try:
                await asyncio.wait_for(p.proc.wait(), 15)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    p.proc.kill()
                await p.proc.wait()

    # ------------------------------------------------------------------ REST

    async def get(self, proc: Proc, path: str) -> Any:
        response = await self.http.get(f"{proc.url}{path}")
        response.raise_for_status()
        return response.json()

    async def leader(self) -> Proc | None:
        """The JobManager that leads the REST endpoint and the Dispatcher, as any live JobManager reports."""
        for jm in [p for p in self.procs if p.kind == "jobmanager" and p.alive()]:
            try:
                body = await self.get(jm, "/cluster/leaders")
            except (httpx.HTTPError, ValueError):
                continue
            leaders = body["leaders"]
            rest = leaders["rest_server"]["address"] or ""
            dispatcher = leaders["dispatcher"]["address"] or ""
            for candidate in self.procs:
                if (
                    candidate.kind == "jobmanager"
                    and candidate.alive()
                    and rest.endswith(f":{candidate.port}")
                ) and f":{candidate.port}/" in dispatcher:
                    return candidate
        return None

    async def ready(self, task_managers: int = 1, timeout_s: float = 40.0) -> Proc:
        async def check() -> Proc | None:
            leader = await self.leader()
            if leader is None:
                return None
            try:
                overview = await self.get(leader, "/overview")
            except (httpx.HTTPError, ValueError):
                return None
            return leader if overview["taskmanagers"] >= task_managers else None

        return await wait_for("the cluster to be ready", check, timeout_s)

    async def submit(self, args: list[str], parallelism: int = 2, code: bytes = COUNTER) -> str:
        leader = await self.ready()
        job_id = uuid.uuid4().hex
        response = await self.http.post(
            f"{leader.url}/jobs",
            json={
                "jobFile": base64.b64encode(code).decode(),
                "jobFileName": "counter.py",
                "programArgsList": args,
                "parallelism": parallelism,
                "jobId": job_id,
            },
        )
        assert response.status_code == 202, response.text
        return job_id

    async def leader_get(self, path: str) -> Any:
        leader = await self.leader()
        if leader is None:
            return None
        try:
            return await self.get(leader, path)
        except (httpx.HTTPError, ValueError):
            return None

    async def result(self, job_id: str, timeout_s: float = 60.0) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            body = await self.leader_get(f"/jobs/{job_id}/execution-result")
            if body and body["status"]["id"] == "COMPLETED":
                return dict(body["job-execution-result"])
            return None

        return await wait_for(f"the result of job {job_id}", check, timeout_s)

    async def checkpoints_completed(
        self, job_id: str, at_least: int = 1, timeout_s: float = 30.0
    ) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            stats = await self.leader_get(f"/jobs/{job_id}/checkpoints")
            if stats and int((stats.get("counts") or {}).get("completed") or 0) >= at_least:
                return dict(stats)
            return None

        return await wait_for(f"{at_least} checkpoint(s) of job {job_id}", check, timeout_s)

    def logs(self) -> str:
        return "\n".join(f"===== {p.name}\n{p.log_text()[-4000:]}" for p in self.procs)


def counter_expectation(count: int) -> dict[str, int]:
    return {"count": count, "sum": count * (count + 1) // 2}
