"""Failover of our job cluster, per backend and kill signal — and of Flink 2.3 next to it on the same ZooKeeper.

A real cluster per case, like ``standby demo``: 3 JobManagers (``standby jobmanager``, started one after another,
leader first) and 1 TaskManager with 2 slots (``standby taskmanager``), each its own process, all on 127.0.0.1.
A checkpointing job (the counter example: parallelism 2, checkpoints every 300 ms) runs. Per trial the leading
JobManager gets SIGKILL or SIGTERM, and from outside we measure, from the signal (as the Flink harness does,
``benchmarks/flink/run_flink_failover.py``, so figures compare one to one):

* ``new_leader_s``: a new leadership session is published for any of ``rest_server``, ``resource_manager``,
  ``dispatcher`` — seen by leader retrieval in this process (the way clients find the leader; per component too);
* ``job_running_s``: ``GET /jobs/<id>`` on the new leader says RUNNING with every subtask RUNNING, under a new
  JobMaster (polled every 20 ms);
* ``checkpoint_s``: ``GET /jobs/<id>/checkpoints`` shows a checkpoint completed after the kill;
* ``recovery_overhead_s`` = ``job_running_s - new_leader_s`` (Flink's definition); the runtime's own view is
  recorded too (``internal_running_s`` from the JobMaster's ``running-since``, ``jobmaster_grant_to_running_s``
  from its ``standby_job_recovery_seconds`` metric);
* RSS of the leader and of the standbys before the kill, and JobManager start -> REST answering (``GET /overview``
  200, as Flink's ``rest_ok_s``) for the first three starts; restarts of the killed JobManager (it comes back as a
  standby before the next trial) are recorded separately.

Backends: filesystem; ZooKeeper with 4 s and 2 s sessions; etcd with a 2 s lease; the Kubernetes API test server
with a 2 s lease. Flink runs on the SAME ZooKeeper server with the same session timeouts and signals, in the same
invocation, so ratios pair trial i with trial i (``--skip-flink`` leaves it out).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib
import logging
import re
import shutil
import signal
import socket
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import yaml

from ._backends import BackendEnv, EtcdEnv, FileSystemEnv, KubernetesEnv, ZooKeeperEnv, module_missing
from ._common import (
    ROOT,
    BenchmarkError,
    BenchmarkResult,
    BenchmarkTimeout,
    Case,
    Deadline,
    RunOptions,
    bounded,
    loadavg_1m,
    rss_mib,
    wait_for_async,
)

_log = logging.getLogger("benchmarks.failover")

JOBMANAGERS = 3
TASKMANAGERS = 1
TASK_SLOTS = 2
PARALLELISM = 2
CHECKPOINT_MS = 300
POLL_S = 0.02  # REST poll interval (the Flink harness's)
HTTP_TIMEOUT_S = 2.0
STEADY_CHECKPOINTS = 3
COMPONENTS = ("rest_server", "resource_manager", "dispatcher")
SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGTERM": signal.SIGTERM}

#: the checkpointing job: each subtask counts its share of 1..N, one step per STEP_MS, its position is its state
COUNTER_JOB = """
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
JOB_COUNT = 10**9  # never finishes within a benchmark
JOB_STEP_MS = 2.0


def runtime_unavailable_reason() -> str | None:
    """Why our cluster cannot run here (the ``runtime`` branch brings ``standby jobmanager``/``taskmanager``)."""
    for module in ("standby.runtime", "standby.cli._app"):
        if module_missing(module):
            return f"{module} is not on this branch yet (branch 'runtime' not merged into main)"
    return None


def flink_unavailable_reason() -> str | None:
    if module_missing("benchmarks.flink.run_flink_failover"):
        return "benchmarks/flink/run_flink_failover.py is not on this branch yet (branch 'flink-bench' not merged)"
    if shutil.which("java") is None:
        return "no java on PATH (Flink 2.3 needs Java 17)"
    return None


def failover_cases() -> list[tuple[BackendEnv, str]]:
    """(backend environment, kill signal) in run order; the two ZooKeeper settings share one server."""
    cases: list[tuple[BackendEnv, str]] = []
    envs: list[BackendEnv] = [
        FileSystemEnv(),
        ZooKeeperEnv(4.0),
        ZooKeeperEnv(2.0),
        EtcdEnv(2.0),
        KubernetesEnv(2.0),
    ]
    for env in envs:
        for sig in SIGNALS:
            cases.append((env, sig))
    return cases


