"""The shared contract suites (leader election/retrieval, recovery stores) on a real ZooKeeper."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from standby.backends.zookeeper import (
    ZooKeeperCheckpointIDCounter,
    ZooKeeperClient,
    ZooKeeperHaServices,
    ZooKeeperHaServicesFactory,
    ZooKeeperLeaderElectionDriverFactory,
    ZooKeeperStateHandleStore,
)
from standby.config import Configuration
from standby.ha import (
    CheckpointIDCounter,
    HighAvailabilityServices,
    RetrievableStateStorageHelper,
    StateHandleStore,
)
from standby.testing.contract import LeaderElectionContract
from standby.testing.servers import ZooKeeperServer
from standby.testing.store_contract import (
    CheckpointIDCounterContract,
    CompletedCheckpointStoreContract,
    ExecutionPlanStoreContract,
    StateHandleStoreContract,
)

from .zk_support import ClientFactory, RecordingDriverListener, make_settings

pytestmark = pytest.mark.zookeeper


def zookeeper_configuration(server: ZooKeeperServer, storage: Path, cluster_id: str) -> Configuration:
    return Configuration(
        {
            "high-availability.type": "zookeeper",
            "high-availability.zookeeper.quorum": server.connect_string,
            "high-availability.zookeeper.path.root": "/standby-contract",
            "high-availability.cluster-id": cluster_id,
            "high-availability.storageDir": str(storage),
            "high-availability.zookeeper.client.session-timeout": "2 s",
            "high-availability.zookeeper.client.connection-timeout": "2 s",
            "high-availability.zookeeper.client.retry-wait": "50 ms",
            "high-availability.zookeeper.client.max-retry-wait": "500 ms",
        }
    )


class ZooKeeperBackend:
    """Each ``new_services()`` is one JobManager process: its own ZooKeeper session and election driver."""

    supports_failover = True
    publishes_confirmed_address = True

    def __init__(self, server: ZooKeeperServer, storage: Path) -> None:
        self.config = zookeeper_configuration(server, storage, f"contract-{uuid.uuid4().hex[:8]}")
        self.created: list[ZooKeeperHaServices] = []

    async def new_services(self) -> HighAvailabilityServices:
        services = await ZooKeeperHaServicesFactory().create_ha_services(self.config)
        self.created.append(services)
        return services

    async def close_all(self) -> None:
        for services in self.created:
            await services.client.close()  # idempotent; the suite closed the services it used


class TestZooKeeperLeaderElection(LeaderElectionContract):
    @pytest.fixture
    async def ha_backend(
        self, zookeeper_server: ZooKeeperServer, tmp_path: Path
    ) -> AsyncIterator[ZooKeeperBackend]:
        backend = ZooKeeperBackend(zookeeper_server, tmp_path)
        yield backend
        await backend.close_all()


# ------------------------------------------------------------------------------------------------ stores


class FencedStores:
    """Store instances on their own sessions, all fenced by one leader (so every write passes the fence)."""

    def __init__(self, zk_clients: ClientFactory, leader_client: ZooKeeperClient) -> None:
        self.zk_clients = zk_clients
        self.leader_client = leader_client
        self.fencing = ZooKeeperLeaderElectionDriverFactory(leader_client)
        self.root = leader_client.path("contract")

    async def elect(self) -> None:
        listener = RecordingDriverListener()
        await self.fencing.create(listener)
        await listener.next("grant")

    async def new_client(self) -> ZooKeeperClient:
        return await self.zk_clients(self.leader_client.settings)

    async def close(self) -> None:
        driver = self.fencing.driver
        if driver is not None:
            await driver.close()


@pytest.fixture
async def fenced_stores(
    zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory
) -> AsyncIterator[FencedStores]:
    leader_client = await zk_clients(make_settings(zookeeper_server.connect_string))
    stores = FencedStores(zk_clients, leader_client)
    await stores.elect()
    yield stores
    await stores.close()


@pytest.fixture
def state_handle_store_factory(
    fenced_stores: FencedStores,
) -> Callable[[str, RetrievableStateStorageHelper[Any]], Awaitable[StateHandleStore[Any]]]:
    async def create(namespace: str, helper: RetrievableStateStorageHelper[Any]) -> StateHandleStore[Any]:
        client = await fenced_stores.new_client()
        return ZooKeeperStateHandleStore(
            client, f"{fenced_stores.root}/{namespace}", helper, fenced_stores.fencing
        )

    return create


@pytest.fixture
def checkpoint_id_counter_factory(
    fenced_stores: FencedStores,
) -> Callable[[str], Awaitable[CheckpointIDCounter]]:
    async def create(namespace: str) -> CheckpointIDCounter:
        client = await fenced_stores.new_client()
        return ZooKeeperCheckpointIDCounter(
            client, f"{fenced_stores.root}/{namespace}/checkpoint_id_counter", fenced_stores.fencing
        )

    return create


class TestZooKeeperStateHandleStore(StateHandleStoreContract):
    pass


class TestZooKeeperCheckpointIDCounter(CheckpointIDCounterContract):
    pass


class TestZooKeeperCompletedCheckpointStore(CompletedCheckpointStoreContract):
    pass


class TestZooKeeperExecutionPlanStore(ExecutionPlanStoreContract):
    pass
