"""DefaultDispatcherRunner: the leader contender of component ``dispatcher``.

Flink's ``DefaultDispatcherRunner``: a grant stops the previous leader process and starts a new one for the session
id only after the previous one terminated; when the new Dispatcher's address is known and the session is still
held, leadership is confirmed with it. A revocation closes the leader process (jobs suspended locally, HA data kept).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from uuid import UUID

from standby.ha import ExecutionPlanStore, FatalErrorHandler, LeaderContender, LeaderElection

from .._util import SerialExecutor
from ._dispatcher import Dispatcher, DispatcherServices
from ._leader_process import SessionDispatcherLeaderProcess

_log = logging.getLogger(__name__)


class DefaultDispatcherRunner(LeaderContender):
    def __init__(
        self,
        election: LeaderElection,
        services: DispatcherServices,
        execution_plan_store_factory: Callable[[], ExecutionPlanStore],
        fatal_error_handler: FatalErrorHandler,
    ) -> None:
        self._election = election
        self._services = services
        self._plan_store_factory = execution_plan_store_factory
        self._fatal = fatal_error_handler
        self._ops = SerialExecutor("dispatcher-runner")
        self.leader_process: SessionDispatcherLeaderProcess | None = None
        self.leader_processes_started = 0

    @property
    def dispatcher(self) -> Dispatcher | None:
        process = self.leader_process
        return process.dispatcher if process is not None else None

    async def start(self) -> None:
        await self._election.start_leader_election(self)

    async def close(self) -> None:
        await self._election.close()
        self._ops.submit(self._stop_leader_process)
        await self._ops.close()

    def grant_leadership(self, session_id: UUID) -> None:
        self._ops.submit(lambda: self._start_leader_process(session_id))

    def revoke_leadership(self) -> None:
        self._ops.submit(self._stop_leader_process)

    def handle_error(self, error: Exception) -> None:
        self._fatal.on_fatal_error(error)

    async def _start_leader_process(self, session_id: UUID) -> None:
        await self._stop_leader_process()
        if not await self._election.has_leadership(session_id):
            return
        process = SessionDispatcherLeaderProcess(session_id, self._services, self._plan_store_factory())
        self.leader_process = process
        self.leader_processes_started += 1
        if self._services.metrics is not None:
            self._services.metrics.leadership("dispatcher", True)
        try:
            address = await process.start()
        except Exception as e:
            _log.error("The Dispatcher leader process %s failed: %s", session_id, e)
            self._fatal.on_fatal_error(e)
            return
        if address is not None and await self._election.has_leadership(session_id):
            _log.info(
                "Dispatcher %s is leader at %s (recovery took %.3f s)",
                session_id,
                address,
                process.recovery_seconds,
            )
            await self._election.confirm_leadership(session_id, address)

    async def _stop_leader_process(self) -> None:
        process, self.leader_process = self.leader_process, None
        if process is None:
            return
        await process.close()
        if self._services.metrics is not None:
            self._services.metrics.leadership("dispatcher", False)
        _log.info("Dispatcher leader process %s stopped", process.session_id)
