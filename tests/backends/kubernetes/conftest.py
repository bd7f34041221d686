"""Fixtures of the Kubernetes backend tests: the in-repo API test server, a kubeconfig for it, configurations,
and real lightkube clients and HA services built from them (never a patched client)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from standby.backends.kubernetes import (
    LEADER_ANNOTATION_KEY,
    KubernetesClient,
    KubernetesHaServices,
    KubernetesHaServicesFactory,
    LeaderElectionRecord,
    LightkubeClientFactory,
)
from standby.config import Configuration
from standby.testing.kubernetes_api_server import KubernetesApiTestServer

NAMESPACE = "standby-ha"
CLUSTER_ID = "ha-test"

#: Short leases so that expiry scenarios take seconds (renew deadline < lease, retry period < renew deadline).
FAST_ELECTION = {
    "high-availability.kubernetes.leader-election.lease-duration": "2 s",
    "high-availability.kubernetes.leader-election.renew-deadline": "1 s",
    "high-availability.kubernetes.leader-election.retry-period": "200 ms",
}


@pytest.fixture
async def k8s_server() -> AsyncIterator[KubernetesApiTestServer]:
    async with KubernetesApiTestServer() as server:
        yield server


@pytest.fixture
def kubeconfig(k8s_server: KubernetesApiTestServer, tmp_path: Path) -> Path:
    return k8s_server.write_kubeconfig(tmp_path / "kubeconfig", namespace=NAMESPACE)


def make_configuration(
    kubeconfig: Path, storage_dir: Path, cluster_id: str = CLUSTER_ID, **extra: str
) -> Configuration:
    values: dict[str, Any] = {
        "high-availability.type": "kubernetes",
        "high-availability.storageDir": str(storage_dir),
        "kubernetes.cluster-id": cluster_id,
        "kubernetes.namespace": NAMESPACE,
        "kubernetes.config.file": str(kubeconfig),
        **FAST_ELECTION,
    }
    values.update(extra)
    return Configuration(values)


ConfigFactory = Callable[..., Configuration]


@pytest.fixture
def make_config(kubeconfig: Path, tmp_path: Path) -> ConfigFactory:
    """``make_config(cluster_id=..., **{"option.key": "value"})``: a Kubernetes HA configuration for the server."""

    def create(cluster_id: str = CLUSTER_ID, **extra: str) -> Configuration:
        return make_configuration(kubeconfig, tmp_path / "ha", cluster_id, **extra)

    return create


@pytest.fixture
async def k8s_client(make_config: ConfigFactory) -> AsyncIterator[KubernetesClient]:
    client = LightkubeClientFactory().create(make_config())
    yield client
    await client.close()


class ServicesFactory:
    """Creates ``KubernetesHaServices`` (one per simulated JobManager process) and closes them at the end."""

    def __init__(self, make_config: ConfigFactory) -> None:
        self._make_config = make_config
        self.created: list[KubernetesHaServices] = []

    async def __call__(self, cluster_id: str = CLUSTER_ID, **extra: str) -> KubernetesHaServices:
        services = await KubernetesHaServicesFactory().create_ha_services(
            self._make_config(cluster_id, **extra)
        )
        self.created.append(services)
        return services

    async def close_all(self) -> None:
        for services in reversed(self.created):
            try:
                await services.close()
            except Exception:  # pragma: no cover - best-effort teardown
                pass


@pytest.fixture
async def new_services(make_config: ConfigFactory) -> AsyncIterator[ServicesFactory]:
    factory = ServicesFactory(make_config)
    yield factory
    await factory.close_all()


def lock_record(
    holder: str, term: int = 0, *, renewed_ago: float = 0.0, lease_seconds: int = 15
) -> LeaderElectionRecord:
    now = datetime.now(UTC) - timedelta(seconds=renewed_ago)
    return LeaderElectionRecord(holder, lease_seconds, now, now, term)


def lock_annotation(holder: str, term: int = 0, **kwargs: Any) -> dict[str, str]:
    """The annotations of a cluster ConfigMap whose leader lock names ``holder`` in ``term``."""
    return {LEADER_ANNOTATION_KEY: lock_record(holder, term, **kwargs).to_json()}


def random_identity() -> str:
    return str(uuid.uuid4())


async def eventually(predicate: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Poll ``predicate`` until it holds (a poll with a deadline, not a sleep standing in for synchronisation)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)
