"""The user-facing job API: a ``Task`` subclass in a Python file is a job that ``standby run`` submits.

A job runs ``parallelism`` subtasks, each an instance of the class. Every subtask is driven by its TaskManager:
``restore(state)`` once, then ``step()`` until it returns False, with ``snapshot()`` called between two steps when
a checkpoint is taken. After a failure or a JobManager failover every subtask is restored from the latest completed
checkpoint, so a subtask's ``result()`` must follow from its state alone for results to be exact.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Task", "TaskContext"]


@dataclass(frozen=True)
class TaskContext:
    """What a subtask knows about itself (Flink's ``RuntimeContext``, reduced)."""

    subtask_index: int
    parallelism: int
    job_id: str
    args: tuple[str, ...] = field(default_factory=tuple)
    #: restart attempt of the job this subtask belongs to (0 for the first run of a leader)
    attempt: int = 0
    job_name: str = ""


class Task(abc.ABC):
    """One parallel instance of a job. Subclass it and implement ``step``; the other hooks have defaults.

    ``self.context`` is set before ``restore`` is called. ``step`` must do a small unit of work (checkpoints and
    cancellation happen between steps) and return False once the subtask is finished.
    """

    context: TaskContext

    def restore(self, state: bytes | None) -> None:  # noqa: B027 - optional hook
        """Restore from ``state`` (bytes of an earlier ``snapshot``), or start fresh when it is None."""

    @abc.abstractmethod
    def step(self) -> bool:
        """Do one unit of work; return False when this subtask has nothing left to do."""

    def snapshot(self) -> bytes:
        """The subtask's state as bytes; ``restore`` must accept it."""
        return b""

    def result(self) -> dict[str, Any]:
        """Numbers that are summed across subtasks into the job's accumulators (e.g. ``{"count": 10}``)."""
        return {}