# ---------------------------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Proc:
    name: str
    kind: str
    log: Path
    port: int | None = None
    process: asyncio.subprocess.Process | None = None
    spawned_at: float = 0.0
    starts: int = 0

    @property
    def pid(self) -> int:
        if self.process is None:
            raise BenchmarkError(f"{self.name} was never started")
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None


class Cluster:
    """JobManagers and TaskManagers of one case as child processes; every one is killed on ``close()``."""

    def __init__(self, work: Path, settings: dict[str, str], http: httpx.AsyncClient) -> None:
        self.work = work
        self.settings = settings
        self.http = http
        self.config_file = work / "config.yaml"
        self.config_file.write_text(yaml.safe_dump(settings, sort_keys=True))
        self.jobmanagers: list[Proc] = []
        self.taskmanagers: list[Proc] = []
        self.job_id = uuid.uuid4().hex

    def add(self, kind: str) -> Proc:
        group = self.jobmanagers if kind == "jobmanager" else self.taskmanagers
        name = f"{'jm' if kind == 'jobmanager' else 'tm'}-{len(group) + 1}"
        proc = Proc(
            name, kind, self.work / "logs" / f"{name}.log", free_port() if kind == "jobmanager" else None
        )
        group.append(proc)
        return proc

    async def spawn(self, proc: Proc) -> None:
        args = [sys.executable, "-m", "standby.cli", proc.kind, "--config", str(self.config_file)]
        if proc.port is not None:
            args += ["-D", f"rest.port={proc.port}"]
        proc.log.parent.mkdir(parents=True, exist_ok=True)
        with proc.log.open("ab") as log:
            proc.spawned_at = time.monotonic()
            proc.process = await asyncio.create_subprocess_exec(
                *args,
                cwd=ROOT,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        proc.starts += 1

    async def get(self, proc: Proc, path: str) -> httpx.Response | None:
        try:
            return await self.http.get(f"{proc.url}{path}", timeout=HTTP_TIMEOUT_S)
        except httpx.HTTPError:
            return None

    async def get_json(self, proc: Proc, path: str) -> dict[str, Any] | None:
        response = await self.get(proc, path)
        if response is None or response.status_code != 200:
            return None
        try:
            body: dict[str, Any] = response.json()
        except ValueError:
            return None
        return body

    async def wait_rest(self, proc: Proc, timeout: float) -> dict[str, float]:
        """Spawn -> REST answers anything, and -> ``GET /overview`` 200 (Flink's ``rest_any_s``/``rest_ok_s``)."""
        record: dict[str, float] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # bounded
            if not proc.alive():
                raise BenchmarkError(
                    f"{proc.name} exited with {proc.process and proc.process.returncode}: see {proc.log}"
                )
            response = await self.get(proc, "/overview")
            now = time.monotonic()
            if response is not None:
                record.setdefault("rest_any_s", now - proc.spawned_at)
                if response.status_code == 200:
                    record["rest_ok_s"] = now - proc.spawned_at
                    return record
            await asyncio.sleep(POLL_S)
        raise BenchmarkTimeout(
            f"{proc.name} did not answer GET /overview within {timeout:.0f} s: see {proc.log}"
        )

    async def kill(self, proc: Proc, sig: int) -> None:
        if proc.alive():
            with contextlib.suppress(ProcessLookupError):
                assert proc.process is not None
                proc.process.send_signal(sig)

    async def wait_exit(self, proc: Proc, timeout: float) -> float | None:
        """Seconds until ``proc`` exited (SIGKILL after ``timeout``); None if it had to be killed."""
        if proc.process is None:
            return None
        started = time.monotonic()
        try:
            await asyncio.wait_for(proc.process.wait(), timeout)
            return time.monotonic() - started
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.process.kill()
            await asyncio.wait_for(proc.process.wait(), 30)
            return None

    async def close(self) -> None:
        everyone = [p for p in self.jobmanagers + self.taskmanagers if p.alive()]
        for p in everyone:
            await self.kill(p, signal.SIGTERM)
        for p in everyone:
            await self.wait_exit(p, 10)

    def by_address(self, address: str | None) -> Proc | None:
        if not address:
            return None
        m = re.search(r":(\d+)(/.*)?$", address)
        port = int(m.group(1)) if m else -1
        return next((p for p in self.jobmanagers if p.port == port), None)


# ---------------------------------------------------------------------------------------------- leader watch


class LeaderWatch:
    """Leader retrieval of the three cluster components in THIS process: when each new session was seen."""

    def __init__(self) -> None:
        self.events: dict[str, list[tuple[float, str | None, str | None]]] = {c: [] for c in COMPONENTS}
        self.current: dict[str, tuple[str | None, str | None]] = {c: (None, None) for c in COMPONENTS}
        self._services: Any = None
        self._retrievers: list[Any] = []
        self.errors: list[BaseException] = []

    async def start(self, settings: dict[str, str]) -> None:
        from standby.config import Configuration
        from standby.ha import LeaderRetrievalListener, create_high_availability_services

        watch = self

        class _Listener(LeaderRetrievalListener):
            def __init__(self, component: str) -> None:
                self.component = component

            def notify_leader_address(self, address: str | None, session_id: UUID | None) -> None:
                sid = str(session_id) if session_id is not None else None
                watch.events[self.component].append((time.monotonic(), sid, address))
                watch.current[self.component] = (sid, address)

            def handle_error(self, error: Exception) -> None:
                watch.errors.append(error)

        self._services = await asyncio.wait_for(
            create_high_availability_services(Configuration(settings)), 60
        )
        getters = {
            "rest_server": self._services.get_cluster_rest_endpoint_leader_retriever,
            "resource_manager": self._services.get_resource_manager_leader_retriever,
            "dispatcher": self._services.get_dispatcher_leader_retriever,
        }
        for component in COMPONENTS:
            retriever = getters[component]()
            await retriever.start(_Listener(component))
            self._retrievers.append(retriever)

    def first_new_session(
        self, component: str, old: str | None, since: float
    ) -> tuple[float, str, str] | None:
        for t, sid, address in self.events[component]:
            if t >= since and sid is not None and sid != old and address is not None:
                return t, sid, address
        return None

    async def close(self) -> None:
        for retriever in self._retrievers:
            with contextlib.suppress(Exception):
                await retriever.stop()
        if self._services is not None:
            with contextlib.suppress(Exception):
                await self._services.close()


# ---------------------------------------------------------------------------------------------- one case


def cluster_settings(env: BackendEnv, work: Path, cluster_id: str) -> dict[str, str]:
    settings = env.config(cluster_id, work / "ha")
    settings.update(
        {
            "jobmanager.rpc.address": "127.0.0.1",
            "jobmanager.bind-host": "127.0.0.1",
            "rest.address": "127.0.0.1",
            "rest.bind-address": "127.0.0.1",
            "taskmanager.host": "127.0.0.1",
            "high-availability.jobmanager.port": "0",
            "heartbeat.interval": "500 ms",
            "heartbeat.timeout": "5 s",
            "execution.checkpointing.interval": f"{CHECKPOINT_MS} ms",
            "execution.checkpointing.dir": f"file://{work / 'checkpoints'}",
            "restart-strategy.type": "fixed-delay",
            "restart-strategy.fixed-delay.attempts": "100",
            "restart-strategy.fixed-delay.delay": "200 ms",
            "cleanup-strategy.type": "fixed-delay",
            "cleanup-strategy.fixed-delay.delay": "500 ms",
            "taskmanager.numberOfTaskSlots": str(TASK_SLOTS),
        }
    )
    return settings


def _all_running(details: dict[str, Any] | None) -> bool:
    if details is None or details.get("state") != "RUNNING" or not details.get("vertices"):
        return False
    return all(v.get("tasks", {}).get("RUNNING", 0) == v.get("parallelism") for v in details["vertices"])


def _metric(text: str, name: str) -> float | None:
    m = re.search(rf"^{re.escape(name)}(?:{{[^}}]*}})? ([0-9.eE+-]+)$", text, re.MULTILINE)
    return float(m.group(1)) if m else None


class FailoverRun:
    """One case: start the cluster, run the trials, stop everything."""

    def __init__(
        self, env: BackendEnv, sig_name: str, opts: RunOptions, work: Path, deadline: Deadline
    ) -> None:
        self.env = env
        self.sig_name = sig_name
        self.sig = SIGNALS[sig_name]
        self.opts = opts
        self.work = work
        self.deadline = deadline
        self.case = Case(
            metadata={
                **env.describe(),
                "kill_signal": sig_name,
                "jobmanagers": JOBMANAGERS,
                "taskmanagers": TASKMANAGERS,
                "task_slots": TASK_SLOTS,
                "parallelism": PARALLELISM,
                "checkpoint_interval_ms": CHECKPOINT_MS,
                "rest_poll_s": POLL_S,
                "trials_requested": opts.trials,
            }
        )
        self.limit = max(60.0, 10 * env.failure_timeout_s)
        self._metric_seen: dict[int, tuple[float, float]] = {}

    async def run(self) -> Case:
        settings = cluster_settings(self.env, self.work, f"bench-failover-{uuid.uuid4().hex[:8]}")
        self.case.metadata["loadavg_1m_at_start"] = loadavg_1m()
        async with httpx.AsyncClient() as http:
            cluster = Cluster(self.work, settings, http)
            watch = LeaderWatch()
            trials: list[dict[str, Any]] = []
            try:
                await self._setup(cluster, watch, settings)
                for trial in range(self.opts.trials):
                    if self.deadline.remaining() < self.limit:
                        self.case.metadata["truncated"] = f"time budget used up after {trial} trials"
                        break
                    try:
                        record = await self._trial(cluster, watch, trial)
                    except Exception as e:
                        # keep the trials done so far; the logs stay (the case has an error)
                        _log.exception("%s %s trial %d failed", self.env.label, self.sig_name, trial)
                        self.case.error = f"trial {trial}: {type(e).__name__}: {e}"
                        self.case.metadata["logs"] = str(cluster.work / "logs")
                        break
                    trials.append(record)
                    _log.info(
                        "%s %s trial %d: leader %.3f s, running %.3f s, checkpoint %.3f s, overhead %.3f s",
                        self.env.label,
                        self.sig_name,
                        trial,
                        record["new_leader_s"],
                        record["job_running_s"],
                        record["checkpoint_s"],
                        record["recovery_overhead_s"],
                    )
            finally:
                self.case.metadata["trials"] = trials
                restored = sum(1 for t in trials if t.get("restored_from_latest"))
                self.case.metadata["restored_from_latest_checkpoint"] = f"{restored} of {len(trials)} trials"
                await self._cancel_job(cluster, watch)
                await watch.close()
                await cluster.close()
                from .ha_primitives import cleanup_cluster

                await cleanup_cluster({k: v for k, v in settings.items()})
        return self.case

    async def _setup(self, cluster: Cluster, watch: LeaderWatch, settings: dict[str, str]) -> None:
        started = time.monotonic()
        for _ in range(JOBMANAGERS):
            jm = cluster.add("jobmanager")
            await cluster.spawn(jm)
            record = await cluster.wait_rest(jm, self.deadline.bound(120))
            self.case.add("start_to_rest_s", record["rest_ok_s"])
            self.case.add("start_to_rest_any_s", record["rest_any_s"])
        for _ in range(TASKMANAGERS):
            await cluster.spawn(cluster.add("taskmanager"))
        await watch.start(settings)
        leader = await self._leader(cluster, watch, self.deadline.bound(60))

        async def slots_registered() -> bool:
            overview = await cluster.get_json(leader, "/overview")
            return overview is not None and int(overview.get("taskmanagers", 0)) >= TASKMANAGERS

        await wait_for_async("TaskManager registration", slots_registered, self.deadline.bound(120), 0.05)
        response = await cluster.http.post(
            f"{leader.url}/jobs",
            json={
                "jobFile": base64.b64encode(COUNTER_JOB.encode()).decode(),
                "jobFileName": "counter.py",
                "programArgsList": [str(JOB_COUNT), str(JOB_STEP_MS)],
                "parallelism": PARALLELISM,
                "jobName": "bench-counter",
                "jobId": cluster.job_id,
            },
            timeout=30.0,
        )
        if response.status_code >= 400:
            raise BenchmarkError(
                f"submitting the job to {leader.name} failed: {response.status_code} {response.text}"
            )
        await self._wait_steady(cluster, leader)
        self.case.metadata["setup_s"] = round(time.monotonic() - started, 2)

    async def _leader(self, cluster: Cluster, watch: LeaderWatch, timeout: float) -> Proc:
        async def find() -> Proc | None:
            _sid, address = watch.current["rest_server"]
            proc = cluster.by_address(address)
            return proc if proc is not None and proc.alive() else None

        return await wait_for_async("a leading JobManager", find, timeout)

    async def _wait_steady(self, cluster: Cluster, leader: Proc) -> None:
        """Job RUNNING with every subtask RUNNING, then STEADY_CHECKPOINTS more completed checkpoints."""
        timeout = self.deadline.bound(120)

        async def running() -> bool:
            return _all_running(await cluster.get_json(leader, f"/jobs/{cluster.job_id}"))

        await wait_for_async(f"the job running on {leader.name}", running, timeout, 0.05)

        async def completed() -> int | None:
            stats = await cluster.get_json(leader, f"/jobs/{cluster.job_id}/checkpoints")
            return None if stats is None else int((stats.get("counts") or {}).get("completed") or 0) + 1

        base = await wait_for_async("checkpoint statistics", completed, timeout) - 1

        async def more() -> bool:
            now = await completed()
            return now is not None and now - 1 >= base + STEADY_CHECKPOINTS

        await wait_for_async(f"{STEADY_CHECKPOINTS} more checkpoints", more, timeout, 0.05)

    async def _recovery_metric(self, cluster: Cluster, proc: Proc) -> float | None:
        """The new JobMaster's own grant -> all running (sum delta of ``standby_job_recovery_seconds``)."""
        response = await cluster.get(proc, "/metrics")
        if response is None or response.status_code != 200:
            return None
        total = _metric(response.text, "standby_job_recovery_seconds_sum")
        count = _metric(response.text, "standby_job_recovery_seconds_count")
        if total is None or count is None:
            return None
        before_total, before_count = self._metric_seen.get(proc.pid, (0.0, 0.0))
        self._metric_seen[proc.pid] = (total, count)
        if count - before_count != 1:
            return None  # not exactly one recovery since we last looked: no clean figure
        return total - before_total

    async def _trial(self, cluster: Cluster, watch: LeaderWatch, trial: int) -> dict[str, Any]:
        old = await self._leader(cluster, watch, self.deadline.bound(60))
        old_sessions = {c: watch.current[c][0] for c in COMPONENTS}
        standbys = [p for p in cluster.jobmanagers if p is not old and p.alive()]
        before = await cluster.get_json(old, f"/jobs/{cluster.job_id}/checkpoints")
        details = await cluster.get_json(old, f"/jobs/{cluster.job_id}")
        pre_id = ((before or {}).get("latest") or {}).get("completed") or {}
        pre_checkpoint = pre_id.get("id") if pre_id else None
        old_job_master = (details or {}).get("job-master-id")
        for p in standbys:
            await self._recovery_metric(cluster, p)  # baseline of the metric in each possible successor
        record: dict[str, Any] = {
            "trial": trial,
            "killed_jm": old.name,
            "killed_pid": old.pid,
            "leader_rss_mib": rss_mib(old.pid),
            "standby_rss_mib": [rss_mib(p.pid) for p in standbys],
            "pre_kill_checkpoint_id": pre_checkpoint,
            "loadavg_1m": loadavg_1m(),
        }

        # -- the kill ------------------------------------------------------------------------------------------
        t0 = time.monotonic()
        wall0 = time.time()
        await cluster.kill(old, self.sig)
        limit_end = t0 + min(self.limit, self.deadline.remaining() + 5)

        # (a) new leader: first component with a new session (leader retrieval in this process)
        seen: dict[str, tuple[float, str, str]] = {}
        while time.monotonic() < limit_end and len(seen) < len(COMPONENTS):  # bounded
            for component in COMPONENTS:
                if component not in seen:
                    hit = watch.first_new_session(component, old_sessions[component], t0)
                    if hit is not None:
                        seen[component] = hit
            await asyncio.sleep(0.005)
        if len(seen) < len(COMPONENTS):
            raise BenchmarkTimeout(
                f"trial {trial}: no new leader for {sorted(set(COMPONENTS) - set(seen))} within "
                f"{self.limit:.0f} s after {self.sig_name} to {old.name}; see {cluster.work / 'logs'}"
            )
        record["new_leader_s"] = min(t for t, _, _ in seen.values()) - t0
        for component, (t, _sid, _address) in seen.items():
            record[f"{component}_leader_s"] = t - t0
        new = cluster.by_address(seen["rest_server"][2])
        if new is None or new is old:
            raise BenchmarkError(
                f"trial {trial}: the new REST leader {seen['rest_server'][2]} is not a surviving JobManager"
            )
        record["new_leader_jm"] = new.name

        # (b) the job running again under a new JobMaster, every subtask RUNNING
        states: list[str] = []
        details = None
        while time.monotonic() < limit_end:  # bounded
            sent = time.monotonic()
            details = await cluster.get_json(new, f"/jobs/{cluster.job_id}")
            now = time.monotonic()
            _log.debug("poll %.3f-%.3f s: %s", sent - t0, now - t0, details and details.get("state"))
            if details is not None:
                state = str(details.get("state"))
                if not states or states[-1] != state:
                    states.append(state)
                if details.get("job-master-id") not in (None, old_job_master) and _all_running(details):
                    record["job_running_s"] = now - t0
                    break
            await asyncio.sleep(POLL_S)
        else:
            raise BenchmarkTimeout(
                f"trial {trial}: the job did not run again on {new.name} within {self.limit:.0f} s"
            )
        record["job_states_seen"] = states
        assert details is not None
        running_since = details.get("running-since")
        if running_since:
            record["internal_running_s"] = running_since / 1000.0 - wall0
        initializing = (details.get("timestamps") or {}).get("INITIALIZING")
        if running_since and initializing:
            record["jobmaster_created_to_running_s"] = (running_since - initializing) / 1000.0

        # (c) first checkpoint completed after the kill
        while time.monotonic() < limit_end:  # bounded
            stats = await cluster.get_json(new, f"/jobs/{cluster.job_id}/checkpoints")
            now = time.monotonic()
            latest = (stats or {}).get("latest") or {}
            done = latest.get("completed")
            if (
                done
                and (pre_checkpoint is None or done["id"] > pre_checkpoint)
                and done.get("latest_ack_timestamp", 0) >= wall0 * 1000
            ):
                record["checkpoint_s"] = now - t0
                record["checkpoint_ack_s"] = done["latest_ack_timestamp"] / 1000.0 - wall0
                record["new_checkpoint_id"] = done["id"]
                restored = latest.get("restored") or {}
                record["restored_checkpoint_id"] = restored.get("id")
                break
            await asyncio.sleep(POLL_S)
        else:
            raise BenchmarkTimeout(
                f"trial {trial}: no new checkpoint on {new.name} within {self.limit:.0f} s"
            )
        record["recovery_overhead_s"] = record["job_running_s"] - record["new_leader_s"]
        record["jobmaster_grant_to_running_s"] = await self._recovery_metric(cluster, new)

        # -- back to three JobManagers: the killed one returns as a standby --------------------------------------
        record["killed_exit_s"] = await cluster.wait_exit(old, 30)
        record["killed_exit_code"] = old.process.returncode if old.process else None
        await cluster.spawn(old)
        start = await cluster.wait_rest(old, self.deadline.bound(120))
        record["restart_to_rest_s"] = start["rest_ok_s"]
        await self._wait_steady(cluster, new)
        record["restarted_standby_rss_mib"] = rss_mib(old.pid)

        for key in (
            "new_leader_s",
            "job_running_s",
            "checkpoint_s",
            "recovery_overhead_s",
            "internal_running_s",
            "jobmaster_created_to_running_s",
            "jobmaster_grant_to_running_s",
            "checkpoint_ack_s",
            "rest_server_leader_s",
            "resource_manager_leader_s",
            "dispatcher_leader_s",
            "restart_to_rest_s",
        ):
            self.case.add(key, record.get(key))
        self.case.add("leader_rss_mib", record["leader_rss_mib"], "MiB")
        self.case.extend("standby_rss_mib", record["standby_rss_mib"], "MiB")
        self.case.add("restarted_standby_rss_mib", record["restarted_standby_rss_mib"], "MiB")
        restored, pre = record.get("restored_checkpoint_id"), record.get("pre_kill_checkpoint_id")
        record["restored_from_latest"] = restored is not None and (pre is None or restored >= pre)
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in record.items()}

    async def _cancel_job(self, cluster: Cluster, watch: LeaderWatch) -> None:
        """Cancel so the job's HA data goes the normal way (the cluster's data is removed afterwards anyway)."""
        with contextlib.suppress(Exception):
            leader = cluster.by_address(watch.current["rest_server"][1])
            if leader is not None and leader.alive():
                await cluster.http.patch(f"{leader.url}/jobs/{cluster.job_id}?mode=cancel", timeout=5.0)


