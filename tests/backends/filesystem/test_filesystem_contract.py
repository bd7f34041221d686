"""The leader election contract suite against the filesystem backend (each services instance = one JobManager)."""

from __future__ import annotations

from pathlib import Path

import pytest

from standby.backends.filesystem import FileSystemHaServicesFactory
from standby.config import Configuration
from standby.ha import HighAvailabilityServices
from standby.testing.contract import LeaderElectionContract


class FileSystemBackend:
    supports_failover = True
    publishes_confirmed_address = True

    def __init__(self, storage_dir: Path, inotify: bool) -> None:
        self.config = Configuration(
            {
                "high-availability.type": "filesystem",
                "high-availability.storageDir": str(storage_dir),
                "high-availability.filesystem.poll-interval": "50 ms",
                "high-availability.filesystem.inotify": str(inotify).lower(),
            }
        )

    async def new_services(self) -> HighAvailabilityServices:
        return await FileSystemHaServicesFactory().create_ha_services(self.config)


class TestFileSystemLeaderElection(LeaderElectionContract):
    @pytest.fixture(params=["inotify", "polling"])
    def ha_backend(self, tmp_path: Path, request: pytest.FixtureRequest) -> FileSystemBackend:
        return FileSystemBackend(tmp_path / "ha", inotify=request.param == "inotify")
