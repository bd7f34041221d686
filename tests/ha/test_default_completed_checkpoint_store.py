"""DefaultCompletedCheckpointStore and the subsumption rule (Flink's DefaultCompletedCheckpointStoreTest)."""

from __future__ import annotations

from typing import Any

import pytest

from standby.config import Configuration
from standby.ha import (
    INVALID_CHECKPOINT_ID,
    CheckpointProperties,
    CompletedCheckpoint,
    DefaultCheckpointsCleaner,
    DefaultCompletedCheckpointStore,
    JobStatus,
    checkpoint_id_to_name,
    max_retained_checkpoints,
    name_to_checkpoint_id,
    subsume_checkpoints,
)
from standby.testing.store_contract import (
    InMemoryStateHandleStore,
    RecordingCheckpointsCleaner,
    TestingStorageHelper,
    make_checkpoint,
)

CP = CheckpointProperties.checkpoint()
SP = CheckpointProperties.savepoint()
STOP = CheckpointProperties.savepoint(synchronous=True)


def _cps(*kinds: tuple[int, CheckpointProperties]) -> list[CompletedCheckpoint]:
    return [make_checkpoint(cid, properties=props) for cid, props in kinds]


def _ids(checkpoints: list[CompletedCheckpoint]) -> list[int]:
    return [c.checkpoint_id for c in checkpoints]


@pytest.mark.parametrize(
    ("kinds", "retain", "kept", "subsumed"),
    [
        # testAtLeastOneCheckpointRetained: cp1, cp2, sp1, sp2, sp3 with retain 1 => [cp2, sp3]
        ([(1, CP), (2, CP), (3, SP), (4, SP), (5, SP)], 1, [2, 5], [1, 3, 4]),
        # testOlderSavepointSubsumed: [cp1, sp1, cp2] => [cp2]
        ([(1, CP), (2, SP), (3, CP)], 1, [3], [1, 2]),
        # testSubsumeAfterStoppingWithSavepoint: [cp1, sp1, stop] => [stop]
        ([(1, CP), (2, SP), (3, STOP)], 1, [3], [1, 2]),
        # testNotSubsumedIfNotNeeded
        ([(1, CP), (2, CP), (3, CP)], 3, [1, 2, 3], []),
        ([(1, CP), (2, CP), (3, CP)], 2, [2, 3], [1]),
        # only savepoints: the latest is kept, older ones go
        ([(1, SP), (2, SP)], 1, [2], [1]),
        # the latest non-savepoint survives a newer savepoint
        ([(1, CP), (2, SP)], 1, [1, 2], []),
    ],
)
def test_subsumption_table(
    kinds: list[tuple[int, CheckpointProperties]], retain: int, kept: list[int], subsumed: list[int]
) -> None:
    checkpoints = _cps(*kinds)
    removed = subsume_checkpoints(checkpoints, retain)
    assert _ids(checkpoints) == kept
    assert _ids(removed) == subsumed


def _store(max_retain: int) -> tuple[DefaultCompletedCheckpointStore, InMemoryStateHandleStore[Any]]:
    handles: InMemoryStateHandleStore[Any] = InMemoryStateHandleStore(TestingStorageHelper())
    return DefaultCompletedCheckpointStore(max_retain, handles), handles


async def test_add_returns_the_newest_subsumed_checkpoint_and_cleans_per_properties() -> None:
    store, handles = _store(1)
    cleaner = RecordingCheckpointsCleaner()
    for cid, props in [(1, CP), (2, CP), (3, SP), (4, SP)]:
        await store.add_checkpoint_and_subsume_oldest_one(make_checkpoint(cid, properties=props), cleaner)
    last = await store.add_checkpoint_and_subsume_oldest_one(make_checkpoint(5, properties=SP), cleaner)
    assert last is not None
    assert last.checkpoint_id == 4
    assert _ids(store.get_all_checkpoints()) == [2, 5]
    # savepoints are never discarded by the system
    assert cleaner.calls == [(1, True), (3, False), (4, False)]
    assert sorted(await handles.get_all_handles()) == [checkpoint_id_to_name(2), checkpoint_id_to_name(5)]


