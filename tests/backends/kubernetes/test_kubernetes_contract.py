"""The backend-neutral contract suites on Kubernetes: leader election (``standby.testing.contract``) and the
recovery stores (``standby.testing.store_contract``), through real lightkube clients against the API test server.

Kubernetes has no entry locks (Flink's ``KubernetesStateHandleStore.getAndLock`` locks nothing: only the leader
writes, and a crashed leader could not release a lock stored in a ConfigMap). The few contract cases that assert
ZooKeeper's lock semantics are replaced below by their Kubernetes meaning: any instance may remove an entry.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from standby.backends.kubernetes import (
    FencedConfigMapWriter,
    KubernetesCheckpointIDCounter,
    KubernetesClient,
    KubernetesStateHandleStore,
    LeaderFence,
    RetryPolicy,
)
from standby.ha import (
    CheckpointIDCounter,
    DefaultExecutionPlanStore,
    ExecutionPlan,
    HighAvailabilityServices,
    JobID,
    NoOpExecutionPlanStoreWatcher,
    RetrievableStateStorageHelper,
    StateHandleStore,
    checkpoint_id_to_name,
    recover_completed_checkpoint_store,
)
from standby.testing.contract import LeaderElectionContract
from standby.testing.kubernetes_api_server import KubernetesApiTestServer
from standby.testing.store_contract import (
    CheckpointIDCounterContract,
    CompletedCheckpointStoreContract,
    ExecutionPlanStoreContract,
    RecordingExecutionPlanListener,
    StateHandleStoreContract,
    StateHandleStoreFactory,
    TestingStorageHelper,
    make_checkpoint,
)

from .conftest import NAMESPACE, ServicesFactory, lock_annotation

# ---------------------------------------------------------------------------------------------- leader election


class _KubernetesBackend:
    supports_failover = True
    publishes_confirmed_address = True

    def __init__(self, factory: ServicesFactory) -> None:
        self._factory = factory

    async def new_services(self) -> HighAvailabilityServices:
        return await self._factory()


class TestKubernetesLeaderElection(LeaderElectionContract):
    @pytest.fixture
    def ha_backend(self, new_services: ServicesFactory) -> _KubernetesBackend:
        return _KubernetesBackend(new_services)


# ---------------------------------------------------------------------------------------------- stores

_IDENTITY = "contract-leader"
_TERM = 7
_RETRY = RetryPolicy(max_retries=15, initial_delay=0.005, max_delay=0.05)


def _fence() -> LeaderFence:
    # Every instance of the suites writes as the one leader named by the lock annotation (the suites need all
    # instances to pass the fence); the fence is checked on every write all the same.
    return LeaderFence(_IDENTITY, lambda: _TERM)


async def _prepare(
    server: KubernetesApiTestServer, namespace: str, *, separate_lock: bool
) -> tuple[str, str]:
    """(written ConfigMap, lock ConfigMap) of a suite namespace, with the lock naming ``_IDENTITY``."""
    lock = f"{namespace}-cluster-config-map"
    if server.get_configmap(NAMESPACE, lock) is None:
        server.put_configmap(NAMESPACE, lock, {}, annotations=lock_annotation(_IDENTITY, _TERM))
    target = f"{namespace}-job-config-map" if separate_lock else lock
    if server.get_configmap(NAMESPACE, target) is None:
        server.put_configmap(NAMESPACE, target, {})
    return target, lock


def _store_factory(
    server: KubernetesApiTestServer, client: KubernetesClient, *, separate_lock: bool, prefix: str
) -> StateHandleStoreFactory:
    async def create(namespace: str, helper: RetrievableStateStorageHelper[Any]) -> StateHandleStore[Any]:
        target, lock = await _prepare(server, namespace, separate_lock=separate_lock)
        writer = FencedConfigMapWriter(client, target, _RETRY, _fence(), lock_config_map=lock)
        return KubernetesStateHandleStore(writer, helper, prefix)

    return create


class _NoLocks:
    """Kubernetes versions of the contract cases that assume ZooKeeper's entry locks."""

    async def test_add_and_lock(self, state_handle_store_factory: StateHandleStoreFactory) -> None:
        helper: TestingStorageHelper[Any] = TestingStorageHelper()
        namespace = f"ns-{uuid.uuid4().hex[:12]}"
        store = await state_handle_store_factory(namespace, helper)
        other = await state_handle_store_factory(namespace, helper)
        handle = await store.add_and_lock("entry", "state-1")
        assert await handle.retrieve_state() == "state-1"
        assert await store.get_all_handles() == ["entry"]
        assert await (await other.get_and_lock("entry")).retrieve_state() == "state-1"
        # no locks: the other instance (the same leader) may remove it
        assert await other.release_and_try_remove("entry") is True
        assert helper.live_states == []

    async def test_get_all_and_lock(self, state_handle_store_factory: StateHandleStoreFactory) -> None:
        helper: TestingStorageHelper[Any] = TestingStorageHelper()
        namespace = f"ns-{uuid.uuid4().hex[:12]}"
        store = await state_handle_store_factory(namespace, helper)
        other = await state_handle_store_factory(namespace, helper)
        for name in ("c", "a", "b"):
            await store.add_and_lock(name, f"state-{name}")
        entries = await other.get_all_and_lock()
        assert [name for _, name in entries] == ["a", "b", "c"]
        assert {name: await handle.retrieve_state() for handle, name in entries} == {
            "a": "state-a",
            "b": "state-b",
            "c": "state-c",
        }
        assert [await store.release_and_try_remove(n) for n in ("a", "b", "c")] == [True, True, True]

    async def test_release_and_try_remove_is_false_while_another_instance_holds_a_lock(
        self, state_handle_store_factory: StateHandleStoreFactory
    ) -> None:
        pytest.skip("Kubernetes has no entry locks (Flink: getAndLock does not lock); see test_add_and_lock")

    async def test_release_lets_another_instance_remove(
        self, state_handle_store_factory: StateHandleStoreFactory
    ) -> None:
        helper: TestingStorageHelper[Any] = TestingStorageHelper()
        namespace = f"ns-{uuid.uuid4().hex[:12]}"
        store = await state_handle_store_factory(namespace, helper)
        other = await state_handle_store_factory(namespace, helper)
        await store.add_and_lock("entry", "state")
        await store.release("entry")  # a no-op on Kubernetes
        assert await other.release_and_try_remove("entry") is True


