"""Contract suites for the HA recovery stores, run by every backend's tests (Flink's store tests, §6.2-6.4).

A backend's test module provides fixtures and subclasses the suites; pytest collects the subclasses::

    import pytest
    from standby.testing.store_contract import (
        CheckpointIDCounterContract,
        CompletedCheckpointStoreContract,
        ExecutionPlanStoreContract,
        JobResultStoreContract,
        StateHandleStoreContract,
    )

    @pytest.fixture
    async def state_handle_store_factory(my_server):
        stores = []

        async def create(namespace: str, helper: RetrievableStateStorageHelper[Any]) -> StateHandleStore[Any]:
            # A NEW instance (its own lock identity, as a second JobManager would have) on ``namespace``;
            # instances created with the same namespace share their entries. Both may write (fencing passes).
            store = MyStateHandleStore(my_server, root=f"/test/{namespace}", storage=helper)
            stores.append(store)
            return store

        yield create
        ...  # close what was created

    @pytest.fixture
    async def checkpoint_id_counter_factory(my_server):
        async def create(namespace: str) -> CheckpointIDCounter: ...  # a new instance on the shared counter
        yield create

    class TestMyStateHandleStore(StateHandleStoreContract): ...
    class TestMyCheckpointIDCounter(CheckpointIDCounterContract): ...
    class TestMyCompletedCheckpointStore(CompletedCheckpointStoreContract): ...
    class TestMyExecutionPlanStore(ExecutionPlanStoreContract): ...

``JobResultStoreContract`` needs ``job_result_store_factory``: ``async () -> JobResultStore`` (a fresh, empty store).
Namespaces are fresh per test; a fixture may map them to a path, a key prefix or a ConfigMap name.

The suites store payloads through ``TestingStorageHelper`` (in memory), so they check the pointer/lock logic of
the store alone and can count payloads written and discarded. ``InMemoryStateHandleStore`` is a faithful
in-memory store (ZooKeeper semantics) for testing code that uses a ``StateHandleStore``; the suites pass against it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from standby.ha import ApplicationStatus as _ApplicationStatus
from standby.ha import (
    CheckpointIDCounter,
    CheckpointProperties,
    CheckpointsCleaner,
    CheckpointStoreError,
    CompletedCheckpoint,
    CorruptHaDataError,
    DefaultCompletedCheckpointStore,
    DefaultExecutionPlanStore,
    ExecutionPlan,
    ExecutionPlanListener,
    ExecutionPlanStoreWatcher,
    JobID,
    JobResult,
    JobResultEntry,
    JobResultEntryExistsError,
    JobResultStore,
    JobStatus,
    NoOpExecutionPlanStoreWatcher,
    NoSuchJobResultError,
    ResourceVersion,
    RetrievableStateHandle,
    RetrievableStateStorageHelper,
    StateHandleAlreadyExistError,
    StateHandleNotExistError,
    StateHandleStore,
    StateHandleStoreError,
    checkpoint_id_to_name,
    recover_completed_checkpoint_store,
)

T = TypeVar("T")

StateHandleStoreFactory = Callable[
    [str, RetrievableStateStorageHelper[Any]], Awaitable[StateHandleStore[Any]]
]
CheckpointIDCounterFactory = Callable[[str], Awaitable[CheckpointIDCounter]]
JobResultStoreFactory = Callable[[], Awaitable[JobResultStore]]

#: A state whose pointer ``TestingStorageHelper`` serializes to bytes it cannot read back (a corrupted entry).
CORRUPT_POINTER = "<corrupt pointer>"


class TestingDiscardError(RuntimeError):
    """Raised by ``TestingStateHandle.discard_state`` while ``TestingStorageHelper.fail_discard`` is set."""

    __test__ = False


class TestingStateHandle(RetrievableStateHandle[T]):
    """An in-memory payload of ``TestingStorageHelper``."""

    __test__ = False

    def __init__(self, helper: TestingStorageHelper[T], handle_id: int, state: T) -> None:
        self._helper = helper
        self.handle_id = handle_id
        self.state = state
        self.discard_calls = 0

    async def retrieve_state(self) -> T:
        if self._helper.fail_retrieve or self.handle_id in self._helper.discarded:
            raise CorruptHaDataError(f"testing payload {self.location} cannot be read")
        return self.state

    async def discard_state(self) -> None:
        self.discard_calls += 1
        if self._helper.fail_discard:
            raise TestingDiscardError(f"discarding {self.location} failed (as the test asked)")
        self._helper.discarded.add(self.handle_id)

    @property
    def state_size(self) -> int:
        return 1

    @property
    def location(self) -> str:
        return f"testing://payload/{self.handle_id}"

    def __repr__(self) -> str:
        return f"TestingStateHandle({self.handle_id}, {self.state!r})"


class TestingStorageHelper(RetrievableStateStorageHelper[T]):
    """Payloads in memory, with counts of what was stored and discarded and switches to make steps fail.

    Pointers are ``{"version":1,"testing":<id>}``; the state ``CORRUPT_POINTER`` gets a pointer that cannot be read.
    """

    __test__ = False

    def __init__(self) -> None:
        self.handles: dict[int, TestingStateHandle[T]] = {}
        self.discarded: set[int] = set()
        self.fail_discard = False
        self.fail_retrieve = False
        self._ids = itertools.count(1)

    async def store(self, state: T) -> TestingStateHandle[T]:
        handle = TestingStateHandle(self, next(self._ids), state)
        self.handles[handle.handle_id] = handle
        return handle

    def serialize_handle(self, handle: RetrievableStateHandle[T]) -> bytes:
        if not isinstance(handle, TestingStateHandle):
            raise TypeError(f"not a testing handle: {handle!r}")
        if handle.state == CORRUPT_POINTER:
            return b"\x00not a pointer"
        return json.dumps({"version": 1, "testing": handle.handle_id}).encode()

    def deserialize_handle(self, data: bytes) -> TestingStateHandle[T]:
        try:
            body = json.loads(data)
            return self.handles[int(body["testing"])]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
            raise CorruptHaDataError(f"cannot read testing pointer {data[:40]!r}: {e}") from e

    @property
    def live_states(self) -> list[T]:
        """States stored and not discarded, in storing order."""
        return [h.state for i, h in sorted(self.handles.items()) if i not in self.discarded]


# ------------------------------------------------------------------------------------------ in-memory store


@dataclass
class _MemoryEntry:
    pointer: bytes
    version: int = 0
    #: None = marked for deletion (ZooKeeper: the ``locks`` child was deleted)
    locks: set[str] | None = field(default_factory=set)


class InMemoryStateHandleStore(StateHandleStore[T]):
    """A ``StateHandleStore`` in memory with ZooKeeper's semantics; instances sharing ``entries`` see each other.

    ``entries`` is the shared namespace (one dict per namespace); each instance has its own lock id.
    """

    def __init__(
        self, storage: RetrievableStateStorageHelper[T], entries: dict[str, _MemoryEntry] | None = None
    ):
        self._storage = storage
        self._entries: dict[str, _MemoryEntry] = entries if entries is not None else {}
        self.lock_id = uuid.uuid4().hex

    @staticmethod
    def new_namespace() -> dict[str, _MemoryEntry]:
        return {}

    def _live(self, name: str) -> _MemoryEntry | None:
        entry = self._entries.get(name)
        return entry if entry is not None and entry.locks is not None else None

    async def add_and_lock(self, name: str, state: T) -> RetrievableStateHandle[T]:
        existing = self._entries.get(name)
        if existing is not None:
            if existing.locks is not None:
                raise StateHandleAlreadyExistError(f"Entry {name!r} already exists in {self}")
            await self.release_and_try_remove(name)  # finish the removal of a marked entry
        handle = await self._storage.store(state)
        if name in self._entries:  # added concurrently while the payload was written
            await handle.discard_state()
            raise StateHandleAlreadyExistError(f"Entry {name!r} already exists in {self}")
        self._entries[name] = _MemoryEntry(self._storage.serialize_handle(handle), 0, {self.lock_id})
        return handle

    async def replace(self, name: str, expected_version: ResourceVersion, state: T) -> None:
        handle = await self._storage.store(state)
        entry = self._live(name)
        if entry is None:
            await handle.discard_state()
            raise StateHandleNotExistError(f"Entry {name!r} does not exist in {self}")
        if entry.version != expected_version.value:
            await handle.discard_state()
            raise StateHandleStoreError(
                f"Entry {name!r} has version {entry.version}, expected {expected_version.value}"
            )
        old_pointer = entry.pointer
        entry.pointer = self._storage.serialize_handle(handle)
        entry.version += 1
        try:
            await self._storage.deserialize_handle(old_pointer).discard_state()
        except CorruptHaDataError:
            pass

    async def exists(self, name: str) -> ResourceVersion:
        entry = self._live(name)
        return ResourceVersion(entry.version) if entry is not None else ResourceVersion.not_existing()

    async def get_and_lock(self, name: str) -> RetrievableStateHandle[T]:
        entry = self._live(name)
        if entry is None or entry.locks is None:
            raise StateHandleNotExistError(f"Entry {name!r} does not exist in {self}")
        entry.locks.add(self.lock_id)
        try:
            return self._storage.deserialize_handle(entry.pointer)
        except Exception:
            entry.locks.discard(self.lock_id)
            raise

    async def get_all_and_lock(self) -> list[tuple[RetrievableStateHandle[T], str]]:
        result: list[tuple[RetrievableStateHandle[T], str]] = []
        for name in sorted(self._entries):
            try:
                result.append((await self.get_and_lock(name), name))
            except StateHandleNotExistError:
                continue
            except CorruptHaDataError:
                continue
        return result

    async def get_all_handles(self) -> list[str]:
        return sorted(name for name in self._entries if self._live(name) is not None)

    async def release_and_try_remove(self, name: str) -> bool:
        entry = self._entries.get(name)
        if entry is None:
            return True
        handle: RetrievableStateHandle[T] | None
        try:
            handle = self._storage.deserialize_handle(entry.pointer)
        except CorruptHaDataError:
            handle = None
        if entry.locks is not None:
            entry.locks.discard(self.lock_id)
            if entry.locks:
                return False
            entry.locks = None  # marked for deletion
        if handle is not None:
            await handle.discard_state()
        if self._entries.get(name) is entry:
            del self._entries[name]
        return True

    async def clear_entries(self) -> None:
        self._entries.clear()

    async def release(self, name: str) -> None:
        entry = self._entries.get(name)
        if entry is not None and entry.locks is not None:
            entry.locks.discard(self.lock_id)

    async def release_all(self) -> None:
        for name in list(self._entries):
            await self.release(name)

    def lock_holders(self, name: str) -> set[str]:
        entry = self._entries.get(name)
        return set(entry.locks) if entry is not None and entry.locks is not None else set()

    def __repr__(self) -> str:
        return f"InMemoryStateHandleStore(lock_id={self.lock_id[:8]})"


# ------------------------------------------------------------------------------------------ helpers


def _namespace() -> str:
    return f"ns-{uuid.uuid4().hex[:12]}"


def make_checkpoint(
    checkpoint_id: int,
    job_id: JobID | None = None,
    properties: CheckpointProperties | None = None,
) -> CompletedCheckpoint:
    """A small completed checkpoint for tests."""
    return CompletedCheckpoint(
        job_id=job_id or JobID("0" * 31 + "1"),
        checkpoint_id=checkpoint_id,
        timestamp_ms=1000 + checkpoint_id,
        completion_timestamp_ms=2000 + checkpoint_id,
        task_states={"0": f"memory://checkpoints/chk-{checkpoint_id}/0"},
        properties=properties or CheckpointProperties.checkpoint(),
    )


def make_job_result(job_id: JobID | None = None, status: _ApplicationStatus | None = None) -> JobResult:
    return JobResult(
        job_id=job_id or JobID.generate(),
        name="contract job",
        application_status=status or _ApplicationStatus.SUCCEEDED,
        net_runtime_ms=42,
        start_time_ms=1,
        end_time_ms=43,
    )


class RecordingCheckpointsCleaner(CheckpointsCleaner):
    """Records every ``clean_checkpoint`` call as (checkpoint id, discard)."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, bool]] = []

    async def clean_checkpoint(self, checkpoint: CompletedCheckpoint, discard: bool) -> None:
        self.calls.append((checkpoint.checkpoint_id, discard))


