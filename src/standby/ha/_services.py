"""HighAvailabilityServices: the one entry point to leader election, retrieval and the recovery stores."""

from __future__ import annotations

import abc
import logging
from uuid import UUID

from ._blob_store import BlobStore
from ._checkpoint import CheckpointRecoveryFactory
from ._default_leader_election_service import DefaultLeaderElectionService
from ._errors import HighAvailabilityServicesShutDownError
from ._execution_plan import ExecutionPlanStore
from ._job_result_store import JobResultStore
from ._leader_election import FatalErrorHandler, LeaderElection, LeaderElectionDriverFactory
from ._leader_retrieval import LeaderRetrievalService
from ._types import JobID

_log = logging.getLogger(__name__)

#: Flink's ``HighAvailabilityServices.DEFAULT_LEADER_ID`` (``new UUID(0, 0)``).
DEFAULT_LEADER_ID = UUID(int=0)

#: Component ids of the leader election (Flink's ZooKeeper names; the Kubernetes backend uses its own).
RESOURCE_MANAGER_COMPONENT = "resource_manager"
DISPATCHER_COMPONENT = "dispatcher"
REST_SERVER_COMPONENT = "rest_server"


def job_manager_component(job_id: JobID) -> str:
    return f"job-{job_id}"


class HighAvailabilityServices(abc.ABC):
    """Flink's ``HighAvailabilityServices``.

    Getters are synchronous and fail after ``close()``. ``close()`` keeps all HA data; ``cleanup_all_data()`` removes
    it (the cluster cannot be recovered afterwards); ``global_cleanup(job_id)`` removes one job's HA data.
    """

    # -- leader retrieval
    @abc.abstractmethod
    def get_resource_manager_leader_retriever(self) -> LeaderRetrievalService: ...

    @abc.abstractmethod
    def get_dispatcher_leader_retriever(self) -> LeaderRetrievalService: ...

    @abc.abstractmethod
    def get_job_manager_leader_retriever(
        self, job_id: JobID, default_job_manager_address: str | None = None
    ) -> LeaderRetrievalService: ...

    @abc.abstractmethod
    def get_cluster_rest_endpoint_leader_retriever(self) -> LeaderRetrievalService: ...

    # -- leader election
    @abc.abstractmethod
    def get_resource_manager_leader_election(self) -> LeaderElection: ...

    @abc.abstractmethod
    def get_dispatcher_leader_election(self) -> LeaderElection: ...

    @abc.abstractmethod
    def get_job_manager_leader_election(self, job_id: JobID) -> LeaderElection: ...

    @abc.abstractmethod
    def get_cluster_rest_endpoint_leader_election(self) -> LeaderElection: ...

    # -- recovery stores
    @abc.abstractmethod
    def get_checkpoint_recovery_factory(self) -> CheckpointRecoveryFactory: ...

    @abc.abstractmethod
    def get_execution_plan_store(self) -> ExecutionPlanStore: ...

    @abc.abstractmethod
    def get_job_result_store(self) -> JobResultStore: ...

    @abc.abstractmethod
    def create_blob_store(self) -> BlobStore: ...

    # -- lifecycle
    @abc.abstractmethod
    async def close(self) -> None:
        """Release resources; MUST NOT delete HA data."""

    @abc.abstractmethod
    async def cleanup_all_data(self) -> None:
        """Delete all HA data of the cluster (pointers first, then blobs)."""

    async def close_with_optional_clean(self, cleanup_data: bool) -> None:
        """``cleanup_all_data()`` if asked (its error remembered), then always ``close()``; errors re-raised."""
        first: BaseException | None = None
        if cleanup_data:
            try:
                await self.cleanup_all_data()
            except Exception as e:
                first = e
        try:
            await self.close()
        except Exception as e:
            if first is None:
                first = e
            else:
                first.add_note(f"close() failed as well: {e!r}")
        if first is not None:
            raise first

    async def global_cleanup(self, job_id: JobID) -> None:
        """Remove the HA data of one job (default: nothing to do)."""
        return None


