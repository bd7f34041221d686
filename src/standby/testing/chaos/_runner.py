"""The chaos runner: a real HA cluster under a seeded fault schedule, then the safety checker on its audit log.

One run: start the coordination server (ZooKeeper or etcd; none for ``filesystem``) with one loopback TCP proxy
per JobManager, 3 JobManagers and 2 TaskManagers as real processes writing one HA audit log, and keep counter jobs
running (checkpoint every 200 ms) while faults are injected one after another until the deadline: SIGKILL of a
JobManager (leader or standby) or a TaskManager then a restart, SIGSTOP/SIGCONT of a JobManager (also longer than
the session timeout), a restart of the coordination server, a JobManager's connection stalled or dropped. Processes
that exit on their own are restarted, as a supervisor would. Then every fault heals, the jobs must finish, the
cluster is shut down with cleanup (``DELETE /cluster``), the storage and the coordination store are inspected, and
:func:`standby.testing.chaos.check_audit_log` decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from standby.testing._tcp_proxy import TcpProxy

from ._checker import AuditRecord, CheckReport, check_audit_log, leftover_files, load_audit_log
from ._cluster import ChaosCluster, ChaosProcess, ClusterTimeoutError, wait_for
from ._faults import FaultSpec, fault_kinds, make_schedule

__all__ = ["BACKENDS", "ChaosOptions", "ChaosReport", "ChaosSetupError", "FaultEvent", "run_chaos"]

_log = logging.getLogger(__name__)

BACKENDS: tuple[str, ...] = ("filesystem", "zookeeper", "etcd")

_COUNTER_SOURCE = b'''
import time
from standby import Task


class Counter(Task):
    """Each subtask counts its share of 1..N; the state is the position, so results are exact across failures."""

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
'''


class ChaosSetupError(RuntimeError):
    """The run could not start (server software missing, cluster not ready); the message says what to do."""


def counter_expectation(count: int) -> dict[str, int]:
    """The closed form of the counter job's result."""
    return {"count": count, "sum": count * (count + 1) // 2}


@dataclass
class ChaosOptions:
    backend: str = "filesystem"
    #: length of the fault phase (seconds; the first round of one fault per kind always completes)
    duration_s: float = 60.0
    seed: int = 0
    jobmanagers: int = 3
    taskmanagers: int = 2
    slots_per_taskmanager: int = 2
    #: jobs running at once during the fault phase (new ones are submitted as others finish)
    concurrent_jobs: int = 2
    parallelism: int = 2
    #: computing time of one job without faults (None: a third of the duration, between 8 and 60 s)
    job_seconds: float | None = None
    step_ms: float = 5.0
    checkpoint_interval_ms: int = 200
    #: ZooKeeper session timeout / etcd lease TTL (seconds)
    session_timeout_s: float = 3.0
    max_gap_s: float = 3.0
    work_dir: Path | None = None
    keep: bool = False
    #: how long the cluster may need to come back after a fault before the next one (liveness, reported)
    recovery_timeout_s: float = 45.0
    #: how long the jobs may need to finish after the faults healed
    finish_timeout_s: float = 180.0
    log: Callable[[str], None] | None = None

    def effective_job_seconds(self) -> float:
        if self.job_seconds is not None:
            return self.job_seconds
        return min(60.0, max(8.0, self.duration_s / 3.0))

    def job_count(self) -> int:
        return max(10, int(self.effective_job_seconds() * 1000.0 / self.step_ms) * self.parallelism)

    def effective_finish_timeout_s(self) -> float:
        """A job submitted just before the faults end still has all its work to do (and restarts to survive)."""
        return max(self.finish_timeout_s, 3.0 * self.effective_job_seconds() + 60.0)


@dataclass
class FaultEvent:
    spec: FaultSpec
    process: str | None = None
    pid: int | None = None
    started_at: float = 0.0
    healed_at: float = 0.0
    recovered_s: float | None = None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.spec.number,
            "kind": self.spec.kind,
            "mode": self.spec.mode,
            "target": self.spec.target,
            "process": self.process,
            "pid": self.pid,
            "hold_s": self.spec.hold_s,
            "recovered_s": self.recovered_s,
            "note": self.note,
        }


@dataclass
class ChaosJob:
    job_id: str
    count: int
    accepted: bool = False
    detail: str = ""
    rest_result: dict[str, Any] | None = None

    @property
    def expected(self) -> dict[str, int]:
        return counter_expectation(self.count)


