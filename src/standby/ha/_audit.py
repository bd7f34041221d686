"""AuditingHaServices: logs every HA write accepted through the services API, for failure-injection checks.

Enabled by ``high-availability.audit-log`` (a JSONL file shared by all processes of a cluster). Every accepted write
becomes one line ``{"pid", "session_id", "kind", "key", "start_ns", "end_ns", ...}``: ``session_id`` is the leader
session the process held when the write started (known from the grants the wrapper forwards to the contenders;
``null`` when it held none) and the times are ``time.monotonic_ns()`` before and after the call. On Linux
``CLOCK_MONOTONIC`` is system-wide, so the intervals of different processes on one host are comparable: the write
took effect somewhere inside ``[start_ns, end_ns]``. Calls that raise are logged with ``"status": "rejected"`` and
the error type (a ``FencingError`` is evidence that fencing worked). Grants, revocations, leader-information
confirmations and checkpoint store recoveries are logged as well; ``standby.testing.chaos`` checks the log.

Lines are appended with one ``write(2)`` on an ``O_APPEND`` descriptor, so lines of concurrent processes never
interleave and a SIGKILL loses at most the line of the write in flight. Flink has no such log; it exists to prove
the fencing of our backends under injected failures.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar
from uuid import UUID

from ._blob_store import BlobStore
from ._checkpoint import (
    CheckpointIDCounter,
    CheckpointRecoveryFactory,
    CheckpointsCleaner,
    CompletedCheckpoint,
    CompletedCheckpointStore,
)
from ._execution_plan import ExecutionPlan, ExecutionPlanListener, ExecutionPlanStore
from ._job_result_store import JobResult, JobResultEntry, JobResultStore
from ._leader_election import LeaderContender, LeaderElection
from ._leader_retrieval import LeaderRetrievalService
from ._services import (
    DISPATCHER_COMPONENT,
    RESOURCE_MANAGER_COMPONENT,
    REST_SERVER_COMPONENT,
    HighAvailabilityServices,
    job_manager_component,
)
from ._types import JobID, JobStatus

_log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: kinds of the records that stand for a write of HA data
WRITE_KINDS: frozenset[str] = frozenset(
    {
        "plan_put",
        "plan_remove",
        "checkpoint_add",
        "checkpoint_subsume",
        "checkpoint_shutdown",
        "counter_increment",
        "counter_set",
        "counter_remove",
        "job_result_dirty",
        "job_result_clean",
        "job_data_cleanup",
        "cluster_cleanup",
    }
)
#: kinds of the records about leadership (not writes of HA data)
LEADERSHIP_KINDS: frozenset[str] = frozenset({"leader_grant", "leader_revoke", "leader_confirm"})


class AuditLogError(OSError):
    """The audit log file cannot be opened or written."""


class AuditLog:
    """Appends JSON lines to ``path`` (created if missing) with one ``write(2)`` each on an ``O_APPEND`` fd."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        try:
            directory = os.path.dirname(self.path)
            if directory:
                os.makedirs(directory, exist_ok=True)
            self._fd: int | None = os.open(
                self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644
            )
        except OSError as e:
            raise AuditLogError(
                f"Cannot open the HA audit log {self.path!r} (high-availability.audit-log): {e}; "
                "point the option at a writable file"
            ) from e
        self._lock = threading.Lock()
        self.pid = os.getpid()

    def record(
        self, kind: str, key: str, session_id: UUID | None, start_ns: int, end_ns: int, **extra: Any
    ) -> None:
        line: dict[str, Any] = {
            "pid": self.pid,
            "session_id": str(session_id) if session_id is not None else None,
            "kind": kind,
            "key": key,
            "start_ns": start_ns,
            "end_ns": end_ns,
        }
        line.update(extra)
        data = (json.dumps(line, sort_keys=True, default=str) + "\n").encode()
        with self._lock:
            if self._fd is None:
                return
            try:
                os.write(self._fd, data)
            except OSError as e:
                # an audit failure must not fail the HA write it describes
                _log.warning("Could not append to the HA audit log %s: %s", self.path, e)

    def close(self) -> None:
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


