"""Embedded (in-process) HA services: leader election inside one process, for a single-process cluster and tests.

Port of Flink's ``EmbeddedLeaderService`` / ``EmbeddedHaServices`` / ``EmbeddedHaServicesWithLeadershipControl``.
One ``EmbeddedLeaderService`` per component: the first contender is proposed as leader with a fresh session id;
its confirmation is accepted only for that proposal and session; listeners learn the confirmed leader.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from uuid import UUID

from ._blob_store import BlobStore, VoidBlobStore
from ._checkpoint import (
    CheckpointRecoveryFactory,
    PerJobCheckpointRecoveryFactory,
    StandaloneCheckpointRecoveryFactory,
)
from ._errors import HighAvailabilityServicesShutDownError, LeaderElectionError
from ._execution_plan import ExecutionPlanStore, StandaloneExecutionPlanStore
from ._job_result_store import EmbeddedJobResultStore, JobResultStore
from ._leader_election import LeaderContender, LeaderElection
from ._leader_retrieval import LeaderRetrievalListener, LeaderRetrievalService
from ._services import (
    DISPATCHER_COMPONENT,
    RESOURCE_MANAGER_COMPONENT,
    REST_SERVER_COMPONENT,
    HighAvailabilityServices,
    job_manager_component,
)
from ._types import JobID

_log = logging.getLogger(__name__)


class EmbeddedLeaderService:
    """In-process leader election for one component. Callbacks are delivered asynchronously on the event loop."""

    def __init__(self, component_id: str = "component") -> None:
        self.component_id = component_id
        self._contenders: dict[EmbeddedLeaderElection, LeaderContender] = {}
        self._listeners: list[EmbeddedLeaderRetrievalService] = []
        self._proposed: EmbeddedLeaderElection | None = None
        self._confirmed: EmbeddedLeaderElection | None = None
        self._session_id: UUID | None = None
        self._address: str | None = None
        self._shutdown = False
        self._pending: set[asyncio.Future[None]] = set()

    # -- factories
    def create_leader_election(self) -> EmbeddedLeaderElection:
        self._check_running()
        return EmbeddedLeaderElection(self)

    def create_leader_retrieval_service(self) -> EmbeddedLeaderRetrievalService:
        self._check_running()
        return EmbeddedLeaderRetrievalService(self)

    def _check_running(self) -> None:
        if self._shutdown:
            raise RuntimeError(f"The embedded leader service of {self.component_id} is shut down")

    # -- notifications on the loop (Flink's notification executor)
    def _notify(self, action: Callable[[], None]) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def run() -> None:
            try:
                action()
            except Exception:
                _log.exception("Embedded leader notification failed for %s", self.component_id)
            finally:
                if not done.done():
                    done.set_result(None)

        loop.call_soon(run)
        self._pending.add(done)
        done.add_done_callback(self._pending.discard)
        return done

    def _notify_listeners(self, address: str | None, session_id: UUID | None) -> asyncio.Future[None]:
        listeners = list(self._listeners)

        def run() -> None:
            for listener in listeners:
                listener._deliver(address, session_id)

        return self._notify(run)

    # -- contender side
    def _add_contender(self, election: EmbeddedLeaderElection, contender: LeaderContender) -> None:
        self._check_running()
        if election in self._contenders:
            raise RuntimeError("A contender was already registered with this LeaderElection")
        self._contenders[election] = contender
        if self._proposed is None and self._confirmed is None:
            self._update_leader()

    def _remove_contender(self, election: EmbeddedLeaderElection) -> None:
        contender = self._contenders.pop(election, None)
        if contender is None:
            return
        if election is self._proposed or election is self._confirmed:
            self._proposed = None
            self._confirmed = None
            self._session_id = None
            self._address = None
            contender.revoke_leadership()
            self._notify_listeners(None, None)
        if not self._shutdown:
            self._update_leader()

    def _confirm_leader(self, election: EmbeddedLeaderElection, session_id: UUID, address: str) -> None:
        if election is not self._proposed or session_id != self._session_id:
            _log.debug("Ignoring stale confirmation of %s for %s", session_id, self.component_id)
            return
        self._confirmed = election
        self._proposed = None
        self._address = address
        self._notify_listeners(address, session_id)

    def _has_leadership(self, election: EmbeddedLeaderElection, session_id: UUID) -> bool:
        is_leader = election is self._proposed or election is self._confirmed
        return is_leader and session_id == self._session_id

    def _update_leader(self) -> asyncio.Future[None] | None:
        if self._confirmed is not None or self._proposed is not None:
            return None
        if not self._contenders:
            return self._notify_listeners(None, None)
        election, contender = next(iter(self._contenders.items()))
        session_id = uuid.uuid4()
        self._proposed = election
        self._session_id = session_id
        return self._notify(lambda: contender.grant_leadership(session_id))

    # -- retrieval side
    def _add_listener(self, service: EmbeddedLeaderRetrievalService) -> None:
        self._check_running()
        self._listeners.append(service)
        if self._confirmed is not None and self._address is not None:
            address, session_id = self._address, self._session_id
            self._notify(lambda: service._deliver(address, session_id))

    def _remove_listener(self, service: EmbeddedLeaderRetrievalService) -> None:
        if service in self._listeners:
            self._listeners.remove(service)

    # -- leadership control (test hooks and the embedded cluster)
    async def grant_leadership(self) -> None:
        """Propose the next contender as leader, if there is no leader."""
        future = self._update_leader()
        if future is not None:
            await future

    async def revoke_leadership(self) -> None:
        """Revoke the current leader; contender and listeners are told. No new leader until ``grant``."""
        leader = self._confirmed or self._proposed
        if leader is None:
            return
        contender = self._contenders.get(leader)
        self._proposed = None
        self._confirmed = None
        self._session_id = None
        self._address = None
        if contender is not None:
            await self._notify(contender.revoke_leadership)
        await self._notify_listeners(None, None)

    def fatal_error(self, error: BaseException) -> None:
        """Flink's ``fatalError``: shut the service down; every contender is revoked and told the error."""
        wrapped = error if isinstance(error, Exception) else LeaderElectionError(str(error))
        for contender in list(self._contenders.values()):
            contender.revoke_leadership()
            contender.handle_error(wrapped)
        for listener in list(self._listeners):
            listener._deliver_error(wrapped)
        self.shutdown()

    def shutdown(self) -> None:
        if self._shutdown:
            return
        self._shutdown = True
        leader = self._confirmed or self._proposed
        if leader is not None and leader in self._contenders:
            self._contenders[leader].revoke_leadership()
        self._contenders.clear()
        self._listeners.clear()
        self._proposed = self._confirmed = None
        self._session_id = None
        self._address = None

    @property
    def current_leader_session_id(self) -> UUID | None:
        return self._session_id

    @property
    def current_leader_address(self) -> str | None:
        return self._address


