"""A filesystem HA backend whose per-job HA cleanup fails while a marker file exists (a crash during cleanup).

Selected with ``high-availability.type: tests.e2e._faulty:FaultyFileSystemHaServicesFactory`` (a factory named in
the configuration, as Flink's FACTORY_CLASS mode); the marker is ``<high-availability.storageDir>/fail-cleanup``.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from standby.backends.filesystem import FileSystemHaServices
from standby.config import Configuration, options
from standby.ha import (
    FatalErrorHandler,
    FileSystemBlobStore,
    FileSystemJobResultStore,
    HighAvailabilityServices,
    HighAvailabilityServicesFactory,
    JobID,
    ha_storage_path,
)


class FaultyFileSystemHaServices(FileSystemHaServices):
    marker: Path

    async def internal_cleanup_job_data(self, job_id: JobID) -> None:
        if self.marker.exists():
            raise OSError(f"cleanup of job {job_id} fails while {self.marker} exists (test)")
        await super().internal_cleanup_job_data(job_id)


def _local(url: str) -> Path:
    return Path(os.path.abspath(urlparse(url).path))


class FaultyFileSystemHaServicesFactory(HighAvailabilityServicesFactory):
    async def create_ha_services(
        self, config: Configuration, fatal_error_handler: FatalErrorHandler | None = None
    ) -> HighAvailabilityServices:
        cluster_dir = _local(ha_storage_path(config))
        services = FaultyFileSystemHaServices(
            cluster_dir,
            str(cluster_dir),
            FileSystemBlobStore(str(cluster_dir / "blob")),
            FileSystemJobResultStore.from_configuration(config),
            fatal_error_handler,
        )
        services.marker = Path(urlparse(config.get(options.HA_STORAGE_DIR) or "").path) / "fail-cleanup"
        return services