# ---------------------------------------------------------------------------------------------- Flink


def flink_case(result: dict[str, Any]) -> Case:
    """The Flink harness's result as a case with the same series names as ours."""
    case = Case(metadata={"flink": result.get("config", {}), "backend": "zookeeper"})
    config = result.get("config") or {}
    case.metadata["kill_signal"] = config.get("kill_signal")
    case.metadata["session_timeout_s"] = config.get("session_timeout_s")
    trials = result.get("trials") or []
    for key in (
        "new_leader_s",
        "job_running_s",
        "checkpoint_s",
        "recovery_overhead_s",
        "log_grant_s",
        "log_all_running_s",
        "log_checkpoint_s",
        "checkpoint_flink_ack_s",
        "rest_server_leader_s",
        "resource_manager_leader_s",
        "dispatcher_leader_s",
    ):
        case.extend(key, [t.get(key) for t in trials])
    case.extend("leader_rss_mib", [t.get("leader_rss_mib") for t in trials], "MiB")
    case.extend("standby_rss_mib", [x for t in trials for x in (t.get("standby_rss_mib") or [])], "MiB")
    case.extend("restarted_standby_rss_mib", [t.get("restarted_standby_rss_mib") for t in trials], "MiB")
    starts = result.get("jm_starts") or {}
    case.extend("start_to_rest_s", [s.get("rest_ok_s") for s in starts.get("initial") or []])
    case.extend("start_to_rest_any_s", [s.get("rest_any_s") for s in starts.get("initial") or []])
    case.extend("restart_to_rest_s", [s.get("rest_ok_s") for s in starts.get("restarts") or []])
    case.metadata["trials"] = trials
    return case