class RecordingExecutionPlanListener(ExecutionPlanListener):
    def __init__(self) -> None:
        self.added: list[JobID] = []
        self.removed: list[JobID] = []

    def on_added_execution_plan(self, job_id: JobID) -> None:
        self.added.append(job_id)

    def on_removed_execution_plan(self, job_id: JobID) -> None:
        self.removed.append(job_id)


class ManualExecutionPlanStoreWatcher(ExecutionPlanStoreWatcher):
    """A watcher whose events the test triggers (``added``/``removed``)."""

    def __init__(self) -> None:
        self.listener: ExecutionPlanListener | None = None
        self.started = 0
        self.stopped = 0

    async def start(self, listener: ExecutionPlanListener) -> None:
        self.listener = listener
        self.started += 1

    async def stop(self) -> None:
        self.stopped += 1

    def added(self, job_id: JobID) -> None:
        assert self.listener is not None, "watcher not started"
        self.listener.on_added_execution_plan(job_id)

    def removed(self, job_id: JobID) -> None:
        assert self.listener is not None, "watcher not started"
        self.listener.on_removed_execution_plan(job_id)


def _plan(job_id: JobID, name: str = "plan") -> ExecutionPlan:
    return ExecutionPlan(job_id=job_id, name=name, parallelism=2, entry="example:Job", args=("--n", "3"))


