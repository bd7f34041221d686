"""HA-primitive benchmarks, per available backend: what the HA layer costs, without the job cluster.

* ``leader-notification``: grant -> confirmed leader information seen by a retriever in ANOTHER process.
  Process A (a child) contends for ``dispatcher``, confirms, and on our word closes its election (the driver
  closes with it, so the next grant is a new leadership session); process B (this one) timestamps the
  retriever's notification. Both read CLOCK_MONOTONIC, which Linux keeps system-wide, so the stamps of the two
  processes compare directly (no NTP steps in between).
* ``checkpoint-commits``: ``CompletedCheckpointStore.add_checkpoint_and_subsume_oldest_one`` per second (and per
  commit latency), retaining 1 as Flink does by default; the committing process leads, as a JobMaster does.
* ``plan-recovery``: a new leader's ``get_job_ids()`` + ``recover_execution_plan`` of every stored plan, for
  1, 10, 100 and 1000 stored plans.
* ``memory``: RSS of a process holding the HA services with 1000 jobs' HA data recovered (plans, checkpoint
  stores, counters), measured in a fresh child process.

Run through ``python -m benchmarks.run --only leader-notification`` etc.; this module's ``__main__`` is the child
side (``contender`` and ``memory`` commands) and not meant to be called by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from uuid import UUID

from standby.config import Configuration
from standby.ha import (
    CompletedCheckpoint,
    DefaultCheckpointsCleaner,
    ExecutionPlan,
    ExecutionPlanListener,
    HighAvailabilityServices,
    JobID,
    JobStatus,
    LeaderContender,
    LeaderElection,
    LeaderRetrievalListener,
    create_high_availability_services,
)

from ._backends import BackendEnv, new_cluster_id, primitive_backends
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
)

_log = logging.getLogger("benchmarks.ha_primitives")

NAMES = ("leader-notification", "checkpoint-commits", "plan-recovery", "memory", "handover")
#: bound of a single step (one grant, one notification, one child answer)
STEP_TIMEOUT_S = 30.0


def now() -> float:
    """CLOCK_MONOTONIC: system-wide on Linux, so stamps of different processes on this host compare."""
    return time.monotonic()


# ---------------------------------------------------------------------------------------------- helpers


class _Contender(LeaderContender):
    """Records grants; callbacks run on the election service's queue and must not block."""

    def __init__(self) -> None:
        self.session_id: UUID | None = None
        self.granted_at: float | None = None
        self._granted = asyncio.Event()
        self.errors: list[Exception] = []

    def grant_leadership(self, session_id: UUID) -> None:
        self.granted_at = now()
        self.session_id = session_id
        self._granted.set()

    def revoke_leadership(self) -> None:
        self.session_id = None
        self._granted.clear()

    def handle_error(self, error: Exception) -> None:
        self.errors.append(error)

    async def wait_granted(self, timeout: float) -> UUID:
        try:
            await asyncio.wait_for(self._granted.wait(), timeout)
        except TimeoutError:
            raise BenchmarkTimeout(
                f"no leadership granted within {timeout:.0f} s (errors: {self.errors!r})"
            ) from None
        assert self.session_id is not None
        return self.session_id


class _Leadership:
    """This process leads ``dispatcher`` (writes to the stores are fenced: only a leader writes)."""

    def __init__(self, election: LeaderElection, contender: _Contender, session_id: UUID) -> None:
        self.election = election
        self.contender = contender
        self.session_id = session_id

    async def close(self) -> None:
        await self.election.close()


async def become_leader(services: HighAvailabilityServices, timeout: float = STEP_TIMEOUT_S) -> _Leadership:
    election = services.get_dispatcher_leader_election()
    contender = _Contender()
    await election.start_leader_election(contender)
    session_id = await contender.wait_granted(timeout)
    await election.confirm_leadership(session_id, f"bench://{os.getpid()}")
    return _Leadership(election, contender, session_id)


class _NullPlanListener(ExecutionPlanListener):
    def on_added_execution_plan(self, job_id: JobID) -> None:
        return None

    def on_removed_execution_plan(self, job_id: JobID) -> None:
        return None