class LeaderSessionTracker:
    """The leader session the process holds, from the grants and revocations forwarded to its contenders.

    All contenders of a process share one session per leadership period (FLIP-285); the process holds the session
    while at least one component holds it. A component whose election is closed is revoked alone.
    """

    def __init__(self, log: AuditLog) -> None:
        self._log = log
        self._granted: dict[str, UUID] = {}
        self.current: UUID | None = None

    def on_grant(self, component_id: str, session_id: UUID) -> None:
        now = time.monotonic_ns()
        self._granted[component_id] = session_id
        self.current = session_id
        self._log.record("leader_grant", component_id, session_id, now, now, status="event")

    def on_revoke(self, component_id: str) -> None:
        now = time.monotonic_ns()
        session_id = self._granted.pop(component_id, None)
        if session_id is None:
            return
        self._log.record("leader_revoke", component_id, session_id, now, now, status="event")
        if session_id == self.current and session_id not in self._granted.values():
            self.current = None


class _Audit:
    """Shared by every wrapper of one services instance: the log and the session tracker."""

    def __init__(self, log: AuditLog) -> None:
        self.log = log
        self.sessions = LeaderSessionTracker(log)

    async def write(
        self,
        kind: str,
        key: str,
        call: Callable[[], Awaitable[_T]],
        extra: Callable[[_T], dict[str, Any]] | None = None,
    ) -> _T:
        """Run the awaitable made by ``call`` and log it: accepted with its times, or rejected with the error."""
        session_id = self.sessions.current
        start = time.monotonic_ns()
        try:
            result = await call()
        except BaseException as e:
            end = time.monotonic_ns()
            # cancelled: the outcome is unknown (the backend may still commit it); rejected: it raised
            status = "rejected" if isinstance(e, Exception) else "cancelled"
            self.log.record(
                kind, key, session_id, start, end, status=status, error=type(e).__name__, message=str(e)[:300]
            )
            raise
        end = time.monotonic_ns()
        self.log.record(
            kind, key, session_id, start, end, status="accepted", **(extra(result) if extra else {})
        )
        return result


# ---------------------------------------------------------------------------------------------------- election


class _AuditingContender(LeaderContender):
    def __init__(self, inner: LeaderContender, component_id: str, audit: _Audit) -> None:
        self._inner = inner
        self._component_id = component_id
        self._audit = audit

    def grant_leadership(self, session_id: UUID) -> None:
        self._audit.sessions.on_grant(self._component_id, session_id)
        self._inner.grant_leadership(session_id)

    def revoke_leadership(self) -> None:
        self._audit.sessions.on_revoke(self._component_id)
        self._inner.revoke_leadership()

    def handle_error(self, error: Exception) -> None:
        self._inner.handle_error(error)


class AuditingLeaderElection(LeaderElection):
    """Learns the process's leader session from the grants it forwards; logs confirmations of the current one."""

    def __init__(self, inner: LeaderElection, component_id: str, audit: _Audit) -> None:
        self._inner = inner
        self._component_id = component_id
        self._audit = audit

    async def start_leader_election(self, contender: LeaderContender) -> None:
        await self._inner.start_leader_election(
            _AuditingContender(contender, self._component_id, self._audit)
        )

    async def confirm_leadership(self, session_id: UUID, address: str) -> None:
        start = time.monotonic_ns()
        await self._inner.confirm_leadership(session_id, address)
        end = time.monotonic_ns()
        # The service ignores a confirmation of a past session, and the backend reports a refused publication to
        # the listener, not to the caller: "accepted" only says the session was current at both ends.
        current = session_id == self._audit.sessions.current
        self._audit.log.record(
            "leader_confirm",
            self._component_id,
            session_id,
            start,
            end,
            status="accepted" if current else "ignored",
            address=address,
        )

    async def has_leadership(self, session_id: UUID) -> bool:
        return await self._inner.has_leadership(session_id)

    async def close(self) -> None:
        await self._inner.close()


