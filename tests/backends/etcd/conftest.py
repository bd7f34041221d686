"""Fixtures of the etcd backend tests: real etcd servers (skipped with the reason when etcd is not installed) and
``EtcdBackend``, which creates one ``EtcdHaServices`` per simulated JobManager process."""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from standby.backends.etcd import (
    EtcdClient,
    EtcdClientFactory,
    EtcdHaServices,
    EtcdHaServicesFactory,
    EtcdSettings,
)
from standby.config import Configuration
from standby.testing.pytest_fixtures import (  # noqa: F401  (fixtures)
    etcd_cluster,
    etcd_installation,
    etcd_server,
    tcp_proxy,
)
from standby.testing.servers import EtcdServer

#: short leases keep failover tests fast (etcd grants whole seconds)
TEST_LEASE_TTL = "1 s"


class EtcdBackend:
    """The etcd backend under test: every ``new_services()`` is one JobManager process with its own client."""

    supports_failover = True
    publishes_confirmed_address = True

    def __init__(
        self,
        endpoints: Sequence[str],
        storage_dir: Path,
        *,
        lease_ttl: str = TEST_LEASE_TTL,
        cluster_id: str | None = None,
        client_factory: EtcdClientFactory | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.endpoints = list(endpoints)
        self.storage_dir = storage_dir
        self.lease_ttl = lease_ttl
        self.cluster_id = cluster_id or f"test-{uuid.uuid4().hex[:12]}"
        self.client_factory = client_factory
        self.extra = dict(extra or {})
        self.created: list[EtcdHaServices] = []
        self._clients: list[EtcdClient] = []

    def configuration(self, **overrides: Any) -> Configuration:
        values: dict[str, Any] = {
            "high-availability.type": "etcd",
            "high-availability.etcd.endpoints": self.endpoints,
            "high-availability.etcd.lease-ttl": self.lease_ttl,
            "high-availability.etcd.connection-timeout": "2 s",
            "high-availability.cluster-id": self.cluster_id,
            "high-availability.storageDir": str(self.storage_dir),
            **self.extra,
        }
        values.update(overrides)
        return Configuration(values)

    def settings(self, **overrides: Any) -> EtcdSettings:
        return EtcdSettings.from_configuration(self.configuration(**overrides))

    async def new_services(self, **overrides: Any) -> EtcdHaServices:
        services = await EtcdHaServicesFactory(self.client_factory).create_ha_services(
            self.configuration(**overrides)
        )
        self.created.append(services)
        return services

    async def new_client(self) -> EtcdClient:
        """A plain client for inspecting or disturbing etcd from the test."""
        client = EtcdClient(self.settings())
        await client.connect()
        self._clients.append(client)
        return client

    async def close_all(self) -> None:
        for services in reversed(self.created):
            try:
                await services.close()
            except Exception:
                # contenders still registered: closing their elections is the test's job; free the client anyway
                await services.internal_close()
        for client in self._clients:
            await client.close()


@pytest.fixture
async def etcd_backend(etcd_server: EtcdServer, tmp_path: Path) -> AsyncIterator[EtcdBackend]:  # noqa: F811
    """The etcd backend on the module's single-member etcd, with its own cluster id."""
    backend = EtcdBackend([etcd_server.endpoint], tmp_path / "ha")
    yield backend
    await backend.close_all()


async def eventually(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool], what: str, timeout: float = 20.0
) -> None:
    """Poll ``check`` (sync or async) until true, with a deadline (a poll, not a sleep standing in for sync)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)
