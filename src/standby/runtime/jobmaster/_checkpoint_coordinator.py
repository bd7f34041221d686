"""The CheckpointCoordinator of one JobMaster: periodic checkpoints into the HA checkpoint store.

Flink's ``CheckpointCoordinator`` for our single vertex: take an id from the ``CheckpointIDCounter``, ask every
running subtask to snapshot between two steps into ``<checkpoint dir>/<job>/chk-<id>/``, and when all acknowledged,
add a ``CompletedCheckpoint`` to the ``CompletedCheckpointStore`` (which persists it, then subsumes older ones).
Finished subtasks take part with their final state (FLIP-147). One checkpoint at a time.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from standby.ha import (
    CheckpointIDCounter,
    CheckpointsCleaner,
    CompletedCheckpoint,
    CompletedCheckpointStore,
    JobID,
    PossibleInconsistentStateError,
)

from .._metrics import Metrics
from .._state import delete_tree, join
from .._util import cancel_and_wait, now_ms

_log = logging.getLogger(__name__)


class CheckpointedExecution(Protocol):
    attempt_id: str
    subtask_index: int
    state: str
    final_state_path: str | None


class StateDirCheckpointsCleaner(CheckpointsCleaner):
    """Deletes a checkpoint's directory (``external_pointer``). Final states of finished subtasks live outside
    checkpoint directories (several checkpoints refer to them) and go with the job's directory at cleanup."""

    async def clean_checkpoint(self, checkpoint: CompletedCheckpoint, discard: bool) -> None:
        if discard and checkpoint.external_pointer:
            await asyncio.to_thread(delete_tree, checkpoint.external_pointer)


@dataclass
class _Pending:
    checkpoint_id: int
    trigger_ms: int
    directory: str
    expected: dict[int, str]
    acks: dict[int, str] = field(default_factory=dict)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    failure: str | None = None

    def complete_if_done(self) -> None:
        if all(i in self.acks for i in self.expected):
            self.done.set()


