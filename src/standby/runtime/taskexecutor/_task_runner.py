"""One subtask running in its own thread: restore, then step() in a loop, snapshotting between steps on request."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from standby._task import Task, TaskContext

from .._state import join, read_state, write_state

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskDeployment:
    """Everything a TaskManager needs to run one subtask attempt (Flink's ``TaskDeploymentDescriptor``)."""

    job_id: str
    job_name: str
    attempt_id: str
    attempt_number: int
    subtask_index: int
    parallelism: int
    allocation_id: str
    entry: str
    user_code_key: str
    args: tuple[str, ...]
    job_master_address: str
    job_master_id: str
    state_dir: str
    restore_path: str | None = None
    restore_checkpoint_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "job_name": self.job_name,
            "attempt_id": self.attempt_id,
            "attempt_number": self.attempt_number,
            "subtask_index": self.subtask_index,
            "parallelism": self.parallelism,
            "allocation_id": self.allocation_id,
            "entry": self.entry,
            "user_code_key": self.user_code_key,
            "args": list(self.args),
            "job_master_address": self.job_master_address,
            "job_master_id": self.job_master_id,
            "state_dir": self.state_dir,
            "restore_path": self.restore_path,
            "restore_checkpoint_id": self.restore_checkpoint_id,
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> TaskDeployment:
        return TaskDeployment(
            job_id=str(data["job_id"]),
            job_name=str(data.get("job_name", "")),
            attempt_id=str(data["attempt_id"]),
            attempt_number=int(data.get("attempt_number", 0)),
            subtask_index=int(data["subtask_index"]),
            parallelism=int(data["parallelism"]),
            allocation_id=str(data["allocation_id"]),
            entry=str(data["entry"]),
            user_code_key=str(data["user_code_key"]),
            args=tuple(str(a) for a in data.get("args", [])),
            job_master_address=str(data["job_master_address"]),
            job_master_id=str(data["job_master_id"]),
            state_dir=str(data["state_dir"]),
            restore_path=data.get("restore_path"),
            restore_checkpoint_id=data.get("restore_checkpoint_id"),
        )


#: states after which a subtask attempt never changes again
TERMINAL_STATES = frozenset({"FINISHED", "CANCELED", "FAILED"})


@dataclass
class TaskEvent:
    """What a task thread reports to its TaskExecutor (on the event loop)."""

    kind: str  # "state" | "checkpoint-ack" | "checkpoint-decline"
    state: str | None = None
    result: dict[str, Any] | None = None
    final_state_path: str | None = None
    error: str | None = None
    checkpoint_id: int | None = None
    state_path: str | None = None


def _json_numbers(result: Any, where: str) -> dict[str, Any]:
    if not isinstance(result, dict):
        raise TypeError(f"{where}.result() must return a dict of numbers, got {type(result).__name__}")
    clean: dict[str, Any] = {}
    for key, value in result.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (isinstance(value, float) and not math.isfinite(value))
        ):
            raise TypeError(f"{where}.result()[{key!r}] must be a finite number, got {value!r}")
        clean[str(key)] = value
    return clean


