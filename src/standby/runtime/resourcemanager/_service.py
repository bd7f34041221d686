"""ResourceManagerService: the leader contender of component ``resource_manager`` (Flink's ``ResourceManagerServiceImpl``).

Every grant creates a new ``ResourceManager`` whose fencing token is the session id; revocation stops it.
"""

from __future__ import annotations

import logging
from uuid import UUID

from standby.ha import FatalErrorHandler, LeaderContender, LeaderElection

from .._config import RuntimeSettings
from .._metrics import Metrics
from .._util import SerialExecutor
from ..rpc import RpcClient, RpcService
from ._resource_manager import ResourceManager

_log = logging.getLogger(__name__)


class ResourceManagerService(LeaderContender):
    def __init__(
        self,
        election: LeaderElection,
        settings: RuntimeSettings,
        rpc_service: RpcService,
        rpc_client: RpcClient,
        fatal_error_handler: FatalErrorHandler,
        metrics: Metrics | None = None,
    ) -> None:
        self._election = election
        self._settings = settings
        self._rpc_service = rpc_service
        self._rpc_client = rpc_client
        self._fatal = fatal_error_handler
        self._metrics = metrics
        self._ops = SerialExecutor("resource-manager-service")
        self.current: ResourceManager | None = None

    async def start(self) -> None:
        await self._election.start_leader_election(self)

    async def close(self) -> None:
        await self._election.close()
        self._ops.submit(self._stop_current)
        await self._ops.close()

    def grant_leadership(self, session_id: UUID) -> None:
        self._ops.submit(lambda: self._start_new(session_id))

    def revoke_leadership(self) -> None:
        self._ops.submit(self._stop_current)

    def handle_error(self, error: Exception) -> None:
        self._fatal.on_fatal_error(error)

    async def _start_new(self, session_id: UUID) -> None:
        await self._stop_current()
        if not await self._election.has_leadership(session_id):
            _log.debug("ResourceManager leadership %s already gone", session_id)
            return
        manager = ResourceManager(session_id, self._settings, self._rpc_client, self._metrics)
        manager.start()
        self.current = manager
        address = self._rpc_service.register(manager)
        if self._metrics is not None:
            self._metrics.leadership("resource_manager", True)
        _log.info("ResourceManager %s is leader at %s", session_id, address)
        await self._election.confirm_leadership(session_id, address)

    async def _stop_current(self) -> None:
        manager, self.current = self.current, None
        if manager is None:
            return
        self._rpc_service.unregister(manager)
        await manager.stop()
        if self._metrics is not None:
            self._metrics.leadership("resource_manager", False)
        _log.info("ResourceManager %s stopped", manager.fencing_token)
