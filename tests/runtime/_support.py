"""Test doubles and an in-process cluster for the runtime tests (embedded leader election, in-memory stores)."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from standby.config import Configuration
from standby.ha import (
    BlobStore,
    CheckpointIDCounter,
    CheckpointRecoveryFactory,
    CheckpointsCleaner,
    CompletedCheckpoint,
    CompletedCheckpointStore,
    DefaultExecutionPlanStore,
    EmbeddedHaServicesWithLeadershipControl,
    EmbeddedJobResultStore,
    ExecutionPlan,
    ExecutionPlanListener,
    ExecutionPlanStore,
    JobID,
    JobResultEntry,
    JobStatus,
    PerJobCheckpointRecoveryFactory,
)
from standby.runtime import JobManagerProcess, TaskManagerProcess
from standby.testing.store_contract import (
    InMemoryStateHandleStore,
    ManualExecutionPlanStoreWatcher,
    TestingStorageHelper,
)

T = TypeVar("T")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
COUNTER = (EXAMPLES / "counter.py").read_bytes()

FAILING_TASK = b"""
from standby import Task


class Failing(Task):
    def step(self):
        raise RuntimeError("boom from the task")
"""


async def wait_until(what: str, check: Callable[[], Any], timeout_s: float = 15.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    # bounded by the deadline
    while True:
        value = check()
        if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.02)


class EventLog:
    """Ordered record of HA operations across the test doubles (to check what happened before what)."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def add(self, event: str) -> None:
        self.events.append(event)

    def index(self, prefix: str) -> int:
        for i, e in enumerate(self.events):
            if e.startswith(prefix):
                return i
        raise AssertionError(f"no event {prefix!r} in {self.events}")


class InMemoryBlobStore(BlobStore):
    def __init__(self, log: EventLog) -> None:
        self.blobs: dict[tuple[str | None, str], bytes] = {}
        self.log = log
        self.fail_deletes = 0
        self.delete_all_calls = 0

    async def put(self, data: bytes, job_id: JobID | None, blob_key: str) -> bool:
        self.blobs[(job_id, blob_key)] = data
        return True

    async def get(self, job_id: JobID | None, blob_key: str) -> bytes | None:
        return self.blobs.get((job_id, blob_key))

    async def delete(self, job_id: JobID | None, blob_key: str) -> bool:
        self.blobs.pop((job_id, blob_key), None)
        return True

    async def delete_all(self, job_id: JobID) -> bool:
        self.delete_all_calls += 1
        if self.fail_deletes > 0:
            self.fail_deletes -= 1
            raise OSError(f"blob store unavailable (test), {self.fail_deletes} more failures")
        for key in [k for k in self.blobs if k[0] == job_id]:
            del self.blobs[key]
        self.log.add(f"blobs-deleted:{job_id}")
        return True

    async def cleanup_all_data(self) -> None:
        self.blobs.clear()

    def has_job(self, job_id: str) -> bool:
        return any(k[0] == job_id for k in self.blobs)


class RecordingJobResultStore(EmbeddedJobResultStore):
    def __init__(self, log: EventLog) -> None:
        super().__init__()
        self.log = log
        #: when set, ``create_dirty_result`` waits for it (to hold a job in its terminal step)
        self.gate: asyncio.Event | None = None
        self.gate_reached = asyncio.Event()

    async def create_dirty_result(self, entry: JobResultEntry) -> None:
        if self.gate is not None:
            self.gate_reached.set()
            await asyncio.wait_for(self.gate.wait(), 30)
        await super().create_dirty_result(entry)
        self.log.add(f"jrs-dirty:{entry.job_id}")

    async def mark_result_as_clean(self, job_id: JobID) -> None:
        await super().mark_result_as_clean(job_id)
        self.log.add(f"jrs-clean:{job_id}")


class _RecordingStore(CompletedCheckpointStore):
    def __init__(self, inner: CompletedCheckpointStore, log: EventLog, job_id: JobID) -> None:
        self._inner = inner
        self._log = log
        self._job_id = job_id

    async def add_checkpoint_and_subsume_oldest_one(
        self, checkpoint: CompletedCheckpoint, cleaner: CheckpointsCleaner, post_cleanup: Any = None
    ) -> CompletedCheckpoint | None:
        return await self._inner.add_checkpoint_and_subsume_oldest_one(checkpoint, cleaner, post_cleanup)

    def get_all_checkpoints(self) -> list[CompletedCheckpoint]:
        return self._inner.get_all_checkpoints()

    async def shutdown(self, status: JobStatus, cleaner: CheckpointsCleaner) -> None:
        self._log.add(f"checkpoint-store-shutdown:{status.value}:{self._job_id}")
        await self._inner.shutdown(status, cleaner)

    def get_number_of_retained_checkpoints(self) -> int:
        return self._inner.get_number_of_retained_checkpoints()

    def get_max_number_of_retained_checkpoints(self) -> int:
        return self._inner.get_max_number_of_retained_checkpoints()


