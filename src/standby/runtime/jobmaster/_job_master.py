"""The JobMaster of one job for one leadership period (Flink's ``JobMaster`` + a minimal scheduler).

Fenced endpoint ``jobmaster-<jobId>`` whose token is the ``job-<jobId>`` leader session id. It restores the job's
checkpoint store and counter, allocates all slots at once from the ResourceManager, deploys every subtask restored
from the latest completed checkpoint, checkpoints periodically, and restarts the whole job from the latest
checkpoint after a failure per ``restart-strategy.*``.

Termination order (closing FLINK-39704): when the job reaches a globally terminal state its dirty ``JobResult`` is
written to the JobResultStore FIRST, and only then are leadership-scoped resources released (tasks, slots, the
checkpoint store and counter). A revocation that arrives meanwhile waits for that write and does not mask the
terminal result with SUSPENDED, so a failover never re-runs a finished job.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from standby.ha import (
    ApplicationStatus,
    CheckpointIDCounter,
    CheckpointRecoveryFactory,
    CompletedCheckpointStore,
    ExecutionPlan,
    FailureCause,
    JobID,
    JobResult,
    JobStatus,
)

from .._config import RuntimeSettings
from .._metrics import Metrics
from .._state import join
from .._util import LeaderTracker, now_ms
from ..heartbeat import HeartbeatManager
from ..rpc import FencedRpcEndpoint, RpcClient, RpcError
from ..taskexecutor import TaskDeployment
from ._checkpoint_coordinator import CheckpointCoordinator, StateDirCheckpointsCleaner
from ._restart import RestartStrategy

_log = logging.getLogger(__name__)


#: non-terminal execution states in the order a subtask passes them; terminal states rank after all of these
_STATE_ORDER = {"CREATED": 0, "SCHEDULED": 1, "DEPLOYING": 2, "INITIALIZING": 3, "RUNNING": 4}


def job_master_endpoint(job_id: JobID) -> str:
    return f"jobmaster-{job_id}"


@dataclass(frozen=True)
class SlotAllocation:
    allocation_id: str
    task_manager_id: str
    task_manager_address: str
    slot_index: int

    @staticmethod
    def from_json(data: dict[str, Any]) -> SlotAllocation:
        return SlotAllocation(
            str(data["allocationId"]),
            str(data["taskManagerId"]),
            str(data["taskManagerAddress"]),
            int(data["slotIndex"]),
        )


@dataclass
class Execution:
    """One attempt of one subtask (Flink's ``Execution``)."""

    attempt_id: str
    subtask_index: int
    allocation: SlotAllocation
    state: str = "CREATED"
    result: dict[str, Any] | None = None
    final_state_path: str | None = None
    error: str | None = None
    start_ms: int = field(default_factory=now_ms)
    end_ms: int = -1

    def is_terminal(self) -> bool:
        return self.state in ("FINISHED", "CANCELED", "FAILED")

    def to_json(self) -> dict[str, Any]:
        return {
            "subtask": self.subtask_index,
            "status": self.state,
            "attempt-id": self.attempt_id,
            "taskmanager-id": self.allocation.task_manager_id,
            "endpoint": self.allocation.task_manager_address,
            "start-time": self.start_ms,
            "end-time": self.end_ms,
        }


@dataclass(frozen=True)
class JobMasterResult:
    """How a JobMaster ended: a globally terminal ``JobResult`` or SUSPENDED (leadership lost, HA data kept)."""

    status: JobStatus
    job_result: JobResult | None = None


@dataclass
class JobMasterServices:
    """What every JobMaster of a JobManager process shares."""

    settings: RuntimeSettings
    rpc_client: RpcClient
    resource_manager: LeaderTracker
    checkpoint_recovery_factory: CheckpointRecoveryFactory
    user_code: Callable[[ExecutionPlan], Awaitable[bytes]]
    metrics: Metrics | None = None


class _AttemptFailure(Exception):
    def __init__(self, reason: str, cause_type: str = "JobExecutionException") -> None:
        super().__init__(reason)
        self.cause_type = cause_type


class _CancelRequested(Exception):
    pass


def sum_results(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The job's accumulators: every subtask's numbers summed per key."""
    total: dict[str, Any] = {}
    for result in results:
        for key, value in result.items():
            total[key] = total.get(key, 0) + value
    return total


class JobMaster(FencedRpcEndpoint):
    def __init__(
        self,
        plan: ExecutionPlan,
        session_id: UUID,
        services: JobMasterServices,
        persist_terminal_result: Callable[[JobResult], Awaitable[None]],
        self_address: Callable[[], str],
        granted_at: float | None = None,
    ) -> None:
        super().__init__(job_master_endpoint(plan.job_id), session_id)
        self.plan = plan
        self.job_id = plan.job_id
        self._services = services
        self._settings = services.settings
        self._rpc = services.rpc_client
        self._persist_terminal_result = persist_terminal_result
        self._self_address = self_address
        self._granted_at = granted_at if granted_at is not None else time.monotonic()
        self.status = JobStatus.INITIALIZING
        self.timestamps: dict[str, int] = {JobStatus.INITIALIZING.value: now_ms()}
        self.start_ms = plan.submitted_at_ms or now_ms()
        self.end_ms = -1
        self.attempt_number = -1
        self.restarts = 0
        self.executions: list[Execution] = []
        self.running_since_ms: int | None = None
        self.failure: str | None = None
        self.result: asyncio.Future[JobMasterResult] = asyncio.get_running_loop().create_future()
        self._events: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self._cancel_requested = False
        self._cancel_event = asyncio.Event()
        self._main: asyncio.Task[None] | None = None
        self._terminal: asyncio.Task[None] | None = None
        self._store: CompletedCheckpointStore | None = None
        self._counter: CheckpointIDCounter | None = None
        self.coordinator: CheckpointCoordinator | None = None
        self._code: bytes | None = None
        self._state_dir = join(self._settings.checkpoint_dir, str(self.job_id))
        self._heartbeats: HeartbeatManager[str] | None = None
        self._allocations: list[SlotAllocation] = []

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._main = asyncio.create_task(self._run(), name=f"jobmaster-{self.job_id}")

    async def cancel(self) -> None:
        """Cancel the job (Flink ``cancelJob``): it ends CANCELED."""
        if self.status.is_globally_terminal_state():
            return
        self._cancel_requested = True
        self._cancel_event.set()
        self._events.put_nowait(("cancel", {}))

    async def close(self) -> JobMasterResult:
        """Stop this JobMaster. A job that already reached a terminal state finishes persisting it first;
        otherwise the job is SUSPENDED locally and its HA data stays for the next leader."""
        if self._terminal is not None:
            await asyncio.shield(self._terminal)
            return self.result.result()
        main = self._main
        if main is not None and not main.done():
            main.cancel()
            with contextlib.suppress(BaseException):
                await main
        terminal = self._terminal_task()
        if terminal is not None:  # reached a terminal state while being cancelled
            await asyncio.shield(terminal)
            return self.result.result()
        if not self.result.done():
            await self._release_attempt("the JobMaster is suspended (leadership lost or shutdown)")
            await self._shutdown_checkpointing(JobStatus.SUSPENDED)
            self._set_status(JobStatus.SUSPENDED)
            self.result.set_result(JobMasterResult(JobStatus.SUSPENDED))
        return self.result.result()

    def _terminal_task(self) -> asyncio.Task[None] | None:
        return self._terminal

    def _set_status(self, status: JobStatus) -> None:
        if self.status is not status:
            _log.info(
                "Job %s (%s) switched from %s to %s",
                self.plan.name,
                self.job_id,
                self.status.value,
                status.value,
            )
        self.status = status
        self.timestamps[status.value] = now_ms()

    # ------------------------------------------------------------------ main

    async def _run(self) -> None:
        outcome: tuple[JobStatus, dict[str, Any], str | None]
        try:
            await self._setup()
            outcome = await self._run_with_restarts()
        except asyncio.CancelledError:
            raise
        except _CancelRequested:
            outcome = (JobStatus.CANCELED, {}, None)
        except Exception as e:
            # Flink: a JobMaster initialization failure ends the job FAILED
            _log.exception("Job %s failed in its JobMaster", self.job_id)
            outcome = (JobStatus.FAILED, {}, f"{type(e).__name__}: {e}")
        self._terminal = asyncio.ensure_future(self._terminate(*outcome))
        await asyncio.shield(self._terminal)

    async def _setup(self) -> None:
        factory = self._services.checkpoint_recovery_factory
        self._store = await factory.create_recovered_completed_checkpoint_store(
            self.job_id, self._settings.checkpoints_retained
        )
        self._counter = await factory.create_checkpoint_id_counter(self.job_id)
        await self._counter.start()
        self.coordinator = CheckpointCoordinator(
            self.job_id,
            self._settings.checkpoint_interval_s,
            self._settings.checkpoint_timeout_s,
            self._store,
            self._counter,
            StateDirCheckpointsCleaner(),
            self._state_dir,
            self._services.metrics,
        )
        self.coordinator.set_restored(self._store.get_latest_checkpoint())
        self._code = await self._services.user_code(self.plan)
        self._set_status(JobStatus.CREATED)

    async def _run_with_restarts(self) -> tuple[JobStatus, dict[str, Any], str | None]:
        strategy = RestartStrategy(self._settings.restart)
        while True:
            self.attempt_number += 1
            try:
                return await self._run_attempt()
            except _AttemptFailure as failure:
                self.failure = str(failure)
                _log.warning("Job %s attempt %d failed: %s", self.job_id, self.attempt_number, failure)
                await self._release_attempt(f"attempt failed: {failure}")
                if self._cancel_requested:
                    raise _CancelRequested() from None
                delay = strategy.next_delay()
                if delay is None:
                    _log.warning("Job %s fails: no restarts left (%s)", self.job_id, strategy.description)
                    return (JobStatus.FAILED, {}, f"{failure.cause_type}: {failure}")
                self.restarts += 1
                if self._services.metrics is not None:
                    self._services.metrics.job_restarts.inc()
                self._set_status(JobStatus.RESTARTING)
                _log.info("Restarting job %s in %.2f s from its latest checkpoint", self.job_id, delay)
                # a restart delay, interrupted by cancellation
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._cancel_event.wait(), delay)
                if self._cancel_requested:
                    raise _CancelRequested() from None

    async def _run_attempt(self) -> tuple[JobStatus, dict[str, Any], str | None]:
        assert self._store is not None
        assert self.coordinator is not None
        self._events = asyncio.Queue()
        self.executions = []
        self._set_status(JobStatus.RUNNING)
        allocations = await self._allocate_slots()
        self._allocations = allocations
        latest = self._store.get_latest_checkpoint()
        if latest is not None:
            self.coordinator.set_restored(latest)
            _log.info("Job %s restores from checkpoint %d", self.job_id, latest.checkpoint_id)
        self.executions = [
            Execution(uuid.uuid4().hex, i, allocations[i]) for i in range(self.plan.parallelism)
        ]
        self._start_heartbeats(allocations)
        results = await asyncio.gather(
            *(
                self._deploy(
                    e,
                    latest.task_states.get(str(e.subtask_index)) if latest else None,
                    latest.checkpoint_id if latest else None,
                )
                for e in self.executions
            ),
            return_exceptions=True,
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise _AttemptFailure(f"Deployment failed: {errors[0]}", "TaskDeploymentException")
        self.coordinator.start(lambda: self.executions, self._trigger_at)
        try:
            while True:
                kind, data = await self._events.get()
                if kind == "cancel":
                    await self._release_attempt("the job is cancelled")
                    raise _CancelRequested()
                if kind == "tm_lost":
                    lost = [
                        e
                        for e in self.executions
                        if e.allocation.task_manager_id == data["task_manager_id"] and e.state != "FINISHED"
                    ]
                    if lost:
                        raise _AttemptFailure(
                            f"TaskManager {data['task_manager_id']} with subtask(s) "
                            f"{[e.subtask_index for e in lost]} is lost: {data['reason']}",
                            "TaskManagerLostException",
                        )
                    continue
                if kind == "update":
                    outcome = self._apply_update(data)
                    if outcome is not None:
                        return outcome
        finally:
            await self.coordinator.stop()

    def _apply_update(self, data: dict[str, Any]) -> tuple[JobStatus, dict[str, Any], str | None] | None:
        execution = next((e for e in self.executions if e.attempt_id == data["attempt_id"]), None)
        if execution is None or execution.is_terminal():
            return None
        state = str(data["state"])
        if _STATE_ORDER.get(state, len(_STATE_ORDER)) < _STATE_ORDER.get(execution.state, 0):
            # a late, older update (e.g. INITIALIZING after RUNNING) must not move the execution back
            return None
        execution.state = state
        if state == "FAILED":
            execution.error = data.get("error")
            execution.end_ms = now_ms()
            first_line = (execution.error or "unknown error").splitlines()[0]
            raise _AttemptFailure(f"Subtask {execution.subtask_index} failed: {first_line}", "TaskFailure")
        if state == "CANCELED":
            execution.end_ms = now_ms()
            raise _AttemptFailure(f"Subtask {execution.subtask_index} was cancelled unexpectedly")
        if state == "FINISHED":
            execution.result = dict(data.get("result") or {})
            execution.final_state_path = data.get("final_state_path")
            execution.end_ms = now_ms()
            if self.coordinator is not None:
                self.coordinator.subtask_finished(
                    execution.subtask_index, execution.attempt_id, execution.final_state_path
                )
        self._maybe_mark_running()
        if all(e.state == "FINISHED" for e in self.executions):
            return (JobStatus.FINISHED, sum_results([e.result or {} for e in self.executions]), None)
        return None

    def _maybe_mark_running(self) -> None:
        if self.running_since_ms is None and all(e.state in ("RUNNING", "FINISHED") for e in self.executions):
            self.running_since_ms = now_ms()
            if self._services.metrics is not None:
                self._services.metrics.job_recovery_seconds.observe(time.monotonic() - self._granted_at)

    # ------------------------------------------------------------------ slots, deployment, heartbeats

    async def _allocate_slots(self) -> list[SlotAllocation]:
        timeout = self._settings.slot_request_timeout_s
        deadline = time.monotonic() + timeout
        delay = 0.05
        last_error = "no ResourceManager leader"
        # bounded by slot.request.timeout
        while True:
            if self._cancel_requested:
                raise _CancelRequested()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _AttemptFailure(
                    f"Could not acquire {self.plan.parallelism} slots within {timeout:.0f} s "
                    f"(slot.request.timeout): {last_error}",
                    "NoResourceAvailableException",
                )
            try:
                rm = await self._services.resource_manager.wait_for_leader(min(remaining, 5.0))
                assert rm.address is not None
                response = await self._rpc.call(
                    rm.address,
                    "request_slots",
                    {
                        "job_id": str(self.job_id),
                        "count": self.plan.parallelism,
                        "job_master_address": self._self_address(),
                        "job_master_id": str(self.fencing_token),
                        # the ResourceManager keeps the request pending until TaskManagers offer slots
                        "max_wait_s": max(
                            0.0, min(deadline - time.monotonic(), self._settings.rpc_timeout_s / 2)
                        ),
                    },
                    fencing_token=rm.session_id,
                    timeout_s=self._settings.rpc_timeout_s,
                )
                return [SlotAllocation.from_json(a) for a in response]
            except (RpcError, TimeoutError) as e:
                last_error = str(e)
                _log.debug("Slot request of job %s failed: %s", self.job_id, e)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._cancel_event.wait(), delay)
            delay = min(delay * 2, 1.0)

    async def _deploy(
        self, execution: Execution, restore_path: str | None, checkpoint_id: int | None
    ) -> None:
        deployment = TaskDeployment(
            job_id=str(self.job_id),
            job_name=self.plan.name,
            attempt_id=execution.attempt_id,
            attempt_number=self.attempt_number,
            subtask_index=execution.subtask_index,
            parallelism=self.plan.parallelism,
            allocation_id=execution.allocation.allocation_id,
            entry=self.plan.entry or "",
            user_code_key=self.plan.user_code or "",
            args=tuple(self.plan.args),
            job_master_address=self._self_address(),
            job_master_id=str(self.fencing_token),
            state_dir=self._state_dir,
            restore_path=restore_path,
            restore_checkpoint_id=checkpoint_id,
        )
        execution.state = "DEPLOYING"
        await self._rpc.call(
            execution.allocation.task_manager_address,
            "submit_task",
            {"deployment": deployment.to_json()},
            timeout_s=self._settings.rpc_timeout_s + 10.0,
        )

    async def _trigger_at(self, execution: Any, checkpoint_id: int, target_path: str) -> None:
        response = await self._rpc.call(
            execution.allocation.task_manager_address,
            "trigger_checkpoint",
            {
                "job_id": str(self.job_id),
                "job_master_id": str(self.fencing_token),
                "attempt_id": execution.attempt_id,
                "checkpoint_id": checkpoint_id,
                "target_path": target_path,
            },
            timeout_s=self._settings.rpc_timeout_s,
        )
        if not response.get("accepted"):
            raise RuntimeError(f"subtask {execution.subtask_index} is not running")

    def _start_heartbeats(self, allocations: list[SlotAllocation]) -> None:
        manager: HeartbeatManager[str] = HeartbeatManager(
            f"jobmaster-{self.job_id}->taskmanagers",
            self._settings.heartbeat_interval_s,
            self._settings.heartbeat_timeout_s,
            lambda tm_id, reason: self._events.put_nowait(
                ("tm_lost", {"task_manager_id": tm_id, "reason": reason})
            ),
            self._settings.heartbeat_rpc_failure_threshold,
        )
        for address, tm_id in {(a.task_manager_address, a.task_manager_id) for a in allocations}:
            manager.monitor(tm_id, lambda addr=address, tm=tm_id: self._heartbeat_task_manager(tm, addr))  # type: ignore[misc]
        self._heartbeats = manager
        manager.start()

    async def _heartbeat_task_manager(self, task_manager_id: str, address: str) -> None:
        response = await self._rpc.call(
            address,
            "heartbeat_from_job_manager",
            {"job_id": str(self.job_id), "job_master_id": str(self.fencing_token)},
            timeout_s=max(1.0, self._settings.heartbeat_interval_s * 2),
        )
        # Reconcile from the heartbeat payload (a lost status update must not stall the job).
        reports = {t["attemptId"]: t for t in response.get("tasks", [])}
        for execution in self.executions:
            if execution.allocation.task_manager_id != task_manager_id or execution.is_terminal():
                continue
            report = reports.get(execution.attempt_id)
            if report is None:
                if execution.state != "DEPLOYING" and not response.get("known", False):
                    self._events.put_nowait(
                        (
                            "tm_lost",
                            {"task_manager_id": task_manager_id, "reason": "it no longer knows this job"},
                        )
                    )
                continue
            if report["state"] != execution.state and report["state"] in ("FINISHED", "FAILED", "RUNNING"):
                self._events.put_nowait(
                    (
                        "update",
                        {
                            "attempt_id": execution.attempt_id,
                            "state": report["state"],
                            "result": report.get("result"),
                            "final_state_path": report.get("finalStatePath"),
                            "error": report.get("error"),
                        },
                    )
                )

    async def _release_attempt(self, reason: str) -> None:
        """Cancel this JobMaster's tasks and give its slots back (Flink: disconnect the TaskManagers)."""
        heartbeats, self._heartbeats = self._heartbeats, None
        if heartbeats is not None:
            await heartbeats.stop()
        allocations, self._allocations = self._allocations, []
        for execution in self.executions:
            if not execution.is_terminal():
                execution.state = "CANCELED"
                execution.end_ms = now_ms()
        if not allocations:
            return
        addresses = {a.task_manager_address for a in allocations}

        async def release(address: str) -> None:
            try:
                await self._rpc.call(
                    address,
                    "release_job",
                    {"job_id": str(self.job_id), "job_master_id": str(self.fencing_token), "reason": reason},
                    timeout_s=2.0,
                )
            except RpcError as e:
                _log.debug("Releasing job %s at %s failed: %s", self.job_id, address, e)

        await asyncio.gather(*(release(a) for a in addresses))
        rm = self._services.resource_manager.leader
        if rm.address is not None:
            try:
                await self._rpc.call(
                    rm.address,
                    "release_slots",
                    {"job_id": str(self.job_id), "allocation_ids": [a.allocation_id for a in allocations]},
                    fencing_token=rm.session_id,
                    timeout_s=2.0,
                )
            except RpcError as e:
                _log.debug("Returning the slots of job %s failed: %s", self.job_id, e)

    async def _shutdown_checkpointing(self, status: JobStatus) -> None:
        if self.coordinator is not None:
            await self.coordinator.stop()
        store, self._store = self._store, None
        counter, self._counter = self._counter, None
        try:
            if store is not None:
                await store.shutdown(status, StateDirCheckpointsCleaner())
            if counter is not None:
                await counter.shutdown(status)
        except Exception as e:
            # globally terminal: the Dispatcher's cleanup runs the checkpoint cleanup again (with retries)
            _log.warning(
                "Shutting down the checkpoint store of job %s (%s) failed: %s", self.job_id, status.value, e
            )

    # ------------------------------------------------------------------ termination

    async def _terminate(self, status: JobStatus, accumulators: dict[str, Any], failure: str | None) -> None:
        self.end_ms = now_ms()
        job_result = JobResult(
            job_id=self.job_id,
            name=self.plan.name,
            application_status=ApplicationStatus.from_job_status(status),
            accumulator_results=accumulators,
            net_runtime_ms=max(0, self.end_ms - self.start_ms),
            failure_cause=FailureCause(failure.split(":", 1)[0], failure) if failure else None,
            start_time_ms=self.start_ms,
            end_time_ms=self.end_ms,
        )
        try:
            # FLINK-39704: the terminal result is durable before anything leadership-scoped is released.
            await self._persist_terminal_result(job_result)
        except Exception as e:
            _log.error("Could not persist the terminal result of job %s: %s", self.job_id, e)
            await self._release_attempt("the JobMaster failed")
            await self._shutdown_checkpointing(JobStatus.SUSPENDED)
            self._set_status(JobStatus.SUSPENDED)
            if not self.result.done():
                self.result.set_exception(e)
                self.result.exception()
            return
        self._set_status(status)
        await self._release_attempt(f"the job is {status.value}")
        await self._shutdown_checkpointing(status)
        if not self.result.done():
            self.result.set_result(JobMasterResult(status, job_result))

    # ------------------------------------------------------------------ RPC from TaskManagers

    async def rpc_update_task_execution_state(
        self,
        attempt_id: str,
        subtask_index: int,
        state: str,
        result: dict[str, Any] | None = None,
        final_state_path: str | None = None,
        error: str | None = None,
    ) -> None:
        self._events.put_nowait(
            (
                "update",
                {
                    "attempt_id": attempt_id,
                    "state": state,
                    "result": result,
                    "final_state_path": final_state_path,
                    "error": error,
                },
            )
        )

    async def rpc_acknowledge_checkpoint(
        self, attempt_id: str, subtask_index: int, checkpoint_id: int, state_path: str
    ) -> None:
        if self.coordinator is not None:
            self.coordinator.acknowledge(subtask_index, attempt_id, checkpoint_id, state_path)

    async def rpc_decline_checkpoint(
        self, attempt_id: str, subtask_index: int, checkpoint_id: int, reason: str = ""
    ) -> None:
        if self.coordinator is not None:
            self.coordinator.decline(subtask_index, attempt_id, checkpoint_id, reason)

    async def rpc_get_user_code(self) -> dict[str, Any]:
        if self._code is None:
            self._code = await self._services.user_code(self.plan)
        return {"code": base64.b64encode(self._code).decode()}

    # ------------------------------------------------------------------ views

    def details(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for e in self.executions:
            counts[e.state] = counts.get(e.state, 0) + 1
        end = self.end_ms
        return {
            "jid": str(self.job_id),
            "name": self.plan.name,
            "state": self.status.value,
            "start-time": self.start_ms,
            "end-time": end,
            "duration": (end if end > 0 else now_ms()) - self.start_ms,
            "now": now_ms(),
            "timestamps": dict(self.timestamps),
            "parallelism": self.plan.parallelism,
            "attempt": self.attempt_number,
            "restarts": self.restarts,
            "running-since": self.running_since_ms,
            "failure": self.failure,
            "job-master-id": str(self.fencing_token),
            "vertices": [
                {
                    "id": "tasks",
                    "name": self.plan.entry or self.plan.name,
                    "parallelism": self.plan.parallelism,
                    "status": self.status.value,
                    "tasks": counts,
                    "subtasks": [e.to_json() for e in self.executions],
                }
            ],
            "status-counts": counts,
        }
