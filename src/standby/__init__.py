"""standby: JobManager high availability after Apache Flink, in Python."""

import sys as _sys

# httpx's package __init__ imports its command-line client (``httpx._main``: rich, pygments, click) whenever those
# are installed, and they are (typer brings them): ~7 MiB and ~0.1 s in every JobManager and TaskManager, which
# never run ``httpx`` as a command. A ``None`` entry makes that import fail, and httpx falls back to a stub ``main``.
if "httpx" not in _sys.modules:
    _sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

from ._task import Task as Task
from ._task import TaskContext as TaskContext