def _job_id_from_name(name: str) -> JobID:
    return JobID(name.lstrip("/"))


# ------------------------------------------------------------------------------------------ StateHandleStore


class StateHandleStoreContract:
    """Backend-neutral cases of Flink's ZooKeeperStateHandleStoreTest and KubernetesStateHandleStoreTest.

    Needs the fixture ``state_handle_store_factory``: ``async (namespace, helper) -> StateHandleStore``.
    """

    async def _two(
        self, factory: StateHandleStoreFactory
    ) -> tuple[StateHandleStore[Any], StateHandleStore[Any], TestingStorageHelper[Any]]:
        helper: TestingStorageHelper[Any] = TestingStorageHelper()
        namespace = _namespace()
        return await factory(namespace, helper), await factory(namespace, helper), helper

    async def test_add_and_lock(self, state_handle_store_factory: StateHandleStoreFactory) -> None:
        store, other, _helper = await self._two(state_handle_store_factory)
        handle = await store.add_and_lock("entry", "state-1")
        assert await handle.retrieve_state() == "state-1"
        assert (await store.exists("entry")).is_existing()
        assert await store.get_all_handles() == ["entry"]
        assert await (await other.get_and_lock("entry")).retrieve_state() == "state-1"
        # the adding instance holds a lock: nobody else may remove the entry
        assert await other.release_and_try_remove("entry") is False
        assert (await store.exists("entry")).is_existing()

    async def test_add_existing_raises_and_discards_only_the_new_payload(
        self, state_handle_store_factory: StateHandleStoreFactory
    ) -> None:
        store, other, helper = await self._two(state_handle_store_factory)
        await store.add_and_lock("entry", "first")
        with pytest.raises(StateHandleAlreadyExistError):
            await other.add_and_lock("entry", "second")
        assert helper.live_states == ["first"]
        assert await (await other.get_and_lock("entry")).retrieve_state() == "first"

    async def test_replace(self, state_handle_store_factory: StateHandleStoreFactory) -> None:
        store, _, helper = await self._two(state_handle_store_factory)
        await store.add_and_lock("entry", "old")
        version = await store.exists("entry")
        await store.replace("entry", version, "new")
        assert await (await store.get_and_lock("entry")).retrieve_state() == "new"
        new_version = await store.exists("entry")
        assert new_version.is_existing()
        assert new_version != version
        assert helper.live_states == ["new"]

    async def test_replace_missing_raises_not_exist_and_discards_new_payload(
        self, state_handle_store_factory: StateHandleStoreFactory
    ) -> None:
        store, _, helper = await self._two(state_handle_store_factory)
        with pytest.raises(StateHandleNotExistError):
            await store.replace("missing", ResourceVersion(0), "state")
        assert helper.live_states == []
        assert not (await store.exists("missing")).is_existing()

    async def test_exists_of_missing_entry(self, state_handle_store_factory: StateHandleStoreFactory) -> None:
        store, _, _ = await self._two(state_handle_store_factory)
        assert await store.exists("missing") == ResourceVersion.not_existing()

    async def test_get_missing_raises_not_exist(
        self, state_handle_store_factory: StateHandleStoreFactory
    ) -> None:
        store, _, _ = await self._two(state_handle_store_factory)
        with pytest.raises(StateHandleNotExistError):
            await store.get_and_lock("missing")

    async def test_get_all_and_lock(self, state_handle_store_factory: StateHandleStoreFactory) -> None:
        store, other, _ = await self._two(state_handle_store_factory)
        for name in ("c", "a", "b"):
            await store.add_and_lock(name, f"state-{name}")
        entries = await other.get_all_and_lock()
        by_name = {name: await handle.retrieve_state() for handle, name in entries}
        assert by_name == {"a": "state-a", "b": "state-b", "c": "state-c"}
        assert sorted(await other.get_all_handles()) == ["a", "b", "c"]
        # get_all_and_lock locked every entry for ``other``
        store_removed = [await store.release_and_try_remove(n) for n in ("a", "b", "c")]
        assert store_removed == [False, False, False]

    async def test_corrupted_pointer_is_skipped_by_get_all_and_lock(
        self, state_handle_store_factory: StateHandleStoreFactory
    ) -> None:
        store, other, _ = await self._two(state_handle_store_factory)
        await store.add_and_lock("good", "state")
        await store.add_and_lock("bad", CORRUPT_POINTER)
        entries = await other.get_all_and_lock()
        assert [name for _, name in entries] == ["good"]
        with pytest.raises(CorruptHaDataError):
            await other.get_and_lock("bad")
        # a failed get_and_lock must not leave a lock of ``other`` behind
        await store.release("bad")
        assert await other.release_and_try_remove("bad") is True

    async def test_release_and_try_remove(self, state_handle_store_factory: StateHandleStoreFactory) -> None:
        store, _, helper = await self._two(state_handle_store_factory)
        await store.add_and_lock("entry", "state")
        assert await store.release_and_try_remove("entry") is True
        assert not (await store.exists("entry")).is_existing()
        assert await store.get_all_handles() == []
        assert helper.live_states == []
        with pytest.raises(StateHandleNotExistError):
            await store.get_and_lock("entry")

    async def test_release_and_try_remove_is_false_while_another_instance_holds_a_lock(
        self, state_handle_store_factory: StateHandleStoreFactory
    ) -> None:
        store, other, helper = await self._two(state_handle_store_factory)
        await store.add_and_lock("entry", "state")
        await other.get_and_lock("entry")
        assert await store.release_and_try_remove("entry") is False
        assert (await store.exists("entry")).is_existing()
        assert helper.live_states == ["state"]
        await other.release("entry")
        assert await store.release_and_try_remove("entry") is True
        assert helper.live_states == []

    async def test_release_and_try_remove_of_missing_entry_is_true(
        self, state_handle_store_factory: StateHandleStoreFactory
    ) -> None:
        store, _, _ = await self._two(state_handle_store_factory)
        assert await store.release_and_try_remove("missing") is True
        await store.add_and_lock("entry", "state")
        assert await store.release_and_try_remove("entry") is True
        assert await store.release_and_try_remove("entry") is True

    async def test_failed_discard_leaves_entry_marked_for_deletion_and_removal_is_idempotent(
        self, state_handle_store_factory: StateHandleStoreFactory
    ) -> None:
        store, other, helper = await self._two(state_handle_store_factory)
        await store.add_and_lock("entry", "state")
        helper.fail_discard = True
        with pytest.raises(TestingDiscardError):
            await store.release_and_try_remove("entry")
        # marked for deletion: invisible, although not removed yet
        assert await store.exists("entry") == ResourceVersion.not_existing()
        assert await other.exists("entry") == ResourceVersion.not_existing()
        assert "entry" not in await other.get_all_handles()
        with pytest.raises(StateHandleNotExistError):
            await other.get_and_lock("entry")
        helper.fail_discard = False
        assert await other.release_and_try_remove("entry") is True
        assert helper.live_states == []

    async def test_add_over_entry_marked_for_deletion(
        self, state_handle_store_factory: StateHandleStoreFactory
    ) -> None:
        store, other, helper = await self._two(state_handle_store_factory)
        await store.add_and_lock("entry", "old")
        helper.fail_discard = True
        with pytest.raises(TestingDiscardError):
            await store.release_and_try_remove("entry")
        helper.fail_discard = False
        await other.add_and_lock("entry", "new")
        assert await (await store.get_and_lock("entry")).retrieve_state() == "new"
        assert helper.live_states == ["new"]

    async def test_clear_entries(self, state_handle_store_factory: StateHandleStoreFactory) -> None:
        store, other, helper = await self._two(state_handle_store_factory)
        await store.add_and_lock("a", "state-a")
        await store.add_and_lock("b", "state-b")
        await other.get_and_lock("a")
        await store.clear_entries()
        assert await store.get_all_handles() == []
        assert await other.get_all_handles() == []
        assert not (await other.exists("a")).is_existing()
        # Flink: clearEntries removes the pointers only; payloads are not discarded
        assert helper.live_states == ["state-a", "state-b"]

    async def test_release_lets_another_instance_remove(
        self, state_handle_store_factory: StateHandleStoreFactory
    ) -> None:
        store, other, _ = await self._two(state_handle_store_factory)
        await store.add_and_lock("entry", "state")
        assert await other.release_and_try_remove("entry") is False
        await store.release("entry")
        assert await other.release_and_try_remove("entry") is True

    async def test_release_all_lets_another_instance_remove(
        self, state_handle_store_factory: StateHandleStoreFactory
    ) -> None:
        store, other, _ = await self._two(state_handle_store_factory)
        await store.add_and_lock("a", "state-a")
        await store.add_and_lock("b", "state-b")
        await store.release_all()
        assert await other.release_and_try_remove("a") is True
        assert await other.release_and_try_remove("b") is True
        assert await store.get_all_handles() == []

    async def test_release_is_idempotent(self, state_handle_store_factory: StateHandleStoreFactory) -> None:
        store, _, _ = await self._two(state_handle_store_factory)
        await store.release("missing")
        await store.add_and_lock("entry", "state")
        await store.release("entry")
        await store.release("entry")
        await store.release_all()
        assert (await store.exists("entry")).is_existing()

    async def test_namespaces_are_isolated(self, state_handle_store_factory: StateHandleStoreFactory) -> None:
        helper: TestingStorageHelper[Any] = TestingStorageHelper()
        first = await state_handle_store_factory(_namespace(), helper)
        second = await state_handle_store_factory(_namespace(), helper)
        await first.add_and_lock("entry", "state")
        assert await second.get_all_handles() == []
        assert not (await second.exists("entry")).is_existing()


