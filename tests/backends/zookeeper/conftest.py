"""Fixtures of the ZooKeeper backend tests: real ZooKeeper servers (skipped when not installed), clients, proxies.

The shared server fixtures (``zookeeper_server``, ``zookeeper_ensemble``) come from ``standby.testing.pytest_fixtures``,
registered in ``tests/conftest.py``; this module adds per-test servers, clients and proxies.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from standby.testing.servers import (
    ZooKeeperInstallation,
    ZooKeeperServer,
)

from .zk_support import ClientFactory, ProxyFactory


@pytest.fixture(scope="session")
def zk_installation(zookeeper_installation: ZooKeeperInstallation) -> ZooKeeperInstallation:
    """The local ZooKeeper installation (skips, naming what is missing, when there is none)."""
    return zookeeper_installation


@pytest.fixture
def own_zookeeper(
    zk_installation: ZooKeeperInstallation, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ZooKeeperServer]:
    """A server of this test alone (for tests that stop, restart or pause it)."""
    with ZooKeeperServer(
        installation=zk_installation, base_dir=tmp_path_factory.mktemp("own-zookeeper")
    ) as server:
        yield server


@pytest.fixture
def tcp_proxy() -> Iterator[ProxyFactory]:
    """``tcp_proxy(host, port)``: a fault-injecting TCP proxy, closed when the test ends."""
    factory = ProxyFactory()
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
async def zk_clients() -> AsyncIterator[ClientFactory]:
    """Starts ``ZooKeeperClient`` objects (``await zk_clients(settings)``), closed when the test ends."""
    factory = ClientFactory()
    try:
        yield factory
    finally:
        await factory.close()