# ---------------------------------------------------------------------------------------------------- stores


class AuditingExecutionPlanStore(ExecutionPlanStore):
    def __init__(self, inner: ExecutionPlanStore, audit: _Audit) -> None:
        self._inner = inner
        self._audit = audit

    async def start(self, listener: ExecutionPlanListener) -> None:
        await self._inner.start(listener)

    async def stop(self) -> None:
        await self._inner.stop()

    async def recover_execution_plan(self, job_id: JobID) -> ExecutionPlan | None:
        return await self._inner.recover_execution_plan(job_id)

    async def put_execution_plan(self, plan: ExecutionPlan) -> None:
        await self._audit.write("plan_put", str(plan.job_id), lambda: self._inner.put_execution_plan(plan))

    async def get_job_ids(self) -> list[JobID]:
        return await self._inner.get_job_ids()

    async def global_cleanup(self, job_id: JobID) -> None:
        await self._audit.write("plan_remove", str(job_id), lambda: self._inner.global_cleanup(job_id))

    async def local_cleanup(self, job_id: JobID) -> None:
        await self._inner.local_cleanup(job_id)


class AuditingCompletedCheckpointStore(CompletedCheckpointStore):
    def __init__(self, inner: CompletedCheckpointStore, job_id: JobID, audit: _Audit) -> None:
        self._inner = inner
        self._job_id = job_id
        self._audit = audit

    async def add_checkpoint_and_subsume_oldest_one(
        self,
        checkpoint: CompletedCheckpoint,
        cleaner: CheckpointsCleaner,
        post_cleanup: Callable[[], None] | None = None,
    ) -> CompletedCheckpoint | None:
        before = {c.checkpoint_id for c in self._inner.get_all_checkpoints()}
        session_id = self._audit.sessions.current
        start = time.monotonic_ns()
        result = await self._audit.write(
            "checkpoint_add",
            f"{self._job_id}/{checkpoint.checkpoint_id}",
            lambda: self._inner.add_checkpoint_and_subsume_oldest_one(checkpoint, cleaner, post_cleanup),
            lambda _: {"job_id": str(self._job_id), "checkpoint_id": checkpoint.checkpoint_id},
        )
        end = time.monotonic_ns()
        after = {c.checkpoint_id for c in self._inner.get_all_checkpoints()}
        for subsumed in sorted(before - after):
            # Subsumed inside the add call, so the add's interval bounds it. Only the store's in-memory list is
            # visible here: a failed removal of the HA entry is logged and swallowed by the store (Flink's
            # CheckpointSubsumeHelper), e.g. when fenced. Hence "inferred", which no check relies on.
            self._audit.log.record(
                "checkpoint_subsume",
                f"{self._job_id}/{subsumed}",
                session_id,
                start,
                end,
                status="inferred",
                job_id=str(self._job_id),
                checkpoint_id=subsumed,
            )
        return result

    def get_all_checkpoints(self) -> list[CompletedCheckpoint]:
        return self._inner.get_all_checkpoints()

    def get_latest_checkpoint(self) -> CompletedCheckpoint | None:
        return self._inner.get_latest_checkpoint()

    async def shutdown(self, status: JobStatus, cleaner: CheckpointsCleaner) -> None:
        if not status.is_globally_terminal_state():
            await self._inner.shutdown(status, cleaner)  # suspension: no HA data changes
            return
        ids = [c.checkpoint_id for c in self._inner.get_all_checkpoints()]
        await self._audit.write(
            "checkpoint_shutdown",
            str(self._job_id),
            lambda: self._inner.shutdown(status, cleaner),
            lambda _: {"job_id": str(self._job_id), "job_status": status.value, "checkpoint_ids": ids},
        )

    def get_number_of_retained_checkpoints(self) -> int:
        return self._inner.get_number_of_retained_checkpoints()

    def get_max_number_of_retained_checkpoints(self) -> int:
        return self._inner.get_max_number_of_retained_checkpoints()


