"""DefaultExecutionPlanStore: watcher filtering and lifecycle (Flink's DefaultExecutionPlanStoreTest)."""

from __future__ import annotations

from typing import Any

import pytest

from standby.ha import (
    CorruptHaDataError,
    DefaultExecutionPlanStore,
    ExecutionPlan,
    JobID,
    StateHandleStoreError,
)
from standby.testing.store_contract import (
    InMemoryStateHandleStore,
    ManualExecutionPlanStoreWatcher,
    RecordingExecutionPlanListener,
    TestingStorageHelper,
)


def _plan(job_id: JobID) -> ExecutionPlan:
    return ExecutionPlan(job_id=job_id, name="p")


async def _started() -> tuple[
    DefaultExecutionPlanStore,
    ManualExecutionPlanStoreWatcher,
    RecordingExecutionPlanListener,
    TestingStorageHelper[Any],
]:
    helper: TestingStorageHelper[Any] = TestingStorageHelper()
    watcher = ManualExecutionPlanStoreWatcher()
    store = DefaultExecutionPlanStore(InMemoryStateHandleStore(helper), watcher, str, JobID)
    listener = RecordingExecutionPlanListener()
    await store.start(listener)
    return store, watcher, listener, helper


async def test_start_is_idempotent_and_stop_stops_the_watcher() -> None:
    store, watcher, listener, _ = await _started()
    await store.start(listener)
    assert watcher.started == 1
    await store.stop()
    await store.stop()
    assert watcher.stopped == 1


async def test_added_events_are_forwarded_only_for_plans_of_others() -> None:
    store, watcher, listener, _ = await _started()
    own, foreign = JobID.generate(), JobID.generate()
    await store.put_execution_plan(_plan(own))
    watcher.added(own)
    watcher.added(foreign)
    assert listener.added == [foreign]


async def test_removed_events_are_forwarded_only_for_own_plans() -> None:
    store, watcher, listener, _ = await _started()
    own, foreign = JobID.generate(), JobID.generate()
    await store.put_execution_plan(_plan(own))
    watcher.removed(foreign)
    watcher.removed(own)
    assert listener.removed == [own]


async def test_no_events_after_stop() -> None:
    store, watcher, listener, _ = await _started()
    await store.stop()
    watcher.added(JobID.generate())
    assert listener.added == []


async def test_recovered_plan_counts_as_own() -> None:
    store, watcher, listener, _ = await _started()
    job_id = JobID.generate()
    await store.put_execution_plan(_plan(job_id))
    await store.global_cleanup(job_id)
    watcher.removed(job_id)  # removed from the added set by the global cleanup
    assert listener.removed == []


async def test_unreadable_plan_fails_recovery_and_releases_the_lock() -> None:
    helper: TestingStorageHelper[Any] = TestingStorageHelper()
    entries = InMemoryStateHandleStore.new_namespace()
    writer: InMemoryStateHandleStore[Any] = InMemoryStateHandleStore(helper, entries)
    reader: InMemoryStateHandleStore[Any] = InMemoryStateHandleStore(helper, entries)
    job_id = JobID.generate()
    await writer.add_and_lock(str(job_id), _plan(job_id))
    await writer.release_all()
    store = DefaultExecutionPlanStore(reader, ManualExecutionPlanStoreWatcher(), str, JobID)
    await store.start(RecordingExecutionPlanListener())
    helper.fail_retrieve = True
    with pytest.raises(CorruptHaDataError, match=str(job_id)):
        await store.recover_execution_plan(job_id)
    assert reader.lock_holders(str(job_id)) == set()


async def test_malformed_names_are_skipped_by_get_job_ids() -> None:
    helper: TestingStorageHelper[Any] = TestingStorageHelper()
    handles: InMemoryStateHandleStore[Any] = InMemoryStateHandleStore(helper)
    job_id = JobID.generate()
    await handles.add_and_lock(str(job_id), _plan(job_id))
    await handles.add_and_lock("not-a-job-id", _plan(job_id))
    store = DefaultExecutionPlanStore(handles, ManualExecutionPlanStoreWatcher(), str, JobID)
    await store.start(RecordingExecutionPlanListener())
    assert await store.get_job_ids() == [job_id]


async def test_global_cleanup_error_names_the_job() -> None:
    helper: TestingStorageHelper[Any] = TestingStorageHelper()
    entries = InMemoryStateHandleStore.new_namespace()
    first = DefaultExecutionPlanStore(
        InMemoryStateHandleStore(helper, entries), ManualExecutionPlanStoreWatcher(), str, JobID
    )
    second = DefaultExecutionPlanStore(
        InMemoryStateHandleStore(helper, entries), ManualExecutionPlanStoreWatcher(), str, JobID
    )
    await first.start(RecordingExecutionPlanListener())
    await second.start(RecordingExecutionPlanListener())
    job_id = JobID.generate()
    await first.put_execution_plan(_plan(job_id))
    await second.recover_execution_plan(job_id)
    with pytest.raises(StateHandleStoreError, match=f"Could not remove execution plan with job id {job_id}"):
        await first.global_cleanup(job_id)


class _ReportingStore(InMemoryStateHandleStore[Any]):
    """Reports the add to the watcher while the add is still running (as a real watch may)."""

    watcher: ManualExecutionPlanStoreWatcher

    async def add_and_lock(self, name: str, state: Any) -> Any:
        handle = await super().add_and_lock(name, state)
        self.watcher.added(JobID(name))
        return handle


async def test_watcher_event_during_own_put_is_filtered_after_the_put() -> None:
    handles = _ReportingStore(TestingStorageHelper())
    watcher = ManualExecutionPlanStoreWatcher()
    handles.watcher = watcher
    store = DefaultExecutionPlanStore(handles, watcher, str, JobID)
    listener = RecordingExecutionPlanListener()
    await store.start(listener)
    await store.put_execution_plan(_plan(JobID.generate()))
    await store.stop()  # runs after the deferred event was judged (it waits for the same lock)
    assert listener.added == []