class _RecordingRetrievalListener(LeaderRetrievalListener):
    """When each leader session id was first seen (CLOCK_MONOTONIC)."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}
        self.errors: list[Exception] = []
        self._changed = asyncio.Event()

    def notify_leader_address(self, address: str | None, session_id: UUID | None) -> None:
        if session_id is not None:
            self.seen.setdefault(str(session_id), now())
        self._changed.set()

    def handle_error(self, error: Exception) -> None:
        self.errors.append(error)
        self._changed.set()

    async def wait_for(self, session_id: str, timeout: float) -> float:
        deadline = now() + timeout
        while session_id not in self.seen:  # bounded by the deadline
            remaining = deadline - now()
            if remaining <= 0:
                raise BenchmarkTimeout(
                    f"the retriever did not see leader session {session_id} within {timeout:.0f} s "
                    f"(errors: {self.errors!r})"
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return self.seen[session_id]


async def open_services(values: dict[str, str]) -> HighAvailabilityServices:
    return await asyncio.wait_for(create_high_availability_services(Configuration(values)), STEP_TIMEOUT_S)


@contextlib.asynccontextmanager
async def leading_services(
    values: dict[str, str],
) -> AsyncIterator[tuple[HighAvailabilityServices, _Leadership]]:
    services = await open_services(values)
    try:
        leadership = await become_leader(services)
        try:
            yield services, leadership
        finally:
            await leadership.close()
    finally:
        await services.close()


async def cleanup_cluster(values: dict[str, str]) -> None:
    """Remove every trace of a benchmark cluster (best effort: results are already taken)."""
    try:
        services = await open_services(values)
    except Exception as e:
        _log.warning("cannot open %s to clean it up: %s", values.get("high-availability.cluster-id"), e)
        return
    try:
        await asyncio.wait_for(services.cleanup_all_data(), 120)
    except Exception as e:
        _log.warning("cleanup of %s failed: %s", values.get("high-availability.cluster-id"), e)
    finally:
        with contextlib.suppress(Exception):
            await services.close()


def _plan(index: int) -> ExecutionPlan:
    """A plan the size of the runtime's: job file key, entry class, arguments and a little configuration."""
    job_id = JobID.generate()
    return ExecutionPlan(
        job_id=job_id,
        name=f"bench-job-{index}",
        parallelism=2,
        user_code=f"job_{job_id}/blob_p-{job_id[:16]}",
        entry="Counter",
        args=("1000000", "5"),
        configuration={"execution.checkpointing.interval": "300 ms", "restart-strategy.type": "fixed-delay"},
        submitted_at_ms=int(time.time() * 1000),
    )


def _checkpoint(job_id: JobID, checkpoint_id: int, state_dir: str) -> CompletedCheckpoint:
    """Metadata of a 2-subtask checkpoint; the state files do not exist (the cleaner tolerates that)."""
    ts = int(time.time() * 1000)
    return CompletedCheckpoint(
        job_id=job_id,
        checkpoint_id=checkpoint_id,
        timestamp_ms=ts,
        completion_timestamp_ms=ts,
        task_states={str(i): f"{state_dir}/chk-{checkpoint_id}/subtask-{i}" for i in range(2)},
    )


async def _child(args: list[str], log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as err:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "benchmarks.ha_primitives",
            *args,
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
        )


async def _read_json_line(proc: asyncio.subprocess.Process, timeout: float, log: Path) -> dict[str, Any]:
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout)
    except TimeoutError:
        raise BenchmarkTimeout(f"the child process said nothing within {timeout:.0f} s; see {log}") from None
    if not line:
        await asyncio.wait_for(proc.wait(), 10)
        raise BenchmarkError(f"the child process ended (exit code {proc.returncode}); see {log}")
    body: dict[str, Any] = json.loads(line)
    return body


