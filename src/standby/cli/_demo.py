"""``standby demo``: a real HA cluster of processes, the leading JobManager SIGKILLed while a job runs.

3 JobManagers and 2 TaskManagers run as separate processes on the ``filesystem`` backend (no external service) in
a temporary directory. The counter example runs; the leader is killed ``--failovers`` times (each killed process
comes back as a standby). The summary gives, per failover, the time until a new leader was elected and until the
job ran again (restored from its latest checkpoint), and whether the result is exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
import socket
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from rich.console import Console
from rich.live import Live
from rich.table import Table

from standby.config import Configuration

from ._errors import CliError

_EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "counter.py"

#: the counter job shipped with the package, used when the examples folder is not next to it
_COUNTER_SOURCE = """
import time
from standby import Task


class Counter(Task):
    def restore(self, state):
        args = self.context.args
        total = int(args[0]) if args else 1000
        self.delay = (float(args[1]) if len(args) > 1 else 5.0) / 1000.0
        self.numbers = range(self.context.subtask_index + 1, total + 1, self.context.parallelism)
        self.position = int(state) if state else 0

    def step(self):
        if self.position >= len(self.numbers):
            return False
        time.sleep(self.delay)
        self.position += 1
        return self.position < len(self.numbers)

    def snapshot(self):
        return str(self.position).encode()

    def result(self):
        done = self.numbers[: self.position]
        return {"count": len(done), "sum": sum(done)}
