"""The TaskExecutor: slots, task execution, and its connections to the ResourceManager and the JobMasters.

Flink's ``TaskExecutor`` reduced to what the HA cluster needs:
* finds the ResourceManager by leader retrieval, registers, heartbeats, and registers again with every new leader;
* holds slots allocated by the ResourceManager for a job's JobMaster (identified by its leader session id);
* accepts tasks only from the JobMaster that leader retrieval confirms as the job's leader (a deposed JobMaster's
  deployments are refused), and releases a job's tasks and slots when that JobMaster loses leadership or stops
  sending heartbeats (Flink's ``JobLeaderService`` and ``jobManagerLostLeadership``).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from standby.ha import BlobStore, HighAvailabilityServices, JobID, LeaderInformation

from .._config import RuntimeSettings
from .._user_code import JobFileError, load_task_class
from .._util import LeaderTracker, TaskGroup, cancel_and_wait, now_ms
from ..heartbeat import HeartbeatManager
from ..rpc import FencingTokenError, RpcClient, RpcEndpoint, RpcError, RpcRejectedError, RpcService
from ._task_runner import TERMINAL_STATES, RunningTask, TaskDeployment, TaskEvent

_log = logging.getLogger(__name__)

TASK_EXECUTOR_ENDPOINT = "taskexecutor"


@dataclass
class TaskSlot:
    index: int
    allocation_id: str | None = None
    job_id: JobID | None = None
    job_master_id: UUID | None = None
    job_master_address: str | None = None
    allocated_at: float = 0.0
    task: RunningTask | None = None

    def report(self) -> dict[str, Any]:
        return {"index": self.index, "allocationId": self.allocation_id, "jobId": self.job_id}


@dataclass
class _JobLeader:
    tracker: LeaderTracker
    seen: set[UUID] = field(default_factory=set)


@dataclass
class _Outbox:
    """The messages of one attempt to its JobMaster, in emission order."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    posted: int = 0
    sent: int = 0
    #: number of the newest state update posted (older ones still queued are skipped)
    latest_state: int = 0


