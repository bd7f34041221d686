"""DefaultExecutionPlanStore: submitted execution plans kept in any StateHandleStore (Flink §1.9).

Port of Flink's ``DefaultExecutionPlanStore``, ``ExecutionPlanStoreWatcher`` and ``NoOpExecutionPlanStoreWatcher``:
an instance only overwrites plans it added or recovered itself, watcher events are filtered by that set, global
cleanup fails (to be retried) while another instance holds a lock, and local cleanup only releases the lock.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Callable

from ._errors import (
    CorruptHaDataError,
    StateHandleAlreadyExistError,
    StateHandleNotExistError,
    StateHandleStoreError,
)
from ._execution_plan import ExecutionPlan, ExecutionPlanListener, ExecutionPlanStore
from ._state_handle_store import RetrievableStateHandle, StateHandleStore
from ._types import JobID

_log = logging.getLogger(__name__)

#: Bound of the exists/add/replace loop of ``put_execution_plan`` (Flink loops until it succeeds).
MAX_PUT_ATTEMPTS = 100


class ExecutionPlanStoreWatcher(abc.ABC):
    """Tells a listener about plans added or removed by other JobManagers (Flink's ``ExecutionPlanStoreWatcher``)."""

    @abc.abstractmethod
    async def start(self, listener: ExecutionPlanListener) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None: ...


class NoOpExecutionPlanStoreWatcher(ExecutionPlanStoreWatcher):
    """A watcher that never reports anything (Flink: used by Kubernetes, where only the leader writes plans)."""

    async def start(self, listener: ExecutionPlanListener) -> None:
        return None

    async def stop(self) -> None:
        return None


class DefaultExecutionPlanStore(ExecutionPlanStore, ExecutionPlanListener):
    """The execution plans of a cluster in a ``StateHandleStore``; names come from ``job_id_to_name``."""

    def __init__(
        self,
        store: StateHandleStore[ExecutionPlan],
        watcher: ExecutionPlanStoreWatcher,
        job_id_to_name: Callable[[JobID], str],
        name_to_job_id: Callable[[str], JobID],
    ) -> None:
        self._store = store
        self._watcher = watcher
        self._job_id_to_name = job_id_to_name
        self._name_to_job_id = name_to_job_id
        # Flink's ``synchronized (lock)``: one operation at a time.
        self._lock = asyncio.Lock()
        self._added: set[JobID] = set()
        self._listener: ExecutionPlanListener | None = None
        self._running = False
        self._pending_events: set[asyncio.Task[None]] = set()

    @property
    def state_handle_store(self) -> StateHandleStore[ExecutionPlan]:
        return self._store

    def _verify_is_running(self) -> None:
        if not self._running:
            raise RuntimeError("Not running. Forgot to call start()?")

    async def start(self, listener: ExecutionPlanListener) -> None:
        async with self._lock:
            if self._running:
                return
            self._listener = listener
            await self._watcher.start(self)
            self._running = True

    async def stop(self) -> None:
        async with self._lock:
            if not self._running:
                return
            self._running = False
            _log.info("Stopping DefaultExecutionPlanStore.")
            first: Exception | None = None
            try:
                # FLINK-10011: release every lock so that the next leader can remove our plans.
                await self._store.release_all()
            except Exception as e:
                first = e
            try:
                await self._watcher.stop()
            except Exception as e:
                if first is None:
                    first = e
                else:
                    first.add_note(f"Stopping the watcher failed as well: {e!r}")
            for task in list(self._pending_events):
                task.cancel()  # they would be dropped anyway: the store no longer runs
            if first is not None:
                raise StateHandleStoreError(
                    f"Could not properly stop the DefaultExecutionPlanStore: {first}"
                ) from first

    async def recover_execution_plan(self, job_id: JobID) -> ExecutionPlan | None:
        name = self._job_id_to_name(job_id)
        _log.debug("Recovering execution plan %s from %s.", job_id, self._store)
        async with self._lock:
            self._verify_is_running()
            success = False
            try:
                handle: RetrievableStateHandle[ExecutionPlan]
                try:
                    handle = await self._store.get_and_lock(name)
                except StateHandleNotExistError:
                    success = True
                    return None
                except Exception as e:
                    raise StateHandleStoreError(
                        f"Could not retrieve the submitted execution plan state handle for {name} "
                        f"from the submitted execution plan store: {e}"
                    ) from e
                try:
                    plan = await handle.retrieve_state()
                except (CorruptHaDataError, OSError) as e:
                    raise CorruptHaDataError(
                        f"Could not retrieve submitted ExecutionPlan from state handle under {name} "
                        f"(file {handle.location}). This indicates that the retrieved state handle is broken. "
                        f"Try cleaning the state handle store. Cause: {e}"
                    ) from e
                self._added.add(plan.job_id)
                _log.info("Recovered execution plan %s (%s).", plan.job_id, plan.name)
                success = True
                return plan
            finally:
                if not success:
                    await self._store.release(name)

    async def put_execution_plan(self, plan: ExecutionPlan) -> None:
        job_id = plan.job_id
        name = self._job_id_to_name(job_id)
        _log.debug("Adding execution plan %s to %s.", job_id, self._store)
        for _ in range(MAX_PUT_ATTEMPTS):
            async with self._lock:
                self._verify_is_running()
                current = await self._store.exists(name)
                if not current.is_existing():
                    try:
                        await self._store.add_and_lock(name, plan)
                        self._added.add(job_id)
                        _log.info("Added execution plan %s to %s.", job_id, self._store)
                        return
                    except StateHandleAlreadyExistError:
                        _log.warning("Execution plan %s already exists in %s.", job_id, self._store)
                elif job_id in self._added:
                    try:
                        await self._store.replace(name, current, plan)
                        _log.info("Updated execution plan %s in %s.", job_id, self._store)
                        return
                    except StateHandleNotExistError:
                        _log.warning("Execution plan %s does not exist in %s.", job_id, self._store)
                else:
                    raise RuntimeError(
                        f"Trying to update execution plan {job_id} that you didn't recover_execution_plan() or "
                        "put_execution_plan() yourself before."
                    )
        raise StateHandleStoreError(
            f"Could not put execution plan {job_id} into {self._store}: the entry kept changing "
            f"during {MAX_PUT_ATTEMPTS} attempts"
        )

    async def get_job_ids(self) -> list[JobID]:
        _log.debug("Retrieving all stored job ids from %s.", self._store)
        try:
            names = await self._store.get_all_handles()
        except Exception as e:
            raise StateHandleStoreError(f"Failed to retrieve all job ids from {self._store}: {e}") from e
        job_ids: list[JobID] = []
        for name in names:
            try:
                job_ids.append(self._name_to_job_id(name))
            except Exception:
                _log.warning(
                    "Could not parse job id from %r. This indicates a malformed name.", name, exc_info=True
                )
        return job_ids

    async def global_cleanup(self, job_id: JobID) -> None:
        async with self._lock:
            self._verify_is_running()
            name = self._job_id_to_name(job_id)
            _log.debug("Removing execution plan %s from %s.", job_id, self._store)
            if not await self._store.release_and_try_remove(name):
                # Another JobManager still holds a lock: fail so that the cleanup is retried.
                raise StateHandleStoreError(
                    f"Could not remove execution plan with job id {job_id} from {self._store}."
                )
            self._added.discard(job_id)
            _log.info("Removed execution plan %s from %s.", job_id, self._store)

    async def local_cleanup(self, job_id: JobID) -> None:
        async with self._lock:
            self._verify_is_running()
            await self._store.release(self._job_id_to_name(job_id))

    # -- ExecutionPlanListener (events of the watcher)

    def on_added_execution_plan(self, job_id: JobID) -> None:
        self._on_watcher_event(job_id, added=True)

    def on_removed_execution_plan(self, job_id: JobID) -> None:
        self._on_watcher_event(job_id, added=False)

    def _on_watcher_event(self, job_id: JobID, added: bool) -> None:
        if not self._lock.locked():
            self._forward(job_id, added)
            return

        # Flink handles watcher events under the store's lock: an event about a plan this instance is adding
        # right now is judged after the add finished (and then filtered out as our own).
        async def forward_when_unlocked() -> None:
            async with self._lock:
                self._forward(job_id, added)

        task = asyncio.get_running_loop().create_task(forward_when_unlocked())
        self._pending_events.add(task)
        task.add_done_callback(self._pending_events.discard)

    def _forward(self, job_id: JobID, added: bool) -> None:
        if not self._running or self._listener is None:
            return
        if added == (job_id in self._added):
            return  # added: by this instance (or a false positive); removed: not ours
        try:
            if added:
                self._listener.on_added_execution_plan(job_id)
            else:
                self._listener.on_removed_execution_plan(job_id)
        except Exception:
            _log.exception("Failed to notify the execution plan listener about plan %s.", job_id)

    def __repr__(self) -> str:
        return f"DefaultExecutionPlanStore({self._store!r})"