class CheckpointCoordinator:
    def __init__(
        self,
        job_id: JobID,
        interval_s: float | None,
        timeout_s: float,
        store: CompletedCheckpointStore,
        counter: CheckpointIDCounter,
        cleaner: CheckpointsCleaner,
        state_dir: str,
        metrics: Metrics | None = None,
    ) -> None:
        self._job_id = job_id
        self._interval = interval_s
        self._timeout = timeout_s
        self._store = store
        self._counter = counter
        self._cleaner = cleaner
        self._state_dir = state_dir
        self._metrics = metrics
        self._task: asyncio.Task[None] | None = None
        self._pending: _Pending | None = None
        self.completed_count = 0
        self.failed_count = 0
        self.history: deque[dict[str, Any]] = deque(maxlen=10)
        self.latest_completed: dict[str, Any] | None = None
        self.latest_failed: dict[str, Any] | None = None
        self.restored: dict[str, Any] | None = None

    @property
    def store(self) -> CompletedCheckpointStore:
        return self._store

    def set_restored(self, checkpoint: CompletedCheckpoint | None) -> None:
        if checkpoint is not None:
            self.restored = {
                "id": checkpoint.checkpoint_id,
                "restore_timestamp": now_ms(),
                "external_path": checkpoint.external_pointer,
            }

    def start(
        self,
        executions: Callable[[], Sequence[CheckpointedExecution]],
        trigger: Callable[[CheckpointedExecution, int, str], Awaitable[None]],
    ) -> None:
        if self._interval is None or self._task is not None:
            return
        self._task = asyncio.create_task(self._run(executions, trigger), name=f"checkpoints-{self._job_id}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task, 10)
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.failure = "the job attempt ended"
            pending.done.set()

    # ------------------------------------------------------------------ from subtasks

    def acknowledge(self, subtask_index: int, attempt_id: str, checkpoint_id: int, state_path: str) -> None:
        pending = self._pending
        if pending is None or pending.checkpoint_id != checkpoint_id:
            _log.debug("Late acknowledgement of checkpoint %d by subtask %d", checkpoint_id, subtask_index)
            return
        if pending.expected.get(subtask_index) != attempt_id:
            return
        pending.acks[subtask_index] = state_path
        pending.complete_if_done()

    def decline(self, subtask_index: int, attempt_id: str, checkpoint_id: int, reason: str) -> None:
        pending = self._pending
        if pending is None or pending.checkpoint_id != checkpoint_id:
            return
        if pending.expected.get(subtask_index) == attempt_id:
            pending.failure = f"declined by subtask {subtask_index}: {reason}"
            pending.done.set()

    def subtask_finished(self, subtask_index: int, attempt_id: str, final_state_path: str | None) -> None:
        """A subtask finished while a checkpoint waits for it: its final state stands in for the snapshot."""
        pending = self._pending
        if pending is None or final_state_path is None:
            return
        if pending.expected.get(subtask_index) == attempt_id and subtask_index not in pending.acks:
            pending.acks[subtask_index] = final_state_path
            pending.complete_if_done()

    # ------------------------------------------------------------------ periodic triggering

    async def _run(
        self,
        executions: Callable[[], Sequence[CheckpointedExecution]],
        trigger: Callable[[CheckpointedExecution, int, str], Awaitable[None]],
    ) -> None:
        assert self._interval is not None
        while True:
            await asyncio.sleep(self._interval)
            current = list(executions())
            if not current or any(e.state not in ("RUNNING", "FINISHED") for e in current):
                continue  # Flink: "Not all required tasks are currently running"
            if all(e.state == "FINISHED" for e in current):
                continue
            try:
                await self.trigger_checkpoint(current, trigger)
            except asyncio.CancelledError:
                raise
            except Exception:
                _log.exception("Checkpoint of job %s failed unexpectedly", self._job_id)

    async def trigger_checkpoint(
        self,
        executions: Sequence[CheckpointedExecution],
        trigger: Callable[[CheckpointedExecution, int, str], Awaitable[None]],
    ) -> CompletedCheckpoint | None:
        checkpoint_id = await self._counter.get_and_increment()
        directory = join(self._state_dir, f"chk-{checkpoint_id}")
        pending = _Pending(
            checkpoint_id, now_ms(), directory, {e.subtask_index: e.attempt_id for e in executions}
        )
        for e in executions:
            if e.state == "FINISHED" and e.final_state_path:
                pending.acks[e.subtask_index] = e.final_state_path
        self._pending = pending
        # set once the store add began: from then on the HA write may have committed (or may still commit, e.g.
        # queued by kazoo and sent after a reconnect), so the checkpoint's state must be kept (Flink keeps it on a
        # PossibleInconsistentStateException; found by the chaos suite, seed 2 on ZooKeeper, docs/chaos.md)
        storing = False
        try:
            running = [e for e in executions if e.subtask_index not in pending.acks]
            results = await asyncio.gather(
                *(trigger(e, checkpoint_id, join(directory, f"subtask-{e.subtask_index}")) for e in running),
                return_exceptions=True,
            )
            errors = [r for r in results if isinstance(r, BaseException)]
            if errors:
                pending.failure = f"trigger failed: {errors[0]}"
            else:
                pending.complete_if_done()
                try:
                    await asyncio.wait_for(pending.done.wait(), self._timeout)
                except TimeoutError:
                    pending.failure = f"expired after {self._timeout} s (execution.checkpointing.timeout)"
            if pending.failure is not None:
                raise _CheckpointFailed(pending.failure)
            checkpoint = CompletedCheckpoint(
                job_id=self._job_id,
                checkpoint_id=checkpoint_id,
                timestamp_ms=pending.trigger_ms,
                completion_timestamp_ms=now_ms(),
                task_states={str(i): path for i, path in sorted(pending.acks.items())},
                external_pointer=directory,
            )
            # persisted first, then older checkpoints are subsumed (Flink's addCheckpointAndSubsumeOldestOne)
            storing = True
            await self._store.add_checkpoint_and_subsume_oldest_one(checkpoint, self._cleaner)
        except _CheckpointFailed as e:
            self._record_failure(pending, str(e))
            return None
        except asyncio.CancelledError:
            if not storing:
                await asyncio.shield(asyncio.to_thread(_quiet_delete, directory))
            raise
        except Exception as e:
            _log.warning("Checkpoint %d of job %s could not be stored: %s", checkpoint_id, self._job_id, e)
            unknown = storing and isinstance(e, PossibleInconsistentStateError)
            self._record_failure(pending, f"storing failed: {e}", discard=not unknown)
            return None
        finally:
            if self._pending is pending:
                self._pending = None
        self._record_success(checkpoint)
        return checkpoint

    def _record_success(self, checkpoint: CompletedCheckpoint) -> None:
        self.completed_count += 1
        entry: dict[str, Any] = {
            "id": checkpoint.checkpoint_id,
            "status": "COMPLETED",
            "trigger_timestamp": checkpoint.timestamp_ms,
            "latest_ack_timestamp": checkpoint.completion_timestamp_ms,
            "end_to_end_duration": checkpoint.completion_timestamp_ms - checkpoint.timestamp_ms,
            "external_path": checkpoint.external_pointer,
            "num_acknowledged_subtasks": len(checkpoint.task_states),
        }
        self.latest_completed = entry
        self.history.appendleft(entry)
        if self._metrics is not None:
            self._metrics.checkpoints_completed.labels(self._job_id).inc()
            self._metrics.last_checkpoint_id.labels(self._job_id).set(checkpoint.checkpoint_id)
            self._metrics.checkpoint_duration_seconds.observe(entry["end_to_end_duration"] / 1000.0)
        _log.debug("Completed checkpoint %d of job %s", checkpoint.checkpoint_id, self._job_id)

    def _record_failure(self, pending: _Pending, reason: str, discard: bool = True) -> None:
        self.failed_count += 1
        entry = {
            "id": pending.checkpoint_id,
            "status": "FAILED",
            "trigger_timestamp": pending.trigger_ms,
            "failure_timestamp": now_ms(),
            "failure_message": reason,
        }
        self.latest_failed = entry
        self.history.appendleft(entry)
        if self._metrics is not None:
            self._metrics.checkpoints_failed.labels(self._job_id).inc()
        _log.info("Checkpoint %d of job %s failed: %s", pending.checkpoint_id, self._job_id, reason)
        if discard:
            asyncio.get_running_loop().run_in_executor(None, _quiet_delete, pending.directory)

    def stats(self) -> dict[str, Any]:
        """Flink's ``/jobs/:jobid/checkpoints`` shape."""
        in_progress = 1 if self._pending is not None else 0
        return {
            "counts": {
                "restored": 1 if self.restored else 0,
                "total": self.completed_count + self.failed_count + in_progress,
                "in_progress": in_progress,
                "completed": self.completed_count,
                "failed": self.failed_count,
            },
            "latest": {
                "completed": self.latest_completed,
                "failed": self.latest_failed,
                "restored": self.restored,
            },
            "history": list(self.history),
            "retained": [cp.checkpoint_id for cp in self._store.get_all_checkpoints()],
        }


class _CheckpointFailed(Exception):
    pass


def _quiet_delete(path: str) -> None:
    try:
        delete_tree(path)
    except Exception as e:
        _log.debug("Could not delete %s: %s", path, e)