class AuditingCheckpointIDCounter(CheckpointIDCounter):
    def __init__(self, inner: CheckpointIDCounter, job_id: JobID, audit: _Audit) -> None:
        self._inner = inner
        self._job_id = job_id
        self._audit = audit

    async def start(self) -> None:
        await self._inner.start()

    async def shutdown(self, status: JobStatus) -> None:
        if not status.is_globally_terminal_state():
            await self._inner.shutdown(status)
            return
        await self._audit.write(
            "counter_remove",
            str(self._job_id),
            lambda: self._inner.shutdown(status),
            lambda _: {"job_id": str(self._job_id), "job_status": status.value},
        )

    async def get_and_increment(self) -> int:
        value = await self._audit.write(
            "counter_increment",
            str(self._job_id),
            self._inner.get_and_increment,
            lambda v: {"job_id": str(self._job_id), "value": v},
        )
        return value

    async def get(self) -> int:
        return await self._inner.get()

    async def set_count(self, new_id: int) -> None:
        await self._audit.write(
            "counter_set",
            str(self._job_id),
            lambda: self._inner.set_count(new_id),
            lambda _: {"job_id": str(self._job_id), "value": new_id},
        )


class AuditingCheckpointRecoveryFactory(CheckpointRecoveryFactory):
    def __init__(self, inner: CheckpointRecoveryFactory, audit: _Audit) -> None:
        self._inner = inner
        self._audit = audit

    async def create_recovered_completed_checkpoint_store(
        self, job_id: JobID, max_number_of_checkpoints_to_retain: int
    ) -> CompletedCheckpointStore:
        session_id = self._audit.sessions.current
        start = time.monotonic_ns()
        store = await self._inner.create_recovered_completed_checkpoint_store(
            job_id, max_number_of_checkpoints_to_retain
        )
        end = time.monotonic_ns()
        ids = [c.checkpoint_id for c in store.get_all_checkpoints()]
        latest = store.get_latest_checkpoint()
        missing = await asyncio.to_thread(_missing_local_files, latest.task_states.values()) if latest else []
        # a read, logged as evidence: the next attempt restores from max(ids), whose state must exist
        self._audit.log.record(
            "checkpoint_recover",
            str(job_id),
            session_id,
            start,
            end,
            status="read",
            job_id=str(job_id),
            checkpoint_ids=ids,
            missing_state=missing,
        )
        return AuditingCompletedCheckpointStore(store, job_id, self._audit)

    async def create_checkpoint_id_counter(self, job_id: JobID) -> CheckpointIDCounter:
        return AuditingCheckpointIDCounter(
            await self._inner.create_checkpoint_id_counter(job_id), job_id, self._audit
        )


def _missing_local_files(paths: Iterable[str]) -> list[str]:
    """The local state files (plain paths or ``file://`` URLs) that do not exist; other schemes are not checked."""
    missing: list[str] = []
    for path in paths:
        local = path[len("file://") :] if path.startswith("file://") else path
        if "://" in local:
            continue
        if not os.path.exists(local):
            missing.append(path)
    return missing


def _result_fields(result: JobResult) -> dict[str, Any]:
    return {
        "job_id": str(result.job_id),
        "application_status": result.application_status.value,
        "accumulators": dict(result.accumulator_results),
    }


class AuditingJobResultStore(JobResultStore):
    def __init__(self, inner: JobResultStore, audit: _Audit) -> None:
        self._inner = inner
        self._audit = audit

    async def create_dirty_result(self, entry: JobResultEntry) -> None:
        await self._audit.write(
            "job_result_dirty",
            str(entry.job_id),
            lambda: self._inner.create_dirty_result(entry),
            lambda _: _result_fields(entry.job_result),
        )

    async def mark_result_as_clean(self, job_id: JobID) -> None:
        await self._audit.write(
            "job_result_clean",
            str(job_id),
            lambda: self._inner.mark_result_as_clean(job_id),
            lambda _: {"job_id": str(job_id)},
        )

    async def has_job_result_entry(self, job_id: JobID) -> bool:
        return await self._inner.has_job_result_entry(job_id)

    async def has_dirty_job_result_entry(self, job_id: JobID) -> bool:
        return await self._inner.has_dirty_job_result_entry(job_id)

    async def has_clean_job_result_entry(self, job_id: JobID) -> bool:
        return await self._inner.has_clean_job_result_entry(job_id)

    async def get_dirty_results(self) -> list[JobResult]:
        return await self._inner.get_dirty_results()


