"""AbstractHaServices lifecycle (Flink's AbstractHaServicesTest): close keeps data, cleanup order, job cleanup."""

from __future__ import annotations

import pytest

from standby.ha import (
    AbstractHaServices,
    BlobStore,
    CheckpointRecoveryFactory,
    EmbeddedJobResultStore,
    ExecutionPlanStore,
    HighAvailabilityServicesShutDownError,
    JobID,
    LeaderElectionDriver,
    LeaderElectionDriverFactory,
    LeaderElectionDriverListener,
    LeaderRetrievalService,
    StandaloneCheckpointRecoveryFactory,
    StandaloneExecutionPlanStore,
)


class _NoDriverFactory(LeaderElectionDriverFactory):
    async def create(self, listener: LeaderElectionDriverListener) -> LeaderElectionDriver:
        raise AssertionError("no election in these tests")


class _RecordingBlobStore(BlobStore):
    def __init__(self, operations: list[str]) -> None:
        self.operations = operations

    async def put(self, data: bytes, job_id: JobID | None, blob_key: str) -> bool:
        return True

    async def get(self, job_id: JobID | None, blob_key: str) -> bytes | None:
        return None

    async def delete(self, job_id: JobID | None, blob_key: str) -> bool:
        return True

    async def delete_all(self, job_id: JobID) -> bool:
        return True

    async def cleanup_all_data(self) -> None:
        self.operations.append("blob_cleanup")

    async def close(self) -> None:
        self.operations.append("blob_close")


class _TestingHaServices(AbstractHaServices):
    def __init__(self, operations: list[str], fail_cleanup: bool = False) -> None:
        super().__init__(_NoDriverFactory(), _RecordingBlobStore(operations), EmbeddedJobResultStore())
        self.operations = operations
        self.fail_cleanup = fail_cleanup
        self.cleaned_jobs: list[JobID] = []

    def create_leader_retrieval_service(self, component_id: str) -> LeaderRetrievalService:
        raise AssertionError("unused")

    def create_checkpoint_recovery_factory(self) -> CheckpointRecoveryFactory:
        return StandaloneCheckpointRecoveryFactory()

    def create_execution_plan_store(self) -> ExecutionPlanStore:
        return StandaloneExecutionPlanStore()

    async def internal_close(self) -> None:
        self.operations.append("ha_close")

    async def internal_cleanup(self) -> None:
        if self.fail_cleanup:
            raise RuntimeError("expected failure of the HA cleanup")
        self.operations.append("ha_cleanup")

    async def internal_cleanup_job_data(self, job_id: JobID) -> None:
        self.cleaned_jobs.append(job_id)


async def test_close_keeps_all_data() -> None:
    operations: list[str] = []
    services = _TestingHaServices(operations)
    await services.close()
    assert operations == ["blob_close", "ha_close"]
    with pytest.raises(HighAvailabilityServicesShutDownError):
        services.get_job_result_store()


async def test_cleanup_all_data_removes_ha_data_before_blobs() -> None:
    operations: list[str] = []
    services = _TestingHaServices(operations)
    await services.close_with_optional_clean(True)
    assert operations == ["ha_cleanup", "blob_cleanup", "blob_close", "ha_close"]


async def test_blobs_are_kept_when_the_ha_cleanup_fails() -> None:
    operations: list[str] = []
    services = _TestingHaServices(operations, fail_cleanup=True)
    with pytest.raises(RuntimeError, match="expected failure"):
        await services.close_with_optional_clean(True)
    assert "blob_cleanup" not in operations
    assert operations == ["blob_close", "ha_close"]  # closed anyway


async def test_global_cleanup_removes_the_job_data() -> None:
    services = _TestingHaServices([])
    job_id = JobID.generate()
    await services.global_cleanup(job_id)
    assert services.cleaned_jobs == [job_id]


async def test_getters_create_new_stores_but_share_the_job_result_and_blob_store() -> None:
    services = _TestingHaServices([])
    assert services.get_job_result_store() is services.get_job_result_store()
    assert services.create_blob_store() is services.create_blob_store()
    assert services.get_execution_plan_store() is not services.get_execution_plan_store()
