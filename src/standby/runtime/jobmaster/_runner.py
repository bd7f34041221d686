"""JobMasterServiceLeadershipRunner: the leader contender of component ``job-<jobId>``.

Flink's ``JobMasterServiceLeadershipRunner``: on grant (on a serial operation chain) it checks the JobResultStore —
a job with any entry is already done and is not run again — and, if still leader, starts a new ``JobMaster``
whose fencing token is the session id, then confirms leadership with the JobMaster's RPC address. Revocation
suspends the JobMaster locally (HA data kept). Results are forwarded only while leadership is still held
(``runIfValidLeader``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from standby.ha import (
    ApplicationStatus,
    ExecutionPlan,
    FatalErrorHandler,
    JobResult,
    JobResultStore,
    JobStatus,
    LeaderContender,
    LeaderElection,
)

from .._util import SerialExecutor, now_ms
from ..rpc import RpcService
from ._job_master import JobMaster, JobMasterResult, JobMasterServices, job_master_endpoint

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobManagerRunnerResult:
    """What a runner ends with: a globally terminal result, SUSPENDED, or "already done" (JRS entry found)."""

    status: JobStatus
    job_result: JobResult | None = None
    already_done: bool = False


class JobMasterServiceLeadershipRunner(LeaderContender):
    def __init__(
        self,
        plan: ExecutionPlan,
        election: LeaderElection,
        services: JobMasterServices,
        job_result_store: JobResultStore,
        rpc_service: RpcService,
        persist_terminal_result: Callable[[JobResult], Awaitable[None]],
        fatal_error_handler: FatalErrorHandler,
    ) -> None:
        self.plan = plan
        self.job_id = plan.job_id
        self._election = election
        self._services = services
        self._jrs = job_result_store
        self._rpc_service = rpc_service
        self._persist = persist_terminal_result
        self._fatal = fatal_error_handler
        self._ops = SerialExecutor(f"job-{plan.job_id}")
        self.job_master: JobMaster | None = None
        #: the latest JobMaster of this runner, kept for its final details and checkpoint statistics
        self.last_job_master: JobMaster | None = None
        self.result: asyncio.Future[JobManagerRunnerResult] = asyncio.get_running_loop().create_future()
        self._cancel_requested = False
        self.created_ms = now_ms()
        self.leader_session: UUID | None = None
        self._closed = False

    async def start(self) -> None:
        await self._election.start_leader_election(self)

    # ------------------------------------------------------------------ LeaderContender

    def grant_leadership(self, session_id: UUID) -> None:
        granted_at = time.monotonic()
        self._ops.submit(lambda: self._on_grant(session_id, granted_at))

    def revoke_leadership(self) -> None:
        self._ops.submit(self._on_revoke)

    def handle_error(self, error: Exception) -> None:
        self._fatal.on_fatal_error(error)

    # ------------------------------------------------------------------ operations (serial)

    async def _on_grant(self, session_id: UUID, granted_at: float) -> None:
        if self._closed or self.result.done():
            return
        if await self._jrs.has_job_result_entry(self.job_id):
            _log.info("Job %s already reached a globally terminal state; not running it again", self.job_id)
            self._complete(JobManagerRunnerResult(JobStatus.FAILED, None, already_done=True))
            return
        if not await self._election.has_leadership(session_id):
            _log.debug(
                "Leadership %s of job %s is gone before the JobMaster started", session_id, self.job_id
            )
            return
        if self._cancel_requested:
            await self._persist_cancelled()
            return
        job_master = JobMaster(
            self.plan,
            session_id,
            self._services,
            self._persist,
            lambda: self._rpc_service.address_of(job_master_endpoint(self.job_id)),
            granted_at,
        )
        self.job_master = job_master
        self.last_job_master = job_master
        self.leader_session = session_id
        address = self._rpc_service.register(job_master)
        await self._election.confirm_leadership(session_id, address)
        job_master.start()
        job_master.result.add_done_callback(
            lambda f: self._ops.submit(lambda: self._on_job_master_done(session_id, job_master, f))
        )

    async def _on_job_master_done(
        self, session_id: UUID, job_master: JobMaster, future: asyncio.Future[JobMasterResult]
    ) -> None:
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            # the terminal result could not be persisted: fatal, as Flink's Dispatcher (JRS write failure)
            self._fatal.on_fatal_error(error)
            return
        outcome = future.result()
        if outcome.status is JobStatus.SUSPENDED:
            return  # local end only: waits for the next grant
        self._rpc_service.unregister(job_master)
        if self.job_master is job_master:
            self.job_master = None
        if await self._election.has_leadership(session_id) or outcome.status.is_globally_terminal_state():
            # A globally terminal result is already in the JobResultStore; forwarding it lets the leading
            # Dispatcher clean up at once (a deposed Dispatcher ignores it, the next leader cleans up).
            self._complete(JobManagerRunnerResult(outcome.status, outcome.job_result))

    async def _on_revoke(self) -> None:
        job_master, self.job_master = self.job_master, None
        self.leader_session = None
        if job_master is None:
            return
        outcome = await job_master.close()
        self._rpc_service.unregister(job_master)
        _log.info("JobMaster of job %s stopped on revocation: %s", self.job_id, outcome.status.value)
        if outcome.status.is_globally_terminal_state():
            self._complete(JobManagerRunnerResult(outcome.status, outcome.job_result))

    async def _persist_cancelled(self) -> None:
        result = JobResult(
            job_id=self.job_id,
            name=self.plan.name,
            application_status=ApplicationStatus.CANCELED,
            start_time_ms=self.plan.submitted_at_ms,
            end_time_ms=now_ms(),
        )
        await self._persist(result)
        self._complete(JobManagerRunnerResult(JobStatus.CANCELED, result))

    def _complete(self, outcome: JobManagerRunnerResult) -> None:
        if not self.result.done():
            self.result.set_result(outcome)

    # ------------------------------------------------------------------ requests

    async def cancel(self) -> None:
        self._cancel_requested = True
        job_master = self.job_master
        if job_master is not None:
            await job_master.cancel()
        else:
            self._ops.submit(self._cancel_without_job_master)

    async def _cancel_without_job_master(self) -> None:
        if self.job_master is None and not self.result.done():
            await self._persist_cancelled()

    async def close(self) -> JobManagerRunnerResult:
        """Stop: the JobMaster is suspended (or finishes persisting a terminal result); the election closed."""
        if not self._closed:
            self._closed = True
            # Flink's closeAsync: the JobMaster first, the election after, so the next leader of this job starts
            # only when this one released everything it held
            self._ops.submit(self._on_revoke)
            await self._ops.close()
            with contextlib.suppress(Exception):
                await self._election.close()
            self._complete(JobManagerRunnerResult(JobStatus.SUSPENDED))
        return self.result.result()

    def checkpoint_stats(self) -> dict[str, Any]:
        job_master = self.job_master or self.last_job_master
        if job_master is None or job_master.coordinator is None:
            return {"counts": {"completed": 0}, "latest": {}, "history": [], "retained": []}
        return job_master.coordinator.stats()

    def details(self) -> dict[str, Any]:
        job_master = self.job_master or self.last_job_master
        if job_master is not None:
            details = job_master.details()
            if self.job_master is None:
                details["job-master-id"] = None
            return details
        state = JobStatus.INITIALIZING.value
        if self.result.done():
            state = self.result.result().status.value
        return {
            "jid": str(self.job_id),
            "name": self.plan.name,
            "state": state,
            "start-time": self.plan.submitted_at_ms,
            "end-time": -1,
            "duration": now_ms() - self.plan.submitted_at_ms,
            "now": now_ms(),
            "timestamps": {},
            "parallelism": self.plan.parallelism,
            "attempt": -1,
            "restarts": 0,
            "running-since": None,
            "failure": None,
            "job-master-id": None,
            "vertices": [],
            "status-counts": {},
        }