class _RecordingCounter(CheckpointIDCounter):
    def __init__(self, inner: CheckpointIDCounter, log: EventLog, job_id: JobID) -> None:
        self._inner = inner
        self._log = log
        self._job_id = job_id

    async def start(self) -> None:
        await self._inner.start()

    async def shutdown(self, status: JobStatus) -> None:
        self._log.add(f"counter-shutdown:{status.value}:{self._job_id}")
        await self._inner.shutdown(status)

    async def get_and_increment(self) -> int:
        return await self._inner.get_and_increment()

    async def get(self) -> int:
        return await self._inner.get()

    async def set_count(self, new_id: int) -> None:
        await self._inner.set_count(new_id)


class RecordingCheckpointRecoveryFactory(CheckpointRecoveryFactory):
    def __init__(self, log: EventLog) -> None:
        self._inner = PerJobCheckpointRecoveryFactory()
        self._log = log
        self.stores: dict[JobID, list[CompletedCheckpointStore]] = {}

    async def create_recovered_completed_checkpoint_store(
        self, job_id: JobID, max_number_of_checkpoints_to_retain: int
    ) -> CompletedCheckpointStore:
        store = await self._inner.create_recovered_completed_checkpoint_store(
            job_id, max_number_of_checkpoints_to_retain
        )
        self.stores.setdefault(job_id, []).append(store)
        return _RecordingStore(store, self._log, job_id)

    async def create_checkpoint_id_counter(self, job_id: JobID) -> CheckpointIDCounter:
        return _RecordingCounter(await self._inner.create_checkpoint_id_counter(job_id), self._log, job_id)

    def latest_checkpoint(self, job_id: JobID) -> CompletedCheckpoint | None:
        stores = self.stores.get(job_id)
        return stores[-1].get_latest_checkpoint() if stores else None


class _FailableExecutionPlanStore(ExecutionPlanStore):
    def __init__(self, inner: DefaultExecutionPlanStore, services: TestHaServices) -> None:
        self._inner = inner
        self._services = services

    async def start(self, listener: ExecutionPlanListener) -> None:
        await self._inner.start(listener)

    async def stop(self) -> None:
        self._services.log.add("plan-store-stop")
        await self._inner.stop()

    async def recover_execution_plan(self, job_id: JobID) -> ExecutionPlan | None:
        return await self._inner.recover_execution_plan(job_id)

    async def put_execution_plan(self, plan: ExecutionPlan) -> None:
        await self._inner.put_execution_plan(plan)

    async def get_job_ids(self) -> list[JobID]:
        if self._services.fail_recovery:
            raise OSError("the execution plan store cannot be listed (test)")
        return await self._inner.get_job_ids()

    async def global_cleanup(self, job_id: JobID) -> None:
        if self._services.fail_cleanup:
            raise OSError("execution plan removal fails (test)")
        await self._inner.global_cleanup(job_id)
        self._services.log.add(f"plan-removed:{job_id}")

    async def local_cleanup(self, job_id: JobID) -> None:
        await self._inner.local_cleanup(job_id)


class TestHaServices(EmbeddedHaServicesWithLeadershipControl):
    """Embedded leader election with recoverable in-memory stores shared by all JobManagers that use it."""

    __test__ = False

    def __init__(self) -> None:
        super().__init__()
        self.log = EventLog()
        self.plan_entries = InMemoryStateHandleStore.new_namespace()
        self.plan_storage: TestingStorageHelper[ExecutionPlan] = TestingStorageHelper()
        self.blob_store = InMemoryBlobStore(self.log)
        self.jrs = RecordingJobResultStore(self.log)
        self._job_result_store = self.jrs
        self.recovery = RecordingCheckpointRecoveryFactory(self.log)
        self._checkpoint_recovery_factory = self.recovery
        self.watchers: list[ManualExecutionPlanStoreWatcher] = []
        self.fail_cleanup = False
        self.fail_recovery = False
        self.global_cleanups: list[JobID] = []

    def get_execution_plan_store(self) -> ExecutionPlanStore:
        watcher = ManualExecutionPlanStoreWatcher()
        self.watchers.append(watcher)
        inner = DefaultExecutionPlanStore(
            InMemoryStateHandleStore(self.plan_storage, self.plan_entries), watcher, str, JobID
        )
        return _FailableExecutionPlanStore(inner, self)

    def create_blob_store(self) -> BlobStore:
        return self.blob_store

    async def global_cleanup(self, job_id: JobID) -> None:
        if self.fail_cleanup:
            raise OSError("HA job data removal fails (test)")
        self.global_cleanups.append(job_id)
        self.log.add(f"ha-cleanup:{job_id}")

    def stored_plans(self) -> list[str]:
        return [name for name, entry in self.plan_entries.items() if entry.locks is not None]

    def has_contender(self, component: str) -> bool:
        return bool(self.leader_service(component)._contenders)