@dataclass
class RunningTask:
    """A subtask attempt executing in a dedicated thread (user code may block; the event loop must not)."""

    deployment: TaskDeployment
    task_class: type[Task]
    loop: asyncio.AbstractEventLoop
    on_event: Callable[[RunningTask, TaskEvent], None]
    state: str = "DEPLOYING"
    result: dict[str, Any] | None = None
    final_state_path: str | None = None
    error: str | None = None
    _cancel: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _pending_checkpoint: tuple[int, str] | None = None
    _thread: threading.Thread | None = None

    def start(self) -> None:
        d = self.deployment
        self._thread = threading.Thread(
            target=self._run, name=f"task-{d.job_id[:8]}-{d.subtask_index}-{d.attempt_number}", daemon=True
        )
        self._thread.start()

    def cancel(self) -> None:
        self._cancel.set()

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout_s: float) -> bool:
        if self._thread is not None:
            self._thread.join(timeout_s)
        return not self.is_alive()

    def trigger_checkpoint(self, checkpoint_id: int, target_path: str) -> bool:
        """Snapshot before the next step; False if the task is not running (the coordinator declines it)."""
        with self._lock:
            if self.state != "RUNNING":
                return False
            self._pending_checkpoint = (checkpoint_id, target_path)
            return True

    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    def report(self) -> dict[str, Any]:
        d = self.deployment
        return {
            "attemptId": d.attempt_id,
            "subtaskIndex": d.subtask_index,
            "state": self.state,
            "result": self.result,
            "finalStatePath": self.final_state_path,
            "error": self.error,
        }

    # -------------------------------------------------------------- thread side

    def _emit(self, event: TaskEvent) -> None:
        if event.kind == "state" and event.state is not None:
            with self._lock:
                self.state = event.state
                if event.result is not None:
                    self.result = event.result
                if event.final_state_path is not None:
                    self.final_state_path = event.final_state_path
                if event.error is not None:
                    self.error = event.error
        try:
            self.loop.call_soon_threadsafe(self.on_event, self, event)
        except RuntimeError:
            _log.debug("Event loop closed; dropping %s of %s", event.kind, self.deployment.attempt_id)

    def _run(self) -> None:
        d = self.deployment
        where = f"{self.task_class.__name__} (subtask {d.subtask_index} of job {d.job_id})"
        try:
            self._emit(TaskEvent("state", state="INITIALIZING"))
            task = self.task_class()
            task.context = TaskContext(
                subtask_index=d.subtask_index,
                parallelism=d.parallelism,
                job_id=d.job_id,
                args=d.args,
                attempt=d.attempt_number,
                job_name=d.job_name,
            )
            restored = read_state(d.restore_path) if d.restore_path else None
            task.restore(restored.state if restored is not None else None)
            if restored is not None and restored.finished:
                # finished before the checkpoint: not run again (FLIP-147)
                result = _json_numbers(task.result(), where)
                self._emit(
                    TaskEvent("state", state="FINISHED", result=result, final_state_path=d.restore_path)
                )
                return
            self._emit(TaskEvent("state", state="RUNNING"))
            # bounded by the user's step(): the loop ends when it returns False or the task is cancelled
            while True:
                if self._cancel.is_set():
                    self._emit(TaskEvent("state", state="CANCELED"))
                    return
                self._maybe_checkpoint(task, where)
                if not task.step():
                    break
            final_path = join(d.state_dir, "finished", f"{d.attempt_id}-subtask-{d.subtask_index}")
            write_state(final_path, _snapshot(task, where), finished=True)
            result = _json_numbers(task.result(), where)
            self._emit(TaskEvent("state", state="FINISHED", result=result, final_state_path=final_path))
        except BaseException as e:
            text = "".join(traceback.format_exception(e)).strip()
            _log.warning("%s failed: %s", where, e)
            self._emit(TaskEvent("state", state="FAILED", error=f"{type(e).__name__}: {e}\n{text}"))

    def _maybe_checkpoint(self, task: Task, where: str) -> None:
        with self._lock:
            pending, self._pending_checkpoint = self._pending_checkpoint, None
        if pending is None:
            return
        checkpoint_id, target = pending
        try:
            write_state(target, _snapshot(task, where))
        except Exception as e:
            self._emit(TaskEvent("checkpoint-decline", checkpoint_id=checkpoint_id, error=str(e)))
            return
        self._emit(TaskEvent("checkpoint-ack", checkpoint_id=checkpoint_id, state_path=target))


def _snapshot(task: Task, where: str) -> bytes:
    state = task.snapshot()
    if not isinstance(state, bytes | bytearray):
        raise TypeError(f"{where}.snapshot() must return bytes, got {type(state).__name__}")
    return bytes(state)