class EmbeddedLeaderElection(LeaderElection):
    def __init__(self, service: EmbeddedLeaderService) -> None:
        self._service = service

    async def start_leader_election(self, contender: LeaderContender) -> None:
        self._service._add_contender(self, contender)

    async def confirm_leadership(self, session_id: UUID, address: str) -> None:
        self._service._confirm_leader(self, session_id, address)

    async def has_leadership(self, session_id: UUID) -> bool:
        return self._service._has_leadership(self, session_id)

    async def close(self) -> None:
        self._service._remove_contender(self)


class EmbeddedLeaderRetrievalService(LeaderRetrievalService):
    def __init__(self, service: EmbeddedLeaderService) -> None:
        self._service = service
        self._listener: LeaderRetrievalListener | None = None
        self._last: tuple[str | None, UUID | None] | None = None

    async def start(self, listener: LeaderRetrievalListener) -> None:
        if self._listener is not None:
            raise RuntimeError("The leader retrieval service can only be started once.")
        self._listener = listener
        self._service._add_listener(self)

    async def stop(self) -> None:
        self._service._remove_listener(self)
        self._listener = None

    def _deliver(self, address: str | None, session_id: UUID | None) -> None:
        if self._listener is None or self._last == (address, session_id):
            return
        self._last = (address, session_id)
        self._listener.notify_leader_address(address, session_id)

    def _deliver_error(self, error: Exception) -> None:
        if self._listener is not None:
            self._listener.handle_error(error)