class AbstractHaServices(HighAvailabilityServices):
    """Base of the real HA backends (Flink's ``AbstractHaServices``): one election service per process."""

    resource_manager_component = RESOURCE_MANAGER_COMPONENT
    dispatcher_component = DISPATCHER_COMPONENT
    rest_server_component = REST_SERVER_COMPONENT

    def __init__(
        self,
        driver_factory: LeaderElectionDriverFactory,
        blob_store: BlobStore,
        job_result_store: JobResultStore,
        fatal_error_handler: FatalErrorHandler | None = None,
    ) -> None:
        self.leader_election_service = DefaultLeaderElectionService(driver_factory, fatal_error_handler)
        self._blob_store = blob_store
        self._job_result_store = job_result_store
        self._closed = False

    def job_manager_component(self, job_id: JobID) -> str:
        return job_manager_component(job_id)

    # -- backend hooks
    @abc.abstractmethod
    def create_leader_retrieval_service(self, component_id: str) -> LeaderRetrievalService: ...

    @abc.abstractmethod
    def create_checkpoint_recovery_factory(self) -> CheckpointRecoveryFactory: ...

    @abc.abstractmethod
    def create_execution_plan_store(self) -> ExecutionPlanStore: ...

    @abc.abstractmethod
    async def internal_close(self) -> None: ...

    @abc.abstractmethod
    async def internal_cleanup(self) -> None:
        """Delete every pointer of the cluster in the coordination store."""

    @abc.abstractmethod
    async def internal_cleanup_job_data(self, job_id: JobID) -> None: ...

    def _check_open(self) -> None:
        if self._closed:
            raise HighAvailabilityServicesShutDownError()

    # -- retrieval
    def get_resource_manager_leader_retriever(self) -> LeaderRetrievalService:
        self._check_open()
        return self.create_leader_retrieval_service(self.resource_manager_component)

    def get_dispatcher_leader_retriever(self) -> LeaderRetrievalService:
        self._check_open()
        return self.create_leader_retrieval_service(self.dispatcher_component)

    def get_job_manager_leader_retriever(
        self, job_id: JobID, default_job_manager_address: str | None = None
    ) -> LeaderRetrievalService:
        self._check_open()  # the default address is ignored in HA mode (as Flink)
        return self.create_leader_retrieval_service(self.job_manager_component(job_id))

    def get_cluster_rest_endpoint_leader_retriever(self) -> LeaderRetrievalService:
        self._check_open()
        return self.create_leader_retrieval_service(self.rest_server_component)

    # -- election
    def get_resource_manager_leader_election(self) -> LeaderElection:
        self._check_open()
        return self.leader_election_service.create_leader_election(self.resource_manager_component)

    def get_dispatcher_leader_election(self) -> LeaderElection:
        self._check_open()
        return self.leader_election_service.create_leader_election(self.dispatcher_component)

    def get_job_manager_leader_election(self, job_id: JobID) -> LeaderElection:
        self._check_open()
        return self.leader_election_service.create_leader_election(self.job_manager_component(job_id))

    def get_cluster_rest_endpoint_leader_election(self) -> LeaderElection:
        self._check_open()
        return self.leader_election_service.create_leader_election(self.rest_server_component)

    # -- stores
    def get_checkpoint_recovery_factory(self) -> CheckpointRecoveryFactory:
        self._check_open()
        return self.create_checkpoint_recovery_factory()

    def get_execution_plan_store(self) -> ExecutionPlanStore:
        self._check_open()
        return self.create_execution_plan_store()

    def get_job_result_store(self) -> JobResultStore:
        self._check_open()
        return self._job_result_store

    def create_blob_store(self) -> BlobStore:
        self._check_open()
        return self._blob_store

    # -- lifecycle
    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        errors: list[BaseException] = []
        for step in (self._blob_store.close, self.leader_election_service.close, self.internal_close):
            try:
                await step()
            except Exception as e:
                errors.append(e)
        if errors:
            raise errors[0]

    async def cleanup_all_data(self) -> None:
        try:
            await self.internal_cleanup()
        except Exception:
            _log.warning("Cannot delete HA blobs because we failed to delete the pointers in the HA store.")
            raise
        await self._blob_store.cleanup_all_data()

    async def global_cleanup(self, job_id: JobID) -> None:
        await self.internal_cleanup_job_data(job_id)