# ------------------------------------------------------------------------------------------ CheckpointIDCounter


class CheckpointIDCounterContract:
    """Flink's ``CheckpointIDCounterTestBase``. Needs ``checkpoint_id_counter_factory``: ``async (namespace)``."""

    async def test_counter_starts_at_one(
        self, checkpoint_id_counter_factory: CheckpointIDCounterFactory
    ) -> None:
        counter = await checkpoint_id_counter_factory(_namespace())
        await counter.start()
        assert await counter.get() == 1
        assert await counter.get_and_increment() == 1
        assert await counter.get() == 2

    async def test_get_and_increment_is_monotonic(
        self, checkpoint_id_counter_factory: CheckpointIDCounterFactory
    ) -> None:
        counter = await checkpoint_id_counter_factory(_namespace())
        await counter.start()
        assert [await counter.get_and_increment() for _ in range(10)] == list(range(1, 11))

    async def test_concurrent_increments_of_two_instances_are_unique(
        self, checkpoint_id_counter_factory: CheckpointIDCounterFactory
    ) -> None:
        namespace = _namespace()
        first = await checkpoint_id_counter_factory(namespace)
        second = await checkpoint_id_counter_factory(namespace)
        await first.start()
        await second.start()
        ids = await asyncio.gather(
            *(c.get_and_increment() for _ in range(15) for c in (first, second)),
        )
        assert sorted(ids) == list(range(1, 31))
        assert await first.get() == 31
        assert await second.get() == 31

    async def test_set_count(self, checkpoint_id_counter_factory: CheckpointIDCounterFactory) -> None:
        counter = await checkpoint_id_counter_factory(_namespace())
        await counter.start()
        await counter.set_count(1337)
        assert await counter.get() == 1337
        assert await counter.get_and_increment() == 1337
        assert await counter.get() == 1338

    @pytest.mark.parametrize("status", [JobStatus.FINISHED, JobStatus.CANCELED, JobStatus.FAILED])
    async def test_shutdown_in_globally_terminal_state_deletes_the_counter(
        self, checkpoint_id_counter_factory: CheckpointIDCounterFactory, status: JobStatus
    ) -> None:
        namespace = _namespace()
        counter = await checkpoint_id_counter_factory(namespace)
        await counter.start()
        for _ in range(3):
            await counter.get_and_increment()
        await counter.shutdown(status)
        recreated = await checkpoint_id_counter_factory(namespace)
        await recreated.start()
        assert await recreated.get() == 1

    @pytest.mark.parametrize("status", [JobStatus.SUSPENDED, JobStatus.RUNNING, JobStatus.FAILING])
    async def test_shutdown_in_other_states_keeps_the_counter(
        self, checkpoint_id_counter_factory: CheckpointIDCounterFactory, status: JobStatus
    ) -> None:
        namespace = _namespace()
        counter = await checkpoint_id_counter_factory(namespace)
        await counter.start()
        for _ in range(3):
            await counter.get_and_increment()
        await counter.shutdown(status)
        recreated = await checkpoint_id_counter_factory(namespace)
        await recreated.start()
        assert await recreated.get() == 4