async def test_subsumed_checkpoint_locked_by_another_instance_keeps_its_state() -> None:
    """A standby that recovered (and so locked) checkpoint 1 can still read its files after the leader subsumes it."""
    namespace = InMemoryStateHandleStore.new_namespace()
    helper: TestingStorageHelper[Any] = TestingStorageHelper()
    leader_handles: InMemoryStateHandleStore[Any] = InMemoryStateHandleStore(helper, namespace)
    standby_handles: InMemoryStateHandleStore[Any] = InMemoryStateHandleStore(helper, namespace)
    store = DefaultCompletedCheckpointStore(1, leader_handles)
    cleaner = RecordingCheckpointsCleaner()
    await store.add_checkpoint_and_subsume_oldest_one(make_checkpoint(1), cleaner)
    await standby_handles.get_and_lock(checkpoint_id_to_name(1))
    await store.add_checkpoint_and_subsume_oldest_one(make_checkpoint(2), cleaner)
    assert _ids(store.get_all_checkpoints()) == [2]
    assert cleaner.calls == []  # not removed (still locked): its state must not be discarded
    assert checkpoint_id_to_name(1) in await standby_handles.get_all_handles()


async def test_post_cleanup_runs_after_each_add() -> None:
    store, _ = _store(1)
    calls: list[int] = []
    await store.add_checkpoint_and_subsume_oldest_one(
        make_checkpoint(1), RecordingCheckpointsCleaner(), lambda: calls.append(1)
    )
    assert calls == [1]


async def test_shutdown_discards_per_properties_when_globally_terminal() -> None:
    store, handles = _store(3)
    cleaner = RecordingCheckpointsCleaner()
    await store.add_checkpoint_and_subsume_oldest_one(make_checkpoint(1), cleaner)
    await store.add_checkpoint_and_subsume_oldest_one(make_checkpoint(2, properties=SP), cleaner)
    await store.shutdown(JobStatus.CANCELED, cleaner)
    assert cleaner.calls == [(1, True), (2, False)]
    assert await handles.get_all_handles() == []


async def test_second_shutdown_is_a_no_op() -> None:
    store, handles = _store(1)
    cleaner = RecordingCheckpointsCleaner()
    await store.add_checkpoint_and_subsume_oldest_one(make_checkpoint(1), cleaner)
    await store.shutdown(JobStatus.SUSPENDED, cleaner)
    await store.shutdown(JobStatus.FINISHED, cleaner)
    assert cleaner.calls == []
    assert await handles.get_all_handles() == [checkpoint_id_to_name(1)]


def test_must_retain_at_least_one() -> None:
    with pytest.raises(ValueError, match="at least one"):
        DefaultCompletedCheckpointStore(0, InMemoryStateHandleStore(TestingStorageHelper()))


def test_checkpoint_names() -> None:
    assert checkpoint_id_to_name(42) == "0000000000000000042"
    assert name_to_checkpoint_id("0000000000000000042") == 42
    assert name_to_checkpoint_id("/0000000000000000042") == 42
    assert name_to_checkpoint_id("checkpointID-x") == INVALID_CHECKPOINT_ID
    names = [checkpoint_id_to_name(i) for i in (10, 9, 100, 1)]
    assert [name_to_checkpoint_id(n) for n in sorted(names)] == [1, 9, 10, 100]


@pytest.mark.parametrize(("value", "expected"), [(None, 1), ("3", 3), ("0", 1), ("-2", 1)])
def test_max_retained_checkpoints(value: str | None, expected: int) -> None:
    values = {} if value is None else {"execution.checkpointing.num-retained": value}
    assert max_retained_checkpoints(Configuration(values)) == expected


async def test_default_checkpoints_cleaner_deletes_state_files(memory_url: str) -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    root = memory_url.removeprefix("memory://")
    fs.pipe({f"{root}/chk-1/0": b"a", f"{root}/chk-1/1": b"b", f"{root}/chk-2/0": b"c"})
    checkpoint = CompletedCheckpoint(
        job_id=make_checkpoint(1).job_id,
        checkpoint_id=1,
        timestamp_ms=1,
        completion_timestamp_ms=2,
        task_states={"0": f"{memory_url}/chk-1/0", "1": f"{memory_url}/chk-1/1", "2": f"{memory_url}/gone"},
        external_pointer=f"{memory_url}/chk-1",
    )
    cleaner = DefaultCheckpointsCleaner()
    await cleaner.clean_checkpoint(checkpoint, discard=False)
    assert fs.exists(f"{root}/chk-1/0")
    await cleaner.clean_checkpoint(checkpoint, discard=True)
    assert not fs.exists(f"{root}/chk-1/0")
    assert not fs.exists(f"{root}/chk-1")
    assert fs.exists(f"{root}/chk-2/0")
    assert cleaner.number_of_cleaned_checkpoints == 1
