"""ZooKeeperHaServices and its factory: the ZooKeeper backend assembled (Flink's ``ZooKeeperLeaderElectionHaServices``).

Layout under ``<path.root>/<cluster-id>`` (reference §2.2)::

    leader/latch/_c_<uuid>-latch-<seq>          one EPHEMERAL_SEQUENTIAL node per JobManager process
    leader/<component>/connection_info          EPHEMERAL leader information (Flink's Java-serialized bytes)
    execution-plans/<jobId>[/locks/<uuid>]      pointers to submittedExecutionPlan* files
    jobs/<jobId>/checkpoints/<%019d>[/locks/..] pointers to completedCheckpoint* files
    jobs/<jobId>/checkpoint_id_counter          4-byte big-endian int

Beyond Flink, the election driver factory is the fencing token of the process: plans, checkpoints and the counter
are written only together with a check of the leader's latch node (``FencingError`` otherwise).
"""

from __future__ import annotations

import asyncio
import logging

from kazoo.exceptions import NoNodeError, NotEmptyError

from standby.config import Configuration
from standby.ha import (
    COMPLETED_CHECKPOINT_PREFIX,
    EXECUTION_PLAN_PREFIX,
    AbstractHaServices,
    BlobStore,
    CheckpointIDCounter,
    CheckpointRecoveryFactory,
    CompletedCheckpoint,
    CompletedCheckpointStore,
    DefaultExecutionPlanStore,
    DefaultLeaderRetrievalService,
    ExecutionPlan,
    ExecutionPlanStore,
    FatalErrorHandler,
    FileSystemBlobStore,
    FileSystemJobResultStore,
    FileSystemStateStorageHelper,
    HighAvailabilityServicesFactory,
    JobID,
    JobResultStore,
    LeaderRetrievalService,
    RetrievableStateStorageHelper,
    delete_payload_files,
    ha_storage_path,
    recover_completed_checkpoint_store,
)

from ._checkpoint_id_counter import CHECKPOINT_ID_COUNTER_NODE, ZooKeeperCheckpointIDCounter
from ._client import (
    KazooClientFactory,
    LatchFencing,
    ZooKeeperClient,
    ZooKeeperClientSettings,
    generate_zookeeper_path,
)
from ._election_driver import LEADER_NODE, ZooKeeperLeaderElectionDriverFactory
from ._execution_plan_watcher import ZooKeeperExecutionPlanStoreWatcher, job_id_to_name, name_to_job_id
from ._retrieval_driver import LeaderInformationClearancePolicy, ZooKeeperLeaderRetrievalDriverFactory
from ._state_handle_store import ZooKeeperStateHandleStore

_log = logging.getLogger(__name__)

__all__ = [
    "CHECKPOINTS_NODE",
    "JOBS_NODE",
    "ZooKeeperCheckpointRecoveryFactory",
    "ZooKeeperHaServices",
    "ZooKeeperHaServicesFactory",
]

JOBS_NODE = "jobs"
CHECKPOINTS_NODE = "checkpoints"


class ZooKeeperCheckpointRecoveryFactory(CheckpointRecoveryFactory):
    """Checkpoint stores and id counters under ``<namespace>/jobs/<jobId>`` (Flink's class of the same name)."""

    def __init__(
        self,
        client: ZooKeeperClient,
        storage: RetrievableStateStorageHelper[CompletedCheckpoint],
        fencing: LatchFencing | None,
        jobs_path: str | None = None,
    ) -> None:
        self._client = client
        self._storage = storage
        self._fencing = fencing
        self.jobs_path = jobs_path or client.path(JOBS_NODE)

    def job_path(self, job_id: JobID) -> str:
        return f"{self.jobs_path}/{job_id}"

    async def create_recovered_completed_checkpoint_store(
        self, job_id: JobID, max_number_of_checkpoints_to_retain: int
    ) -> CompletedCheckpointStore:
        store = ZooKeeperStateHandleStore(
            self._client, f"{self.job_path(job_id)}/{CHECKPOINTS_NODE}", self._storage, self._fencing
        )
        return await recover_completed_checkpoint_store(store, max_number_of_checkpoints_to_retain)

    async def create_checkpoint_id_counter(self, job_id: JobID) -> CheckpointIDCounter:
        return ZooKeeperCheckpointIDCounter(
            self._client, f"{self.job_path(job_id)}/{CHECKPOINT_ID_COUNTER_NODE}", self._fencing
        )


