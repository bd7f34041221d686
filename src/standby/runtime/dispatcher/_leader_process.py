"""SessionDispatcherLeaderProcess: what a Dispatcher leadership period does first — recover jobs.

Flink 2.3 (§5.3): start the ExecutionPlanStore (watching plans added or removed by others), read the dirty job
results, recover every stored plan except those with a dirty result ("already reached a globally terminal state"),
then create the Dispatcher with the recovered plans (run again) and the dirty results (cleaned up). A recovery
failure is fatal. Closing stops the Dispatcher first, then the ExecutionPlanStore (which releases its locks,
FLINK-10011).
"""

from __future__ import annotations

import logging
import time
from uuid import UUID

from standby.ha import ExecutionPlan, ExecutionPlanListener, ExecutionPlanStore, JobID

from .._util import TaskGroup
from ._dispatcher import Dispatcher, DispatcherServices

_log = logging.getLogger(__name__)


class DispatcherLeaderProcessError(RuntimeError):
    """Recovering the jobs of the cluster failed (Flink: ``FlinkRuntimeException`` → fatal error)."""


class SessionDispatcherLeaderProcess(ExecutionPlanListener):
    def __init__(
        self, session_id: UUID, services: DispatcherServices, execution_plan_store: ExecutionPlanStore
    ) -> None:
        self.session_id = session_id
        self._s = services
        self._plans = execution_plan_store
        self.dispatcher: Dispatcher | None = None
        self._dirty_ids: set[JobID] = set()
        self._tasks = TaskGroup(f"dispatcher-leader-{session_id}")
        self._state = "CREATED"
        self.recovery_seconds: float | None = None

    @property
    def state(self) -> str:
        return self._state

    async def start(self) -> str | None:
        """Recover and start the Dispatcher; returns its RPC address (None if closed meanwhile)."""
        if self._state != "CREATED":
            return None
        self._state = "RUNNING"
        began = time.monotonic()
        await self._plans.start(self)
        try:
            dirty = await self._s.job_result_store.get_dirty_results()
            self._dirty_ids = {r.job_id for r in dirty}
            plans = await self._recover_jobs(self._dirty_ids)
        except Exception as e:
            raise DispatcherLeaderProcessError(f"Could not recover the jobs of the cluster: {e}") from e
        if self._state != "RUNNING":
            return None
        dispatcher = Dispatcher(self.session_id, self._s, self._plans, plans, dirty)
        self.dispatcher = dispatcher
        await dispatcher.start()
        address = self._s.rpc_service.register(dispatcher)
        self.recovery_seconds = time.monotonic() - began
        if self._s.metrics is not None:
            self._s.metrics.dispatcher_recovery_seconds.observe(self.recovery_seconds)
        return address

    async def _recover_jobs(self, dirty_ids: set[JobID]) -> list[ExecutionPlan]:
        plans = []
        for job_id in await self._plans.get_job_ids():
            if job_id in dirty_ids:
                _log.info(
                    "Skipping recovery of a job with job id %s, because it already reached a globally terminal state",
                    job_id,
                )
                continue
            plan = await self._plans.recover_execution_plan(job_id)
            if plan is None:
                _log.info("Job %s was already finished in a previous execution; not recovered", job_id)
                continue
            plans.append(plan)
        return plans

    async def close(self) -> None:
        if self._state == "STOPPED":
            return
        self._state = "STOPPED"
        await self._tasks.close()
        dispatcher, self.dispatcher = self.dispatcher, None
        if dispatcher is not None:
            self._s.rpc_service.unregister(dispatcher)
            await dispatcher.close()
        # after the Dispatcher terminated (SessionDispatcherLeaderProcessTest.closeAsync_stopsExecutionPlanStoreAndDispatcher)
        try:
            await self._plans.stop()
        except Exception as e:
            _log.warning("Stopping the ExecutionPlanStore failed: %s", e)

    # ------------------------------------------------------------------ ExecutionPlanListener

    def on_added_execution_plan(self, job_id: JobID) -> None:
        self._tasks.spawn(self._on_added(job_id), name=f"added-plan-{job_id}")

    def on_removed_execution_plan(self, job_id: JobID) -> None:
        self._tasks.spawn(self._on_removed(job_id), name=f"removed-plan-{job_id}")

    async def _on_added(self, job_id: JobID) -> None:
        dispatcher = self.dispatcher
        if self._state != "RUNNING" or dispatcher is None or job_id in dispatcher.runners:
            return
        if job_id in self._dirty_ids or await self._s.job_result_store.has_job_result_entry(job_id):
            return
        try:
            plan = await self._plans.recover_execution_plan(job_id)
        except Exception as e:
            self._s.fatal_error_handler.on_fatal_error(
                DispatcherLeaderProcessError(f"Could not recover the added job {job_id}: {e}")
            )
            return
        if plan is not None and self.dispatcher is dispatcher:
            await dispatcher.submit_recovered(plan)

    async def _on_removed(self, job_id: JobID) -> None:
        dispatcher = self.dispatcher
        if dispatcher is not None and self._state == "RUNNING":
            await dispatcher.terminate_job(job_id)
