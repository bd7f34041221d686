"""FileSystemExecutionPlanStoreWatcher: reports plans added or removed in ``execution-plans/`` by other processes.

Flink's ``ZooKeeperExecutionPlanStoreWatcher`` (a PathChildrenCache) on files. inotify events name the entry that
changed, so only those entries are looked at (one ``lstat`` each); the whole directory is listed and compared with
the previous listing on every poll tick (the safety net, and the only source without inotify), on a queue overflow
and on events of the directory itself or of an ancestor standing in for it. Listing on every event made recovering
N plans cost O(N²): each ``get_and_lock`` touches the store's ``.lock`` file, an event in this directory.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from standby.ha import ExecutionPlanListener, ExecutionPlanStoreWatcher, JobID

from ._state_handle_store import LOCKS_SUFFIX
from ._watcher import DirectoryWatcher, WatchEvent

_log = logging.getLogger(__name__)


def _is_plan_name(name: str) -> bool:
    """Whether a directory entry can be a plan's pointer file (not the store lock, a temp file or a lock dir)."""
    return not name.startswith(".") and not name.endswith(LOCKS_SUFFIX) and JobID.is_valid(name)


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
        #: Full directory listings made (tests count them: one per event would be quadratic).
        self.listings = 0

    def _list(self) -> set[JobID]:
        self.listings += 1
        try:
            names = os.listdir(self._plans_dir)
        except FileNotFoundError:
            return set()
        # names already known are plans: only new ones are validated (every poll tick lists the directory)
        listed = set(names)
        current = {job_id for job_id in self._known if job_id in listed}
        current.update(JobID(n) for n in listed.difference(self._known) if _is_plan_name(n))
        return current

    async def start(self, listener: ExecutionPlanListener) -> None:
        self._listener = listener
        self._known = self._list()
        self._watcher = DirectoryWatcher(
            self._boundary, self._poll_interval, self._on_events, self._use_inotify
        )
        await self._watcher.start()
        self._watcher.watch(self._plans_dir)

    def _needs_listing(self, events: list[WatchEvent]) -> bool:
        # [] is a poll tick; an event without a name is about the directory itself (deleted, moved); events of
        # another directory come from an ancestor watched while this one is missing
        return not events or any(e.overflow or not e.name or e.directory != self._plans_dir for e in events)

    def _on_events(self, events: list[WatchEvent]) -> None:
        if self._listener is None:
            return
        if self._needs_listing(events):
            current = self._list()
            added, removed = current - self._known, self._known - current
            self._known = current
        else:
            added, removed = set(), set()
            for name in {e.name for e in events if _is_plan_name(e.name)}:
                job_id = JobID(name)
                # the entry's state now, not the event's kind: a batch may hold its creation and removal
                if os.path.lexists(self._plans_dir / name):
                    if job_id not in self._known:
                        self._known.add(job_id)
                        added.add(job_id)
                elif job_id in self._known:
                    self._known.discard(job_id)
                    removed.add(job_id)
        for job_id in sorted(added):
            self._listener.on_added_execution_plan(job_id)
        for job_id in sorted(removed):
            self._listener.on_removed_execution_plan(job_id)

    async def stop(self) -> None:
        self._listener = None
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            await watcher.close()
