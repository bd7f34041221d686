"""Fixtures of the filesystem backend tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import fsspec
import pytest

from standby.config import Configuration

from .fs_ha_testing import Cluster


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


@pytest.fixture
async def cluster(fs_config_values: dict[str, str]) -> AsyncIterator[Cluster]:
    cluster = Cluster(fs_config_values)
    yield cluster
    await cluster.close()
