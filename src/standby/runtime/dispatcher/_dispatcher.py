"""The Dispatcher of one leadership period: job submission, one runner per job, termination and cleanup.

Flink's ``Dispatcher`` (fenced endpoint ``dispatcher``, token = leader session id):
* ``submitJob`` refuses an id that is running or has ANY JobResultStore entry, stores the job file in the blob
  store and the execution plan in the ExecutionPlanStore first, then starts a ``JobMasterServiceLeadershipRunner``;
* a job reaching a globally terminal state gets a dirty JobResultStore entry (if none yet; the JobMaster already
  wrote it, see FLINK-39704), then the global cleanup (plan, blobs, checkpoints, HA job data) runs with retries per
  ``cleanup-strategy.*``, and only then the entry is marked clean;
* a SUSPENDED job (leadership lost) only gets a local cleanup: its plan lock is released, its HA data stays.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from standby.config import Configuration
from standby.ha import (
    BlobStore,
    ExecutionPlan,
    ExecutionPlanStore,
    FatalErrorHandler,
    HighAvailabilityServices,
    JobID,
    JobResult,
    JobResultEntry,
    JobResultEntryExistsError,
    JobResultStore,
    JobStatus,
)

from .._config import RuntimeSettings
from .._metrics import Metrics
from .._state import delete_tree, join
from .._user_code import JobFileError, blob_key, find_task_class
from .._util import LeaderTracker, TaskGroup, now_ms
from ..cleanup import DefaultResourceCleaner, RetryStrategy, cleanup_checkpoint_resources, retry_with_delay
from ..jobmaster import (
    JobManagerRunnerResult,
    JobMasterServiceLeadershipRunner,
    JobMasterServices,
    StateDirCheckpointsCleaner,
)
from ..rpc import FencedRpcEndpoint, RpcClient, RpcError, RpcNotFoundError, RpcRejectedError, RpcService

_log = logging.getLogger(__name__)

DISPATCHER_ENDPOINT = "dispatcher"


@dataclass
class DispatcherServices:
    """What every Dispatcher of a JobManager process shares (Flink's ``DispatcherServices``)."""

    settings: RuntimeSettings
    configuration: Configuration
    ha_services: HighAvailabilityServices
    rpc_service: RpcService
    rpc_client: RpcClient
    job_master_services: JobMasterServices
    blob_store: BlobStore
    job_result_store: JobResultStore
    resource_manager: LeaderTracker
    fatal_error_handler: FatalErrorHandler
    metrics: Metrics | None = None
    on_shutdown_cluster: Callable[[], None] | None = None
    #: job files by blob key, so a JobMaster of this process needs no blob store round trip
    code_cache: dict[str, bytes] = field(default_factory=dict)


def job_result_json(result: JobResult) -> dict[str, Any]:
    """Flink's ``JobExecutionResult`` REST shape."""
    body: dict[str, Any] = {
        "id": str(result.job_id),
        "application-status": result.application_status.value,
        "accumulator-results": dict(result.accumulator_results),
        "net-runtime": result.net_runtime_ms,
    }
    if result.failure_cause is not None:
        body["failure-cause"] = {
            "class": result.failure_cause.class_name,
            "stack-trace": result.failure_cause.stack_trace,
        }
    return body


class Dispatcher(FencedRpcEndpoint):
    def __init__(
        self,
        session_id: UUID,
        services: DispatcherServices,
        execution_plan_store: ExecutionPlanStore,
        recovered_plans: list[ExecutionPlan],
        dirty_results: list[JobResult],
    ) -> None:
        super().__init__(DISPATCHER_ENDPOINT, session_id)
        overlap = {p.job_id for p in recovered_plans} & {r.job_id for r in dirty_results}
        if overlap:
            raise ValueError(f"Jobs {sorted(overlap)} are both recovered and dirty; this is a bug")
        self._s = services
        self._plans = execution_plan_store
        self._recovered = recovered_plans
        self._dirty = dirty_results
        self._runners: dict[JobID, JobMasterServiceLeadershipRunner] = {}
        self._finished: dict[JobID, JobResult] = {}
        self._finished_details: dict[JobID, dict[str, Any]] = {}
        self._finished_checkpoints: dict[JobID, dict[str, Any]] = {}
        self._cleanups: dict[JobID, asyncio.Task[None]] = {}
        self._jobmanagers: dict[str, dict[str, Any]] = {}
        self._job_keys: dict[JobID, str] = {}
        self._tasks = TaskGroup("dispatcher")
        self._closed = False
        self.started_at_ms = now_ms()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        for plan in self._recovered:
            _log.info("Recovering job %s (%s)", plan.job_id, plan.name)
            await self._run_job(plan)
            if self._s.metrics is not None:
                self._s.metrics.jobs_recovered.inc()
        for result in self._dirty:
            _log.info("Job %s has a dirty result: running its cleanup", result.job_id)
            self._finished[result.job_id] = result
            self._start_global_cleanup(result.job_id, result.job_status or JobStatus.FAILED)

    async def close(self) -> None:
        """Leadership ended: suspend every job locally; running cleanups stop (the next leader redoes them)."""
        if self._closed:
            return
        self._closed = True
        runners = list(self._runners.values())
        await asyncio.gather(*(r.close() for r in runners), return_exceptions=True)
        for task in list(self._cleanups.values()):
            task.cancel()
        await self._tasks.close()
        if self._cleanups:
            await asyncio.wait(list(self._cleanups.values()), timeout=5)
        self._update_gauge()

    def _update_gauge(self) -> None:
        if self._s.metrics is not None:
            self._s.metrics.running_jobs.set(len(self._runners))

    @property
    def runners(self) -> dict[JobID, JobMasterServiceLeadershipRunner]:
        return dict(self._runners)

    @property
    def cleanups(self) -> dict[JobID, asyncio.Task[None]]:
        return dict(self._cleanups)

    # ------------------------------------------------------------------ running jobs

    async def _run_job(self, plan: ExecutionPlan) -> None:
        runner = JobMasterServiceLeadershipRunner(
            plan,
            self._s.ha_services.get_job_manager_leader_election(plan.job_id),
            self._s.job_master_services,
            self._s.job_result_store,
            self._s.rpc_service,
            self.persist_terminal_result,
            self._s.fatal_error_handler,
        )
        self._runners[plan.job_id] = runner
        if plan.user_code:
            self._job_keys[plan.job_id] = plan.user_code
        self._update_gauge()
        runner.result.add_done_callback(
            lambda f: self._tasks.spawn(self._on_runner_done(runner, f), name=f"job-done-{plan.job_id}")
        )
        await runner.start()

    async def persist_terminal_result(self, result: JobResult) -> None:
        """Flink's ``registerGloballyTerminatedJobInJobResultStore``: a dirty entry unless one (or a clean one)
        exists. Retried briefly; a persistent failure is fatal for the process (as in Flink)."""
        jrs = self._s.job_result_store

        async def write() -> None:
            if await jrs.has_clean_job_result_entry(result.job_id):
                _log.warning("Job %s is already marked clean in the JobResultStore", result.job_id)
                return
            if await jrs.has_dirty_job_result_entry(result.job_id):
                return
            try:
                await jrs.create_dirty_result(JobResultEntry(result))
            except JobResultEntryExistsError:
                return
            _log.info(
                "Job %s reached %s; dirty result stored", result.job_id, result.application_status.value
            )

        await retry_with_delay(
            f"Writing the dirty result of job {result.job_id}", write, RetryStrategy.fixed(5, 0.2)
        )

    async def _on_runner_done(
        self, runner: JobMasterServiceLeadershipRunner, future: asyncio.Future[JobManagerRunnerResult]
    ) -> None:
        job_id = runner.job_id
        if self._runners.get(job_id) is runner:
            self._finished_details[job_id] = runner.details()
            self._finished_checkpoints[job_id] = runner.checkpoint_stats()
            del self._runners[job_id]
            self._update_gauge()
        if future.cancelled():
            return
        outcome = future.result()
        # the runner's election goes first (its job-<id> leader information is removed); the terminal result is
        # already in the JobResultStore at this point (Flink: JobManagerRunnerRegistry local cleanup)
        try:
            await runner.close()
        except Exception as e:
            _log.warning("Closing the runner of job %s failed: %s", job_id, e)
        if outcome.already_done:
            dirty = next(
                (r for r in await self._s.job_result_store.get_dirty_results() if r.job_id == job_id), None
            )
            if dirty is not None and not self._closed:
                self._finished[job_id] = dirty
                self._start_global_cleanup(job_id, dirty.job_status or JobStatus.FAILED)
            else:
                await self._local_cleanup(job_id)
            return
        if not outcome.status.is_globally_terminal_state():
            await self._local_cleanup(job_id)
            return
        assert outcome.job_result is not None
        try:
            await self.persist_terminal_result(outcome.job_result)
        except Exception as e:
            self._s.fatal_error_handler.on_fatal_error(e)
            return
        self._finished[job_id] = outcome.job_result
        if not self._closed:
            self._start_global_cleanup(job_id, outcome.status)

    async def _local_cleanup(self, job_id: JobID) -> None:
        try:
            await self._plans.local_cleanup(job_id)
        except Exception as e:
            _log.warning("Local cleanup of job %s failed: %s", job_id, e)

    # ------------------------------------------------------------------ global cleanup

    def _start_global_cleanup(self, job_id: JobID, status: JobStatus) -> None:
        if job_id in self._cleanups:
            return
        task = asyncio.create_task(self._global_cleanup(job_id, status), name=f"cleanup-{job_id}")
        self._cleanups[job_id] = task
        task.add_done_callback(lambda _t: self._cleanups.pop(job_id, None))

    async def _global_cleanup(self, job_id: JobID, status: JobStatus) -> None:
        settings = self._s.settings
        factory = self._s.ha_services.get_checkpoint_recovery_factory()

        async def plan_step(j: JobID) -> None:
            await self._plans.global_cleanup(j)

        async def blob_step(j: JobID) -> None:
            if not await self._s.blob_store.delete_all(j):
                raise RuntimeError(f"the blob store could not delete the blobs of job {j}")
            key = self._job_keys.pop(j, None)
            if key is not None and all(r.plan.user_code != key for r in self._runners.values()):
                self._s.code_cache.pop(key, None)

        async def checkpoint_step(j: JobID) -> None:
            await cleanup_checkpoint_resources(
                j, status, factory, StateDirCheckpointsCleaner(), settings.checkpoints_retained
            )
            await asyncio.to_thread(delete_tree, join(settings.checkpoint_dir, str(j)))

        async def ha_step(j: JobID) -> None:
            await self._s.ha_services.global_cleanup(j)

        cleaner = DefaultResourceCleaner(
            RetryStrategy.from_settings(settings.cleanup),
            [
                ("ExecutionPlanStore", plan_step),
                ("BlobStore", blob_step),
                ("CompletedCheckpointStore", checkpoint_step),
                ("HighAvailabilityServices", ha_step),
            ],
        )
        try:
            await cleaner.cleanup(job_id)
            await self._s.job_result_store.mark_result_as_clean(job_id)
            _log.info("Cleanup of job %s finished; its result is marked clean", job_id)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            _log.warning(
                "The cleanup of job %s failed. The job's artifacts in the checkpoint directory ('%s'), the blob "
                "store and the HA store, and its JobResultStore entry should be checked for manual cleanup: %s",
                job_id,
                join(settings.checkpoint_dir, str(job_id)),
                e,
            )

    # ------------------------------------------------------------------ RPC: jobs

    async def rpc_submit_job(
        self,
        job_file: str,
        job_file_name: str = "job.py",
        entry_class: str | None = None,
        args: list[str] | None = None,
        parallelism: int | None = None,
        job_name: str | None = None,
        job_id: str | None = None,
    ) -> dict[str, Any]:
        if self._closed:
            raise RpcRejectedError("The Dispatcher is shutting down; retry with the new leader")
        try:
            jid = JobID(job_id) if job_id else JobID.generate()
        except ValueError as e:
            raise RpcRejectedError(str(e)) from None
        try:
            code = base64.b64decode(job_file, validate=True)
        except (binascii.Error, ValueError):
            raise RpcRejectedError("The job file is not valid base64") from None
        p = parallelism if parallelism is not None else self._s.settings.default_parallelism
        if p < 1:
            raise RpcRejectedError(f"Invalid parallelism {p}: expected at least 1")
        if jid in self._runners:
            raise RpcRejectedError(f"DuplicateJobSubmissionException: Job {jid} has already been submitted.")
        if await self._s.job_result_store.has_job_result_entry(jid):
            raise RpcRejectedError(
                f"DuplicateJobSubmissionException: Job {jid} has already been submitted and is no longer running "
                "(it has an entry in the JobResultStore); submit it under a new job id"
            )
        try:
            entry = find_task_class(code, job_file_name, entry_class)
        except JobFileError as e:
            raise RpcRejectedError(str(e)) from None
        key = blob_key(code)
        plan = ExecutionPlan(
            job_id=jid,
            name=job_name or f"{job_file_name.rsplit('/', 1)[-1]}:{entry}",
            parallelism=p,
            user_code=key,
            entry=entry,
            args=tuple(args or ()),
            submitted_at_ms=now_ms(),
        )
        try:
            # persisted first: a new leader can recover the job from here on
            await self._s.blob_store.put(code, jid, key)
            self._s.code_cache[key] = code
            await self._plans.put_execution_plan(plan)
        except Exception as e:
            _log.warning("Submission of job %s failed: %s", jid, e)
            self._tasks.spawn(self._cleanup_failed_submission(jid))
            raise RpcRejectedError(f"Submission of job {jid} failed: {e}") from e
        await self._run_job(plan)
        _log.info("Submitted job %s (%s, parallelism %d)", jid, plan.name, p)
        return {"jobid": str(jid)}

    async def _cleanup_failed_submission(self, job_id: JobID) -> None:
        for step in (self._plans.global_cleanup, self._s.blob_store.delete_all):
            try:
                await step(job_id)
            except Exception as e:
                _log.warning("Cleanup after the failed submission of job %s: %s", job_id, e)

    async def submit_recovered(self, plan: ExecutionPlan) -> None:
        """A plan added by another JobManager (Flink's ``onAddedExecutionPlan``)."""
        if plan.job_id not in self._runners and not self._closed:
            await self._run_job(plan)

    async def terminate_job(self, job_id: JobID) -> None:
        """The plan was removed elsewhere (Flink's ``onRemovedExecutionPlan``): stop the job locally."""
        runner = self._runners.get(job_id)
        if runner is not None:
            await runner.close()

    def _runner(self, job_id: str) -> JobMasterServiceLeadershipRunner | None:
        try:
            return self._runners.get(JobID(job_id))
        except ValueError:
            raise RpcNotFoundError(f"Invalid job id {job_id!r}: expected 32 hexadecimal characters") from None

    async def rpc_cancel_job(self, job_id: str) -> dict[str, Any]:
        runner = self._runner(job_id)
        if runner is None:
            jid = JobID(job_id)
            if jid in self._finished or await self._s.job_result_store.has_job_result_entry(jid):
                raise RpcRejectedError(f"Job {job_id} has already reached a globally terminal state")
            raise RpcNotFoundError(f"Could not find Flink job ({job_id})")
        await runner.cancel()
        return {"jobid": job_id, "status": "CANCELLING"}

    def _job_details(self, job_id: JobID) -> dict[str, Any] | None:
        runner = self._runners.get(job_id)
        if runner is not None:
            details = runner.details()
            details["job-master-address"] = (
                self._s.rpc_service.address_of(f"jobmaster-{job_id}")
                if runner.job_master is not None
                else None
            )
            return details
        known = self._finished_details.get(job_id)
        result = self._finished.get(job_id)
        if known is None and result is None:
            return None
        if known is not None:
            details = dict(known)
        else:
            assert result is not None
            details = {
                "jid": str(job_id),
                "name": result.name,
                "start-time": result.start_time_ms,
                "end-time": result.end_time_ms,
                "duration": result.net_runtime_ms,
                "parallelism": None,
                "vertices": [],
                "status-counts": {},
            }
        if result is not None and result.job_status is not None:
            details["state"] = result.job_status.value
        details["cleanup"] = "RUNNING" if job_id in self._cleanups else "DONE"
        return details

    async def rpc_list_jobs(self) -> list[dict[str, Any]]:
        ids = list(self._runners) + [
            j for j in {**self._finished_details, **self._finished} if j not in self._runners
        ]
        jobs = []
        for job_id in ids:
            details = self._job_details(job_id)
            if details is not None:
                jobs.append(details)
        return sorted(jobs, key=lambda d: d.get("start-time") or 0)

    async def rpc_job_details(self, job_id: str) -> dict[str, Any]:
        self._runner(job_id)
        details = self._job_details(JobID(job_id))
        if details is None:
            raise RpcNotFoundError(f"Could not find Flink job ({job_id})")
        return details

    async def rpc_job_checkpoints(self, job_id: str) -> dict[str, Any]:
        runner = self._runner(job_id)
        if runner is not None:
            return runner.checkpoint_stats()
        jid = JobID(job_id)
        if jid in self._finished_checkpoints:
            return self._finished_checkpoints[jid]
        if jid in self._finished:
            return {"counts": {"completed": 0}, "latest": {}, "history": [], "retained": []}
        raise RpcNotFoundError(f"Could not find Flink job ({job_id})")

    async def rpc_job_result(self, job_id: str) -> dict[str, Any]:
        runner = self._runner(job_id)
        jid = JobID(job_id)
        if runner is not None:
            return {"status": {"id": "IN_PROGRESS"}}
        result = self._finished.get(jid)
        if result is not None:
            return {"status": {"id": "COMPLETED"}, "job-execution-result": job_result_json(result)}
        if await self._s.job_result_store.has_job_result_entry(jid):
            for dirty in await self._s.job_result_store.get_dirty_results():
                if dirty.job_id == jid:
                    return {"status": {"id": "COMPLETED"}, "job-execution-result": job_result_json(dirty)}
            return {"status": {"id": "COMPLETED"}, "job-execution-result": None}
        raise RpcNotFoundError(f"Could not find Flink job ({job_id})")

    # ------------------------------------------------------------------ RPC: cluster

    async def _resource_manager_call(self, method: str) -> Any:
        rm = self._s.resource_manager.leader
        if rm.address is None:
            return None
        try:
            return await self._s.rpc_client.call(
                rm.address, method, {}, fencing_token=rm.session_id, timeout_s=self._s.settings.rpc_timeout_s
            )
        except RpcError as e:
            _log.debug("ResourceManager call %s failed: %s", method, e)
            return None

    async def rpc_overview(self) -> dict[str, Any]:
        rm = await self._resource_manager_call("overview") or {}
        statuses = [d.get("state") for d in await self.rpc_list_jobs()]
        return {
            "taskmanagers": rm.get("taskmanagers", 0),
            "slots-total": rm.get("slots-total", 0),
            "slots-available": rm.get("slots-available", 0),
            "jobs-running": sum(1 for s in statuses if s not in ("FINISHED", "CANCELED", "FAILED")),
            "jobs-finished": statuses.count("FINISHED"),
            "jobs-cancelled": statuses.count("CANCELED"),
            "jobs-failed": statuses.count("FAILED"),
            "flink-version": "standby",
            "dispatcher-leader-since": self.started_at_ms,
        }

    async def rpc_task_managers(self) -> list[dict[str, Any]]:
        return list(await self._resource_manager_call("list_task_managers") or [])

    async def rpc_register_jobmanager(
        self, jobmanager_id: str, rest_address: str, rpc_address: str, pid: int, started_at: int
    ) -> None:
        self._jobmanagers[jobmanager_id] = {
            "id": jobmanager_id,
            "restAddress": rest_address,
            "rpcAddress": rpc_address,
            "pid": pid,
            "startedAt": started_at,
            "lastSeen": now_ms(),
        }

    async def rpc_list_jobmanagers(self) -> list[dict[str, Any]]:
        horizon = now_ms() - int(self._s.settings.heartbeat_timeout_s * 1000)
        return [dict(jm, alive=jm["lastSeen"] >= horizon) for jm in self._jobmanagers.values()]

    async def rpc_deregister_jobmanager(self, jobmanager_id: str) -> None:
        self._jobmanagers.pop(jobmanager_id, None)

    async def rpc_shutdown_cluster(self) -> dict[str, Any]:
        """Terminal shutdown of the whole cluster: HA data removed (Flink's ``shutDownCluster``)."""
        if self._s.on_shutdown_cluster is None:
            raise RpcRejectedError("This JobManager cannot shut the cluster down")
        self._s.on_shutdown_cluster()
        return {"status": "SHUTTING_DOWN"}
