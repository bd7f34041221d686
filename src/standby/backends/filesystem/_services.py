"""FileSystemHaServices: HA for several JobManager processes on ONE host, with no external service.

Everything lives under ``<high-availability.storageDir>/<cluster-id>/`` on a local disk, in the logical tree
ZooKeeper would hold::

    leader/latch.lock                         flock held by the leader (the kernel drops it when the leader dies)
    leader/epoch                              fencing epoch, incremented by every new leader
    leader/<component>/connection_info        JSON: session id, address, epoch, writer
    execution-plans/<jobId>                   pointer to submittedExecutionPlan<rnd>  (+ <jobId>.locks/<instance>)
    jobs/<jobId>/checkpoints/<%019d>          pointer to completedCheckpoint<rnd>     (+ .locks)
    jobs/<jobId>/checkpoint_id_counter
    submittedExecutionPlan<rnd>, completedCheckpoint<rnd>, blob/   payloads, as with every backend

Job results go to the usual ``FileSystemJobResultStore``. Not for NFS or other network filesystems: ``flock``,
atomic rename and inotify only hold on a local filesystem, and processes must see each other's pids (liveness of
lock owners and leaders is checked by pid and start time).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from pathlib import Path
from urllib.parse import urlparse

from standby.config import Configuration, ConfigurationError, options
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
    HighAvailabilityServices,
    HighAvailabilityServicesFactory,
    JobID,
    JobResultStore,
    LeaderRetrievalService,
    ha_storage_path,
    recover_completed_checkpoint_store,
)

from ._checkpoint_id_counter import FileSystemCheckpointIDCounter
from ._election_driver import FileSystemLeaderElectionDriverFactory, LeaderFence
from ._execution_plan_watcher import FileSystemExecutionPlanStoreWatcher
from ._retrieval_driver import FileSystemLeaderRetrievalDriverFactory
from ._state_handle_store import FileSystemStateHandleStore

_log = logging.getLogger(__name__)

#: How often the backend looks at its files when inotify cannot tell it (and as a safety net).
POLL_INTERVAL_KEY = options.HA_FILESYSTEM_POLL_INTERVAL.key
DEFAULT_POLL_INTERVAL_SECONDS = 0.1
#: Set to false to poll only (for tests of the fallback, or filesystems whose changes inotify does not see).
HA_FILESYSTEM_INOTIFY = options.HA_FILESYSTEM_INOTIFY

LEADER_DIR = "leader"
EXECUTION_PLANS_DIR = "execution-plans"
JOBS_DIR = "jobs"
CHECKPOINTS_DIR = "checkpoints"


def local_directory(url: str) -> Path:
    """The local path of ``url`` (a plain path or ``file://``); the filesystem backend needs a local disk."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file") or (len(parsed.scheme) == 1 and url[1:3] in (":\\", ":/")):
        path = parsed.path if parsed.scheme == "file" else url
        return Path(path).absolute()
    raise ConfigurationError(
        f"The filesystem HA backend needs a local 'high-availability.storageDir', got {url!r}. "
        "Use a local path (e.g. /var/lib/standby/ha) or choose another high-availability.type."
    )


class FileSystemCheckpointRecoveryFactory(CheckpointRecoveryFactory):
    """Checkpoints of job ``<jobId>`` in ``jobs/<jobId>/checkpoints``, its counter in ``jobs/<jobId>``."""

    def __init__(self, jobs_dir: Path, storage_url: str, fence: LeaderFence | None) -> None:
        self._jobs_dir = jobs_dir
        self._fence = fence
        self._storage = FileSystemStateStorageHelper(
            storage_url,
            COMPLETED_CHECKPOINT_PREFIX,
            CompletedCheckpoint.to_bytes,
            CompletedCheckpoint.from_bytes,
        )

    async def create_recovered_completed_checkpoint_store(
        self, job_id: JobID, max_number_of_checkpoints_to_retain: int
    ) -> CompletedCheckpointStore:
        store = FileSystemStateHandleStore(
            self._jobs_dir / job_id / CHECKPOINTS_DIR, self._storage, self._fence
        )
        return await recover_completed_checkpoint_store(store, max_number_of_checkpoints_to_retain)

    async def create_checkpoint_id_counter(self, job_id: JobID) -> CheckpointIDCounter:
        return FileSystemCheckpointIDCounter(self._jobs_dir / job_id, self._fence)


class FileSystemHaServices(AbstractHaServices):
    """The ``filesystem`` backend (see the module docstring)."""

    def __init__(
        self,
        cluster_dir: Path,
        storage_url: str,
        blob_store: BlobStore,
        job_result_store: JobResultStore,
        fatal_error_handler: FatalErrorHandler | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL_SECONDS,
        use_inotify: bool = True,
    ) -> None:
        self.cluster_dir = cluster_dir
        self.leader_dir = cluster_dir / LEADER_DIR
        self._storage_url = storage_url
        self._poll_interval = poll_interval
        self._use_inotify = use_inotify
        # watches of not-yet-existing directories fall back to the storage dir, never above it
        self._boundary = cluster_dir.parent
        self.fence = LeaderFence()
        super().__init__(
            FileSystemLeaderElectionDriverFactory(
                self.leader_dir, self._boundary, poll_interval, self.fence, use_inotify
            ),
            blob_store,
            job_result_store,
            fatal_error_handler,
        )

    def create_leader_retrieval_service(self, component_id: str) -> LeaderRetrievalService:
        return DefaultLeaderRetrievalService(
            FileSystemLeaderRetrievalDriverFactory(
                self.leader_dir, self._boundary, component_id, self._poll_interval, self._use_inotify
            )
        )

    def create_checkpoint_recovery_factory(self) -> CheckpointRecoveryFactory:
        return FileSystemCheckpointRecoveryFactory(self.cluster_dir / JOBS_DIR, self._storage_url, self.fence)

    def create_execution_plan_store(self) -> ExecutionPlanStore:
        plans_dir = self.cluster_dir / EXECUTION_PLANS_DIR
        storage = FileSystemStateStorageHelper(
            self._storage_url, EXECUTION_PLAN_PREFIX, ExecutionPlan.to_bytes, ExecutionPlan.from_bytes
        )
        return DefaultExecutionPlanStore(
            FileSystemStateHandleStore(plans_dir, storage, self.fence),
            FileSystemExecutionPlanStoreWatcher(
                plans_dir, self._boundary, self._poll_interval, self._use_inotify
            ),
            str,
            JobID,
        )

    async def internal_close(self) -> None:
        # the election driver is closed by the election service with its last contender; nothing else is open
        return None

    async def internal_cleanup(self) -> None:
        def remove_pointers() -> None:
            for name in (EXECUTION_PLANS_DIR, JOBS_DIR, LEADER_DIR):
                path = self.cluster_dir / name
                if path.exists():
                    shutil.rmtree(path)
            # payload files nothing points to any more
            with contextlib.suppress(FileNotFoundError):
                for entry in os.listdir(self.cluster_dir):
                    if entry.startswith((EXECUTION_PLAN_PREFIX, COMPLETED_CHECKPOINT_PREFIX)):
                        with contextlib.suppress(FileNotFoundError):
                            (self.cluster_dir / entry).unlink()

        _log.info("Removing the HA data of the cluster in %s", self.cluster_dir)
        await asyncio.to_thread(remove_pointers)

    async def cleanup_all_data(self) -> None:
        await super().cleanup_all_data()
        with contextlib.suppress(OSError):
            await asyncio.to_thread(self.cluster_dir.rmdir)  # only if nothing else is left

    async def internal_cleanup_job_data(self, job_id: JobID) -> None:
        job_dir = self.cluster_dir / JOBS_DIR / job_id

        def remove() -> None:
            if job_dir.exists():
                shutil.rmtree(job_dir)

        await asyncio.to_thread(remove)


class FileSystemHaServicesFactory(HighAvailabilityServicesFactory):
    """``high-availability.type: filesystem``."""

    async def create_ha_services(
        self, config: Configuration, fatal_error_handler: FatalErrorHandler | None = None
    ) -> HighAvailabilityServices:
        storage_url = ha_storage_path(config)
        cluster_dir = local_directory(storage_url)
        poll_interval = config.get(options.HA_FILESYSTEM_POLL_INTERVAL).total_seconds()
        return FileSystemHaServices(
            cluster_dir,
            str(cluster_dir),
            FileSystemBlobStore(str(cluster_dir / "blob")),
            FileSystemJobResultStore.from_configuration(config),
            fatal_error_handler,
            poll_interval,
            config.get(HA_FILESYSTEM_INOTIFY),
        )