"""


@dataclass
class DemoOptions:
    backend: str = "filesystem"
    failovers: int = 2
    count: int = 3000
    keep: bool = False
    verbose: bool = False
    parallelism: int = 2
    step_ms: float = 6.0
    jobmanagers: int = 3
    taskmanagers: int = 2


@dataclass
class _Process:
    name: str
    kind: str
    args: list[str]
    log: Path
    port: int | None = None
    proc: asyncio.subprocess.Process | None = None
    restarts: int = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def url(self) -> str | None:
        return f"http://127.0.0.1:{self.port}" if self.port else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None


@dataclass
class Failover:
    number: int
    killed: str
    killed_pid: int
    killed_at: float
    new_leader: str | None = None
    leader_at: float | None = None
    running_at: float | None = None
    restored_from: int | None = None

    @property
    def to_leader_s(self) -> float | None:
        return None if self.leader_at is None else self.leader_at - self.killed_at

    @property
    def to_running_s(self) -> float | None:
        return None if self.running_at is None else self.running_at - self.killed_at


@dataclass
class _View:
    started: float = field(default_factory=time.monotonic)
    leader: str = "-"
    job_state: str = "-"
    checkpoints: int = 0
    latest_checkpoint: int | None = None
    restored_from: int | None = None
    events: list[str] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _backend_settings(backend: str, base: Configuration | None, tmp: Path) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "high-availability.type": backend,
        "high-availability.storageDir": f"file://{tmp / 'ha'}",
        "high-availability.cluster-id": f"demo-{uuid.uuid4().hex[:8]}",
    }
    if backend == "filesystem":
        return settings
    if base is None:
        key = {
            "zookeeper": "high-availability.zookeeper.quorum",
            "etcd": "high-availability.etcd.endpoints",
        }.get(backend, "high-availability.*")
        raise CliError(
            f"--backend {backend} needs a configuration naming the servers (--config with '{key}')"
        )
    configured: dict[str, Any] = dict(base.to_dict())
    # the servers come from the given configuration; a fresh cluster id keeps the demo apart from other clusters
    configured.setdefault("high-availability.storageDir", settings["high-availability.storageDir"])
    configured["high-availability.cluster-id"] = settings["high-availability.cluster-id"]
    configured["high-availability.type"] = backend
    return configured


class _Cluster:
    def __init__(self, tmp: Path, config_file: Path, verbose: bool) -> None:
        self.tmp = tmp
        self.config_file = config_file
        self.verbose = verbose
        self.jobmanagers: list[_Process] = []
        self.taskmanagers: list[_Process] = []

    def add(self, kind: str, index: int) -> _Process:
        name = f"{'jm' if kind == 'jobmanager' else 'tm'}-{index}"
        args = [sys.executable, "-m", "standby.cli", kind, "--config", str(self.config_file)]
        port = None
        if kind == "jobmanager":
            port = _free_port()
            args += ["-D", f"rest.port={port}"]
        if self.verbose:
            args.append("--verbose")
        process = _Process(name, kind, args, self.tmp / "logs" / f"{name}.log", port)
        (self.jobmanagers if kind == "jobmanager" else self.taskmanagers).append(process)
        return process

    async def start(self, process: _Process) -> None:
        process.log.parent.mkdir(parents=True, exist_ok=True)
        log = _open_log(process.log)
        try:
            process.proc = await asyncio.create_subprocess_exec(
                *process.args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()

    async def stop_all(self) -> None:
        processes = [p for p in self.jobmanagers + self.taskmanagers if p.alive()]
        for p in processes:
            assert p.proc is not None
            with contextlib.suppress(ProcessLookupError):
                p.proc.send_signal(signal.SIGTERM)
        for p in processes:
            assert p.proc is not None
            try:
                await asyncio.wait_for(p.proc.wait(), 10)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    p.proc.kill()
                await p.proc.wait()


def _open_log(path: Path) -> Any:
    return open(path, "ab")


async def _get(client: httpx.AsyncClient, url: str, path: str) -> Any:
    response = await client.get(f"{url}{path}", timeout=2.0)
    response.raise_for_status()
    return response.json()


async def _leaders(
    client: httpx.AsyncClient, cluster: _Cluster
) -> tuple[dict[str, Any] | None, _Process | None]:
    """``/cluster/leaders`` from any live JobManager, and the process that leads the REST endpoint."""
    for jm in cluster.jobmanagers:
        if not jm.alive() or jm.url is None:
            continue
        try:
            body = await _get(client, jm.url, "/cluster/leaders")
        except (httpx.HTTPError, ValueError):
            continue
        rest = (body.get("leaders", {}).get("rest_server") or {}).get("address") or ""
        dispatcher = (body.get("leaders", {}).get("dispatcher") or {}).get("address") or ""
        leader = next(
            (
                p
                for p in cluster.jobmanagers
                if p.port and f":{p.port}" in rest and f":{p.port}/" in dispatcher + "/"
            ),
            None,
        )
        if leader is None:
            leader = next((p for p in cluster.jobmanagers if p.port and rest.endswith(f":{p.port}")), None)
        return body, leader
    return None, None


async def _wait(what: str, timeout_s: float, check: Any, interval_s: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout_s
    # bounded by timeout_s
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise CliError(f"Demo: {what} did not happen within {timeout_s:.0f} s (see the logs with --keep)")
        await asyncio.sleep(interval_s)


def _render(view: _View, cluster: _Cluster, failovers: list[Failover]) -> Table:
    table = Table(
        title=f"standby demo — {time.monotonic() - view.started:5.1f}s", show_header=True, expand=False
    )
    table.add_column("process")
    table.add_column("pid", justify="right")
    table.add_column("role")
    for p in cluster.jobmanagers + cluster.taskmanagers:
        role = (
            "taskmanager" if p.kind == "taskmanager" else ("LEADER" if p.name == view.leader else "standby")
        )
        if not p.alive():
            role = "killed"
        table.add_row(p.name, str(p.pid or "-"), role)
    table.add_row("", "", "")
    table.add_row("job", "", view.job_state)
    table.add_row("checkpoints", str(view.checkpoints), f"latest {view.latest_checkpoint or '-'}")
    if view.restored_from:
        table.add_row("restored from", "", f"checkpoint {view.restored_from}")
    for f in failovers:
        table.add_row(
            f"failover {f.number}",
            "",
            f"leader {f.to_leader_s:.2f}s, running {f.to_running_s:.2f}s"
            if f.to_leader_s is not None and f.to_running_s is not None
            else "in progress",
        )
    return table


async def run_demo(options: DemoOptions, base: Configuration | None, console: Console) -> bool:
    tmp = Path(tempfile.mkdtemp(prefix="standby-demo-"))
    settings = _backend_settings(options.backend, base, tmp)
    settings.update(
        {
            "heartbeat.interval": "500 ms",
            "heartbeat.timeout": "5 s",
            "execution.checkpointing.interval": "300 ms",
            "execution.checkpointing.dir": f"file://{tmp / 'checkpoints'}",
            "restart-strategy.type": "fixed-delay",
            "restart-strategy.fixed-delay.attempts": "20",
            "restart-strategy.fixed-delay.delay": "200 ms",
            "cleanup-strategy.type": "fixed-delay",
            "cleanup-strategy.fixed-delay.delay": "500 ms",
            "taskmanager.numberOfTaskSlots": "2",
            "high-availability.jobmanager.port": "0",
        }
    )
    config_file = tmp / "config.yaml"
    config_file.write_text(yaml.safe_dump(settings, sort_keys=True))
    cluster = _Cluster(tmp, config_file, options.verbose)
    view = _View()
    failovers: list[Failover] = []
    live_mode = console.is_terminal

    def event(text: str) -> None:
        line = f"[{time.monotonic() - view.started:5.1f}s] {text}"
        view.events.append(line)
        if live_mode:
            console.log(text)
        else:
            console.print(line, highlight=False)

    if not live_mode:
        console.print(f"standby demo: {options.backend} backend, working directory {tmp}", highlight=False)
    code = _EXAMPLE.read_bytes() if _EXAMPLE.exists() else _COUNTER_SOURCE.encode()
    expected = {"count": options.count, "sum": options.count * (options.count + 1) // 2}
    result: dict[str, Any] | None = None
    job_id = uuid.uuid4().hex
    live: Live | None = None
    try:
        for i in range(options.jobmanagers):
            await cluster.start(cluster.add("jobmanager", i + 1))
        for i in range(options.taskmanagers):
            await cluster.start(cluster.add("taskmanager", i + 1))
        if live_mode:
            live = Live(
                _render(view, cluster, failovers), console=console, refresh_per_second=8, transient=False
            )
            live.start()
        async with httpx.AsyncClient() as client:

            async def refresh() -> None:
                if live is not None:
                    live.update(_render(view, cluster, failovers))

            async def cluster_ready() -> _Process | None:
                body, leader = await _leaders(client, cluster)
                if body is None or leader is None:
                    return None
                try:
                    overview = await _get(client, leader.url or "", "/overview")
                except (httpx.HTTPError, ValueError):
                    return None
                return leader if overview.get("taskmanagers", 0) >= options.taskmanagers else None

            leader = await _wait("the cluster start-up", 30.0, cluster_ready)
            view.leader = leader.name
            event(f"cluster up: leader {leader.name} (pid {leader.pid}), {options.taskmanagers} TaskManagers")
            await refresh()

            import base64

            response = await client.post(
                f"{leader.url}/jobs",
                json={
                    "jobFile": base64.b64encode(code).decode(),
                    "jobFileName": "counter.py",
                    "programArgsList": [str(options.count), str(options.step_ms)],
                    "parallelism": options.parallelism,
                    "jobName": "counter",
                    "jobId": job_id,
                },
                timeout=10.0,
            )
            if response.status_code >= 400:
                raise CliError(f"Demo: submitting the job failed: {response.text}")
            event(
                f"job {job_id[:8]} submitted: count to {options.count} with parallelism {options.parallelism}"
            )

            async def poll_job() -> dict[str, Any] | None:
                """Job details and checkpoint stats from the current leader (None while there is none)."""
                _body, current = await _leaders(client, cluster)
                if current is None or current.url is None:
                    return None
                try:
                    details = await _get(client, current.url, f"/jobs/{job_id}")
                    stats = await _get(client, current.url, f"/jobs/{job_id}/checkpoints")
                except (httpx.HTTPError, ValueError):
                    return None
                view.leader = current.name
                view.job_state = str(details.get("state"))
                counts = stats.get("counts") or {}
                latest = (stats.get("latest") or {}).get("completed") or {}
                restored = (stats.get("latest") or {}).get("restored") or {}
                view.checkpoints = int(counts.get("completed") or 0)
                view.latest_checkpoint = latest.get("id") or view.latest_checkpoint
                view.restored_from = restored.get("id") or view.restored_from
                await refresh()
                return {"details": details, "stats": stats, "leader": current}

            for number in range(1, options.failovers + 1):
                # let the job make progress under this leader: two completed checkpoints
                async def progressed() -> dict[str, Any] | None:
                    state = await poll_job()
                    if state is None or state["details"].get("state") != "RUNNING":
                        return None
                    return (
                        state
                        if int((state["stats"].get("counts") or {}).get("completed") or 0) >= 2
                        else None
                    )

                state = await _wait(f"progress before failover {number}", 30.0, progressed, 0.1)
                victim: _Process = state["leader"]
                old_session = state["details"].get("job-master-id")
                assert victim.proc is not None
                failover = Failover(number, victim.name, victim.proc.pid, time.time())
                victim.proc.send_signal(signal.SIGKILL)
                await victim.proc.wait()
                failovers.append(failover)
                event(
                    f"SIGKILL leader {victim.name} (pid {failover.killed_pid}) at checkpoint {view.latest_checkpoint}"
                )

                async def new_leader(victim: _Process = victim) -> _Process | None:
                    body, current = await _leaders(client, cluster)
                    if body is None or current is None or current is victim or not current.alive():
                        return None
                    return current

                successor = await _wait(f"a new leader after failover {number}", 60.0, new_leader, 0.02)
                failover.leader_at = time.time()
                failover.new_leader = successor.name
                event(f"new leader {successor.name} after {failover.to_leader_s:.2f}s")

                async def running_again(old_session: Any = old_session) -> dict[str, Any] | None:
                    state = await poll_job()
                    if state is None:
                        return None
                    details = state["details"]
                    if (
                        details.get("job-master-id") in (None, old_session)
                        or details.get("running-since") is None
                    ):
                        return None
                    return state

                state = await _wait(
                    f"the job to run again after failover {number}", 60.0, running_again, 0.05
                )
                failover.running_at = state["details"]["running-since"] / 1000.0
                failover.restored_from = ((state["stats"].get("latest") or {}).get("restored") or {}).get(
                    "id"
                )
                event(
                    f"job running again after {failover.to_running_s:.2f}s, restored from checkpoint "
                    f"{failover.restored_from}"
                )
                # the killed JobManager comes back as a standby
                victim.restarts += 1
                await cluster.start(victim)
                event(f"{victim.name} restarted as a standby (pid {victim.pid})")

            async def finished() -> dict[str, Any] | None:
                await poll_job()
                _body, current = await _leaders(client, cluster)
                if current is None or current.url is None:
                    return None
                try:
                    body = await _get(client, current.url, f"/jobs/{job_id}/execution-result")
                except (httpx.HTTPError, ValueError):
                    return None
                return body if body.get("status", {}).get("id") == "COMPLETED" else None

            outcome = await _wait("the job to finish", 120.0, finished, 0.1)
            execution = outcome.get("job-execution-result") or {}
            result = dict(execution.get("accumulator-results") or {})
            view.job_state = str(execution.get("application-status"))
            event(f"job finished: {execution.get('application-status')} {json.dumps(result, sort_keys=True)}")
            await refresh()
    finally:
        if live is not None:
            live.stop()
        await cluster.stop_all()
    exact = result == expected
    _print_summary(console, options, failovers, expected, result, exact, tmp)
    if options.keep:
        console.print(f"Kept {tmp} (logs in {tmp / 'logs'}).", highlight=False)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return exact


def _print_summary(
    console: Console,
    options: DemoOptions,
    failovers: list[Failover],
    expected: dict[str, int],
    result: dict[str, Any] | None,
    exact: bool,
    tmp: Path,
) -> None:
    table = Table(title=f"Failovers ({options.backend} backend)", show_header=True)
    for column in ("#", "killed leader", "new leader", "leader after", "running after", "restored from"):
        table.add_column(column)
    for f in failovers:
        table.add_row(
            str(f.number),
            f"{f.killed} ({f.killed_pid})",
            str(f.new_leader or "-"),
            f"{f.to_leader_s:.2f} s" if f.to_leader_s is not None else "-",
            f"{f.to_running_s:.2f} s" if f.to_running_s is not None else "-",
            f"checkpoint {f.restored_from}" if f.restored_from else "-",
        )
    console.print(table)
    verdict = "[bold green]EXACT[/bold green]" if exact else "[bold red]NOT EXACT[/bold red]"
    console.print(
        f"Result: count={result.get('count') if result else '-'} sum={result.get('sum') if result else '-'}  "
        f"expected count={expected['count']} sum={expected['sum']}  -> {verdict}",
        highlight=False,
    )
    if not exact and not options.keep:
        console.print(f"Logs were in {tmp / 'logs'}; run with --keep to keep them.", highlight=False)