@dataclass
class ChaosReport:
    options: ChaosOptions
    work_dir: Path
    faults: list[FaultEvent] = field(default_factory=list)
    jobs: list[ChaosJob] = field(default_factory=list)
    self_exits: list[str] = field(default_factory=list)
    liveness: list[str] = field(default_factory=list)
    leftovers: list[str] | None = None
    check: CheckReport | None = None
    elapsed_s: float = 0.0

    @property
    def passed(self) -> bool:
        return self.check is not None and self.check.passed and not self.liveness

    def render(self) -> str:
        o = self.options
        kinds: dict[str, int] = {}
        for f in self.faults:
            kinds[f.spec.kind] = kinds.get(f.spec.kind, 0) + 1
        lines = [
            f"chaos run: backend {o.backend}, seed {o.seed}, fault phase {o.duration_s:.0f} s, "
            f"{self.elapsed_s:.1f} s in all; work directory {self.work_dir}",
            f"faults injected: {len(self.faults)} "
            + ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items())),
        ]
        lines.extend(
            f"  {f.spec.describe()} -> {f.process or '-'} (pid {f.pid or '-'})"
            + (f", cluster back after {f.recovered_s:.1f} s" if f.recovered_s is not None else "")
            + (f"; {f.note}" if f.note else "")
            for f in self.faults
        )
        if self.self_exits:
            lines.append(f"processes that exited on their own (restarted): {len(self.self_exits)}")
            lines.extend(f"  {e}" for e in self.self_exits[:20])
        finished = sum(1 for j in self.jobs if j.accepted)
        lines.append(
            f"jobs: {finished} submitted (counter, parallelism {o.parallelism}); expected exact results"
        )
        if self.check is not None:
            stats = self.check.stats
            lines.append(
                f"failovers: {stats.get('failovers')} (leader sessions: {stats.get('leader_sessions')}), "
                f"checkpoint recoveries: {stats.get('checkpoint_recoveries')}, "
                f"audit records: {stats.get('records')} from {stats.get('processes')} processes"
            )
            lines.append(f"accepted writes: {stats.get('accepted_writes')}")
            lines.append(f"rejected writes: {stats.get('rejected_writes') or 'none'}")
            lines.append(f"cancelled writes (outcome unknown): {stats.get('cancelled_writes') or 'none'}")
            lines.append(self.check.render())
        for item in self.liveness:
            lines.append(f"LIVENESS {item}")
        lines.append("RESULT: " + ("PASSED" if self.passed else "FAILED"))
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        o = self.options
        return {
            "backend": o.backend,
            "seed": o.seed,
            "duration_s": o.duration_s,
            "elapsed_s": round(self.elapsed_s, 3),
            "work_dir": str(self.work_dir),
            "passed": self.passed,
            "faults": [f.to_json() for f in self.faults],
            "jobs": [
                {"job_id": j.job_id, "count": j.count, "accepted": j.accepted, "detail": j.detail}
                for j in self.jobs
            ],
            "self_exits": self.self_exits,
            "liveness": self.liveness,
            "leftovers": self.leftovers,
            "check": self.check.to_json() if self.check is not None else None,
        }


# ------------------------------------------------------------------------------------------ audit log tail