# ------------------------------------------------------------------------------------------ JobResultStore


class JobResultStoreContract:
    """Flink's ``JobResultStoreContractTest``. Needs ``job_result_store_factory``: ``async () -> JobResultStore``."""

    async def test_create_dirty_result_twice_fails(
        self, job_result_store_factory: JobResultStoreFactory
    ) -> None:
        store = await job_result_store_factory()
        entry = JobResultEntry(make_job_result())
        await store.create_dirty_result(entry)
        with pytest.raises(JobResultEntryExistsError):
            await store.create_dirty_result(entry)

    async def test_create_dirty_result_after_clean_fails(
        self, job_result_store_factory: JobResultStoreFactory
    ) -> None:
        store = await job_result_store_factory()
        entry = JobResultEntry(make_job_result())
        await store.create_dirty_result(entry)
        await store.mark_result_as_clean(entry.job_id)
        with pytest.raises(JobResultEntryExistsError):
            await store.create_dirty_result(entry)

    async def test_mark_clean_twice_is_idempotent(
        self, job_result_store_factory: JobResultStoreFactory
    ) -> None:
        store = await job_result_store_factory()
        entry = JobResultEntry(make_job_result())
        await store.create_dirty_result(entry)
        await store.mark_result_as_clean(entry.job_id)
        await store.mark_result_as_clean(entry.job_id)
        assert await store.has_clean_job_result_entry(entry.job_id) or not await store.has_job_result_entry(
            entry.job_id
        )

    async def test_mark_clean_of_unknown_job_fails(
        self, job_result_store_factory: JobResultStoreFactory
    ) -> None:
        store = await job_result_store_factory()
        with pytest.raises(NoSuchJobResultError):
            await store.mark_result_as_clean(JobID.generate())

    async def test_has_entries_of_dirty_job(self, job_result_store_factory: JobResultStoreFactory) -> None:
        store = await job_result_store_factory()
        entry = JobResultEntry(make_job_result())
        await store.create_dirty_result(entry)
        assert await store.has_job_result_entry(entry.job_id)
        assert await store.has_dirty_job_result_entry(entry.job_id)
        assert not await store.has_clean_job_result_entry(entry.job_id)

    async def test_has_entries_of_clean_job(self, job_result_store_factory: JobResultStoreFactory) -> None:
        # Flink's contract test runs against stores that keep clean entries (delete-on-commit=false)
        store = await job_result_store_factory()
        entry = JobResultEntry(make_job_result())
        await store.create_dirty_result(entry)
        await store.mark_result_as_clean(entry.job_id)
        assert not await store.has_dirty_job_result_entry(entry.job_id)
        assert await store.has_clean_job_result_entry(entry.job_id)
        assert await store.has_job_result_entry(entry.job_id)

    async def test_has_entries_of_unknown_job(self, job_result_store_factory: JobResultStoreFactory) -> None:
        store = await job_result_store_factory()
        job_id = JobID.generate()
        assert not await store.has_job_result_entry(job_id)
        assert not await store.has_dirty_job_result_entry(job_id)
        assert not await store.has_clean_job_result_entry(job_id)

    async def test_get_dirty_results_of_empty_store(
        self, job_result_store_factory: JobResultStoreFactory
    ) -> None:
        store = await job_result_store_factory()
        assert await store.get_dirty_results() == []

    async def test_get_dirty_results_with_one_entry(
        self, job_result_store_factory: JobResultStoreFactory
    ) -> None:
        store = await job_result_store_factory()
        result = make_job_result()
        await store.create_dirty_result(JobResultEntry(result))
        assert await store.get_dirty_results() == [result]

    async def test_get_dirty_results_returns_only_dirty_ones(
        self, job_result_store_factory: JobResultStoreFactory
    ) -> None:
        store = await job_result_store_factory()
        dirty = make_job_result()
        clean = make_job_result(status=_ApplicationStatus.CANCELED)
        await store.create_dirty_result(JobResultEntry(dirty))
        await store.create_dirty_result(JobResultEntry(clean))
        await store.mark_result_as_clean(clean.job_id)
        assert await store.get_dirty_results() == [dirty]


