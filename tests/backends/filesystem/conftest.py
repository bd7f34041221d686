"""Fixtures of the filesystem backend tests."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import fsspec
import pytest
from fs_ha_testing import RecordingContender, RecordingListener

from standby.backends.filesystem import FileSystemHaServices, FileSystemHaServicesFactory
from standby.config import Configuration
from standby.ha import LeaderElection, LeaderRetrievalService


@pytest.fixture
def memory_url() -> Iterator[str]:
    """A fresh directory on fsspec's in-memory filesystem, removed afterwards."""
    root = f"/standby-test-{uuid.uuid4().hex[:12]}"
    yield f"memory://{root}"
    fs = fsspec.filesystem("memory")
    if fs.exists(root):
        fs.rm(root, recursive=True)


@pytest.fixture
def storage_dir(tmp_path: Path) -> Path:
    return tmp_path / "ha"


@pytest.fixture
def fs_config_values(storage_dir: Path) -> dict[str, str]:
    return {
        "high-availability.type": "filesystem",
        "high-availability.storageDir": str(storage_dir),
        "high-availability.cluster-id": "/test-cluster",
        "high-availability.filesystem.poll-interval": "50 ms",
    }


@pytest.fixture
def fs_config(fs_config_values: dict[str, str]) -> Configuration:
    return Configuration(fs_config_values)


class Cluster:
    """Several "JobManagers" (services instances) on one storage dir; everything is closed at the end."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.services: list[FileSystemHaServices] = []
        self.elections: list[LeaderElection] = []
        self.retrievers: list[LeaderRetrievalService] = []

    async def new_services(self, **overrides: str) -> FileSystemHaServices:
        services = await FileSystemHaServicesFactory().create_ha_services(
            Configuration({**self.values, **overrides})
        )
        assert isinstance(services, FileSystemHaServices)
        self.services.append(services)
        return services

    async def contend(
        self, services: FileSystemHaServices, address: str, component: str = "dispatcher"
    ) -> RecordingContender:
        election = (
            services.get_dispatcher_leader_election()
            if component == "dispatcher"
            else services.get_resource_manager_leader_election()
        )
        self.elections.append(election)
        contender = RecordingContender(election, address)
        await election.start_leader_election(contender)
        return contender

    async def retrieve(
        self, services: FileSystemHaServices, component: str = "dispatcher"
    ) -> RecordingListener:
        retriever = (
            services.get_dispatcher_leader_retriever()
            if component == "dispatcher"
            else services.get_resource_manager_leader_retriever()
        )
        self.retrievers.append(retriever)
        listener = RecordingListener()
        await retriever.start(listener)
        return listener

    async def close(self) -> None:
        for retriever in self.retrievers:
            await retriever.stop()
        for election in self.elections:
            await election.close()
        for services in self.services:
            with contextlib.suppress(Exception):
                await services.close()


@pytest.fixture
async def cluster(fs_config_values: dict[str, str]) -> AsyncIterator[Cluster]:
    cluster = Cluster(fs_config_values)
    yield cluster
    await cluster.close()
