"""FileSystemCheckpointIDCounter: ``jobs/<jobId>/checkpoint_id_counter``, updated under ``flock`` (ZooKeeper: CAS).

The file holds ``{"version":1,"count":<next id>}`` and is replaced atomically; every read-increment-write runs
under an exclusive ``flock`` of ``.checkpoint_id_counter.lock``, so concurrent processes never hand out an id twice.
Writes are fenced like every write of the filesystem backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from pathlib import Path

from standby.ha import INITIAL_CHECKPOINT_ID, CheckpointIDCounter, CorruptHaDataError, JobStatus

from ._files import atomic_write, json_bytes, locked, read_or_none

COUNTER_FILE = "checkpoint_id_counter"
COUNTER_LOCK_FILE = ".checkpoint_id_counter.lock"
COUNTER_FORMAT_VERSION = 1


class FileSystemCheckpointIDCounter(CheckpointIDCounter):
    """The checkpoint id counter of one job in ``job_dir``; starts at 1."""

    def __init__(self, job_dir: Path, fence: Callable[[str], None] | None = None) -> None:
        self._job_dir = job_dir
        self._path = job_dir / COUNTER_FILE
        self._lock_path = job_dir / COUNTER_LOCK_FILE
        self._fence = fence

    @property
    def path(self) -> Path:
        return self._path

    def _check_fence(self, what: str) -> None:
        if self._fence is not None:
            self._fence(what)

    def _read(self) -> int:
        raw = read_or_none(self._path)
        if raw is None:
            return INITIAL_CHECKPOINT_ID
        try:
            body = json.loads(raw)
            if body.get("version") != COUNTER_FORMAT_VERSION:
                raise ValueError(f"unsupported format version {body.get('version')!r}")
            return int(body["count"])
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise CorruptHaDataError(
                f"Cannot read the checkpoint id counter {self._path}: {e}. Restore or remove the file "
                "(removing restarts checkpoint ids at 1)."
            ) from e

    def _write(self, count: int) -> None:
        atomic_write(self._path, json_bytes({"version": COUNTER_FORMAT_VERSION, "count": count}))

    async def start(self) -> None:
        return None

    async def get_and_increment(self) -> int:
        def increment() -> int:
            with locked(self._lock_path):
                self._check_fence(f"increment {self._path}")
                current = self._read()
                self._write(current + 1)
                return current

        return await asyncio.to_thread(increment)

    async def get(self) -> int:
        return await asyncio.to_thread(self._read)

    async def set_count(self, new_id: int) -> None:
        def write() -> None:
            with locked(self._lock_path):
                self._check_fence(f"set {self._path}")
                self._write(new_id)

        await asyncio.to_thread(write)

    async def shutdown(self, status: JobStatus) -> None:
        if not status.is_globally_terminal_state():
            return

        def delete() -> None:
            if not self._job_dir.is_dir():
                return
            with locked(self._lock_path):
                self._check_fence(f"delete {self._path}")
                with contextlib.suppress(FileNotFoundError):
                    self._path.unlink()

        await asyncio.to_thread(delete)

    def __repr__(self) -> str:
        return f"FileSystemCheckpointIDCounter({str(self._path)!r})"
