"""Standalone (non-HA) services: fixed leader addresses from the configuration, leadership granted at once.

``high-availability.type: none`` (also spelled ``standalone``), the default. There is no failover: whoever starts
is the leader, with ``DEFAULT_LEADER_ID`` as session id (Flink's ``StandaloneHaServices``).
"""

from __future__ import annotations

import logging
from uuid import UUID

from ._blob_store import BlobStore, VoidBlobStore
from ._checkpoint import CheckpointRecoveryFactory, StandaloneCheckpointRecoveryFactory
from ._errors import HighAvailabilityServicesShutDownError
from ._execution_plan import ExecutionPlanStore, StandaloneExecutionPlanStore
from ._job_result_store import EmbeddedJobResultStore, JobResultStore
from ._leader_election import LeaderContender, LeaderElection
from ._leader_retrieval import LeaderRetrievalListener, LeaderRetrievalService
from ._services import DEFAULT_LEADER_ID, HighAvailabilityServices
from ._types import JobID

_log = logging.getLogger(__name__)

UNKNOWN_ADDRESS = "UNKNOWN"


class StandaloneLeaderElection(LeaderElection):
    """Grants leadership with a fixed session id to its single contender at once; close revokes."""

    def __init__(self, session_id: UUID = DEFAULT_LEADER_ID) -> None:
        self._session_id = session_id
        self._contender: LeaderContender | None = None

    async def start_leader_election(self, contender: LeaderContender) -> None:
        if self._contender is not None:
            raise RuntimeError(
                "No LeaderContender should have been registered with this LeaderElection, yet."
            )
        self._contender = contender
        contender.grant_leadership(self._session_id)

    async def confirm_leadership(self, session_id: UUID, address: str) -> None:
        return None

    async def has_leadership(self, session_id: UUID) -> bool:
        return self._contender is not None and session_id == self._session_id

    async def close(self) -> None:
        contender, self._contender = self._contender, None
        if contender is not None:
            contender.revoke_leadership()


class StandaloneLeaderRetrievalService(LeaderRetrievalService):
    """Notifies its listener once of a fixed leader address; a second start fails."""

    def __init__(self, address: str, session_id: UUID = DEFAULT_LEADER_ID) -> None:
        self._address = address
        self._session_id = session_id
        self._started = False

    async def start(self, listener: LeaderRetrievalListener) -> None:
        if self._started:
            raise RuntimeError("StandaloneLeaderRetrievalService can only be started once.")
        self._started = True
        listener.notify_leader_address(self._address, self._session_id)

    async def stop(self) -> None:
        return None


class AbstractNonHaServices(HighAvailabilityServices):
    """Flink's ``AbstractNonHaServices``: in-memory job results, void blobs, no-op plan and checkpoint recovery."""

    def __init__(self) -> None:
        self._job_result_store = EmbeddedJobResultStore()
        self._blob_store = VoidBlobStore()
        self._shut_down = False

    def _check_not_shutdown(self) -> None:
        if self._shut_down:
            raise HighAvailabilityServicesShutDownError()

    def get_checkpoint_recovery_factory(self) -> CheckpointRecoveryFactory:
        self._check_not_shutdown()
        return StandaloneCheckpointRecoveryFactory()

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
        self._shut_down = True

    async def cleanup_all_data(self) -> None:
        return None


class StandaloneHaServices(AbstractNonHaServices):
    """Fixed leaders: the configured JobManager's ResourceManager, Dispatcher and REST endpoint."""

    def __init__(
        self, resource_manager_address: str, dispatcher_address: str, cluster_rest_endpoint_address: str
    ) -> None:
        super().__init__()
        self.resource_manager_address = resource_manager_address
        self.dispatcher_address = dispatcher_address
        self.cluster_rest_endpoint_address = cluster_rest_endpoint_address

    def get_resource_manager_leader_retriever(self) -> LeaderRetrievalService:
        self._check_not_shutdown()
        return StandaloneLeaderRetrievalService(self.resource_manager_address, DEFAULT_LEADER_ID)

    def get_dispatcher_leader_retriever(self) -> LeaderRetrievalService:
        self._check_not_shutdown()
        return StandaloneLeaderRetrievalService(self.dispatcher_address, DEFAULT_LEADER_ID)

    def get_job_manager_leader_retriever(
        self, job_id: JobID, default_job_manager_address: str | None = None
    ) -> LeaderRetrievalService:
        self._check_not_shutdown()
        return StandaloneLeaderRetrievalService(
            default_job_manager_address or UNKNOWN_ADDRESS, DEFAULT_LEADER_ID
        )

    def get_cluster_rest_endpoint_leader_retriever(self) -> LeaderRetrievalService:
        self._check_not_shutdown()
        return StandaloneLeaderRetrievalService(self.cluster_rest_endpoint_address, DEFAULT_LEADER_ID)

    def get_resource_manager_leader_election(self) -> LeaderElection:
        self._check_not_shutdown()
        return StandaloneLeaderElection(DEFAULT_LEADER_ID)

    def get_dispatcher_leader_election(self) -> LeaderElection:
        self._check_not_shutdown()
        return StandaloneLeaderElection(DEFAULT_LEADER_ID)

    def get_job_manager_leader_election(self, job_id: JobID) -> LeaderElection:
        self._check_not_shutdown()
        return StandaloneLeaderElection(DEFAULT_LEADER_ID)

    def get_cluster_rest_endpoint_leader_election(self) -> LeaderElection:
        self._check_not_shutdown()
        return StandaloneLeaderElection(DEFAULT_LEADER_ID)