class EmbeddedHaServices(HighAvailabilityServices):
    """In-process HA for a single-process cluster: one embedded leader service per component."""

    def __init__(self, checkpoint_recovery_factory: CheckpointRecoveryFactory | None = None) -> None:
        self._services: dict[str, EmbeddedLeaderService] = {}
        self._job_result_store = EmbeddedJobResultStore()
        self._blob_store = VoidBlobStore()
        self._checkpoint_recovery_factory = checkpoint_recovery_factory
        self._shut_down = False

    def leader_service(self, component_id: str) -> EmbeddedLeaderService:
        self._check_not_shutdown()
        service = self._services.get(component_id)
        if service is None:
            service = self._services[component_id] = EmbeddedLeaderService(component_id)
        return service

    def _check_not_shutdown(self) -> None:
        if self._shut_down:
            raise HighAvailabilityServicesShutDownError()

    def get_resource_manager_leader_retriever(self) -> LeaderRetrievalService:
        return self.leader_service(RESOURCE_MANAGER_COMPONENT).create_leader_retrieval_service()

    def get_dispatcher_leader_retriever(self) -> LeaderRetrievalService:
        return self.leader_service(DISPATCHER_COMPONENT).create_leader_retrieval_service()

    def get_job_manager_leader_retriever(
        self, job_id: JobID, default_job_manager_address: str | None = None
    ) -> LeaderRetrievalService:
        return self.leader_service(job_manager_component(job_id)).create_leader_retrieval_service()

    def get_cluster_rest_endpoint_leader_retriever(self) -> LeaderRetrievalService:
        return self.leader_service(REST_SERVER_COMPONENT).create_leader_retrieval_service()

    def get_resource_manager_leader_election(self) -> LeaderElection:
        return self.leader_service(RESOURCE_MANAGER_COMPONENT).create_leader_election()

    def get_dispatcher_leader_election(self) -> LeaderElection:
        return self.leader_service(DISPATCHER_COMPONENT).create_leader_election()

    def get_job_manager_leader_election(self, job_id: JobID) -> LeaderElection:
        return self.leader_service(job_manager_component(job_id)).create_leader_election()

    def get_cluster_rest_endpoint_leader_election(self) -> LeaderElection:
        return self.leader_service(REST_SERVER_COMPONENT).create_leader_election()

    def get_checkpoint_recovery_factory(self) -> CheckpointRecoveryFactory:
        self._check_not_shutdown()
        return self._checkpoint_recovery_factory or StandaloneCheckpointRecoveryFactory()

    def get_execution_plan_store(self) -> ExecutionPlanStore:
        self._check_not_shutdown()
        return StandaloneExecutionPlanStore()

    def get_job_result_store(self) -> JobResultStore:
        self._check_not_shutdown()
        return self._job_result_store

    def create_blob_store(self) -> BlobStore:
        self._check_not_shutdown()
        return self._blob_store

    async def close(self) -> None:
        if self._shut_down:
            return
        self._shut_down = True
        for service in self._services.values():
            service.shutdown()

    async def cleanup_all_data(self) -> None:
        return None


class EmbeddedHaServicesWithLeadershipControl(EmbeddedHaServices):
    """Embedded HA with per-component grant/revoke (Flink's ``HaLeadershipControl``); checkpoints survive
    a simulated failover because one store per job is kept in memory."""

    def __init__(self) -> None:
        super().__init__(PerJobCheckpointRecoveryFactory())

    async def grant_dispatcher_leadership(self) -> None:
        await self.leader_service(DISPATCHER_COMPONENT).grant_leadership()

    async def revoke_dispatcher_leadership(self) -> None:
        await self.leader_service(DISPATCHER_COMPONENT).revoke_leadership()

    async def grant_resource_manager_leadership(self) -> None:
        await self.leader_service(RESOURCE_MANAGER_COMPONENT).grant_leadership()

    async def revoke_resource_manager_leadership(self) -> None:
        await self.leader_service(RESOURCE_MANAGER_COMPONENT).revoke_leadership()

    async def grant_job_master_leadership(self, job_id: JobID) -> None:
        await self.leader_service(job_manager_component(job_id)).grant_leadership()

    async def revoke_job_master_leadership(self, job_id: JobID) -> None:
        await self.leader_service(job_manager_component(job_id)).revoke_leadership()
