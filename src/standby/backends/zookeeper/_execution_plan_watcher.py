"""ZooKeeperExecutionPlanStoreWatcher: tells the execution plan store about plans added or removed by others.

Port of Flink's ``ZooKeeperExecutionPlanStoreWatcher`` (a ``PathChildrenCache`` on the ``execution-plans`` node):
each child that appears is reported as added, each that disappears as removed. As Curator's cache started in
NORMAL mode, the children present at start are reported as added too; ``DefaultExecutionPlanStore`` filters the
events by the plans it added or recovered itself.
"""

from __future__ import annotations

import logging

from standby.ha import ExecutionPlanListener, ExecutionPlanStoreWatcher, JobID

from ._client import ChildrenWatcher, ZooKeeperClient

_log = logging.getLogger(__name__)

__all__ = ["ZooKeeperExecutionPlanStoreWatcher", "job_id_to_name", "name_to_job_id"]


def job_id_to_name(job_id: JobID) -> str:
    """Flink's ``ZooKeeperExecutionPlanStoreUtil.jobIDToName`` (``/<jobId>``; our store names drop the slash)."""
    return str(job_id)


def name_to_job_id(name: str) -> JobID:
    """Inverse of :func:`job_id_to_name`; raises ``ValueError`` for a name that is not a job id."""
    return JobID(name.strip("/"))


class ZooKeeperExecutionPlanStoreWatcher(ExecutionPlanStoreWatcher):
    """Watches the children of the execution plans node."""

    def __init__(self, client: ZooKeeperClient, plans_path: str) -> None:
        self._client = client
        self.plans_path = plans_path
        self._listener: ExecutionPlanListener | None = None
        self._watcher: ChildrenWatcher | None = None
        self._known: set[str] = set()

    async def start(self, listener: ExecutionPlanListener) -> None:
        if self._watcher is not None:
            return
        self._listener = listener
        self._watcher = ChildrenWatcher(self._client, self.plans_path, self._on_children, self._on_error)
        await self._watcher.start()

    async def stop(self) -> None:
        watcher, self._watcher = self._watcher, None
        self._listener = None
        if watcher is not None:
            await watcher.close()

    def _on_children(self, children: list[str]) -> None:
        listener = self._listener
        current = set(children)
        added, removed = current - self._known, self._known - current
        self._known = current
        if listener is None:
            return
        for name in sorted(added):
            job_id = self._job_id(name)
            if job_id is not None:
                listener.on_added_execution_plan(job_id)
        for name in sorted(removed):
            job_id = self._job_id(name)
            if job_id is not None:
                listener.on_removed_execution_plan(job_id)

    def _job_id(self, name: str) -> JobID | None:
        try:
            return name_to_job_id(name)
        except ValueError:
            _log.warning("Ignoring node %s/%s: its name is not a job id", self.plans_path, name)
            return None

    def _on_error(self, error: BaseException) -> None:
        _log.error("Watching the execution plans in %s failed: %s", self.plans_path, error)
