"""Fixtures of the runtime tests: an in-process cluster on embedded leader election with in-memory stores."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ._support import Cluster, TestHaServices, cluster_config


@pytest.fixture
async def services() -> TestHaServices:
    return TestHaServices()


@pytest.fixture
async def cluster(services: TestHaServices, tmp_path: Path) -> AsyncIterator[Cluster]:
    c = Cluster(services, cluster_config(tmp_path))
    yield c
    await c.close()