def run_flink(env: ZooKeeperEnv, sig_name: str, opts: RunOptions, zk_connect: str | None) -> Case:
    module = importlib.import_module("benchmarks.flink.run_flink_failover")
    result: dict[str, Any] = module.run_flink_failover(
        session_timeout_s=env.session_timeout_s,
        kill_signal=sig_name,
        trials=opts.trials,
        work_dir=opts.work_dir,
        zk_connect=zk_connect,
    )
    return flink_case(result)


# ---------------------------------------------------------------------------------------------- driver


def case_name(env: BackendEnv, sig_name: str) -> str:
    return f"{env.label}/{sig_name}"


def run_failover(opts: RunOptions) -> list[BenchmarkResult]:
    """Every failover case of ours (and Flink's on the same ZooKeeper), within ``3 x budget`` in total."""
    ours = BenchmarkResult(
        name="failover",
        title="Failover of the standby cluster (3 JobManagers, 1 TaskManager, checkpointing job)",
        headline=[
            "new_leader_s",
            "job_running_s",
            "checkpoint_s",
            "recovery_overhead_s",
            "jobmaster_grant_to_running_s",
            "leader_rss_mib",
            "standby_rss_mib",
            "start_to_rest_s",
        ],
        metadata={"trials": opts.trials, "quick": opts.quick},
    )
    flink = BenchmarkResult(
        name="failover-flink",
        title="Failover of Flink 2.3 on the same ZooKeeper (benchmarks/flink/run_flink_failover.py)",
        headline=list(ours.headline),
        metadata={"trials": opts.trials},
    )
    total = Deadline(opts.budget_s * 3, "failover")
    runtime_reason = runtime_unavailable_reason()
    flink_reason = "--skip-flink" if opts.skip_flink else flink_unavailable_reason()
    opts.work_dir.mkdir(parents=True, exist_ok=True)
    servers = _Servers(opts.work_dir)
    try:
        for env, sig_name in failover_cases():
            name = case_name(env, sig_name)
            if not opts.wants_backend(env.label):
                continue
            ours_reason = runtime_reason or env.unavailable_reason()
            run_theirs = isinstance(env, ZooKeeperEnv) and flink_reason is None
            if ours_reason is not None:
                ours.cases[name] = Case.skip(ours_reason, **env.describe(), kill_signal=sig_name)
            elif total.expired():
                ours.cases[name] = Case.skip(
                    "failover time budget used up", **env.describe(), kill_signal=sig_name
                )
            else:
                ours.cases[name] = _our_side(env, sig_name, opts, total, servers)
            if isinstance(env, ZooKeeperEnv):
                ours_ran = not ours.cases[name].skipped
                if run_theirs and ours_ran:
                    flink.cases[name] = _flink_side(env, sig_name, opts, total, servers)
                else:
                    # Flink alone has nothing to pair with; its own harness keeps standalone results
                    flink.cases[name] = Case.skip(
                        flink_reason or f"standby's side did not run ({ours.cases[name].skipped})",
                        backend="zookeeper",
                        kill_signal=sig_name,
                        session_timeout_s=env.session_timeout_s,
                    )
    finally:
        servers.stop_all()
    results = [ours]
    if any(not c.skipped for c in flink.cases.values()) or (flink.cases and not opts.skip_flink):
        results.append(flink)
    return results


