"""EtcdHaServices: the HA services of one JobManager process on etcd, and the factory named by
``high-availability.type: etcd``.

Mirrors Flink's ``ZooKeeperLeaderElectionHaServices`` (§2.8) with the key layout of ``_paths``: one election driver
per process, leader retrieval by watch, execution plans and checkpoints as pointer keys to payloads on the HA
storage dir, job results and blobs on the storage dir. Every write of leader data is fenced by the process's
election key (see ``_fencing``).
"""

from __future__ import annotations

import asyncio
import logging

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
    delete_payload_files,
    ha_storage_path,
    recover_completed_checkpoint_store,
)

from ._checkpoint_id_counter import EtcdCheckpointIDCounter
from ._client import DefaultEtcdClientFactory, EtcdClient, EtcdClientFactory, EtcdSettings
from ._election_driver import EtcdLeaderElectionDriver, EtcdLeaderElectionDriverFactory
from ._execution_plan_watcher import EtcdExecutionPlanStoreWatcher
from ._fencing import LeadershipFence
from ._lease import EtcdLockLease
from ._paths import EtcdPaths
from ._retrieval_driver import EtcdLeaderRetrievalDriverFactory
from ._state_handle_store import EtcdStateHandleStore

_log = logging.getLogger(__name__)


class EtcdCheckpointRecoveryFactory(CheckpointRecoveryFactory):
    """Checkpoint store and ID counter of each job under ``jobs/<jobId>/`` (Flink's
    ``ZooKeeperCheckpointRecoveryFactory``), both fenced by the process's leadership."""

    def __init__(
        self,
        client: EtcdClient,
        paths: EtcdPaths,
        storage_path: str,
        lock_lease: EtcdLockLease,
        fence: LeadershipFence | None,
    ) -> None:
        self._client = client
        self._paths = paths
        self._storage = FileSystemStateStorageHelper[CompletedCheckpoint](
            storage_path, COMPLETED_CHECKPOINT_PREFIX, lambda c: c.to_bytes(), CompletedCheckpoint.from_bytes
        )
        self._lock_lease = lock_lease
        self._fence = fence

    def checkpoint_store(self, job_id: JobID) -> EtcdStateHandleStore[CompletedCheckpoint]:
        return EtcdStateHandleStore(
            self._client, self._paths.checkpoints(job_id), self._storage, self._lock_lease, self._fence
        )

    async def create_recovered_completed_checkpoint_store(
        self, job_id: JobID, max_number_of_checkpoints_to_retain: int
    ) -> CompletedCheckpointStore:
        return await recover_completed_checkpoint_store(
            self.checkpoint_store(job_id), max(1, max_number_of_checkpoints_to_retain)
        )

    async def create_checkpoint_id_counter(self, job_id: JobID) -> CheckpointIDCounter:
        return EtcdCheckpointIDCounter(self._client, self._paths.checkpoint_id_counter(job_id), self._fence)


class EtcdHaServices(AbstractHaServices):
    """HA services on etcd; one instance per JobManager process (it owns its etcd client)."""

    def __init__(
        self,
        client: EtcdClient,
        storage_path: str,
        blob_store: BlobStore,
        job_result_store: JobResultStore,
        fatal_error_handler: FatalErrorHandler | None = None,
    ) -> None:
        self.client = client
        self.settings = client.settings
        self.paths = EtcdPaths(self.settings.cluster_prefix)
        self.storage_path = storage_path
        #: the leadership guarding this process's writes (set by the election driver)
        self.fence = LeadershipFence()
        self.lock_lease = EtcdLockLease(client, self.settings)
        self._driver_factory = EtcdLeaderElectionDriverFactory(client, self.settings, self.paths, self.fence)
        super().__init__(self._driver_factory, blob_store, job_result_store, fatal_error_handler)
        self._plan_storage = FileSystemStateStorageHelper[ExecutionPlan](
            storage_path, EXECUTION_PLAN_PREFIX, lambda p: p.to_bytes(), ExecutionPlan.from_bytes
        )

    def __repr__(self) -> str:
        return f"EtcdHaServices(endpoints={self.client.description}, cluster={self.paths.cluster})"

    @property
    def election_driver(self) -> EtcdLeaderElectionDriver | None:
        """The election driver while components contend (visible for tests and tools)."""
        driver = self._driver_factory.current
        return driver if driver is not None and self.leader_election_service.has_driver else None

    def create_leader_retrieval_service(self, component_id: str) -> LeaderRetrievalService:
        return DefaultLeaderRetrievalService(
            EtcdLeaderRetrievalDriverFactory(self.client, self.paths.connection_info(component_id))
        )

    def create_checkpoint_recovery_factory(self) -> EtcdCheckpointRecoveryFactory:
        return EtcdCheckpointRecoveryFactory(
            self.client, self.paths, self.storage_path, self.lock_lease, self.fence
        )

    def execution_plan_state_handle_store(self) -> EtcdStateHandleStore[ExecutionPlan]:
        return EtcdStateHandleStore(
            self.client, self.paths.execution_plans, self._plan_storage, self.lock_lease, self.fence
        )

    def create_execution_plan_store(self) -> ExecutionPlanStore:
        return DefaultExecutionPlanStore(
            self.execution_plan_state_handle_store(),
            EtcdExecutionPlanStoreWatcher(self.client, self.paths.execution_plans),
            str,
            JobID,
        )

    async def internal_close(self) -> None:
        try:
            await self.lock_lease.close()  # our locks vanish, as with a closed ZooKeeper session
        finally:
            await self.client.close()

    async def internal_cleanup(self) -> None:
        # Flink deletes the cluster's znode tree; one range delete here. Not fenced: it runs at cluster shutdown,
        # after the leader's components (and so its leadership) are gone.
        deleted = await self.client.delete_prefix(self.paths.cluster_prefix)
        _log.info("Deleted %d etcd keys under %s", deleted, self.paths.cluster)
        # Payload files no key points to any more (a write cancelled in flight or with an unknown outcome leaves
        # its payload behind; found by the chaos suite)
        await asyncio.to_thread(delete_payload_files, self.storage_path)

    async def internal_cleanup_job_data(self, job_id: JobID) -> None:
        # Flink: delete /jobs/<jobId> recursively (checkpoints, counter). Not fenced: the job is globally terminal.
        await self.client.delete_prefix(self.paths.job_prefix(job_id))


class EtcdHaServicesFactory(HighAvailabilityServicesFactory):
    """``high-availability.type: etcd``. ``client_factory`` is the seam for tests (wrap or observe the client)."""

    def __init__(self, client_factory: EtcdClientFactory | None = None) -> None:
        self._client_factory = client_factory or DefaultEtcdClientFactory()

    async def create_ha_services(
        self, config: Configuration, fatal_error_handler: FatalErrorHandler | None = None
    ) -> EtcdHaServices:
        settings = EtcdSettings.from_configuration(config)
        storage_path = ha_storage_path(config)
        blob_store = FileSystemBlobStore.from_configuration(config)
        job_result_store = FileSystemJobResultStore.from_configuration(config)
        client = self._client_factory.create_client(settings)
        try:
            await client.connect()
        except BaseException:
            await client.close()
            raise
        return EtcdHaServices(client, storage_path, blob_store, job_result_store, fatal_error_handler)
