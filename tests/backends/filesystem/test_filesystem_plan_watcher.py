"""FileSystemExecutionPlanStoreWatcher: plans added and removed by others are reported, at O(1) cost per event."""

from __future__ import annotations

from pathlib import Path

import pytest

from standby.backends.filesystem import FileSystemExecutionPlanStoreWatcher, FileSystemStateHandleStore
from standby.backends.filesystem._watcher import inotify_available
from standby.ha import (
    DefaultExecutionPlanStore,
    ExecutionPlan,
    FileSystemStateStorageHelper,
    JobID,
)
from standby.testing.store_contract import RecordingExecutionPlanListener

from .fs_ha_testing import wait_until

#: No poll tick during a test: every listing counted comes from an event or the start.
NO_POLLING = 3600.0

needs_inotify = pytest.mark.skipif(not inotify_available(), reason="inotify is Linux only")


def _shs(plans_dir: Path, payloads: Path) -> FileSystemStateHandleStore[ExecutionPlan]:
    storage = FileSystemStateStorageHelper(
        str(payloads), "submittedExecutionPlan", ExecutionPlan.to_bytes, ExecutionPlan.from_bytes
    )
    return FileSystemStateHandleStore(plans_dir, storage)


async def _add(store: FileSystemStateHandleStore[ExecutionPlan], job_id: JobID) -> None:
    await store.add_and_lock(job_id, ExecutionPlan(job_id, f"job-{job_id[:6]}"))


@needs_inotify
async def test_recovering_n_plans_does_not_list_the_directory_per_plan(tmp_path: Path) -> None:
    """Each recovery touches the store's ``.lock`` file, an inotify event in the plans directory; the watcher
    used to list (and parse) the whole directory for each of them: O(N) per plan, O(N²) for a recovery."""
    plans_dir, payloads = tmp_path / "execution-plans", tmp_path / "payloads"
    writer = _shs(plans_dir, payloads)
    seeded = [JobID.generate() for _ in range(40)]
    for job_id in seeded:
        await _add(writer, job_id)
    await writer.release_all()
    watcher = FileSystemExecutionPlanStoreWatcher(plans_dir, tmp_path, NO_POLLING)
    plans = DefaultExecutionPlanStore(_shs(plans_dir, payloads), watcher, str, JobID)
    listener = RecordingExecutionPlanListener()
    await plans.start(listener)
    try:
        assert watcher.listings == 1  # the baseline
        assert sorted(await plans.get_job_ids()) == sorted(seeded)
        for job_id in seeded:
            assert await plans.recover_execution_plan(job_id) is not None
        # events are handled in order: once this one is seen, those of the recoveries were handled too
        late = JobID.generate()
        await _add(writer, late)
        await wait_until(lambda: listener.added == [late], what="the plan added by another store")
        assert watcher.listings == 1, f"{watcher.listings} directory listings for {len(seeded)} recoveries"
        assert listener.removed == []
    finally:
        await plans.stop()


@pytest.mark.parametrize(
    "inotify", [pytest.param(True, marks=needs_inotify), False], ids=["inotify", "polling"]
)
async def test_added_and_removed_plans_are_reported(tmp_path: Path, inotify: bool) -> None:
    plans_dir, payloads = tmp_path / "execution-plans", tmp_path / "payloads"
    writer = _shs(plans_dir, payloads)
    existing = JobID.generate()
    await _add(writer, existing)
    watcher = FileSystemExecutionPlanStoreWatcher(plans_dir, tmp_path, 0.02, use_inotify=inotify)
    listener = RecordingExecutionPlanListener()
    await watcher.start(listener)
    try:
        added = JobID.generate()
        await _add(writer, added)
        await wait_until(lambda: listener.added == [added], what="the added plan")
        assert await writer.release_and_try_remove(existing)
        await wait_until(lambda: listener.removed == [existing], what="the removed plan")
        # an entry that comes and goes is reported by what is there when the events are handled
        (plans_dir / "not-a-job-id").write_bytes(b"ignored")
        transient = JobID.generate()
        await _add(writer, transient)
        assert await writer.release_and_try_remove(transient)
        last = JobID.generate()
        await _add(writer, last)
        await wait_until(lambda: last in listener.added, what="the last plan")
        # reported both ways if it was seen while it existed, else not at all
        assert (transient in listener.added) == (transient in listener.removed)
        assert [j for j in listener.added if j != transient] == [added, last]
        assert [j for j in listener.removed if j != transient] == [existing]
    finally:
        await watcher.stop()


@needs_inotify
async def test_a_plans_directory_created_later_is_listed(tmp_path: Path) -> None:
    """Until the directory exists its ancestor is watched; events there lead to a full listing."""
    plans_dir, payloads = tmp_path / "cluster" / "execution-plans", tmp_path / "payloads"
    watcher = FileSystemExecutionPlanStoreWatcher(plans_dir, tmp_path, NO_POLLING)
    listener = RecordingExecutionPlanListener()
    await watcher.start(listener)
    try:
        first = JobID.generate()
        await _add(_shs(plans_dir, payloads), first)
        await wait_until(lambda: listener.added == [first], what="the plan in the new directory")
    finally:
        await watcher.stop()