# ---------------------------------------------------------------------------------------------------- services


class AuditingHaServices(HighAvailabilityServices):
    """Wraps any ``HighAvailabilityServices`` and logs every write made through it to an :class:`AuditLog`.

    Leader retrieval and the blob store pass through unchanged; other attributes of the wrapped services are
    reachable through :attr:`inner`.
    """

    def __init__(self, inner: HighAvailabilityServices, log: AuditLog) -> None:
        self.inner = inner
        self.audit_log = log
        self._audit = _Audit(log)
        self._job_result_store: AuditingJobResultStore | None = None

    @property
    def current_session_id(self) -> UUID | None:
        """The leader session this process holds, as seen by the wrapper."""
        return self._audit.sessions.current

    # -- leader retrieval
    def get_resource_manager_leader_retriever(self) -> LeaderRetrievalService:
        return self.inner.get_resource_manager_leader_retriever()

    def get_dispatcher_leader_retriever(self) -> LeaderRetrievalService:
        return self.inner.get_dispatcher_leader_retriever()

    def get_job_manager_leader_retriever(
        self, job_id: JobID, default_job_manager_address: str | None = None
    ) -> LeaderRetrievalService:
        return self.inner.get_job_manager_leader_retriever(job_id, default_job_manager_address)

    def get_cluster_rest_endpoint_leader_retriever(self) -> LeaderRetrievalService:
        return self.inner.get_cluster_rest_endpoint_leader_retriever()

    # -- leader election
    def get_resource_manager_leader_election(self) -> LeaderElection:
        return AuditingLeaderElection(
            self.inner.get_resource_manager_leader_election(), RESOURCE_MANAGER_COMPONENT, self._audit
        )

    def get_dispatcher_leader_election(self) -> LeaderElection:
        return AuditingLeaderElection(
            self.inner.get_dispatcher_leader_election(), DISPATCHER_COMPONENT, self._audit
        )

    def get_job_manager_leader_election(self, job_id: JobID) -> LeaderElection:
        return AuditingLeaderElection(
            self.inner.get_job_manager_leader_election(job_id), job_manager_component(job_id), self._audit
        )

    def get_cluster_rest_endpoint_leader_election(self) -> LeaderElection:
        return AuditingLeaderElection(
            self.inner.get_cluster_rest_endpoint_leader_election(), REST_SERVER_COMPONENT, self._audit
        )

    # -- recovery stores
    def get_checkpoint_recovery_factory(self) -> CheckpointRecoveryFactory:
        return AuditingCheckpointRecoveryFactory(self.inner.get_checkpoint_recovery_factory(), self._audit)

    def get_execution_plan_store(self) -> ExecutionPlanStore:
        return AuditingExecutionPlanStore(self.inner.get_execution_plan_store(), self._audit)

    def get_job_result_store(self) -> JobResultStore:
        inner = self.inner.get_job_result_store()
        if self._job_result_store is None or self._job_result_store._inner is not inner:
            self._job_result_store = AuditingJobResultStore(inner, self._audit)
        return self._job_result_store

    def create_blob_store(self) -> BlobStore:
        return self.inner.create_blob_store()

    # -- lifecycle
    async def close(self) -> None:
        try:
            await self.inner.close()
        finally:
            self.audit_log.close()

    async def cleanup_all_data(self) -> None:
        await self._audit.write("cluster_cleanup", "*", self.inner.cleanup_all_data)

    async def global_cleanup(self, job_id: JobID) -> None:
        await self._audit.write("job_data_cleanup", str(job_id), lambda: self.inner.global_cleanup(job_id))

    def __repr__(self) -> str:
        return f"AuditingHaServices({self.inner!r}, log={self.audit_log.path!r})"
