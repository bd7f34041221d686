"""The ResourceManager: registry of TaskManagers and their slots, slot allocation for JobMasters.

Flink's ``ResourceManager`` (a fenced endpoint, token = leader session id) with the standalone slot manager: TaskManagers
register and heartbeat with it; a JobMaster asks for N slots and gets them all or none (gang scheduling of our one
vertex). The TaskManager owns the truth about its slots: it refuses a slot that is already taken, and the
ResourceManager's view is refreshed from the slot report of every heartbeat.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from .._config import RuntimeSettings
from .._metrics import Metrics
from .._util import now_ms
from ..heartbeat import HeartbeatManager
from ..rpc import FencedRpcEndpoint, RpcClient, RpcError, RpcRejectedError

_log = logging.getLogger(__name__)

RESOURCE_MANAGER_ENDPOINT = "resourcemanager"


@dataclass
class SlotStatus:
    index: int
    allocation_id: str | None = None
    job_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "allocationId": self.allocation_id, "jobId": self.job_id}

    @staticmethod
    def from_json(data: dict[str, Any]) -> SlotStatus:
        return SlotStatus(int(data["index"]), data.get("allocationId"), data.get("jobId"))


@dataclass
class TaskManagerRegistration:
    task_manager_id: str
    address: str
    host: str
    pid: int
    slots: list[SlotStatus]
    registered_at_ms: int = field(default_factory=now_ms)
    last_heartbeat_ms: int = field(default_factory=now_ms)

    def free_slots(self) -> list[SlotStatus]:
        return [s for s in self.slots if s.allocation_id is None]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.task_manager_id,
            "path": self.address,
            "host": self.host,
            "pid": self.pid,
            "slotsNumber": len(self.slots),
            "freeSlots": len(self.free_slots()),
            "timeSinceLastHeartbeat": max(0, now_ms() - self.last_heartbeat_ms),
            "registeredAt": self.registered_at_ms,
            "lastHeartbeat": self.last_heartbeat_ms,
            "slots": [s.to_json() for s in self.slots],
        }


#: how long a slot request waits for TaskManagers to offer enough free slots before it is refused
PENDING_SLOT_REQUEST_WAIT_S = 5.0


class ResourceManager(FencedRpcEndpoint):
    """One leadership period of the ResourceManager."""

    def __init__(
        self,
        session_id: UUID,
        settings: RuntimeSettings,
        rpc_client: RpcClient,
        metrics: Metrics | None = None,
    ) -> None:
        super().__init__(RESOURCE_MANAGER_ENDPOINT, session_id)
        self._settings = settings
        self._rpc = rpc_client
        self._metrics = metrics
        self._task_managers: dict[str, TaskManagerRegistration] = {}
        #: recent allocations per (TaskManager, slot): allocation id, job id, when
        self._pending: dict[tuple[str, int], tuple[str, str, float]] = {}
        self._heartbeats: HeartbeatManager[str] = HeartbeatManager(
            "resourcemanager",
            settings.heartbeat_interval_s,
            settings.heartbeat_timeout_s,
            self._on_task_manager_lost,
            settings.heartbeat_rpc_failure_threshold,
        )
        self.started_at_ms = now_ms()
        #: set whenever slots may have become available (a TaskManager registered or reported, slots released)
        self._slots_changed = asyncio.Event()
        self._stopped = False

    def start(self) -> None:
        self._heartbeats.start()

    async def stop(self) -> None:
        self._stopped = True
        self._slots_changed.set()  # pending slot requests end now
        await self._heartbeats.stop()
        self._task_managers.clear()
        self._update_gauge()

    def _update_gauge(self) -> None:
        if self._metrics is not None:
            self._metrics.registered_task_managers.set(len(self._task_managers))

    def _on_task_manager_lost(self, task_manager_id: str, reason: str) -> None:
        if self._task_managers.pop(task_manager_id, None) is not None:
            _log.info("TaskManager %s is gone: %s", task_manager_id, reason)
            self._update_gauge()

    @property
    def task_managers(self) -> dict[str, TaskManagerRegistration]:
        return dict(self._task_managers)

    # ------------------------------------------------------------------ TaskManager side

    async def rpc_register_task_executor(
        self,
        task_manager_id: str,
        address: str,
        slots: list[dict[str, Any]],
        host: str = "",
        pid: int = 0,
    ) -> dict[str, Any]:
        registration = TaskManagerRegistration(
            task_manager_id, address, host, pid, [SlotStatus.from_json(s) for s in slots]
        )
        if task_manager_id in self._task_managers:
            _log.info("TaskManager %s registers again (%s)", task_manager_id, address)
        else:
            _log.info("Registering TaskManager %s at %s with %d slots", task_manager_id, address, len(slots))
        self._task_managers[task_manager_id] = registration
        self._heartbeats.monitor(task_manager_id)
        self._update_gauge()
        self._slots_changed.set()
        return {"registrationId": uuid.uuid4().hex, "resourceManagerId": str(self.fencing_token)}

    async def rpc_heartbeat_from_task_executor(
        self, task_manager_id: str, slots: list[dict[str, Any]], freed: list[str] | None = None
    ) -> dict[str, Any]:
        """A TaskManager's slot report; ``freed`` names allocations it released since its previous report."""
        registration = self._task_managers.get(task_manager_id)
        if registration is None or not self._heartbeats.received(task_manager_id):
            return {"known": False}
        released = set(freed or ())
        for key, (allocation_id, _job, _at) in list(self._pending.items()):
            if allocation_id in released:
                del self._pending[key]
        reported = [SlotStatus.from_json(s) for s in slots]
        # a report may predate an allocation made meanwhile: keep recent allocations it does not show yet
        horizon = time.monotonic() - 2 * self._settings.heartbeat_interval_s - self._settings.rpc_timeout_s
        for slot in reported:
            pending = self._pending.get((task_manager_id, slot.index))
            if pending is not None and slot.allocation_id is None and pending[2] > horizon:
                slot.allocation_id, slot.job_id = pending[0], pending[1]
        free_before = len(registration.free_slots())
        registration.slots = reported
        registration.last_heartbeat_ms = now_ms()
        if len(registration.free_slots()) > free_before:
            self._slots_changed.set()
        return {"known": True}

    async def rpc_disconnect_task_executor(self, task_manager_id: str, reason: str = "") -> None:
        if self._task_managers.pop(task_manager_id, None) is not None:
            _log.info("TaskManager %s disconnected: %s", task_manager_id, reason or "no reason given")
            self._heartbeats.unmonitor(task_manager_id)
            self._update_gauge()

    # ------------------------------------------------------------------ JobMaster side

    async def rpc_request_slots(
        self, job_id: str, count: int, job_master_address: str, job_master_id: str, max_wait_s: float = 0.0
    ) -> list[dict[str, Any]]:
        """Allocate ``count`` slots for the job at once, spreading them over the TaskManagers; all or nothing.

        Too few free slots: the request waits up to ``max_wait_s`` (bounded by half the RPC timeout) for TaskManagers
        to register or report free slots, as Flink's slot manager keeps a request pending. After a failover the
        new JobMaster usually asks before the TaskManagers have found the new ResourceManager; polling from the
        JobMaster's side would add its retry delay to every recovery.
        """
        if count < 1:
            raise RpcRejectedError(f"Invalid slot request for job {job_id}: count {count}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(
            0.0, min(max_wait_s, PENDING_SLOT_REQUEST_WAIT_S, self._settings.rpc_timeout_s / 2)
        )
        # bounded by the deadline
        while sum(len(tm.free_slots()) for tm in self._task_managers.values()) < count and not self._stopped:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            self._slots_changed.clear()
            try:
                await asyncio.wait_for(self._slots_changed.wait(), remaining)
            except TimeoutError:
                break
        return await self._allocate(job_id, count, job_master_address, job_master_id)

    async def _allocate(
        self, job_id: str, count: int, job_master_address: str, job_master_id: str
    ) -> list[dict[str, Any]]:
        allocated: list[tuple[TaskManagerRegistration, SlotStatus]] = []
        tried: set[tuple[str, int]] = set()
        # bounded: each slot of each TaskManager is tried at most once
        for _ in range(sum(len(tm.slots) for tm in self._task_managers.values()) + 1):
            if len(allocated) == count:
                break
            candidates = sorted(
                (
                    tm
                    for tm in self._task_managers.values()
                    if any((tm.task_manager_id, s.index) not in tried for s in tm.free_slots())
                ),
                key=lambda tm: (-len(tm.free_slots()), tm.registered_at_ms, tm.task_manager_id),
            )
            if not candidates:
                break
            tm = candidates[0]
            slot = next(s for s in tm.free_slots() if (tm.task_manager_id, s.index) not in tried)
            tried.add((tm.task_manager_id, slot.index))
            allocation_id = uuid.uuid4().hex
            try:
                await self._rpc.call(
                    tm.address,
                    "request_slot",
                    {
                        "slot_index": slot.index,
                        "job_id": job_id,
                        "allocation_id": allocation_id,
                        "job_master_address": job_master_address,
                        "job_master_id": job_master_id,
                        "resource_manager_id": str(self.fencing_token),
                    },
                    timeout_s=self._settings.rpc_timeout_s,
                )
            except RpcRejectedError as e:
                _log.info("TaskManager %s refused slot %d: %s", tm.task_manager_id, slot.index, e)
                slot.allocation_id = "unknown"
                continue
            except RpcError as e:
                _log.info("TaskManager %s unreachable while allocating a slot: %s", tm.task_manager_id, e)
                self._heartbeats.unmonitor(tm.task_manager_id)
                self._on_task_manager_lost(tm.task_manager_id, f"slot request failed: {e}")
                continue
            # the registration may have been refreshed by a heartbeat during the call: mark the current slot
            current = self._task_managers.get(tm.task_manager_id, tm)
            slot = next((x for x in current.slots if x.index == slot.index), slot)
            slot.allocation_id = allocation_id
            slot.job_id = job_id
            self._pending[(tm.task_manager_id, slot.index)] = (allocation_id, job_id, time.monotonic())
            allocated.append((current, slot))
        if len(allocated) < count:
            for tm, slot in allocated:
                await self._free_at(tm, slot, job_id)
            free = sum(len(tm.free_slots()) for tm in self._task_managers.values())
            raise RpcRejectedError(
                f"Could not allocate {count} slots for job {job_id}: {free} free slots on "
                f"{len(self._task_managers)} registered TaskManagers"
            )
        _log.info("Allocated %d slots for job %s", count, job_id)
        return [
            {
                "allocationId": slot.allocation_id,
                "taskManagerId": tm.task_manager_id,
                "taskManagerAddress": tm.address,
                "slotIndex": slot.index,
            }
            for tm, slot in allocated
        ]

    async def _free_at(self, tm: TaskManagerRegistration, slot: SlotStatus, job_id: str) -> None:
        allocation_id = slot.allocation_id
        self._pending.pop((tm.task_manager_id, slot.index), None)
        slot.allocation_id = None
        slot.job_id = None
        try:
            await self._rpc.call(
                tm.address,
                "free_slot",
                {"allocation_id": allocation_id, "job_id": job_id},
                timeout_s=self._settings.rpc_timeout_s,
            )
        except RpcError as e:
            _log.debug("Freeing slot %s at %s failed: %s", allocation_id, tm.task_manager_id, e)

    async def rpc_release_slots(self, job_id: str, allocation_ids: list[str]) -> None:
        """The JobMaster gave the slots back (it already freed them at the TaskManagers)."""
        wanted = set(allocation_ids)
        for key, pending in list(self._pending.items()):
            if pending[0] in wanted:
                del self._pending[key]
        for tm in self._task_managers.values():
            for slot in tm.slots:
                if slot.allocation_id in wanted:
                    slot.allocation_id = None
                    slot.job_id = None
        self._slots_changed.set()

    async def rpc_list_task_managers(self) -> list[dict[str, Any]]:
        return [tm.to_json() for tm in sorted(self._task_managers.values(), key=lambda t: t.registered_at_ms)]

    async def rpc_overview(self) -> dict[str, Any]:
        total = sum(len(tm.slots) for tm in self._task_managers.values())
        free = sum(len(tm.free_slots()) for tm in self._task_managers.values())
        return {"taskmanagers": len(self._task_managers), "slots-total": total, "slots-available": free}