class _AuditTail:
    """Reads the audit log incrementally while the run goes on (complete lines only)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = 0
        self._partial = b""
        self.planned: set[str] = set()
        self.dirty: dict[str, AuditRecord] = {}
        self.clean: set[str] = set()

    def poll(self) -> None:
        try:
            with open(self._path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return
        self._offset += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        for raw in lines:
            try:
                record = AuditRecord.from_json(json.loads(raw))
            except (ValueError, KeyError, TypeError):
                continue
            if not record.accepted:
                continue
            if record.kind == "plan_put":
                self.planned.add(record.key)
            elif record.kind == "job_result_dirty":
                self.dirty.setdefault(record.key, record)
            elif record.kind == "job_result_clean":
                self.clean.add(record.key)


# ------------------------------------------------------------------------------------------ coordination


class _Coordination:
    """The coordination server of the backend, one TCP proxy per JobManager, and the inspection of leftovers."""

    def __init__(self, backend: str, work_dir: Path, session_timeout_s: float) -> None:
        self.backend = backend
        self.work_dir = work_dir
        self.session_timeout_s = session_timeout_s
        self.server: Any = None
        self.proxies: dict[str, TcpProxy] = {}

    async def start(self) -> None:
        if self.backend == "zookeeper":
            from standby.testing._zookeeper_server import ZooKeeperServer, zookeeper_unavailable_reason

            reason = zookeeper_unavailable_reason()
            if reason is not None:
                raise ChaosSetupError(reason)
            self.server = ZooKeeperServer(base_dir=self.work_dir / "servers", tick_time_ms=250)
        elif self.backend == "etcd":
            from standby.testing._etcd_server import EtcdServer, etcd_unavailable_reason

            reason = etcd_unavailable_reason()
            if reason is not None:
                raise ChaosSetupError(reason)
            if importlib.util.find_spec("standby.backends.etcd") is None:
                raise ChaosSetupError(
                    "the etcd backend (standby.backends.etcd) is not installed in this tree"
                )
            self.server = EtcdServer(base_dir=self.work_dir / "servers")
        if self.server is not None:
            await asyncio.to_thread(self.server.start)

    def settings(self, cluster_id: str) -> dict[str, str]:
        timeout = f"{int(self.session_timeout_s * 1000)} ms"
        if self.backend == "zookeeper":
            return {
                "high-availability.zookeeper.quorum": self.server.connect_string,
                "high-availability.zookeeper.client.session-timeout": timeout,
                "high-availability.zookeeper.client.connection-timeout": timeout,
                "high-availability.zookeeper.client.retry-wait": "200 ms",
                "high-availability.zookeeper.client.max-retry-wait": "1 s",
                "high-availability.zookeeper.client.max-retry-attempts": "5",
            }
        if self.backend == "etcd":
            return {
                "high-availability.etcd.endpoints": self.server.endpoint,
                "high-availability.etcd.lease-ttl": f"{max(1, round(self.session_timeout_s))} s",
                "high-availability.etcd.connection-timeout": timeout,
            }
        return {}

    def jobmanager_settings(self, name: str) -> dict[str, str]:
        """A JobManager reaches the coordination server through its own proxy (so that it alone can be cut)."""
        if self.server is None:
            return {}
        proxy = TcpProxy(self.server.host, self.server.port).start()
        self.proxies[name] = proxy
        key = (
            "high-availability.zookeeper.quorum"
            if self.backend == "zookeeper"
            else "high-availability.etcd.endpoints"
        )
        return {key: proxy.endpoint}

    def heal_all(self) -> None:
        for proxy in self.proxies.values():
            proxy.heal()

    async def ensure_running(self) -> None:
        if self.server is not None and not self.server.running:
            await asyncio.to_thread(self.server.start)

    async def leftovers(self, cluster_id: str) -> list[str]:
        if self.backend == "zookeeper":
            return await asyncio.to_thread(self._zookeeper_leftovers, cluster_id)
        if self.backend == "etcd":
            return await self._etcd_leftovers(cluster_id)
        return []

    def _zookeeper_leftovers(self, cluster_id: str) -> list[str]:
        from kazoo.client import KazooClient

        client = KazooClient(hosts=self.server.connect_string, timeout=10.0)
        client.start(timeout=15.0)
        try:
            root = "/flink/" + cluster_id.strip("/")
            found: list[str] = []
            pending = [root] if client.exists(root) else []
            # bounded by the size of the tree
            while pending and len(found) < 1000:
                path = pending.pop()
                found.append(f"zookeeper node {path}")
                pending.extend(f"{path}/{child}" for child in client.get_children(path))
            return sorted(found)
        finally:
            client.stop()
            client.close()

    async def _etcd_leftovers(self, cluster_id: str) -> list[str]:
        import aetcd

        prefix = f"/standby/{cluster_id.strip('/')}/".encode()
        async with aetcd.Client(self.server.host, self.server.port) as client:
            result = await client.get_prefix(prefix)
            return sorted(f"etcd key {kv.key.decode(errors='replace')}" for kv in result)

    async def close(self) -> None:
        for proxy in self.proxies.values():
            with contextlib.suppress(RuntimeError):
                await asyncio.to_thread(proxy.close)
        if self.server is not None:
            await asyncio.to_thread(self.server.close)


# ------------------------------------------------------------------------------------------ the run


class _Run:
    def __init__(self, options: ChaosOptions) -> None:
        if options.backend not in BACKENDS:
            raise ChaosSetupError(
                f"unknown backend {options.backend!r}: expected one of {', '.join(BACKENDS)}"
            )
        self.o = options
        self.started = time.monotonic()
        self.work_dir = options.work_dir or Path(tempfile.mkdtemp(prefix=f"standby-chaos-{options.backend}-"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.storage = self.work_dir / "ha"
        self.audit_path = self.work_dir / "audit.jsonl"
        self.cluster_id = f"chaos-{options.seed}-{uuid.uuid4().hex[:6]}"
        self.report = ChaosReport(options, self.work_dir)
        self.coordination = _Coordination(options.backend, self.work_dir, options.session_timeout_s)
        self.audit = _AuditTail(self.audit_path)
        self.cluster: ChaosCluster | None = None
        self.supervising = True
        self.submitting = True
        self._tasks: list[asyncio.Task[None]] = []
        self.shutdown_ns: int | None = None

    def say(self, text: str) -> None:
        line = f"[{time.monotonic() - self.started:6.1f}s] {text}"
        _log.info("%s", line)
        if self.o.log is not None:
            self.o.log(line)

    # -------------------------------------------------------------------------------------------- setup

    def _settings(self) -> dict[str, str]:
        o = self.o
        settings = {
            "high-availability.type": o.backend,
            "high-availability.storageDir": str(self.storage),
            "high-availability.cluster-id": self.cluster_id,
            "high-availability.audit-log": str(self.audit_path),
            "execution.checkpointing.interval": f"{o.checkpoint_interval_ms} ms",
            "execution.checkpointing.timeout": "10 s",
            "heartbeat.interval": "250 ms",
            "heartbeat.timeout": "3 s",
            "restart-strategy.type": "fixed-delay",
            "restart-strategy.fixed-delay.attempts": "1000000",
            "restart-strategy.fixed-delay.delay": "200 ms",
            "cleanup-strategy.type": "fixed-delay",
            "cleanup-strategy.fixed-delay.attempts": "1000000",
            "cleanup-strategy.fixed-delay.delay": "200 ms",
            "taskmanager.numberOfTaskSlots": str(o.slots_per_taskmanager),
            "slot.request.timeout": "60 s",
            "pekko.ask.timeout": "5 s",
        }
        settings.update(self.coordination.settings(self.cluster_id))
        return settings

    async def setup(self) -> ChaosCluster:
        o = self.o
        self.say(f"starting: backend {o.backend}, seed {o.seed}, work directory {self.work_dir}")
        await self.coordination.start()
        config_file = self.work_dir / "config.yaml"
        config_file.write_text(yaml.safe_dump(self._settings(), sort_keys=True))
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        cluster = ChaosCluster(self.work_dir, config_file, env)
        self.cluster = cluster
        for i in range(o.jobmanagers):
            cluster.add("jobmanager", self.coordination.jobmanager_settings(f"jm-{i + 1}"))
        for _ in range(o.taskmanagers):
            cluster.add("taskmanager")
        for p in cluster.processes:
            await cluster.start(p)
        try:
            leader = await cluster.ready(o.taskmanagers, 90.0)
        except ClusterTimeoutError as e:
            raise ChaosSetupError(f"the cluster did not start: {e}; logs in {self.work_dir / 'logs'}") from e
        self.say(f"cluster up: leader {leader.name}, {o.taskmanagers} TaskManagers")
        return cluster

    # -------------------------------------------------------------------------------------------- background

    async def _supervise(self, cluster: ChaosCluster) -> None:
        """Restart processes that exit by themselves (a fatal error ends a JobManager, as in Flink)."""
        while True:
            await asyncio.sleep(0.2)
            if not self.supervising:
                continue
            for p in cluster.processes:
                if p.proc is None or p.alive() or p.down or not self.supervising:
                    continue
                code = p.proc.returncode
                self.report.self_exits.append(f"{p.name} (pid {p.pid}) exited with code {code}")
                self.say(f"{p.name} (pid {p.pid}) exited on its own with code {code}: restarting it")
                await cluster.start(p)

    async def _submit(self, cluster: ChaosCluster, job: ChaosJob, deadline: float) -> None:
        args = [str(job.count), str(self.o.step_ms)]
        # bounded by the deadline
        while time.monotonic() < deadline:
            self.audit.poll()
            if job.job_id in self.audit.planned:
                job.accepted, job.detail = True, "stored (answer lost)"
                return
            accepted, detail = await cluster.submit(job.job_id, _COUNTER_SOURCE, args, self.o.parallelism)
            job.detail = detail
            if accepted:
                job.accepted = True
                return
            await asyncio.sleep(0.5)
        self.audit.poll()
        job.accepted = job.job_id in self.audit.planned

    async def _jobs(self, cluster: ChaosCluster) -> None:
        """Keep ``concurrent_jobs`` counter jobs running while the faults go on."""
        while self.submitting:
            self.audit.poll()
            running = [j for j in self.report.jobs if j.accepted and j.job_id not in self.audit.dirty]
            if len(running) < self.o.concurrent_jobs:
                job = ChaosJob(uuid.uuid4().hex, self.o.job_count())
                self.report.jobs.append(job)
                await self._submit(cluster, job, time.monotonic() + 60.0)
                self.say(f"job {job.job_id[:8]} (count {job.count}): {job.detail}")
                continue
            await asyncio.sleep(0.3)

    # -------------------------------------------------------------------------------------------- faults

    async def _target(self, cluster: ChaosCluster, role: str) -> ChaosProcess | None:
        live = [p for p in cluster.jobmanagers if p.alive() and not p.paused and not p.down]
        if not live:
            return None
        leader = await cluster.leader()
        if role == "leader":
            return leader if leader in live else live[0]
        standbys = [p for p in live if p is not leader]
        return standbys[0] if standbys else live[0]

    async def _inject(self, cluster: ChaosCluster, spec: FaultSpec) -> FaultEvent:
        event = FaultEvent(spec, started_at=time.monotonic())
        hold = spec.hold_s
        if spec.kind in ("kill-jobmanager", "pause-jobmanager", "cut-jobmanager"):
            target = await self._target(cluster, spec.target)
            if target is None:
                event.note = "no JobManager to target"
                return event
            event.process, event.pid = target.name, target.pid
            if spec.kind == "kill-jobmanager":
                target.down = True
                await cluster.kill(target)
                await asyncio.sleep(hold)
                await cluster.start(target)
                event.note = f"restarted as pid {target.pid}"
            elif spec.kind == "pause-jobmanager":
                cluster.pause(target)
                await asyncio.sleep(hold)
                cluster.resume(target)
            else:
                proxy = self.coordination.proxies[target.name]
                await asyncio.to_thread(proxy.stall if spec.mode == "stall" else proxy.drop)
                await asyncio.sleep(hold)
                await asyncio.to_thread(proxy.heal)
        elif spec.kind == "kill-taskmanager":
            index = int(spec.target.split("-")[1]) - 1
            target = cluster.taskmanagers[index % len(cluster.taskmanagers)]
            event.process, event.pid = target.name, target.pid
            target.down = True
            await cluster.kill(target)
            await asyncio.sleep(hold)
            await cluster.start(target)
            event.note = f"restarted as pid {target.pid}"
        elif spec.kind == "restart-server":
            server = self.coordination.server
            event.process, event.pid = "server", server.pid
            await asyncio.to_thread(server.kill if spec.mode == "kill" else server.stop)
            await asyncio.sleep(hold)
            await asyncio.to_thread(server.start)
        event.healed_at = time.monotonic()
        return event

    async def _fault_phase(self, cluster: ChaosCluster) -> None:
        o = self.o
        schedule = make_schedule(
            o.seed, o.backend, o.duration_s, o.taskmanagers, o.session_timeout_s, o.max_gap_s
        )
        deadline = time.monotonic() + o.duration_s
        # the first round (one fault of every kind) always runs, so that even a short run covers every kind
        first_round = len(fault_kinds(o.backend))
        for spec in schedule:
            if spec.number > first_round and time.monotonic() + spec.gap_s >= deadline:
                break
            await asyncio.sleep(spec.gap_s)
            self.say(f"fault {spec.describe()}")
            try:
                event = await self._inject(cluster, spec)
            except Exception as e:
                # e.g. the coordination server did not come back: heal what can be healed, report, go on
                event = FaultEvent(spec, note=f"injection failed: {type(e).__name__}: {e}")
                self.report.liveness.append(f"fault {spec.describe()} could not be injected or healed: {e}")
                await self._heal_all(cluster)
            self.report.faults.append(event)
            try:
                await cluster.ready(o.taskmanagers, o.recovery_timeout_s)
                event.recovered_s = time.monotonic() - event.healed_at
            except ClusterTimeoutError:
                self.report.liveness.append(
                    f"the cluster had no leader with {o.taskmanagers} TaskManagers {o.recovery_timeout_s:.0f} s "
                    f"after fault {spec.describe()} healed"
                )
            self.say(
                f"  -> {event.process or '-'} (pid {event.pid or '-'}) {event.note}; cluster back after "
                f"{event.recovered_s if event.recovered_s is not None else float('nan'):.1f} s"
            )

    async def _heal_all(self, cluster: ChaosCluster) -> None:
        self.coordination.heal_all()
        await self.coordination.ensure_running()
        for p in cluster.processes:
            cluster.resume(p)
            if not p.alive():
                await cluster.start(p)

    # -------------------------------------------------------------------------------------------- end

    async def _finish_jobs(self, cluster: ChaosCluster) -> None:
        o = self.o
        jobs = [j for j in self.report.jobs if j.accepted]

        async def all_done() -> bool:
            self.audit.poll()
            for job in jobs:
                if job.rest_result is None and job.job_id in self.audit.dirty:
                    job.rest_result = await cluster.job_result(job.job_id)
            return all(j.job_id in self.audit.dirty for j in jobs)

        try:
            await wait_for("every job to finish", all_done, o.effective_finish_timeout_s(), 0.5)
        except ClusterTimeoutError as e:
            missing = [j.job_id for j in jobs if j.job_id not in self.audit.dirty]
            self.report.liveness.append(f"{e}: unfinished jobs {missing}")
            return
        self.say(f"all {len(jobs)} jobs finished")

        async def all_clean() -> bool:
            self.audit.poll()
            return all(j.job_id in self.audit.clean for j in jobs)

        try:
            await wait_for("every job's cleanup", all_clean, 60.0, 0.3)
        except ClusterTimeoutError as e:
            missing = [j.job_id for j in jobs if j.job_id not in self.audit.clean]
            self.report.liveness.append(f"{e}: not cleaned up {missing}")

    async def _shutdown(self, cluster: ChaosCluster) -> None:
        self.supervising = False

        async def all_announced() -> bool:
            # the leader stops the JobManagers it knows of: a standby it does not know would take over
            body = await cluster.leader_get("/jobmanagers")
            if not body:
                return False
            pids = {jm.get("pid") for jm in body.get("jobmanagers") or []}
            return all(p.pid in pids for p in cluster.jobmanagers if p.alive())

        try:
            await wait_for("every JobManager to be known to the leader", all_announced, 30.0, 0.3)
        except ClusterTimeoutError as e:
            self.report.liveness.append(str(e))
        self.shutdown_ns = time.monotonic_ns()

        async def shut() -> bool:
            return await cluster.shutdown_cluster()

        try:
            await wait_for("the leader to accept DELETE /cluster", shut, 30.0, 0.5)
        except ClusterTimeoutError as e:
            self.report.liveness.append(str(e))
        left = await cluster.wait_exited(40.0)
        if left:
            self.report.liveness.append(
                "still running 40 s after the cluster shutdown (killed): " + ", ".join(p.name for p in left)
            )
            for p in left:
                await cluster.kill(p)
        self.say("cluster shut down")

    # -------------------------------------------------------------------------------------------- main

    async def run(self) -> ChaosReport:
        cluster: ChaosCluster | None = None
        try:
            cluster = await self.setup()
            self._tasks = [
                asyncio.create_task(self._supervise(cluster), name="chaos-supervisor"),
                asyncio.create_task(self._jobs(cluster), name="chaos-jobs"),
            ]
            await self._fault_phase(cluster)
            self.submitting = False
            await self._heal_all(cluster)
            self.say("fault phase over: every fault healed")
            jobs_task = self._tasks[1]
            # the job loop ends by itself once submitting stopped (a submission in flight finishes first)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(jobs_task), 70.0)
            await self._finish_jobs(cluster)
            await self._shutdown(cluster)
            self.report.leftovers = leftover_files(self.storage) + await self.coordination.leftovers(
                self.cluster_id
            )
        finally:
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(task, 10.0)
            if cluster is not None:
                await cluster.close()
            await self.coordination.close()
        records, bad = load_audit_log(self.audit_path) if self.audit_path.exists() else ([], 0)
        expected = {j.job_id: j.expected for j in self.report.jobs if j.accepted}
        observed = {j.job_id: j.rest_result for j in self.report.jobs if j.rest_result}
        self.report.check = check_audit_log(
            records, expected, self.report.leftovers, observed, bad, self.shutdown_ns
        )
        self.report.elapsed_s = time.monotonic() - self.started
        if self.report.passed and not self.o.keep and self.o.work_dir is None:
            shutil.rmtree(self.work_dir, ignore_errors=True)
        return self.report


async def run_chaos(options: ChaosOptions) -> ChaosReport:
    """One chaos run (see the module docstring); the report says what was injected and what the checker found."""
    return await _Run(options).run()
