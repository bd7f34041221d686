"""The highly available job cluster: JobManager (Dispatcher, ResourceManager, JobMasters, REST) and TaskManagers.

Depends on the HA interfaces (``standby.ha``) only, so it runs unchanged on every backend. The process classes are
imported on first use: the CLI's client commands start fast without the web stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._config import RuntimeSettings as RuntimeSettings
from ._config import load_configuration as load_configuration
from ._user_code import JobFileError as JobFileError
from ._user_code import find_task_class as find_task_class

if TYPE_CHECKING:
    from ._metrics import Metrics as Metrics
    from .entrypoint import JobManagerProcess as JobManagerProcess
    from .entrypoint import TaskManagerProcess as TaskManagerProcess

_LAZY = {
    "JobManagerProcess": ".entrypoint",
    "TaskManagerProcess": ".entrypoint",
    "Metrics": "._metrics",
}

__all__ = [
    "JobFileError",
    "JobManagerProcess",
    "Metrics",
    "RuntimeSettings",
    "TaskManagerProcess",
    "find_task_class",
    "load_configuration",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'standby.runtime' has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