class TestKubernetesStateHandleStore(_NoLocks, StateHandleStoreContract):
    @pytest.fixture
    def state_handle_store_factory(
        self, k8s_server: KubernetesApiTestServer, k8s_client: KubernetesClient
    ) -> StateHandleStoreFactory:
        return _store_factory(k8s_server, k8s_client, separate_lock=False, prefix="executionPlan-")


class TestKubernetesJobConfigMapStateHandleStore(_NoLocks, StateHandleStoreContract):
    """The same suite on a per-job ConfigMap, fenced through the cluster ConfigMap's lock (standby)."""

    @pytest.fixture
    def state_handle_store_factory(
        self, k8s_server: KubernetesApiTestServer, k8s_client: KubernetesClient
    ) -> StateHandleStoreFactory:
        return _store_factory(k8s_server, k8s_client, separate_lock=True, prefix="checkpointID-")


class TestKubernetesCompletedCheckpointStore(CompletedCheckpointStoreContract):
    @pytest.fixture
    def state_handle_store_factory(
        self, k8s_server: KubernetesApiTestServer, k8s_client: KubernetesClient
    ) -> StateHandleStoreFactory:
        return _store_factory(k8s_server, k8s_client, separate_lock=True, prefix="checkpointID-")

    async def test_recovery_is_sorted_by_name_and_locks(
        self, state_handle_store_factory: StateHandleStoreFactory
    ) -> None:
        helper: TestingStorageHelper[Any] = TestingStorageHelper()
        namespace = f"ns-{uuid.uuid4().hex[:12]}"
        writer = await state_handle_store_factory(namespace, helper)
        for checkpoint_id in (3, 1, 10, 2):
            await writer.add_and_lock(checkpoint_id_to_name(checkpoint_id), make_checkpoint(checkpoint_id))
        reader = await state_handle_store_factory(namespace, helper)
        recovered = await recover_completed_checkpoint_store(reader, 5)
        assert [c.checkpoint_id for c in recovered.get_all_checkpoints()] == [1, 2, 3, 10]
        assert recovered.get_latest_checkpoint_id() == 10
        # no locks on Kubernetes: the keys are "checkpointID-%019d" and anybody (the leader) may remove them
        assert await writer.release_and_try_remove(checkpoint_id_to_name(1)) is True


class TestKubernetesExecutionPlanStore(ExecutionPlanStoreContract):
    @pytest.fixture
    def state_handle_store_factory(
        self, k8s_server: KubernetesApiTestServer, k8s_client: KubernetesClient
    ) -> StateHandleStoreFactory:
        return _store_factory(k8s_server, k8s_client, separate_lock=False, prefix="executionPlan-")

    async def test_global_cleanup_fails_while_another_instance_holds_a_lock(
        self, state_handle_store_factory: StateHandleStoreFactory
    ) -> None:
        # Kubernetes: no locks, so global cleanup succeeds although another instance recovered the plan.
        helper: TestingStorageHelper[Any] = TestingStorageHelper()
        namespace = f"ns-{uuid.uuid4().hex[:12]}"
        stores = []
        for _ in range(2):
            store = DefaultExecutionPlanStore(
                await state_handle_store_factory(namespace, helper),
                NoOpExecutionPlanStoreWatcher(),
                str,
                JobID,
            )
            await store.start(RecordingExecutionPlanListener())
            stores.append(store)
        first, other = stores
        job_id = JobID.generate()
        await first.put_execution_plan(ExecutionPlan(job_id, "plan"))
        assert await other.recover_execution_plan(job_id) is not None
        await first.global_cleanup(job_id)
        assert await other.get_job_ids() == []
        assert helper.live_states == []


class TestKubernetesCheckpointIDCounter(CheckpointIDCounterContract):
    @pytest.fixture
    def checkpoint_id_counter_factory(
        self, k8s_server: KubernetesApiTestServer, k8s_client: KubernetesClient
    ) -> Any:
        async def create(namespace: str) -> CheckpointIDCounter:
            target, lock = await _prepare(k8s_server, namespace, separate_lock=True)
            writer = FencedConfigMapWriter(k8s_client, target, _RETRY, _fence(), lock_config_map=lock)
            return KubernetesCheckpointIDCounter(writer)

        return create
