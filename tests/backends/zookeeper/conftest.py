"""Fixtures of the ZooKeeper backend tests: real ZooKeeper servers (skipped when not installed) and clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from standby.testing.pytest_fixtures import (  # noqa: F401  (fixtures used by the tests)
    tcp_proxy,
    zookeeper_ensemble,
    zookeeper_installation,
    zookeeper_server,
)
from standby.testing.servers import ZooKeeperInstallation, ZooKeeperServer

from .zk_support import ClientFactory


@pytest.fixture
async def zk_clients() -> AsyncIterator[ClientFactory]:
    """Starts ``ZooKeeperClient`` objects (``await zk_clients(settings)``), closed when the test ends."""
    factory = ClientFactory()
    try:
        yield factory
    finally:
        await factory.close()


@pytest.fixture
def own_zookeeper(
    zookeeper_installation: ZooKeeperInstallation,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ZooKeeperServer]:
    """A server of this test alone (for tests that stop, restart or pause it)."""
    with ZooKeeperServer(
        installation=zookeeper_installation, base_dir=tmp_path_factory.mktemp("own-zookeeper")
    ) as server:
        yield server