def cluster_config(tmp_path: Path, **extra: str) -> Configuration:
    values = {
        "high-availability.type": "embedded",
        "rest.port": "0",
        "heartbeat.interval": "100 ms",
        "heartbeat.timeout": "2 s",
        "execution.checkpointing.interval": "50 ms",
        "execution.checkpointing.dir": str(tmp_path / "checkpoints"),
        "taskmanager.numberOfTaskSlots": "2",
        "restart-strategy.type": "fixed-delay",
        "restart-strategy.fixed-delay.attempts": "3",
        "restart-strategy.fixed-delay.delay": "50 ms",
        "cleanup-strategy.type": "fixed-delay",
        "cleanup-strategy.fixed-delay.delay": "50 ms",
        "pekko.ask.timeout": "5 s",
    }
    values.update(extra)
    return Configuration(values)


class Cluster:
    """JobManagers and TaskManagers in this process sharing one ``TestHaServices``."""

    def __init__(self, services: TestHaServices, config: Configuration) -> None:
        self.services = services
        self.config = config
        self.jobmanagers: list[JobManagerProcess] = []
        self.taskmanagers: list[TaskManagerProcess] = []
        self.http = httpx.AsyncClient(timeout=10.0)

    async def add_jobmanager(self) -> JobManagerProcess:
        jm = JobManagerProcess(self.config, self.services)
        await jm.start()
        self.jobmanagers.append(jm)
        return jm

    async def add_taskmanager(self) -> TaskManagerProcess:
        tm = TaskManagerProcess(self.config, self.services)
        await tm.start()
        self.taskmanagers.append(tm)
        return tm

    def leader(self) -> JobManagerProcess:
        for jm in self.jobmanagers:
            if jm.local_dispatcher_token() is not None and jm.is_rest_leader():
                return jm
        raise AssertionError("no leading JobManager")

    async def ready(self, task_managers: int = 1) -> JobManagerProcess:
        async def check() -> JobManagerProcess | None:
            try:
                leader = self.leader()
            except AssertionError:
                return None
            rm = leader.resource_manager_service.current if leader.resource_manager_service else None
            return leader if rm is not None and len(rm.task_managers) >= task_managers else None

        found: JobManagerProcess = await wait_until("a leader with registered TaskManagers", check)
        return found

    async def rest(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.request(method, f"{self.leader().rest_url()}{path}", **kwargs)

    async def submit(
        self,
        code: bytes = COUNTER,
        args: list[str] | None = None,
        parallelism: int = 2,
        job_id: str | None = None,
    ) -> str:
        response = await self.rest(
            "POST",
            "/jobs",
            json={
                "jobFile": base64.b64encode(code).decode(),
                "jobFileName": "job.py",
                "programArgsList": args or [],
                "parallelism": parallelism,
                "jobId": job_id,
            },
        )
        assert response.status_code == 202, response.text
        return str(response.json()["jobid"])

    async def result(self, job_id: str, timeout_s: float = 20.0) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            try:
                response = await self.rest("GET", f"/jobs/{job_id}/execution-result")
            except AssertionError:
                return None
            body = response.json()
            if response.status_code == 200 and body["status"]["id"] == "COMPLETED":
                return dict(body["job-execution-result"])
            return None

        result: dict[str, Any] = await wait_until(f"the result of job {job_id}", check, timeout_s)
        return result

    async def details(self, job_id: str) -> dict[str, Any]:
        response = await self.rest("GET", f"/jobs/{job_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def close(self) -> None:
        await self.http.aclose()
        for tm in reversed(self.taskmanagers):
            await tm.close()
        for jm in reversed(self.jobmanagers):
            await jm.close()
        await self.services.close()


def counter_expectation(count: int) -> dict[str, int]:
    return {"count": count, "sum": count * (count + 1) // 2}
