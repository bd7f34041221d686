"""Fixtures of the ZooKeeper backend tests: real ZooKeeper servers (skipped when not installed), clients, proxies.

The server fixtures are defined here rather than taken from ``standby.testing.pytest_fixtures``: that module is a
pytest plugin that other test modules register, and importing it here first would defeat its assertion rewriting.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from standby.testing.servers import (
    ZooKeeperEnsemble,
    ZooKeeperInstallation,
    ZooKeeperServer,
    find_zookeeper,
    zookeeper_unavailable_reason,
)

from .zk_support import ClientFactory, ProxyFactory


@pytest.fixture(scope="session")
def zk_installation() -> ZooKeeperInstallation:
    """The local ZooKeeper installation; skips the test, naming what is missing, when there is none."""
    found = find_zookeeper()
    if found is None:
        pytest.skip(zookeeper_unavailable_reason() or "ZooKeeper is not installed")
    return found


@pytest.fixture(scope="module")
def zookeeper_server(
    zk_installation: ZooKeeperInstallation, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ZooKeeperServer]:
    """A standalone server shared by a test module; tests keep their data apart by cluster id."""
    with ZooKeeperServer(
        installation=zk_installation, base_dir=tmp_path_factory.mktemp("zookeeper")
    ) as server:
        yield server


@pytest.fixture(scope="module")
def zookeeper_ensemble(
    zk_installation: ZooKeeperInstallation, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ZooKeeperEnsemble]:
    """A 3-server ensemble shared by a test module (a test that kills a member starts it again)."""
    with ZooKeeperEnsemble(
        3, installation=zk_installation, base_dir=tmp_path_factory.mktemp("zookeeper-ensemble")
    ) as ensemble:
        yield ensemble


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