class TaskExecutor(RpcEndpoint):
    """One TaskManager's executor endpoint (unfenced; job calls are checked against the job's leader)."""

    def __init__(
        self,
        settings: RuntimeSettings,
        services: HighAvailabilityServices,
        rpc_service: RpcService,
        rpc_client: RpcClient,
        task_manager_id: str | None = None,
        work_dir: str | None = None,
        on_shutdown_request: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(TASK_EXECUTOR_ENDPOINT)
        self.task_manager_id = task_manager_id or f"tm-{uuid.uuid4().hex[:12]}"
        self._settings = settings
        self._services = services
        self._rpc_service = rpc_service
        self._rpc = rpc_client
        self._work_dir = work_dir
        self._on_shutdown_request = on_shutdown_request
        self._blob_store: BlobStore | None = None
        self.slots = [TaskSlot(i) for i in range(settings.num_task_slots)]
        self._rm = LeaderTracker("resource_manager", services.get_resource_manager_leader_retriever())
        self._rm_wakeup = asyncio.Event()
        self._registered_rm: LeaderInformation | None = None
        self.rm_registrations = 0
        #: subtasks started here (a test hook: a finished job must never be deployed again)
        self.tasks_submitted = 0
        self._rm_heartbeats: HeartbeatManager[str] = HeartbeatManager(
            f"{self.task_manager_id}->resourcemanager",
            settings.heartbeat_interval_s,
            settings.heartbeat_timeout_s,
            self._on_rm_lost,
            settings.heartbeat_rpc_failure_threshold,
        )
        self._jm_heartbeats: HeartbeatManager[JobID] = HeartbeatManager(
            f"{self.task_manager_id}<-jobmasters",
            settings.heartbeat_interval_s,
            settings.heartbeat_timeout_s,
            self._on_job_master_heartbeat_timeout,
            settings.heartbeat_rpc_failure_threshold,
        )
        self._job_leaders: dict[JobID, _JobLeader] = {}
        self._code_cache: dict[str, bytes] = {}
        self._tasks = TaskGroup(self.task_manager_id)
        self._slot_report_pending = False
        #: allocations freed here since the last report to the ResourceManager (it may still count them as taken)
        self._freed_allocations: set[str] = set()
        #: per attempt: messages to its JobMaster go out one after another, in the order the task emitted them
        self._outboxes: dict[str, _Outbox] = {}
        self._connector: asyncio.Task[None] | None = None
        self._janitor: asyncio.Task[None] | None = None
        self._closed = False
        self.started_at_ms = now_ms()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        try:
            self._blob_store = self._services.create_blob_store()
        except Exception as e:
            _log.info("No blob store available (%s); job files come from the JobMaster", e)
        self._rm.add_listener(lambda _info: self._rm_wakeup.set())
        self._rm_heartbeats.start()
        self._jm_heartbeats.start()
        self._connector = asyncio.create_task(
            self._connect_loop(), name=f"{self.task_manager_id}-rm-connector"
        )
        self._janitor = asyncio.create_task(self._slot_janitor(), name=f"{self.task_manager_id}-slot-janitor")
        await self._rm.start()

    async def stop(self) -> None:
        if self._closed:
            return
        self._closed = True
        for task in (self._connector, self._janitor):
            if task is not None:
                task.cancel()
        for slot in self.slots:
            if slot.task is not None:
                slot.task.cancel()
        registered = self._registered_rm
        if registered is not None and registered.address and registered.session_id:
            try:
                await self._rpc.call(
                    registered.address,
                    "disconnect_task_executor",
                    {"task_manager_id": self.task_manager_id, "reason": "TaskManager is shutting down"},
                    fencing_token=registered.session_id,
                    timeout_s=2.0,
                )
            except RpcError as e:
                _log.debug("Disconnect from the ResourceManager failed: %s", e)
        await self._rm_heartbeats.stop()
        await self._jm_heartbeats.stop()
        await self._rm.stop()
        for leader in list(self._job_leaders.values()):
            await leader.tracker.stop()
        self._job_leaders.clear()
        await self._tasks.close()
        for task in (self._connector, self._janitor):
            if task is not None:
                await cancel_and_wait(task, 2)
        await asyncio.to_thread(self._join_threads, 5.0)

    def _join_threads(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for slot in self.slots:
            if slot.task is not None:
                slot.task.join(max(0.0, deadline - time.monotonic()))

    # ------------------------------------------------------------------ ResourceManager connection

    @property
    def registered_resource_manager(self) -> LeaderInformation | None:
        return self._registered_rm

    def _slot_report(self) -> list[dict[str, Any]]:
        return [s.report() for s in self.slots]

    async def _connect_loop(self) -> None:
        backoff = 0.1
        while not self._closed:
            self._rm_wakeup.clear()
            leader = self._rm.leader
            if leader.is_empty() or leader == self._registered_rm:
                try:
                    await asyncio.wait_for(self._rm_wakeup.wait(), self._settings.heartbeat_interval_s)
                except TimeoutError:
                    pass
                continue
            assert leader.address is not None
            assert leader.session_id is not None
            try:
                await self._rpc.call(
                    leader.address,
                    "register_task_executor",
                    {
                        "task_manager_id": self.task_manager_id,
                        "address": self._rpc_service.address_of(TASK_EXECUTOR_ENDPOINT),
                        "slots": self._slot_report(),
                        "host": self._settings.taskmanager_host,
                        "pid": os.getpid(),
                    },
                    fencing_token=leader.session_id,
                    timeout_s=self._settings.rpc_timeout_s,
                )
            except RpcError as e:
                _log.info(
                    "Registration at the ResourceManager %s failed, retrying in %.1f s: %s",
                    leader,
                    backoff,
                    e,
                )
                try:
                    await asyncio.wait_for(self._rm_wakeup.wait(), backoff)
                except TimeoutError:
                    pass
                backoff = min(backoff * 2, 2.0)
                continue
            backoff = 0.1
            self._registered_rm = leader
            self.rm_registrations += 1
            _log.info("Registered at the ResourceManager %s", leader)
            self._rm_heartbeats.monitor("rm", lambda info=leader: self._heartbeat_rm(info))  # type: ignore[misc]

    async def _heartbeat_rm(self, info: LeaderInformation) -> None:
        assert info.address is not None
        freed, self._freed_allocations = self._freed_allocations, set()
        try:
            response = await self._rpc.call(
                info.address,
                "heartbeat_from_task_executor",
                {
                    "task_manager_id": self.task_manager_id,
                    "slots": self._slot_report(),
                    "freed": sorted(freed),
                },
                fencing_token=info.session_id,
                timeout_s=max(1.0, self._settings.heartbeat_interval_s * 2),
            )
        except BaseException:
            self._freed_allocations |= freed  # not delivered: the next report names them again
            raise
        if not response.get("known", False) and self._registered_rm == info:
            _log.info("The ResourceManager %s does not know this TaskManager; registering again", info)
            self._registered_rm = None
            self._rm_heartbeats.unmonitor("rm")
            self._rm_wakeup.set()

    def _on_rm_lost(self, _key: str, reason: str) -> None:
        _log.info("Lost the ResourceManager %s: %s", self._registered_rm, reason)
        self._registered_rm = None
        self._rm_wakeup.set()

    # ------------------------------------------------------------------ job leaders

    async def _ensure_job_leader(self, job_id: JobID, default_address: str | None) -> _JobLeader:
        leader = self._job_leaders.get(job_id)
        if leader is None:
            tracker = LeaderTracker(
                f"job-{job_id}", self._services.get_job_manager_leader_retriever(job_id, default_address)
            )
            leader = _JobLeader(tracker)
            self._job_leaders[job_id] = leader
            tracker.add_listener(lambda info, j=job_id: self._on_job_leader_change(j, info))  # type: ignore[misc]
            await tracker.start()
        return leader

    def _on_job_leader_change(self, job_id: JobID, info: LeaderInformation) -> None:
        leader = self._job_leaders.get(job_id)
        if leader is None:
            return
        if info.session_id is not None:
            leader.seen.add(info.session_id)
        for slot in self.slots:
            if (
                slot.job_id == job_id
                and slot.job_master_id is not None
                and slot.job_master_id in leader.seen
                and slot.job_master_id != info.session_id
            ):
                _log.info(
                    "JobManager %s of job %s lost leadership (now %s); releasing slot %d",
                    slot.job_master_id,
                    job_id,
                    info,
                    slot.index,
                )
                self._free_slot(slot, "the JobManager lost leadership")

    async def _confirm_job_leader(self, job_id: JobID, job_master_id: UUID, default_address: str) -> None:
        leader = await self._ensure_job_leader(job_id, default_address)
        try:
            await leader.tracker.wait_for(
                lambda info: info.session_id == job_master_id, min(10.0, self._settings.rpc_timeout_s)
            )
        except TimeoutError:
            raise RpcRejectedError(
                f"JobManager {job_master_id} is not the leader of job {job_id} (leader retrieval reports "
                f"{leader.tracker.leader}); refusing its request"
            ) from None
        leader.seen.add(job_master_id)

    def _on_job_master_heartbeat_timeout(self, job_id: JobID, reason: str) -> None:
        for slot in self.slots:
            if slot.job_id == job_id:
                self._free_slot(slot, f"the JobManager stopped sending heartbeats ({reason})")

    # ------------------------------------------------------------------ slots

    def _slot_by_allocation(self, allocation_id: str) -> TaskSlot | None:
        return next((s for s in self.slots if s.allocation_id == allocation_id), None)

    def _free_slot(self, slot: TaskSlot, reason: str) -> None:
        job_id = slot.job_id
        slot_allocation = slot.allocation_id
        if slot.task is not None and not slot.task.is_terminal():
            slot.task.cancel()
        _log.debug("Freeing slot %d (%s): %s", slot.index, slot.allocation_id, reason)
        slot.allocation_id = None
        slot.job_id = None
        slot.job_master_id = None
        slot.job_master_address = None
        slot.task = None
        if job_id is not None and not any(s.job_id == job_id for s in self.slots):
            self._jm_heartbeats.unmonitor(job_id)
            leader = self._job_leaders.pop(job_id, None)
            if leader is not None:
                self._tasks.spawn(leader.tracker.stop(), name=f"stop-job-leader-{job_id}")
        if slot_allocation is not None:
            self._freed_allocations.add(slot_allocation)
        self._report_free_slots()

    def _report_free_slots(self) -> None:
        """Tell the ResourceManager about freed slots now, not at the next heartbeat (Flink's
        ``notifySlotAvailable``): after a failover a new JobMaster's slot request is waiting for exactly these."""
        registered = self._registered_rm
        if registered is None or self._slot_report_pending or self._closed:
            return
        self._slot_report_pending = True

        async def report() -> None:
            self._slot_report_pending = False  # slots freed from here on need a report of their own
            try:
                await self._heartbeat_rm(registered)
            except RpcError as e:
                _log.debug(
                    "Reporting free slots to %s failed (the next heartbeat carries them): %s", registered, e
                )

        self._tasks.spawn(report(), name="report-free-slots")

    async def _slot_janitor(self) -> None:
        while not self._closed:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for slot in self.slots:
                if (
                    slot.allocation_id is not None
                    and slot.task is None
                    and now - slot.allocated_at > self._settings.slot_timeout_s
                ):
                    self._free_slot(
                        slot,
                        f"no task arrived within {self._settings.slot_timeout_s:g} s (taskmanager.slot.timeout)",
                    )

    # ------------------------------------------------------------------ RPC: ResourceManager

    async def rpc_request_slot(
        self,
        slot_index: int,
        job_id: str,
        allocation_id: str,
        job_master_address: str,
        job_master_id: str,
        resource_manager_id: str,
    ) -> dict[str, Any]:
        registered = self._registered_rm
        if registered is None or str(registered.session_id) != resource_manager_id:
            raise RpcRejectedError(
                f"Slot request from ResourceManager {resource_manager_id}, but this TaskManager is registered "
                f"with {registered.session_id if registered else 'none'}"
            )
        if not 0 <= slot_index < len(self.slots):
            raise RpcRejectedError(f"No slot {slot_index} on TaskManager {self.task_manager_id}")
        slot = self.slots[slot_index]
        if slot.allocation_id is not None and slot.allocation_id != allocation_id:
            raise RpcRejectedError(f"Slot {slot_index} is already allocated ({slot.allocation_id})")
        slot.allocation_id = allocation_id
        slot.job_id = JobID(job_id)
        slot.job_master_id = UUID(job_master_id)
        slot.job_master_address = job_master_address
        slot.allocated_at = time.monotonic()
        slot.task = None
        if not self._jm_heartbeats.is_monitored(slot.job_id):
            self._jm_heartbeats.monitor(slot.job_id)
        await self._ensure_job_leader(slot.job_id, job_master_address)
        return {"taskManagerId": self.task_manager_id}

    async def rpc_free_slot(self, allocation_id: str, job_id: str = "") -> None:
        slot = self._slot_by_allocation(allocation_id)
        if slot is not None:
            self._free_slot(slot, "freed by its owner")

    # ------------------------------------------------------------------ RPC: JobMaster

    async def rpc_submit_task(self, deployment: dict[str, Any]) -> dict[str, Any]:
        d = TaskDeployment.from_json(deployment)
        job_id = JobID(d.job_id)
        job_master_id = UUID(d.job_master_id)
        slot = self._slot_by_allocation(d.allocation_id)
        if slot is None or slot.job_id != job_id:
            raise RpcRejectedError(
                f"No slot allocated for job {job_id} with allocation {d.allocation_id} on {self.task_manager_id}"
            )
        if slot.job_master_id != job_master_id:
            raise RpcRejectedError(
                f"Slot {slot.index} belongs to JobManager {slot.job_master_id}, not {job_master_id}"
            )
        if slot.task is not None and not slot.task.is_terminal():
            raise RpcRejectedError(
                f"Slot {slot.index} already runs attempt {slot.task.deployment.attempt_id}"
            )
        await self._confirm_job_leader(job_id, job_master_id, d.job_master_address)
        code = await self._user_code(d)
        try:
            task_class = await asyncio.to_thread(load_task_class, code, d.job_id, d.entry, self._work_dir)
        except JobFileError as e:
            raise RpcRejectedError(str(e)) from None
        if self._slot_by_allocation(d.allocation_id) is not slot or slot.job_master_id != job_master_id:
            raise RpcRejectedError(f"Slot {d.allocation_id} was released while the task was being deployed")
        task = RunningTask(d, task_class, asyncio.get_running_loop(), self._on_task_event)
        slot.task = task
        self.tasks_submitted += 1
        task.start()
        _log.info("Started subtask %d of job %s (attempt %s)", d.subtask_index, d.job_id, d.attempt_id)
        return {"taskManagerId": self.task_manager_id}

    async def _user_code(self, d: TaskDeployment) -> bytes:
        cached = self._code_cache.get(d.user_code_key)
        if cached is not None:
            return cached
        code: bytes | None = None
        if self._blob_store is not None:
            try:
                code = await self._blob_store.get(JobID(d.job_id), d.user_code_key)
            except Exception as e:
                _log.info("Blob store read of job %s failed (%s); asking the JobMaster", d.job_id, e)
        if code is None:
            response = await self._rpc.call(
                d.job_master_address,
                "get_user_code",
                {},
                fencing_token=UUID(d.job_master_id),
                timeout_s=self._settings.rpc_timeout_s,
            )
            code = base64.b64decode(response["code"])
        self._code_cache[d.user_code_key] = code
        return code

    def _task_for(self, job_id: str, job_master_id: str, attempt_id: str) -> RunningTask | None:
        for slot in self.slots:
            task = slot.task
            if (
                task is not None
                and task.deployment.attempt_id == attempt_id
                and task.deployment.job_id == job_id
                and str(slot.job_master_id) == job_master_id
            ):
                return task
        return None

    async def rpc_trigger_checkpoint(
        self, job_id: str, job_master_id: str, attempt_id: str, checkpoint_id: int, target_path: str
    ) -> dict[str, Any]:
        task = self._task_for(job_id, job_master_id, attempt_id)
        if task is None:
            raise RpcRejectedError(
                f"No task {attempt_id} of job {job_id} for JobManager {job_master_id} here"
            )
        return {"accepted": task.trigger_checkpoint(checkpoint_id, target_path)}

    async def rpc_cancel_task(self, job_id: str, job_master_id: str, attempt_id: str) -> dict[str, Any]:
        task = self._task_for(job_id, job_master_id, attempt_id)
        if task is not None:
            task.cancel()
        return {"found": task is not None}

    async def rpc_release_job(self, job_id: str, job_master_id: str, reason: str = "") -> None:
        """The JobMaster lets go of the job here: cancel its tasks and free its slots (Flink: disconnectJobManager)."""
        for slot in self.slots:
            if slot.job_id == job_id and str(slot.job_master_id) == job_master_id:
                self._free_slot(slot, reason or "released by the JobMaster")

    async def rpc_heartbeat_from_job_manager(self, job_id: str, job_master_id: str) -> dict[str, Any]:
        slots = [s for s in self.slots if s.job_id == job_id and str(s.job_master_id) == job_master_id]
        if slots:
            self._jm_heartbeats.received(JobID(job_id))
        return {
            "known": bool(slots),
            "allocations": [s.allocation_id for s in slots],
            "tasks": [s.task.report() for s in slots if s.task is not None],
        }

    # ------------------------------------------------------------------ RPC: misc

    async def rpc_info(self) -> dict[str, Any]:
        return {
            "id": self.task_manager_id,
            "pid": os.getpid(),
            "resourceManager": str(self._registered_rm) if self._registered_rm else None,
            "slots": [
                {**s.report(), "task": s.task.report() if s.task is not None else None} for s in self.slots
            ],
        }

    async def rpc_shutdown(self) -> None:
        """Stop this TaskManager process (cluster shutdown)."""
        if self._on_shutdown_request is not None:
            self._on_shutdown_request()

    # ------------------------------------------------------------------ task events -> JobMaster

    def _on_task_event(self, task: RunningTask, event: TaskEvent) -> None:
        d = task.deployment
        if event.kind == "state":
            payload: dict[str, Any] = {
                "attempt_id": d.attempt_id,
                "subtask_index": d.subtask_index,
                "state": event.state,
                "result": event.result,
                "final_state_path": event.final_state_path,
                "error": event.error,
            }
            self._post(
                d,
                "update_task_execution_state",
                payload,
                terminal=event.state in TERMINAL_STATES,
            )
        elif event.kind == "checkpoint-ack":
            self._post(
                d,
                "acknowledge_checkpoint",
                {
                    "attempt_id": d.attempt_id,
                    "subtask_index": d.subtask_index,
                    "checkpoint_id": event.checkpoint_id,
                    "state_path": event.state_path,
                },
            )
        elif event.kind == "checkpoint-decline":
            self._post(
                d,
                "decline_checkpoint",
                {
                    "attempt_id": d.attempt_id,
                    "subtask_index": d.subtask_index,
                    "checkpoint_id": event.checkpoint_id,
                    "reason": event.error or "",
                },
            )

    def _post(self, d: TaskDeployment, method: str, payload: dict[str, Any], terminal: bool = False) -> None:
        """Send to the attempt's JobMaster after everything the attempt sent before (Flink's RPCs keep order).

        Independent sends raced: a JobMaster could see RUNNING, then INITIALIZING, and think the job not yet
        running until the next heartbeat. A state update that a newer one has superseded is skipped (the
        newer one says more); acknowledgements are always sent.
        """
        outbox = self._outboxes.setdefault(d.attempt_id, _Outbox())
        outbox.posted += 1
        number = outbox.posted
        if method == "update_task_execution_state":
            outbox.latest_state = number

        async def send() -> None:
            async with outbox.lock:
                superseded = method == "update_task_execution_state" and outbox.latest_state != number
                if not superseded:
                    await self._send_to_job_master(d, method, payload)
                outbox.sent += 1
                if terminal and outbox.sent == outbox.posted:
                    self._outboxes.pop(d.attempt_id, None)

        self._tasks.spawn(send())

    async def _send_to_job_master(self, d: TaskDeployment, method: str, payload: dict[str, Any]) -> None:
        delay = 0.1
        for attempt in range(6):
            try:
                await self._rpc.call(
                    d.job_master_address,
                    method,
                    payload,
                    fencing_token=UUID(d.job_master_id),
                    timeout_s=self._settings.rpc_timeout_s,
                )
                return
            except FencingTokenError as e:
                _log.info("JobManager of job %s changed; dropping %s: %s", d.job_id, method, e)
                return
            except RpcError as e:
                if attempt == 5:
                    # the JobMaster also learns task states from heartbeat payloads
                    _log.info("Giving up %s to the JobManager of job %s: %s", method, d.job_id, e)
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