# ------------------------------------------------------------------------------------------ checkpoints


class CompletedCheckpointStoreContract:
    """``DefaultCompletedCheckpointStore`` over the backend's ``StateHandleStore`` (needs its factory)."""

    async def _store(
        self, factory: StateHandleStoreFactory, namespace: str, helper: TestingStorageHelper[Any]
    ) -> StateHandleStore[CompletedCheckpoint]:
        return await factory(namespace, helper)

    async def test_add_subsumes_and_cleans_the_oldest(
        self, state_handle_store_factory: StateHandleStoreFactory
    ) -> None:
        helper: TestingStorageHelper[Any] = TestingStorageHelper()
        handles = await self._store(state_handle_store_factory, _namespace(), helper)
        store = DefaultCompletedCheckpointStore(1, handles)
        cleaner = RecordingCheckpointsCleaner()
        assert await store.add_checkpoint_and_subsume_oldest_one(make_checkpoint(1), cleaner) is None
        subsumed = await store.add_checkpoint_and_subsume_oldest_one(make_checkpoint(2), cleaner)
        assert subsumed is not None
        assert subsumed.checkpoint_id == 1
        assert [c.checkpoint_id for c in store.get_all_checkpoints()] == [2]
        assert cleaner.calls == [(1, True)]
        assert await handles.get_all_handles() == [checkpoint_id_to_name(2)]
        assert [c.checkpoint_id for c in helper.live_states] == [2]

    async def test_failed_add_keeps_the_old_checkpoints(
        self, state_handle_store_factory: StateHandleStoreFactory
    ) -> None:
        helper: TestingStorageHelper[Any] = TestingStorageHelper()
        handles = await self._store(state_handle_store_factory, _namespace(), helper)
        store = DefaultCompletedCheckpointStore(1, handles)
        cleaner = RecordingCheckpointsCleaner()
        await store.add_checkpoint_and_subsume_oldest_one(make_checkpoint(1), cleaner)
        with pytest.raises(StateHandleAlreadyExistError):
            await store.add_checkpoint_and_subsume_oldest_one(make_checkpoint(1), cleaner)
        assert [c.checkpoint_id for c in store.get_all_checkpoints()] == [1]
        assert cleaner.calls == []

    async def test_recovery_is_sorted_by_name_and_locks(
        self, state_handle_store_factory: StateHandleStoreFactory
    ) -> None:
        helper: TestingStorageHelper[Any] = TestingStorageHelper()
        namespace = _namespace()
        writer = await self._store(state_handle_store_factory, namespace, helper)
        for checkpoint_id in (3, 1, 10, 2):
            await writer.add_and_lock(checkpoint_id_to_name(checkpoint_id), make_checkpoint(checkpoint_id))
        await writer.release_all()
        reader = await self._store(state_handle_store_factory, namespace, helper)
        recovered = await recover_completed_checkpoint_store(reader, 5)
        assert [c.checkpoint_id for c in recovered.get_all_checkpoints()] == [1, 2, 3, 10]
        assert recovered.get_latest_checkpoint_id() == 10
        # the recovering instance holds the locks now
        assert await writer.release_and_try_remove(checkpoint_id_to_name(1)) is False

    async def test_unreadable_checkpoint_fails_recovery_naming_it(
        self, state_handle_store_factory: StateHandleStoreFactory
    ) -> None:
        helper: TestingStorageHelper[Any] = TestingStorageHelper()
        namespace = _namespace()
        writer = await self._store(state_handle_store_factory, namespace, helper)
        await writer.add_and_lock(checkpoint_id_to_name(7), make_checkpoint(7))
        helper.fail_retrieve = True
        reader = await self._store(state_handle_store_factory, namespace, helper)
        with pytest.raises(CheckpointStoreError) as caught:
            await recover_completed_checkpoint_store(reader, 1)
        message = str(caught.value)
        assert "checkpoint 7" in message
        assert "testing://payload/" in message

    @pytest.mark.parametrize("status", [JobStatus.FINISHED, JobStatus.CANCELED, JobStatus.FAILED])
    async def test_shutdown_globally_terminal_removes_everything(
        self, state_handle_store_factory: StateHandleStoreFactory, status: JobStatus
    ) -> None:
        helper: TestingStorageHelper[Any] = TestingStorageHelper()
        handles = await self._store(state_handle_store_factory, _namespace(), helper)
        store = DefaultCompletedCheckpointStore(3, handles)
        cleaner = RecordingCheckpointsCleaner()
        for checkpoint_id in (1, 2, 3):
            await store.add_checkpoint_and_subsume_oldest_one(make_checkpoint(checkpoint_id), cleaner)
        await store.shutdown(status, cleaner)
        assert cleaner.calls == [(1, True), (2, True), (3, True)]
        assert await handles.get_all_handles() == []
        assert store.get_all_checkpoints() == []
        assert helper.live_states == []

    async def test_shutdown_suspended_keeps_the_checkpoints_for_the_next_leader(
        self, state_handle_store_factory: StateHandleStoreFactory
    ) -> None:
        helper: TestingStorageHelper[Any] = TestingStorageHelper()
        namespace = _namespace()
        handles = await self._store(state_handle_store_factory, namespace, helper)
        store = DefaultCompletedCheckpointStore(3, handles)
        cleaner = RecordingCheckpointsCleaner()
        for checkpoint_id in (1, 2):
            await store.add_checkpoint_and_subsume_oldest_one(make_checkpoint(checkpoint_id), cleaner)
        await store.shutdown(JobStatus.SUSPENDED, cleaner)
        assert cleaner.calls == []
        assert store.get_all_checkpoints() == []
        successor = await self._store(state_handle_store_factory, namespace, helper)
        recovered = await recover_completed_checkpoint_store(successor, 3)
        assert [c.checkpoint_id for c in recovered.get_all_checkpoints()] == [1, 2]
        # the suspended store released its locks: the successor can subsume them
        assert await successor.release_and_try_remove(checkpoint_id_to_name(1)) is True

    @pytest.mark.parametrize("status", [JobStatus.FINISHED, JobStatus.SUSPENDED])
    async def test_add_after_shutdown_fails(
        self, state_handle_store_factory: StateHandleStoreFactory, status: JobStatus
    ) -> None:
        helper: TestingStorageHelper[Any] = TestingStorageHelper()
        store = DefaultCompletedCheckpointStore(
            1, await self._store(state_handle_store_factory, _namespace(), helper)
        )
        cleaner = RecordingCheckpointsCleaner()
        await store.shutdown(status, cleaner)
        with pytest.raises(RuntimeError, match="shutdown"):
            await store.add_checkpoint_and_subsume_oldest_one(make_checkpoint(1), cleaner)