class ZooKeeperHaServices(AbstractHaServices):
    """HA services on one ZooKeeper session per process (Flink's ``ZooKeeperLeaderElectionHaServices``).

    ``close()`` closes the session (ephemeral nodes vanish, persistent data stays); ``cleanup_all_data()`` deletes
    the cluster's namespace and then every parent node that became empty; ``global_cleanup(job)`` deletes
    ``jobs/<jobId>``.
    """

    def __init__(
        self,
        client: ZooKeeperClient,
        storage_path: str,
        blob_store: BlobStore,
        job_result_store: JobResultStore,
        fatal_error_handler: FatalErrorHandler | None = None,
    ) -> None:
        self.client = client
        self.election_driver_factory = ZooKeeperLeaderElectionDriverFactory(client, client.path(LEADER_NODE))
        super().__init__(self.election_driver_factory, blob_store, job_result_store, fatal_error_handler)
        self.storage_path = storage_path
        self.retrieval_policy = LeaderInformationClearancePolicy.for_tolerate_suspended_connections(
            client.settings.tolerate_suspended_connections
        )
        self._checkpoint_storage = FileSystemStateStorageHelper(
            storage_path,
            COMPLETED_CHECKPOINT_PREFIX,
            CompletedCheckpoint.to_bytes,
            CompletedCheckpoint.from_bytes,
        )
        self._plan_storage = FileSystemStateStorageHelper(
            storage_path, EXECUTION_PLAN_PREFIX, ExecutionPlan.to_bytes, ExecutionPlan.from_bytes
        )

    @property
    def fencing(self) -> LatchFencing:
        """The fencing token of this process (its latch node while it leads)."""
        return self.election_driver_factory

    @property
    def namespace(self) -> str:
        return self.client.namespace

    @property
    def execution_plans_path(self) -> str:
        return self.client.path(self.client.settings.execution_plans_path)

    def leader_path(self, component_id: str) -> str:
        return self.client.path(LEADER_NODE, component_id)

    # ------------------------------------------------------------------------------------------ AbstractHaServices

    def create_leader_retrieval_service(self, component_id: str) -> LeaderRetrievalService:
        return DefaultLeaderRetrievalService(
            ZooKeeperLeaderRetrievalDriverFactory(
                self.client, self.leader_path(component_id), self.retrieval_policy
            )
        )

    def create_checkpoint_recovery_factory(self) -> CheckpointRecoveryFactory:
        return ZooKeeperCheckpointRecoveryFactory(self.client, self._checkpoint_storage, self.fencing)

    def create_execution_plan_store(self) -> ExecutionPlanStore:
        path = self.execution_plans_path
        return DefaultExecutionPlanStore(
            ZooKeeperStateHandleStore(self.client, path, self._plan_storage, self.fencing),
            ZooKeeperExecutionPlanStoreWatcher(self.client, path),
            job_id_to_name,
            name_to_job_id,
        )

    async def internal_close(self) -> None:
        await self.client.close()

    async def internal_cleanup(self) -> None:
        """Delete the namespace, then every parent that became empty (stops at the first non-empty one)."""
        namespace = self.client.namespace
        await self.client.delete_tree(namespace)
        parent = namespace.rsplit("/", 1)[0]
        while parent:
            try:
                await self.client.delete(parent)
            except NotEmptyError:
                break  # e.g. /flink still holds other clusters
            except NoNodeError:
                pass
            parent = parent.rsplit("/", 1)[0]
        # Payload files no node points to any more: a plan or checkpoint write cancelled in flight (revocation)
        # leaves its payload behind, and with the nodes gone every payload of the cluster is unreferenced
        # (the filesystem backend does the same; found by the chaos suite).
        await asyncio.to_thread(delete_payload_files, self.storage_path)

    async def internal_cleanup_job_data(self, job_id: JobID) -> None:
        # Not fenced (as Flink): cleanup runs after the job's terminal result is in the job result store.
        await self.client.delete_tree(generate_zookeeper_path(self.client.path(JOBS_NODE), str(job_id)))

    def __repr__(self) -> str:
        return f"ZooKeeperHaServices(quorum={self.client.settings.quorum!r}, namespace={self.namespace!r})"


class ZooKeeperHaServicesFactory(HighAvailabilityServicesFactory):
    """``high-availability.type: zookeeper``. Pass ``client_factory`` to build the kazoo client yourself (tests)."""

    def __init__(self, client_factory: KazooClientFactory | None = None) -> None:
        self._client_factory = client_factory

    async def create_ha_services(
        self, config: Configuration, fatal_error_handler: FatalErrorHandler | None = None
    ) -> ZooKeeperHaServices:
        settings = ZooKeeperClientSettings.from_configuration(config)
        storage_path = ha_storage_path(config)
        blob_store = FileSystemBlobStore.from_configuration(config)
        job_result_store = FileSystemJobResultStore.from_configuration(config)
        client = ZooKeeperClient(settings, self._client_factory, fatal_error_handler)
        await client.start()
        return ZooKeeperHaServices(client, storage_path, blob_store, job_result_store, fatal_error_handler)
