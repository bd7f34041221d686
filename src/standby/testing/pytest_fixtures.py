"""Ready-made pytest fixtures for real ZooKeeper/etcd servers and the fault-injecting TCP proxy.

Enable them in ``tests/conftest.py`` with ``pytest_plugins = ["standby.testing.pytest_fixtures"]`` (or
``from standby.testing.pytest_fixtures import *``). Tests that need a server are skipped, with the reason naming the
missing Debian package and ``scripts/install-test-servers``, when the server software is not installed; so are
tests marked ``@pytest.mark.zookeeper`` / ``@pytest.mark.etcd`` that start their own servers.

The server fixtures are module-scoped (one JVM / etcd per test module): a test that stops, kills or pauses a member
must bring it back before it ends (``start_member``, ``start()``, ``resume()``), or use its own server in a
``with ZooKeeperServer() as zk:`` block. ``tcp_proxy`` is function-scoped, so a fault never leaks into the next test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._etcd_server import EtcdCluster, EtcdInstallation, EtcdServer, etcd_unavailable_reason, find_etcd
from ._tcp_proxy import TcpProxy
from ._zookeeper_server import (
    ZooKeeperEnsemble,
    ZooKeeperInstallation,
    ZooKeeperServer,
    find_zookeeper,
    zookeeper_unavailable_reason,
)

__all__ = [
    "TcpProxyFactory",
    "etcd_cluster",
    "etcd_installation",
    "etcd_server",
    "pytest_configure",
    "pytest_runtest_setup",
    "tcp_proxy",
    "zookeeper_ensemble",
    "zookeeper_installation",
    "zookeeper_server",
]


class TcpProxyFactory:
    """``tcp_proxy(host, port, **options)`` starts a :class:`TcpProxy` that is closed when the test ends."""

    def __init__(self) -> None:
        self.proxies: list[TcpProxy] = []

    def __call__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        max_connections: int = 512,
        chunk_size: int = 64 * 1024,
        connect_timeout: float = 5.0,
    ) -> TcpProxy:
        proxy = TcpProxy(
            upstream_host,
            upstream_port,
            max_connections=max_connections,
            chunk_size=chunk_size,
            connect_timeout=connect_timeout,
        )
        self.proxies.append(proxy)
        return proxy.start()

    def close(self) -> None:
        while self.proxies:
            self.proxies.pop().close()


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``zookeeper`` and ``etcd`` markers (so ``--strict-markers`` accepts them anywhere)."""
    config.addinivalue_line("markers", "zookeeper: needs a real ZooKeeper server (Debian package zookeeper)")
    config.addinivalue_line("markers", "etcd: needs a real etcd server (Debian package etcd-server)")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip tests marked ``zookeeper`` / ``etcd`` when that server software is not installed here."""
    if item.get_closest_marker("zookeeper") is not None:
        reason = zookeeper_unavailable_reason()
        if reason is not None:
            pytest.skip(reason)
    if item.get_closest_marker("etcd") is not None:
        reason = etcd_unavailable_reason()
        if reason is not None:
            pytest.skip(reason)


@pytest.fixture(scope="session")
def zookeeper_installation() -> ZooKeeperInstallation:
    """The local ZooKeeper installation; skips the test when there is none."""
    found = find_zookeeper()
    if found is None:
        pytest.skip(zookeeper_unavailable_reason() or "ZooKeeper unavailable")
    return found


@pytest.fixture(scope="session")
def etcd_installation() -> EtcdInstallation:
    """The local etcd installation; skips the test when there is none."""
    found = find_etcd()
    if found is None:
        pytest.skip(etcd_unavailable_reason() or "etcd unavailable")
    return found


@pytest.fixture(scope="module")
def zookeeper_server(
    zookeeper_installation: ZooKeeperInstallation, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ZooKeeperServer]:
    """A standalone ZooKeeper server shared by the test module (``.connect_string`` for kazoo)."""
    with ZooKeeperServer(
        installation=zookeeper_installation, base_dir=tmp_path_factory.mktemp("zookeeper")
    ) as server:
        yield server


@pytest.fixture(scope="module")
def zookeeper_ensemble(
    zookeeper_installation: ZooKeeperInstallation, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ZooKeeperEnsemble]:
    """A 3-server ZooKeeper ensemble shared by the test module."""
    with ZooKeeperEnsemble(
        3, installation=zookeeper_installation, base_dir=tmp_path_factory.mktemp("zookeeper-ensemble")
    ) as ensemble:
        yield ensemble


@pytest.fixture(scope="module")
def etcd_server(
    etcd_installation: EtcdInstallation, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EtcdServer]:
    """A single-member etcd shared by the test module (``.host``/``.port`` for ``aetcd.Client``)."""
    with EtcdServer(installation=etcd_installation, base_dir=tmp_path_factory.mktemp("etcd")) as server:
        yield server


@pytest.fixture(scope="module")
def etcd_cluster(
    etcd_installation: EtcdInstallation, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EtcdCluster]:
    """A 3-member etcd cluster shared by the test module."""
    with EtcdCluster(
        3, installation=etcd_installation, base_dir=tmp_path_factory.mktemp("etcd-cluster")
    ) as cluster:
        yield cluster


@pytest.fixture
def tcp_proxy() -> Iterator[TcpProxyFactory]:
    """A factory of :class:`TcpProxy` objects (``tcp_proxy(server.host, server.port)``), all closed after the test."""
    factory = TcpProxyFactory()
    try:
        yield factory
    finally:
        factory.close()
