"""Regressions of bugs the chaos suite found, reproduced deterministically, and the fault schedule's contract."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from standby.ha import (
    CheckpointsCleaner,
    CompletedCheckpoint,
    JobID,
    PossibleInconsistentStateError,
    StandaloneCheckpointIDCounter,
    StandaloneCompletedCheckpointStore,
    delete_payload_files,
)
from standby.runtime._state import write_state
from standby.runtime.jobmaster import StateDirCheckpointsCleaner
from standby.runtime.jobmaster._checkpoint_coordinator import CheckpointCoordinator, CheckpointedExecution
from standby.testing.chaos import fault_kinds, make_schedule


@dataclass
class _Execution:
    attempt_id: str
    subtask_index: int
    state: str = "RUNNING"
    final_state_path: str | None = None


class _BlockingStore(StandaloneCompletedCheckpointStore):
    """A store whose add blocks until released, then fails as told (or succeeds)."""

    def __init__(self, error: Exception | None = None) -> None:
        super().__init__(1)
        self.adding = asyncio.Event()
        self.release = asyncio.Event()
        self.error = error

    async def add_checkpoint_and_subsume_oldest_one(
        self,
        checkpoint: CompletedCheckpoint,
        cleaner: CheckpointsCleaner,
        post_cleanup: Callable[[], None] | None = None,
    ) -> CompletedCheckpoint | None:
        self.adding.set()
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return await super().add_checkpoint_and_subsume_oldest_one(checkpoint, cleaner, post_cleanup)


def _coordinator(tmp_path: Path, store: _BlockingStore) -> tuple[CheckpointCoordinator, list[_Execution]]:
    coordinator = CheckpointCoordinator(
        JobID.generate(),
        None,
        10.0,
        store,
        StandaloneCheckpointIDCounter(),
        StateDirCheckpointsCleaner(),
        str(tmp_path / "job"),
    )
    return coordinator, [_Execution("a0", 0), _Execution("a1", 1)]


def _trigger(
    coordinator: CheckpointCoordinator,
) -> Callable[[CheckpointedExecution, int, str], Awaitable[None]]:
    async def trigger(execution: CheckpointedExecution, checkpoint_id: int, path: str) -> None:
        await asyncio.to_thread(write_state, path, b"42")
        coordinator.acknowledge(execution.subtask_index, execution.attempt_id, checkpoint_id, path)

    return trigger


async def test_a_checkpoint_cancelled_while_it_is_stored_keeps_its_state(tmp_path: Path) -> None:
    # ZooKeeper seed 2: revoked mid-add, the coordinator deleted chk-12, the queued write committed after the
    # reconnect, and every later attempt failed with StateFileError
    store = _BlockingStore()
    coordinator, executions = _coordinator(tmp_path, store)
    task = asyncio.create_task(coordinator.trigger_checkpoint(executions, _trigger(coordinator)))
    await asyncio.wait_for(store.adding.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (tmp_path / "job" / "chk-1" / "subtask-0").exists()
    assert (tmp_path / "job" / "chk-1" / "subtask-1").exists()


async def test_a_checkpoint_with_an_unknown_store_outcome_keeps_its_state(tmp_path: Path) -> None:
    store = _BlockingStore(PossibleInconsistentStateError("the answer was lost"))
    coordinator, executions = _coordinator(tmp_path, store)
    task = asyncio.create_task(coordinator.trigger_checkpoint(executions, _trigger(coordinator)))
    await asyncio.wait_for(store.adding.wait(), 10)
    store.release.set()
    assert await asyncio.wait_for(task, 10) is None
    assert coordinator.failed_count == 1
    # a discard would run on the default executor: wait until everything queued there has run
    await asyncio.get_running_loop().shutdown_default_executor()
    assert (tmp_path / "job" / "chk-1" / "subtask-0").exists()


async def test_a_checkpoint_the_store_certainly_refused_is_discarded(tmp_path: Path) -> None:
    store = _BlockingStore(RuntimeError("refused"))
    coordinator, executions = _coordinator(tmp_path, store)
    task = asyncio.create_task(coordinator.trigger_checkpoint(executions, _trigger(coordinator)))
    await asyncio.wait_for(store.adding.wait(), 10)
    store.release.set()
    assert await asyncio.wait_for(task, 10) is None

    async def gone() -> None:
        while (tmp_path / "job" / "chk-1").exists():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(gone(), 10)


def test_the_schedule_is_reproducible_and_starts_with_every_kind_at_the_leader() -> None:
    for backend in ("filesystem", "zookeeper", "etcd"):
        schedule = make_schedule(5, backend, 120.0, 2, 3.0)
        assert schedule == make_schedule(5, backend, 120.0, 2, 3.0)
        assert schedule != make_schedule(6, backend, 120.0, 2, 3.0)
        kinds = fault_kinds(backend)
        first = schedule[: len(kinds)]
        assert {f.kind for f in first} == set(kinds)
        for fault in first:
            if fault.kind.endswith("jobmanager"):
                assert fault.target == "leader"
            if fault.kind in ("pause-jobmanager", "cut-jobmanager"):
                assert fault.hold_s > 3.0  # longer than the session timeout: a real session loss
        assert sum(f.gap_s + f.hold_s for f in schedule) >= 120.0
        assert {f.kind for f in schedule} <= set(kinds)
    assert "restart-server" not in fault_kinds("filesystem")


def test_cleanup_removes_every_payload_file_and_nothing_else(tmp_path: Path) -> None:
    # ZooKeeper seed 2, etcd seed 31: payloads of store adds cancelled in flight outlived cleanup_all_data
    (tmp_path / "blob").mkdir()
    for name in ("completedCheckpointabc", "submittedExecutionPlanxyz", "other.json"):
        (tmp_path / name).write_text("x")
    assert delete_payload_files(str(tmp_path)) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob", "other.json"]
    assert delete_payload_files(f"file://{tmp_path}") == 0
    assert delete_payload_files(str(tmp_path / "missing")) == 0
