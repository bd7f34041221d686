"""Job files: checking a submitted file without running it, and loading its Task class on a TaskManager."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import os
import sys
import tempfile
import threading

from standby._task import Task


class JobFileError(ValueError):
    """The job file cannot be used: syntax error, no Task subclass, ambiguous or unknown class."""


def blob_key(code: bytes) -> str:
    """Content address of a job file in the blob store."""
    return hashlib.sha256(code).hexdigest()


def _task_base(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id == "Task"
    if isinstance(node, ast.Attribute):
        return node.attr == "Task"
    return False


def find_task_class(code: bytes, file_name: str, entry: str | None) -> str:
    """The class to run: ``entry`` if given (it must be defined at top level), else the one ``Task`` subclass.

    Static (``ast``): the JobManager never executes user code (Flink's JobManager does not run the user's main in
    session mode either).
    """
    try:
        tree = ast.parse(code, filename=file_name)
    except SyntaxError as e:
        raise JobFileError(f"Job file {file_name} has a syntax error at line {e.lineno}: {e.msg}") from None
    except ValueError as e:
        raise JobFileError(f"Job file {file_name} cannot be parsed: {e}") from None
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    if entry:
        if not any(c.name == entry for c in classes):
            names = ", ".join(c.name for c in classes) or "none"
            raise JobFileError(f"Job file {file_name} defines no class {entry!r} (classes: {names})")
        return entry
    candidates = [c.name for c in classes if any(_task_base(b) for b in c.bases)]
    if not candidates:
        raise JobFileError(
            f"Job file {file_name} defines no subclass of standby.Task; define one or name the class as "
            f"{file_name}:ClassName"
        )
    if len(candidates) > 1:
        raise JobFileError(
            f"Job file {file_name} defines several Task subclasses ({', '.join(candidates)}); choose one with "
            f"{file_name}:ClassName"
        )
    return candidates[0]


_lock = threading.Lock()
_loaded: dict[str, type[Task]] = {}


def load_task_class(code: bytes, job_id: str, entry: str, directory: str | None = None) -> type[Task]:
    """Import the job file (once per content and class) and return its ``entry`` class, checked to be a Task."""
    key = blob_key(code)
    cache_key = f"{key}:{entry}"
    with _lock:
        cached = _loaded.get(cache_key)
        if cached is not None:
            return cached
        base = directory or os.path.join(tempfile.gettempdir(), "standby-user-code")
        os.makedirs(base, exist_ok=True)
        path = os.path.join(base, f"job_{job_id}_{key[:16]}.py")
        if not os.path.exists(path):
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "wb") as f:
                f.write(code)
            os.replace(tmp, path)
        module_name = f"standby_job_{key[:16]}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise JobFileError(f"Cannot load the job file {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as e:
            sys.modules.pop(module_name, None)
            raise JobFileError(
                f"Importing the job file of job {job_id} failed: {type(e).__name__}: {e}"
            ) from e
        cls = getattr(module, entry, None)
        if not isinstance(cls, type) or not issubclass(cls, Task):
            raise JobFileError(f"{entry!r} in the job file of job {job_id} is not a subclass of standby.Task")
        _loaded[cache_key] = cls
        return cls
