"""The store contract suites against the in-memory reference implementations (validates the suites themselves)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from standby.ha import (
    EmbeddedJobResultStore,
    FileSystemJobResultStore,
    JobResultStore,
    RetrievableStateStorageHelper,
    StateHandleStore,
)
from standby.testing.store_contract import (
    CompletedCheckpointStoreContract,
    ExecutionPlanStoreContract,
    InMemoryStateHandleStore,
    JobResultStoreContract,
    StateHandleStoreContract,
    StateHandleStoreFactory,
)


@pytest.fixture
def state_handle_store_factory() -> StateHandleStoreFactory:
    namespaces: dict[str, Any] = {}

    async def create(namespace: str, helper: RetrievableStateStorageHelper[Any]) -> StateHandleStore[Any]:
        entries = namespaces.setdefault(namespace, InMemoryStateHandleStore.new_namespace())
        return InMemoryStateHandleStore(helper, entries)

    return create


class TestInMemoryStateHandleStore(StateHandleStoreContract):
    pass


class TestInMemoryCompletedCheckpointStore(CompletedCheckpointStoreContract):
    pass


class TestInMemoryExecutionPlanStore(ExecutionPlanStoreContract):
    pass


class TestEmbeddedJobResultStore(JobResultStoreContract):
    @pytest.fixture
    def job_result_store_factory(self) -> Any:
        async def create() -> JobResultStore:
            return EmbeddedJobResultStore()

        return create


class TestFileSystemJobResultStoreOnLocalDisk(JobResultStoreContract):
    @pytest.fixture
    def job_result_store_factory(self, tmp_path: Path) -> Any:
        async def create() -> JobResultStore:
            # Flink's FileSystemJobResultStoreContractTest keeps clean entries (delete-on-commit=false)
            return FileSystemJobResultStore(str(tmp_path / "jrs"), delete_on_commit=False)

        return create


class TestFileSystemJobResultStoreInMemoryFs(JobResultStoreContract):
    @pytest.fixture
    def job_result_store_factory(self, memory_url: str) -> Any:
        async def create() -> JobResultStore:
            return FileSystemJobResultStore(f"{memory_url}/jrs", delete_on_commit=False)

        return create
