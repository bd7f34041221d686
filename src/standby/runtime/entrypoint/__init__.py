"""Process entry points: a JobManager and a TaskManager (Flink's ``runtime/entrypoint``).

Each is imported on first use: a TaskManager process does not load the JobManager's Dispatcher, JobMaster and REST
modules.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._jobmanager import JOBMANAGER_CONTROL_ENDPOINT as JOBMANAGER_CONTROL_ENDPOINT
    from ._jobmanager import JobManagerProcess as JobManagerProcess
    from ._jobmanager import UserCodeNotFoundError as UserCodeNotFoundError
    from ._taskmanager import TaskManagerProcess as TaskManagerProcess

_LAZY = {
    "JOBMANAGER_CONTROL_ENDPOINT": "._jobmanager",
    "JobManagerProcess": "._jobmanager",
    "UserCodeNotFoundError": "._jobmanager",
    "TaskManagerProcess": "._taskmanager",
}

__all__ = ["JOBMANAGER_CONTROL_ENDPOINT", "JobManagerProcess", "TaskManagerProcess", "UserCodeNotFoundError"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'standby.runtime.entrypoint' has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
