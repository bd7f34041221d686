"""KubernetesHaServices and the factory of ``high-availability.type: kubernetes`` (Flink's
``KubernetesLeaderElectionHaServices`` and ``KubernetesHaServicesFactory``, §3.8).

One instance per JobManager (or TaskManager) process: one lightkube client, one lock identity (uuid), one shared
watch of ``<cluster-id>-cluster-config-map``, one election driver at a time. Execution plans live in the cluster
ConfigMap, checkpoints and the checkpoint id counter in ``<cluster-id>-<jobId>-config-map`` (created on demand),
payloads on the HA storage dir, job results and blobs on the storage dir. Every HA write is fenced (``_fencing``).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field

from standby.config import Configuration, options
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
    NoOpExecutionPlanStoreWatcher,
    RetrievableStateStorageHelper,
    ha_storage_path,
    recover_completed_checkpoint_store,
)

from ._checkpoint_id_counter import KubernetesCheckpointIDCounter
from ._client import (
    KubernetesClient,
    KubernetesClientFactory,
    KubernetesConfigMap,
    LightkubeClientFactory,
    RetryPolicy,
)
from ._configmap_watcher import SharedConfigMapWatcher
from ._election_driver import KubernetesLeaderElectionDriver, KubernetesLeaderElectionDriverFactory
from ._fencing import FencedConfigMapWriter, LeaderFence
from ._leader_elector import Clock, KubernetesLeaderElectionConfiguration, LeadershipState
from ._retrieval_driver import KubernetesLeaderRetrievalDriverFactory
from ._state_handle_store import KubernetesStateHandleStore
from ._utils import (
    CHECKPOINT_ID_KEY_PREFIX,
    DISPATCHER_COMPONENT,
    EXECUTION_PLAN_STORE_KEY_PREFIX,
    RESOURCE_MANAGER_COMPONENT,
    REST_SERVER_COMPONENT,
    cluster_config_map_name,
    config_map_labels,
    job_config_map_name,
    validate_cluster_id,
)

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KubernetesHaSettings:
    """What the Kubernetes HA services read from the configuration."""

    cluster_id: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 5.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @staticmethod
    def from_configuration(config: Configuration) -> KubernetesHaSettings:
        settings = KubernetesHaSettings(
            cluster_id=validate_cluster_id(config.get(options.KUBERNETES_CLUSTER_ID)),
            lease_duration=config.get(options.HA_KUBERNETES_LEASE_DURATION).total_seconds(),
            renew_deadline=config.get(options.HA_KUBERNETES_RENEW_DEADLINE).total_seconds(),
            retry_period=config.get(options.HA_KUBERNETES_RETRY_PERIOD).total_seconds(),
            retry=RetryPolicy.from_configuration(config),
        )
        settings.election_configuration("validation")  # fail early on inconsistent timings
        if settings.renew_deadline >= settings.lease_duration:
            # Flink's defaults (15 s / 15 s) leave no margin; client-go refuses renewDeadline >= leaseDuration.
            _log.warning(
                "'%s' (%s s) is not shorter than '%s' (%s s): a leader that cannot renew may still act as leader "
                "when a follower takes over. Use a shorter renew deadline (default 10 s with a 15 s lease).",
                options.HA_KUBERNETES_RENEW_DEADLINE.key,
                settings.renew_deadline,
                options.HA_KUBERNETES_LEASE_DURATION.key,
                settings.lease_duration,
            )
        return settings

    @property
    def cluster_config_map(self) -> str:
        return cluster_config_map_name(self.cluster_id)

    def job_config_map(self, job_id: JobID) -> str:
        return job_config_map_name(self.cluster_id, job_id)

    @property
    def labels(self) -> dict[str, str]:
        return config_map_labels(self.cluster_id)

    def election_configuration(self, lock_identity: str) -> KubernetesLeaderElectionConfiguration:
        configuration = KubernetesLeaderElectionConfiguration(
            config_map_name=self.cluster_config_map,
            lock_identity=lock_identity,
            lease_duration=self.lease_duration,
            renew_deadline=self.renew_deadline,
            retry_period=self.retry_period,
            labels=tuple(sorted(self.labels.items())),
        )
        return configuration


def kubernetes_ha_configuration(config: Configuration) -> Configuration:
    """Flink's native Kubernetes sets ``high-availability.cluster-id`` to ``kubernetes.cluster-id`` when it is not
    set, so the payloads go to ``<storageDir>/<kubernetes.cluster-id>``; a copy with that default applied."""
    if config.contains(options.HA_CLUSTER_ID):
        return config
    cluster_id = validate_cluster_id(config.get(options.KUBERNETES_CLUSTER_ID))
    return config.copy().set(options.HA_CLUSTER_ID, cluster_id)


class KubernetesCheckpointRecoveryFactory(CheckpointRecoveryFactory):
    """Flink's ``KubernetesCheckpointRecoveryFactory``: per-job ConfigMaps, created if missing, fenced (standby;
    Flink 2.x uses ``withoutLeadershipValidation``)."""

    def __init__(
        self,
        client: KubernetesClient,
        settings: KubernetesHaSettings,
        storage: RetrievableStateStorageHelper[CompletedCheckpoint],
        fence: LeaderFence | None,
    ) -> None:
        self._client = client
        self._settings = settings
        self._storage = storage
        self._fence = fence

    def writer(self, job_id: JobID) -> FencedConfigMapWriter:
        return FencedConfigMapWriter(
            self._client,
            self._settings.job_config_map(job_id),
            self._settings.retry,
            self._fence,
            lock_config_map=self._settings.cluster_config_map,
        )

    async def _prepare(self, job_id: JobID) -> FencedConfigMapWriter:
        writer = self.writer(job_id)
        await writer.ensure_exists(
            KubernetesConfigMap(name=writer.config_map_name, labels=self._settings.labels)
        )
        # claim the job ConfigMap for our term before reading it: no deposed leader can change it afterwards
        await writer.claim()
        return writer

    async def create_recovered_completed_checkpoint_store(
        self, job_id: JobID, max_number_of_checkpoints_to_retain: int
    ) -> CompletedCheckpointStore:
        writer = await self._prepare(job_id)
        store = KubernetesStateHandleStore(writer, self._storage, CHECKPOINT_ID_KEY_PREFIX)
        return await recover_completed_checkpoint_store(store, max(1, max_number_of_checkpoints_to_retain))

    async def create_checkpoint_id_counter(self, job_id: JobID) -> CheckpointIDCounter:
        return KubernetesCheckpointIDCounter(await self._prepare(job_id))


class KubernetesHaServices(AbstractHaServices):
    """HA services on Kubernetes ConfigMaps; one instance per process (it owns its client)."""

    resource_manager_component = RESOURCE_MANAGER_COMPONENT
    dispatcher_component = DISPATCHER_COMPONENT
    rest_server_component = REST_SERVER_COMPONENT

    def __init__(
        self,
        client: KubernetesClient,
        settings: KubernetesHaSettings,
        storage_path: str,
        blob_store: BlobStore,
        job_result_store: JobResultStore,
        fatal_error_handler: FatalErrorHandler | None = None,
        *,
        lock_identity: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.storage_path = storage_path
        #: one lock identity per process (Flink: per KubernetesLeaderElectionHaServices)
        self.lock_identity = lock_identity or str(uuid.uuid4())
        self.leadership = LeadershipState(self.lock_identity, clock)
        self.fence = LeaderFence(self.lock_identity, self.leadership.current_term)
        self.watcher = SharedConfigMapWatcher(client, settings.cluster_config_map, settings.retry)
        self._driver_factory = KubernetesLeaderElectionDriverFactory(
            client,
            settings.election_configuration(self.lock_identity),
            self.leadership,
            self.watcher,
            settings.retry,
            clock=clock,
        )
        super().__init__(self._driver_factory, blob_store, job_result_store, fatal_error_handler)
        self._plan_storage = FileSystemStateStorageHelper[ExecutionPlan](
            storage_path, EXECUTION_PLAN_PREFIX, lambda p: p.to_bytes(), ExecutionPlan.from_bytes
        )
        self._checkpoint_storage = FileSystemStateStorageHelper[CompletedCheckpoint](
            storage_path, COMPLETED_CHECKPOINT_PREFIX, lambda c: c.to_bytes(), CompletedCheckpoint.from_bytes
        )

    def __repr__(self) -> str:
        return (
            f"KubernetesHaServices(namespace={self.client.namespace!r}, cluster_id={self.settings.cluster_id!r}, "
            f"lock_identity={self.lock_identity!r})"
        )

    @property
    def election_driver(self) -> KubernetesLeaderElectionDriver | None:
        """The election driver while components contend (visible for tests and tools)."""
        return self._driver_factory.current_driver

    def create_leader_retrieval_service(self, component_id: str) -> LeaderRetrievalService:
        return DefaultLeaderRetrievalService(
            KubernetesLeaderRetrievalDriverFactory(self.watcher, component_id)
        )

    def create_checkpoint_recovery_factory(self) -> KubernetesCheckpointRecoveryFactory:
        return KubernetesCheckpointRecoveryFactory(
            self.client, self.settings, self._checkpoint_storage, self.fence
        )

    def execution_plan_state_handle_store(self) -> KubernetesStateHandleStore[ExecutionPlan]:
        writer = FencedConfigMapWriter(
            self.client, self.settings.cluster_config_map, self.settings.retry, self.fence
        )
        return KubernetesStateHandleStore(writer, self._plan_storage, EXECUTION_PLAN_STORE_KEY_PREFIX)

    def create_execution_plan_store(self) -> ExecutionPlanStore:
        # Flink: NoOpExecutionPlanStoreWatcher on Kubernetes (only the leader writes plans).
        return DefaultExecutionPlanStore(
            self.execution_plan_state_handle_store(), NoOpExecutionPlanStoreWatcher(), str, JobID
        )

    async def internal_close(self) -> None:
        try:
            await self.watcher.close()
        finally:
            await self.client.close()

    async def internal_cleanup(self) -> None:
        # Flink: stop watching, then delete the cluster ConfigMap (the job ConfigMaps go with each job's cleanup).
        # Not fenced: it runs at cluster shutdown, after the components (and their leadership) are gone.
        self._driver_factory.cluster_data_deleted()
        await self.watcher.close()
        deleted = await self.client.delete_config_map(self.settings.cluster_config_map)
        _log.info(
            "%s ConfigMap %s", "Deleted" if deleted else "There was no", self.settings.cluster_config_map
        )

    async def internal_cleanup_job_data(self, job_id: JobID) -> None:
        # Flink: delete <cluster-id>-<jobId>-config-map. Not fenced: the job is globally terminal.
        await self.client.delete_config_map(self.settings.job_config_map(job_id))


class KubernetesHaServicesFactory(HighAvailabilityServicesFactory):
    """``high-availability.type: kubernetes``. ``client_factory`` is the seam (default: lightkube)."""

    def __init__(self, client_factory: KubernetesClientFactory | None = None) -> None:
        self._client_factory = client_factory or LightkubeClientFactory()

    async def create_ha_services(
        self, config: Configuration, fatal_error_handler: FatalErrorHandler | None = None
    ) -> KubernetesHaServices:
        settings = KubernetesHaSettings.from_configuration(config)
        ha_config = kubernetes_ha_configuration(config)
        storage_path = ha_storage_path(ha_config)
        blob_store = FileSystemBlobStore.from_configuration(ha_config)
        job_result_store = FileSystemJobResultStore.from_configuration(ha_config)
        client = self._client_factory.create(config)
        return KubernetesHaServices(
            client, settings, storage_path, blob_store, job_result_store, fatal_error_handler
        )