class _Servers:
    """Coordination servers started for the failover cases; one ZooKeeper serves every ZooKeeper case."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.started: list[BackendEnv] = []
        self.zookeeper: ZooKeeperEnv | None = None

    def ensure(self, env: BackendEnv) -> None:
        if env in self.started:
            return
        if isinstance(env, ZooKeeperEnv) and self.zookeeper is not None:
            env.share_server_with(self.zookeeper)
        env.start(self.work_dir / f"server-{env.label}")
        self.started.append(env)
        if isinstance(env, ZooKeeperEnv) and self.zookeeper is None:
            self.zookeeper = env

    def stop_all(self) -> None:
        for env in reversed(self.started):
            with contextlib.suppress(Exception):
                env.stop()
        self.started.clear()


def _our_side(env: BackendEnv, sig_name: str, opts: RunOptions, total: Deadline, servers: _Servers) -> Case:
    name = case_name(env, sig_name)
    work = Path(tempfile.mkdtemp(prefix=f"failover-{env.label}-{sig_name}-", dir=opts.work_dir))
    t = time.monotonic()
    try:
        servers.ensure(env)
        deadline = Deadline(min(total.remaining(), opts.budget_s), f"failover {name}")
        _log.info("failover %s ...", name)
        case = asyncio.run(bounded(FailoverRun(env, sig_name, opts, work, deadline).run(), deadline))
    except Exception as e:
        _log.exception("failover %s failed", name)
        case = Case(
            metadata={**env.describe(), "kill_signal": sig_name, "logs": str(work / "logs")},
            error=f"{type(e).__name__}: {e}",
        )
    case.metadata["duration_s"] = round(time.monotonic() - t, 1)
    if case.error is None and not opts.keep_work:
        shutil.rmtree(work, ignore_errors=True)
    elif opts.keep_work:
        case.metadata["logs"] = str(work / "logs")
    return case


def _flink_side(
    env: ZooKeeperEnv, sig_name: str, opts: RunOptions, total: Deadline, servers: _Servers
) -> Case:
    if total.expired():
        return Case.skip("failover time budget used up", backend="zookeeper", kill_signal=sig_name)
    _log.info("Flink 2.3 failover on the same ZooKeeper: %s %s ...", env.label, sig_name)
    t = time.monotonic()
    try:
        shared = env.server_unavailable_reason() is None
        if shared:
            servers.ensure(env)
        case = run_flink(env, sig_name, opts, env.connect_string if shared else None)
        case.metadata["zookeeper"] = (
            f"shared with standby's cases ({env.connect_string})" if shared else "the Flink harness's own"
        )
    except Exception as e:
        _log.exception("Flink failover %s %s failed", env.label, sig_name)
        case = Case(
            metadata={"backend": "zookeeper", "kill_signal": sig_name}, error=f"{type(e).__name__}: {e}"
        )
    case.metadata["duration_s"] = round(time.monotonic() - t, 1)
    return case
