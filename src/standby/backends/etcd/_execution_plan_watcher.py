"""ExecutionPlanStoreWatcher on etcd: a watch on ``execution-plans/`` reporting plans other JobManagers add or
remove (Flink's ``ZooKeeperExecutionPlanStoreWatcher`` with a ``PathChildrenCache``: CHILD_ADDED/CHILD_REMOVED).

Plans present at start are the baseline (no notification). After a broken watch the prefix is listed again and the
difference to the known plans is reported, so no addition or removal is missed.
"""

from __future__ import annotations

import asyncio
import logging

from standby.ha import ExecutionPlanListener, ExecutionPlanStoreWatcher, JobID

from ._client import EtcdClient, EtcdClientClosedError, EtcdCompactedError, EtcdError
from ._tasks import Backoff, cancel_and_wait

_log = logging.getLogger(__name__)


class EtcdExecutionPlanStoreWatcher(ExecutionPlanStoreWatcher):
    def __init__(self, client: EtcdClient, root: str) -> None:
        self._client = client
        self._prefix = (root.rstrip("/") + "/").encode()
        self._listener: ExecutionPlanListener | None = None
        self._known: set[JobID] = set()
        self._task: asyncio.Task[None] | None = None
        self._started = asyncio.Event()

    def _job_id(self, key: bytes) -> JobID | None:
        rest = key[len(self._prefix) :]
        if not rest or b"/" in rest:
            return None  # a lock key, not a plan
        try:
            return JobID(rest.decode())
        except ValueError:
            _log.warning("Ignoring etcd key %s: not a job id", key)
            return None

    async def start(self, listener: ExecutionPlanListener) -> None:
        if self._task is not None:
            raise RuntimeError("The etcd execution plan watcher was already started")
        self._listener = listener
        self._task = asyncio.create_task(
            self._run(), name=f"etcd-execution-plan-watch {self._prefix.decode()}"
        )
        # wait for the baseline so that plans added after start() are reported
        started = asyncio.ensure_future(self._started.wait())
        done, _ = await asyncio.wait(
            {started, self._task},
            timeout=self._client.settings.connection_timeout * 2,
            return_when="FIRST_COMPLETED",
        )
        if started not in done:
            started.cancel()
            _log.warning("The etcd execution plan watch on %s is not established yet", self._prefix.decode())

    def _diff(self, now: set[JobID]) -> None:
        listener = self._listener
        added, removed = now - self._known, self._known - now
        self._known = now
        if listener is None:
            return
        for job_id in sorted(added):
            listener.on_added_execution_plan(job_id)
        for job_id in sorted(removed):
            listener.on_removed_execution_plan(job_id)

    async def _run(self) -> None:
        backoff = Backoff()
        first = True
        while True:
            try:
                listing = await self._client.get_prefix(self._prefix, keys_only=True)
                now = {j for kv in listing.kvs if (j := self._job_id(kv.key)) is not None}
                if first:
                    self._known, first = now, False
                else:
                    self._diff(now)
                watch = await self._client.watch(
                    self._prefix, prefix=True, start_revision=listing.revision + 1
                )
                self._started.set()
                try:
                    backoff.reset()
                    async for event in watch.events():
                        job_id = self._job_id(event.kv.key)
                        if job_id is None:
                            continue
                        if event.kind == "PUT" and job_id not in self._known:
                            self._diff(self._known | {job_id})
                        elif event.kind == "DELETE" and job_id in self._known:
                            self._diff(self._known - {job_id})
                finally:
                    await watch.cancel()
                await backoff.wait()
            except EtcdClientClosedError:
                return
            except EtcdCompactedError as e:
                _log.info("Execution plan watch missed events (%s); listing again", e)
            except EtcdError as e:
                _log.debug("Execution plan watch interrupted (retrying): %s", e)
                await backoff.wait()

    async def stop(self) -> None:
        task, self._task = self._task, None
        self._listener = None
        await cancel_and_wait(task)
