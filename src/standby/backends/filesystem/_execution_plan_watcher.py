"""FileSystemExecutionPlanStoreWatcher: reports plans added or removed in ``execution-plans/`` by other processes.

Flink's ``ZooKeeperExecutionPlanStoreWatcher`` (a PathChildrenCache) on files: the directory listing is compared
with the previous one on every change (inotify) or poll tick.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from standby.ha import ExecutionPlanListener, ExecutionPlanStoreWatcher, JobID

from ._state_handle_store import LOCKS_SUFFIX
from ._watcher import DirectoryWatcher, WatchEvent

_log = logging.getLogger(__name__)


class FileSystemExecutionPlanStoreWatcher(ExecutionPlanStoreWatcher):
    def __init__(
        self, plans_dir: Path, boundary: Path, poll_interval: float, use_inotify: bool = True
    ) -> None:
        self._plans_dir = plans_dir
        self._boundary = boundary
        self._poll_interval = poll_interval
        self._use_inotify = use_inotify
        self._watcher: DirectoryWatcher | None = None
        self._listener: ExecutionPlanListener | None = None
        self._known: set[JobID] = set()

    def _list(self) -> set[JobID]:
        try:
            names = os.listdir(self._plans_dir)
        except FileNotFoundError:
            return set()
        job_ids: set[JobID] = set()
        for name in names:
            if name.startswith(".") or name.endswith(LOCKS_SUFFIX) or not JobID.is_valid(name):
                continue
            job_ids.add(JobID(name))
        return job_ids

    async def start(self, listener: ExecutionPlanListener) -> None:
        self._listener = listener
        self._known = self._list()
        self._watcher = DirectoryWatcher(
            self._boundary, self._poll_interval, self._on_events, self._use_inotify
        )
        await self._watcher.start()
        self._watcher.watch(self._plans_dir)

    def _on_events(self, events: list[WatchEvent]) -> None:
        if self._listener is None:
            return
        current = self._list()
        added, removed = current - self._known, self._known - current
        self._known = current
        for job_id in sorted(added):
            self._listener.on_added_execution_plan(job_id)
        for job_id in sorted(removed):
            self._listener.on_removed_execution_plan(job_id)

    async def stop(self) -> None:
        self._listener = None
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            await watcher.close()
