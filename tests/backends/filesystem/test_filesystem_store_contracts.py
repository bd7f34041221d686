"""The store contract suites against the filesystem backend's state handle store and checkpoint id counter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from standby.backends.filesystem import FileSystemCheckpointIDCounter, FileSystemStateHandleStore
from standby.ha import CheckpointIDCounter, RetrievableStateStorageHelper, StateHandleStore
from standby.testing.store_contract import (
    CheckpointIDCounterContract,
    CheckpointIDCounterFactory,
    CompletedCheckpointStoreContract,
    ExecutionPlanStoreContract,
    StateHandleStoreContract,
    StateHandleStoreFactory,
)


@pytest.fixture
def state_handle_store_factory(tmp_path: Path) -> StateHandleStoreFactory:
    async def create(namespace: str, helper: RetrievableStateStorageHelper[Any]) -> StateHandleStore[Any]:
        # no fence: both instances may write, as two leaders would in Flink's store tests
        return FileSystemStateHandleStore(tmp_path / namespace, helper)

    return create


@pytest.fixture
def checkpoint_id_counter_factory(tmp_path: Path) -> CheckpointIDCounterFactory:
    async def create(namespace: str) -> CheckpointIDCounter:
        return FileSystemCheckpointIDCounter(tmp_path / namespace)

    return create


class TestFileSystemStateHandleStore(StateHandleStoreContract):
    pass


class TestFileSystemCheckpointIDCounter(CheckpointIDCounterContract):
    pass


class TestFileSystemCompletedCheckpointStore(CompletedCheckpointStoreContract):
    pass


class TestFileSystemExecutionPlanStore(ExecutionPlanStoreContract):
    pass
