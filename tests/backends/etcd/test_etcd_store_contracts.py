"""The store contract suites against the etcd state handle store and checkpoint id counter on a real etcd."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from standby.backends.etcd import EtcdCheckpointIDCounter, EtcdLockLease, EtcdStateHandleStore
from standby.ha import CheckpointIDCounter, RetrievableStateStorageHelper, StateHandleStore
from standby.testing.store_contract import (
    CheckpointIDCounterContract,
    CheckpointIDCounterFactory,
    CompletedCheckpointStoreContract,
    ExecutionPlanStoreContract,
    StateHandleStoreContract,
    StateHandleStoreFactory,
)

from .conftest import EtcdBackend

pytestmark = pytest.mark.etcd


@pytest.fixture
async def state_handle_store_factory(etcd_backend: EtcdBackend) -> AsyncIterator[StateHandleStoreFactory]:
    client = await etcd_backend.new_client()
    lock_lease = EtcdLockLease(client, client.settings)

    async def create(namespace: str, helper: RetrievableStateStorageHelper[Any]) -> StateHandleStore[Any]:
        # no fence: both instances may write, as two leaders would in Flink's store tests; each instance has its
        # own lock id (Flink: one lock node UUID per store instance)
        return EtcdStateHandleStore(
            client, f"/standby-contract/{etcd_backend.cluster_id}/{namespace}", helper, lock_lease, None
        )

    yield create
    await lock_lease.close()


@pytest.fixture
async def checkpoint_id_counter_factory(etcd_backend: EtcdBackend) -> CheckpointIDCounterFactory:
    client = await etcd_backend.new_client()

    async def create(namespace: str) -> CheckpointIDCounter:
        key = f"/standby-contract/{etcd_backend.cluster_id}/{namespace}/checkpoint_id_counter".encode()
        return EtcdCheckpointIDCounter(client, key, None)

    return create


class TestEtcdStateHandleStore(StateHandleStoreContract):
    pass


class TestEtcdCheckpointIDCounter(CheckpointIDCounterContract):
    pass


class TestEtcdCompletedCheckpointStore(CompletedCheckpointStoreContract):
    pass


class TestEtcdExecutionPlanStore(ExecutionPlanStoreContract):
    pass
