"""Subtask state files under ``execution.checkpointing.dir`` (any fsspec URL; a plain path is local).

Format (ours, versioned): JSON ``{"version": 1, "finished": bool, "state": base64}``. ``finished`` marks the final
state of a subtask that completed (FLIP-147: finished subtasks are part of later checkpoints and are not run again
on restore).
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass

import fsspec

_log = logging.getLogger(__name__)

_FORMAT_VERSION = 1


class StateFileError(RuntimeError):
    """A state file cannot be written or read (names the file)."""


@dataclass(frozen=True)
class SubtaskState:
    state: bytes | None
    finished: bool


def _fs(path: str) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, resolved = fsspec.core.url_to_fs(path)
    return fs, resolved


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


def write_state(path: str, state: bytes, finished: bool = False) -> None:
    """Write a state file atomically where the file system allows (write to a temp name, then move)."""
    body = json.dumps(
        {"version": _FORMAT_VERSION, "finished": finished, "state": base64.b64encode(state).decode()}
    ).encode()
    try:
        fs, resolved = _fs(path)
        parent = resolved.rsplit("/", 1)[0]
        fs.makedirs(parent, exist_ok=True)
        tmp = f"{resolved}.inprogress"
        with fs.open(tmp, "wb") as f:
            f.write(body)
        fs.mv(tmp, resolved)
    except OSError as e:
        raise StateFileError(f"Cannot write the state file {path}: {e}") from e


def read_state(path: str) -> SubtaskState:
    try:
        fs, resolved = _fs(path)
        with fs.open(resolved, "rb") as f:
            data = f.read()
    except OSError as e:
        raise StateFileError(
            f"Cannot read the state file {path}: {e}; the checkpoint referencing it is unusable"
        ) from e
    try:
        body = json.loads(data)
        if body.get("version") != _FORMAT_VERSION:
            raise ValueError(f"unsupported format version {body.get('version')!r}")
        return SubtaskState(base64.b64decode(body["state"]), bool(body.get("finished", False)))
    except (ValueError, KeyError, TypeError) as e:
        raise StateFileError(f"Corrupt state file {path}: {e}") from e


def delete_tree(path: str) -> None:
    """Remove a directory or file if it exists (missing is fine: cleanup is idempotent)."""
    try:
        fs, resolved = _fs(path)
        if fs.exists(resolved):
            fs.rm(resolved, recursive=True)
    except FileNotFoundError:
        return
    except OSError as e:
        raise StateFileError(f"Cannot delete {path}: {e}") from e


def copy_file(source: str, target: str) -> None:
    try:
        fs, resolved_source = _fs(source)
        fs_target, resolved_target = _fs(target)
        with fs.open(resolved_source, "rb") as f:
            data = f.read()
        fs_target.makedirs(resolved_target.rsplit("/", 1)[0], exist_ok=True)
        with fs_target.open(resolved_target, "wb") as f:
            f.write(data)
    except OSError as e:
        raise StateFileError(f"Cannot copy {source} to {target}: {e}") from e