async def _end_child(proc: asyncio.subprocess.Process) -> None:
    if proc.stdin is not None and not proc.stdin.is_closing():
        with contextlib.suppress(Exception):
            proc.stdin.write(b"stop\n")
            await proc.stdin.drain()
            proc.stdin.close()
    try:
        await asyncio.wait_for(proc.wait(), 20)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


# ---------------------------------------------------------------------------------------------- (a) notification


async def bench_leader_notification(
    env: BackendEnv, opts: RunOptions, work: Path, deadline: Deadline
) -> Case:
    values = env.config(new_cluster_id("bench-notify"), work / "ha")
    config_path = work / "notify-config.json"
    config_path.write_text(json.dumps(values))
    log = work / "notify-contender.log"
    case = Case(metadata={**env.describe(), "samples_requested": opts.samples, "clock": "CLOCK_MONOTONIC"})
    services = await open_services(values)
    retriever = services.get_dispatcher_leader_retriever()
    listener = _RecordingRetrievalListener()
    proc: asyncio.subprocess.Process | None = None
    try:
        await retriever.start(listener)
        proc = await _child(["contender", str(config_path), str(opts.samples)], log)
        assert proc.stdin is not None
        for i in range(opts.samples):
            if deadline.expired():
                case.metadata["truncated"] = f"time budget used up after {i} samples"
                break
            sample = await _read_json_line(proc, deadline.bound(STEP_TIMEOUT_S), log)
            seen = await listener.wait_for(sample["session"], deadline.bound(STEP_TIMEOUT_S))
            case.add("grant_to_notified_s", seen - sample["granted"])
            case.add("confirmed_to_notified_s", seen - sample["confirmed"])
            case.add("grant_to_confirmed_s", sample["confirmed"] - sample["granted"])
            if sample.get("regrant") is not None:
                case.add("close_to_regrant_s", sample["regrant"])
            proc.stdin.write(b"next\n")
            await proc.stdin.drain()
    finally:
        if proc is not None:
            await _end_child(proc)
        with contextlib.suppress(Exception):
            await retriever.stop()
        await services.close()
        await cleanup_cluster(values)
    case.metadata["samples"] = len(case.series.get("grant_to_notified_s", []))
    return case


async def contender_main(values: dict[str, str], samples: int) -> None:
    """Child side of ``leader-notification``: contend, confirm, report, wait for ``next``, close, repeat."""
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    services = await open_services(values)
    closed_at: float | None = None
    try:
        for i in range(samples):
            election = services.get_dispatcher_leader_election()
            contender = _Contender()
            await election.start_leader_election(contender)
            session_id = await contender.wait_granted(STEP_TIMEOUT_S)
            granted = contender.granted_at
            assert granted is not None
            await election.confirm_leadership(session_id, f"bench://contender/{os.getpid()}/{i}")
            confirmed = now()
            sample = {
                "i": i,
                "session": str(session_id),
                "granted": granted,
                "confirmed": confirmed,
                "regrant": None if closed_at is None else granted - closed_at,
            }
            sys.stdout.write(json.dumps(sample) + "\n")
            sys.stdout.flush()
            command = await asyncio.wait_for(stdin.readline(), STEP_TIMEOUT_S * 2)
            closed_at = now()
            await election.close()
            if command.strip() != b"next":
                break
    finally:
        await services.close()


# ---------------------------------------------------------------------------------------------- (b) commits


async def bench_checkpoint_commits(env: BackendEnv, opts: RunOptions, work: Path, deadline: Deadline) -> Case:
    values = env.config(new_cluster_id("bench-commits"), work / "ha")
    case = Case(metadata={**env.describe(), "commits_per_trial": opts.commits, "max_retained": 1})
    cleaner = DefaultCheckpointsCleaner()
    state_dir = str(work / "checkpoint-state")
    try:
        async with leading_services(values) as (services, _leadership):
            factory = services.get_checkpoint_recovery_factory()
            for trial in range(opts.trials):
                if deadline.expired():
                    case.metadata["truncated"] = f"time budget used up after {trial} trials"
                    break
                job_id = JobID.generate()
                store = await factory.create_recovered_completed_checkpoint_store(job_id, 1)
                latencies: list[float] = []
                started = now()
                for i in range(opts.commits):
                    checkpoint = _checkpoint(job_id, i + 1, state_dir)
                    t0 = now()
                    await asyncio.wait_for(
                        store.add_checkpoint_and_subsume_oldest_one(checkpoint, cleaner), STEP_TIMEOUT_S
                    )
                    latencies.append(now() - t0)
                elapsed = now() - started
                case.add("commits_per_s", opts.commits / elapsed, "1/s")
                case.extend("commit_latency_s", latencies)
                await store.shutdown(JobStatus.FINISHED, cleaner)
    finally:
        await cleanup_cluster(values)
    return case