# ------------------------------------------------------------------------------------------ execution plans


class ExecutionPlanStoreContract:
    """``DefaultExecutionPlanStore`` over the backend's ``StateHandleStore``, two instances = two JobManagers."""

    async def _stores(
        self, factory: StateHandleStoreFactory
    ) -> tuple[DefaultExecutionPlanStore, DefaultExecutionPlanStore, TestingStorageHelper[Any]]:
        helper: TestingStorageHelper[Any] = TestingStorageHelper()
        namespace = _namespace()
        stores = []
        for _ in range(2):
            store = DefaultExecutionPlanStore(
                await factory(namespace, helper), NoOpExecutionPlanStoreWatcher(), str, _job_id_from_name
            )
            await store.start(RecordingExecutionPlanListener())
            stores.append(store)
        return stores[0], stores[1], helper

    async def test_recover_missing_plan_is_none(
        self, state_handle_store_factory: StateHandleStoreFactory
    ) -> None:
        store, _, _ = await self._stores(state_handle_store_factory)
        assert await store.recover_execution_plan(JobID.generate()) is None

    async def test_put_then_recover_in_another_instance(
        self, state_handle_store_factory: StateHandleStoreFactory
    ) -> None:
        store, other, _ = await self._stores(state_handle_store_factory)
        plan = _plan(JobID.generate())
        await store.put_execution_plan(plan)
        assert await other.get_job_ids() == [plan.job_id]
        assert await other.recover_execution_plan(plan.job_id) == plan

    async def test_put_updates_own_plan(self, state_handle_store_factory: StateHandleStoreFactory) -> None:
        store, other, helper = await self._stores(state_handle_store_factory)
        job_id = JobID.generate()
        await store.put_execution_plan(_plan(job_id, "v1"))
        await store.put_execution_plan(_plan(job_id, "v2"))
        recovered = await other.recover_execution_plan(job_id)
        assert recovered is not None
        assert recovered.name == "v2"
        assert [p.name for p in helper.live_states] == ["v2"]

    async def test_put_of_a_plan_not_added_or_recovered_by_this_instance_fails(
        self, state_handle_store_factory: StateHandleStoreFactory
    ) -> None:
        store, other, _ = await self._stores(state_handle_store_factory)
        job_id = JobID.generate()
        await store.put_execution_plan(_plan(job_id, "v1"))
        with pytest.raises(RuntimeError, match="yourself"):
            await other.put_execution_plan(_plan(job_id, "v2"))
        await other.recover_execution_plan(job_id)
        await other.put_execution_plan(_plan(job_id, "v2"))
        recovered = await store.recover_execution_plan(job_id)
        assert recovered is not None
        assert recovered.name == "v2"

    async def test_global_cleanup_removes_the_plan(
        self, state_handle_store_factory: StateHandleStoreFactory
    ) -> None:
        store, _, helper = await self._stores(state_handle_store_factory)
        job_id = JobID.generate()
        await store.put_execution_plan(_plan(job_id))
        await store.global_cleanup(job_id)
        assert await store.get_job_ids() == []
        assert await store.recover_execution_plan(job_id) is None
        assert helper.live_states == []

    async def test_global_cleanup_fails_while_another_instance_holds_a_lock(
        self, state_handle_store_factory: StateHandleStoreFactory
    ) -> None:
        store, other, _ = await self._stores(state_handle_store_factory)
        job_id = JobID.generate()
        await store.put_execution_plan(_plan(job_id))
        await other.recover_execution_plan(job_id)
        with pytest.raises(StateHandleStoreError, match=str(job_id)):
            await store.global_cleanup(job_id)
        assert await store.get_job_ids() == [job_id]
        await other.local_cleanup(job_id)  # releases the lock only
        assert await other.get_job_ids() == [job_id]
        await store.global_cleanup(job_id)
        assert await store.get_job_ids() == []

    async def test_stop_releases_all_locks(self, state_handle_store_factory: StateHandleStoreFactory) -> None:
        store, other, _ = await self._stores(state_handle_store_factory)
        job_ids = [JobID.generate(), JobID.generate()]
        for job_id in job_ids:
            await store.put_execution_plan(_plan(job_id))
        await store.stop()
        for job_id in job_ids:
            await other.recover_execution_plan(job_id)
            await other.global_cleanup(job_id)
        assert await other.get_job_ids() == []

    async def test_operations_after_stop_fail(
        self, state_handle_store_factory: StateHandleStoreFactory
    ) -> None:
        store, _, _ = await self._stores(state_handle_store_factory)
        await store.stop()
        with pytest.raises(RuntimeError, match="Not running"):
            await store.put_execution_plan(_plan(JobID.generate()))