# ---------------------------------------------------------------------------------------------- (c) recovery


async def bench_plan_recovery(env: BackendEnv, opts: RunOptions, work: Path, deadline: Deadline) -> Case:
    case = Case(metadata={**env.describe(), "plan_counts": list(opts.plan_counts)})
    for count in opts.plan_counts:
        if deadline.expired():
            case.metadata["truncated"] = f"time budget used up before {count} plans"
            break
        values = env.config(new_cluster_id(f"bench-recovery-{count}"), work / "ha")
        series = f"plans_{count}"
        case.series.setdefault(series, [])
        case.units[series] = "s"
        try:
            seeded = now()
            async with leading_services(values) as (services, _leadership):
                store = services.get_execution_plan_store()
                await store.start(_NullPlanListener())
                try:
                    for i in range(count):
                        await asyncio.wait_for(store.put_execution_plan(_plan(i)), STEP_TIMEOUT_S)
                        if i % 50 == 0:
                            deadline.check(f"storing plan {i} of {count}")
                finally:
                    await store.stop()
            case.metadata[f"seed_{count}_s"] = round(now() - seeded, 3)
            # fewer repetitions for the big sets: each is a full recovery of every plan
            trials = opts.trials if count <= 100 else max(3, opts.trials // 2)
            for _trial in range(trials):
                if deadline.expired():
                    case.metadata["truncated"] = f"time budget used up during {count} plans"
                    break
                async with leading_services(values) as (services, _leadership):
                    store = services.get_execution_plan_store()
                    await store.start(_NullPlanListener())
                    try:
                        t0 = now()
                        job_ids = await asyncio.wait_for(store.get_job_ids(), STEP_TIMEOUT_S)
                        recovered = [
                            await asyncio.wait_for(store.recover_execution_plan(j), STEP_TIMEOUT_S)
                            for j in job_ids
                        ]
                        elapsed = now() - t0
                    finally:
                        await store.stop()
                if len(job_ids) != count or any(p is None for p in recovered):
                    raise BenchmarkError(
                        f"{env.label}: recovered {len(job_ids)} plans ({sum(p is None for p in recovered)} "
                        f"missing), expected {count}"
                    )
                case.add(series, elapsed)
        finally:
            await cleanup_cluster(values)
    return case


# ---------------------------------------------------------------------------------------------- (d) memory


async def bench_memory(env: BackendEnv, opts: RunOptions, work: Path, deadline: Deadline) -> Case:
    jobs = opts.memory_jobs
    values = env.config(new_cluster_id("bench-memory"), work / "ha")
    config_path = work / "memory-config.json"
    config_path.write_text(json.dumps(values))
    log = work / "memory-child.log"
    case = Case(metadata={**env.describe(), "jobs": jobs})
    cleaner = DefaultCheckpointsCleaner()
    state_dir = str(work / "checkpoint-state")
    try:
        seeded = now()
        async with leading_services(values) as (services, _leadership):
            plans = services.get_execution_plan_store()
            await plans.start(_NullPlanListener())
            factory = services.get_checkpoint_recovery_factory()
            try:
                for i in range(jobs):
                    plan = _plan(i)
                    await asyncio.wait_for(plans.put_execution_plan(plan), STEP_TIMEOUT_S)
                    store = await factory.create_recovered_completed_checkpoint_store(plan.job_id, 1)
                    await asyncio.wait_for(
                        store.add_checkpoint_and_subsume_oldest_one(
                            _checkpoint(plan.job_id, 1, state_dir), cleaner
                        ),
                        STEP_TIMEOUT_S,
                    )
                    await store.shutdown(JobStatus.SUSPENDED, cleaner)
                    if i % 50 == 0:
                        deadline.check(f"storing the HA data of job {i} of {jobs}")
            finally:
                await plans.stop()
        case.metadata["seed_s"] = round(now() - seeded, 3)
        trials = 1 if opts.quick else 3
        for _trial in range(trials):
            if deadline.expired():
                case.metadata["truncated"] = "time budget used up"
                break
            proc = await _child(["memory", str(config_path), str(jobs)], log)
            try:
                body = await _read_json_line(proc, deadline.bound(600.0), log)
            finally:
                await _end_child(proc)
            if body.get("recovered") != jobs:
                raise BenchmarkError(
                    f"{env.label}: the child recovered {body.get('recovered')} of {jobs} jobs"
                )
            case.add("rss_interpreter_mib", body["rss_interpreter"], "MiB")
            case.add("rss_services_mib", body["rss_services"], "MiB")
            case.add("rss_recovered_mib", body["rss_recovered"], "MiB")
            case.add("rss_per_job_kib", (body["rss_recovered"] - body["rss_services"]) * 1024 / jobs, "KiB")
            case.add("recover_all_s", body["recover_s"])
    finally:
        await cleanup_cluster(values)
    return case


async def memory_main(values: dict[str, str], jobs: int) -> None:
    """Child side of ``memory``: lead, recover every plan, checkpoint store and counter, report RSS."""
    gc.collect()
    rss_interpreter = rss_mib()
    services = await open_services(values)
    held: list[Any] = []
    try:
        leadership = await become_leader(services)
        gc.collect()
        rss_services = rss_mib()
        plans = services.get_execution_plan_store()
        await plans.start(_NullPlanListener())
        factory = services.get_checkpoint_recovery_factory()
        t0 = now()
        job_ids = await plans.get_job_ids()
        for job_id in job_ids:
            plan = await plans.recover_execution_plan(job_id)
            store = await factory.create_recovered_completed_checkpoint_store(job_id, 1)
            counter = await factory.create_checkpoint_id_counter(job_id)
            await counter.start()
            held.append((plan, store, counter))
        recover_s = now() - t0
        gc.collect()
        rss_recovered = rss_mib()
        sys.stdout.write(
            json.dumps(
                {
                    "recovered": len(held),
                    "checkpoints": sum(1 for _, s, _ in held if s.get_latest_checkpoint() is not None),
                    "rss_interpreter": rss_interpreter,
                    "rss_services": rss_services,
                    "rss_recovered": rss_recovered,
                    "recover_s": recover_s,
                }
            )
            + "\n"
        )
        sys.stdout.flush()
        for _recovered_plan, store, counter in held:
            await store.shutdown(JobStatus.SUSPENDED, DefaultCheckpointsCleaner())
            await counter.shutdown(JobStatus.SUSPENDED)
        await plans.stop()
        await leadership.close()
    finally:
        await services.close()


# ---------------------------------------------------------------------------------------------- hand-over

#: extra arguments of the backend helpers' own hand-over benchmarks (``benchmarks/<backend>_handover.py``)
HANDOVER_ARGS: dict[str, tuple[list[str], list[str]]] = {  # module -> (full run, quick run)
    "kubernetes_handover": (["--default-trials", "3"], ["--default-trials", "0"]),
}
#: their metric names, mapped to one vocabulary
HANDOVER_ALIASES = {"granted_s": "grant_s", "retrieved_s": "retriever_s"}


def handover_modules() -> list[str]:
    """The hand-over benchmarks of the backend helpers present on this branch (``<backend>_handover.py``)."""
    return sorted(p.stem for p in (ROOT / "benchmarks").glob("*_handover.py"))


def handover_cases(report: Any, prefix: str) -> dict[str, Case]:
    """Cases from a hand-over benchmark's JSON: every object holding per-trial ``samples`` or ``trials``.

    Numbers named ``*_ms`` become seconds (``*_s``); the case is named after the object's ``name`` or its path.
    """
    cases: dict[str, Case] = {}

    def visit(node: Any, path: list[str]) -> None:
        if isinstance(node, list):
            for i, item in enumerate(node):
                visit(item, [*path, str(i)])
            return
        if not isinstance(node, dict):
            return
        rows = next(
            (
                node[key]
                for key in ("samples", "trials")
                if isinstance(node.get(key), list) and node[key] and isinstance(node[key][0], dict)
            ),
            None,
        )
        if rows is None:
            for key, value in node.items():
                visit(value, [*path, str(key)])
            return
        name = str(node.get("name") or "/".join(p for p in path if p != "results"))
        case = Case(
            metadata={k: v for k, v in node.items() if isinstance(v, (str, int, float, bool)) and k != "name"}
        )
        for row in rows:
            for key, value in row.items():
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    continue
                if key.endswith("_ms"):
                    metric, seconds = key[:-3] + "_s", float(value) / 1000.0
                elif key.endswith("_s"):
                    metric, seconds = key, float(value)
                else:
                    continue
                case.add(HANDOVER_ALIASES.get(metric, metric), seconds)
        cases[f"{prefix}/{name}"] = case

    visit(report, [])
    return cases


def run_handover(opts: RunOptions) -> BenchmarkResult:
    """Run every ``benchmarks/<backend>_handover.py`` (each backend helper's own) and collect their trials."""
    result = BenchmarkResult(
        name="handover",
        title="Leader hand-over between processes (the backends' own benchmarks/<backend>_handover.py)",
        headline=["grant_s", "retriever_s"],
        metadata={"trials": opts.trials, "quick": opts.quick},
    )
    envs = {env.ha_type: env for env in primitive_backends()}
    opts.work_dir.mkdir(parents=True, exist_ok=True)
    for module in handover_modules():
        backend = module.removesuffix("_handover")
        if not opts.wants_backend(backend):
            continue
        env = envs.get(backend)
        reason = env.unavailable_reason() if env is not None else None
        if reason is not None:
            result.cases[backend] = Case.skip(reason, module=f"benchmarks/{module}.py")
            continue
        full, quick = HANDOVER_ARGS.get(module, ([], []))
        out = opts.work_dir / f"{module}-{os.getpid()}.json"
        log = opts.work_dir / f"{module}.log"
        command = [
            sys.executable,
            "-m",
            f"benchmarks.{module}",
            "--trials",
            str(opts.trials),
            "--output",
            str(out),
        ]
        command += quick if opts.quick else full
        _log.info("handover: %s ...", " ".join(command[1:]))
        started = time.monotonic()
        try:
            with log.open("wb") as output:
                completed = subprocess.run(
                    command,
                    cwd=ROOT,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    timeout=opts.budget_s,
                    check=False,
                )
            if completed.returncode != 0:
                raise BenchmarkError(f"{module} exited with {completed.returncode}; see {log}")
            report = json.loads(out.read_text())
        except Exception as e:
            _log.exception("handover %s failed", module)
            result.cases[backend] = Case(metadata={"module": module}, error=f"{type(e).__name__}: {e}")
            continue
        finally:
            with contextlib.suppress(FileNotFoundError):
                out.unlink()
        cases = handover_cases(report, backend)
        if not cases:
            result.cases[backend] = Case(
                metadata={"module": module}, error=f"no per-trial samples in {module}'s output"
            )
        for name, case in cases.items():
            case.metadata.update(
                {"module": f"benchmarks/{module}.py", "duration_s": round(time.monotonic() - started, 1)}
            )
            result.cases[name] = case
        _log.info("handover %s: %s", module, "; ".join(f"{n}: {_brief(c)}" for n, c in cases.items()))
    return result


# ---------------------------------------------------------------------------------------------- driver

_BENCHMARKS: dict[str, tuple[str, list[str], Callable[[BackendEnv, RunOptions, Path, Deadline], Any]]] = {
    "leader-notification": (
        "Leader notification: grant -> confirmed leader seen by a retriever in another process",
        ["grant_to_notified_s", "confirmed_to_notified_s", "close_to_regrant_s"],
        bench_leader_notification,
    ),
    "checkpoint-commits": (
        "Checkpoint commits through CompletedCheckpointStore.add_checkpoint_and_subsume_oldest_one",
        ["commits_per_s", "commit_latency_s"],
        bench_checkpoint_commits,
    ),
    "plan-recovery": (
        "Recovery by a new leader: get_job_ids() + recover_execution_plan of every stored plan",
        [],
        bench_plan_recovery,
    ),
    "memory": (
        "Memory of a process holding the HA services with the HA data of many jobs recovered",
        ["rss_interpreter_mib", "rss_services_mib", "rss_recovered_mib", "rss_per_job_kib"],
        bench_memory,
    ),
}


def run_ha_primitives(opts: RunOptions, names: list[str]) -> list[BenchmarkResult]:
    """Run the named primitive benchmarks on every backend (servers started once per backend)."""
    selected = [n for n in NAMES if n in names and n in _BENCHMARKS]
    results = {
        name: BenchmarkResult(
            name=name,
            title=_BENCHMARKS[name][0],
            headline=list(_BENCHMARKS[name][1]),
            metadata={"trials": opts.trials, "quick": opts.quick},
        )
        for name in selected
    }
    opts.work_dir.mkdir(parents=True, exist_ok=True)
    for env in primitive_backends() if selected else []:
        if not opts.wants_backend(env.label):
            continue
        reason = env.unavailable_reason()
        if reason is not None:
            for name in selected:
                results[name].cases[env.label] = Case.skip(reason, **env.describe())
            _log.info("%s: skipped (%s)", env.label, reason)
            continue
        work = Path(tempfile.mkdtemp(prefix=f"ha-{env.label}-", dir=opts.work_dir))
        try:
            env.start(work / "server")
            for name in selected:
                deadline = Deadline(opts.budget_s, f"{name} on {env.label}")
                _log.info("%s on %s ...", name, env.label)
                started = time.monotonic()
                load = loadavg_1m()
                try:
                    case = asyncio.run(bounded(_BENCHMARKS[name][2](env, opts, work, deadline), deadline))
                except Exception as e:
                    _log.exception("%s on %s failed", name, env.label)
                    case = Case(metadata=env.describe(), error=f"{type(e).__name__}: {e}")
                case.metadata["duration_s"] = round(time.monotonic() - started, 2)
                case.metadata["loadavg_1m_at_start"] = load
                results[name].cases[env.label] = case
                _log.info("%s on %s: %s", name, env.label, _brief(case))
        except Exception as e:
            _log.exception("%s: cannot run", env.label)
            for name in selected:
                results[name].cases.setdefault(
                    env.label, Case(metadata=env.describe(), error=f"{type(e).__name__}: {e}")
                )
        finally:
            env.stop()
            shutil.rmtree(work, ignore_errors=True)
    if "plan-recovery" in results:
        results["plan-recovery"].headline = [f"plans_{n}" for n in opts.plan_counts]
    ran = [results[n] for n in selected]
    if "handover" in names:
        ran.append(run_handover(opts))
    return ran


def _brief(case: Case) -> str:
    if case.error:
        return f"ERROR {case.error}"
    parts = []
    for name, st in case.summary().items():
        if st["median"] is not None:
            parts.append(f"{name} median {st['median']:.4g} (n={st['n']})")
    return ", ".join(parts)


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if len(argv) == 3 and argv[0] == "contender":
        asyncio.run(contender_main(json.loads(Path(argv[1]).read_text()), int(argv[2])))
        return 0
    if len(argv) == 3 and argv[0] == "memory":
        asyncio.run(memory_main(json.loads(Path(argv[1]).read_text()), int(argv[2])))
        return 0
    sys.stderr.write(
        "child side of benchmarks.ha_primitives; run the benchmarks with python -m benchmarks.run\n"
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
