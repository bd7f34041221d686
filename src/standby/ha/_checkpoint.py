"""Checkpoint HA interfaces: CompletedCheckpoint, CompletedCheckpointStore, CheckpointIDCounter, recovery factory."""

from __future__ import annotations

import abc
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ._errors import CorruptHaDataError
from ._types import JobID, JobStatus

#: Flink's ``CheckpointIDCounter.INITIAL_CHECKPOINT_ID``.
INITIAL_CHECKPOINT_ID = 1
#: Flink's ``CheckpointStoreUtil.INVALID_CHECKPOINT_ID``.
INVALID_CHECKPOINT_ID = -1

_FORMAT_VERSION = 1


@dataclass(frozen=True)
class CheckpointProperties:
    """What kind of checkpoint this is and when its state may be discarded (Flink's ``CheckpointProperties``)."""

    is_savepoint: bool = False
    #: stop-with-savepoint: subsumes every older checkpoint (see ``CheckpointSubsumeHelper``)
    is_synchronous: bool = False
    discard_on_subsumed: bool = True
    discard_on_job_finished: bool = True
    discard_on_job_cancelled: bool = True
    discard_on_job_failed: bool = True
    discard_on_job_suspended: bool = False

    @staticmethod
    def checkpoint() -> CheckpointProperties:
        return CheckpointProperties()

    @staticmethod
    def savepoint(synchronous: bool = False) -> CheckpointProperties:
        # Savepoints belong to the user: never discarded by the system.
        return CheckpointProperties(
            is_savepoint=True,
            is_synchronous=synchronous,
            discard_on_subsumed=False,
            discard_on_job_finished=False,
            discard_on_job_cancelled=False,
            discard_on_job_failed=False,
            discard_on_job_suspended=False,
        )


@dataclass(frozen=True)
class CompletedCheckpoint:
    """Metadata of a completed checkpoint: where each subtask's state is. Payload of the checkpoint store."""

    job_id: JobID
    checkpoint_id: int
    timestamp_ms: int
    completion_timestamp_ms: int
    #: subtask index (as string, JSON keys) -> location of that subtask's state file
    task_states: Mapping[str, str] = field(default_factory=dict)
    properties: CheckpointProperties = field(default_factory=CheckpointProperties)
    #: the checkpoint's directory under ``state.checkpoints.dir``, if any
    external_pointer: str | None = None

    def should_be_discarded_on_subsume(self) -> bool:
        return self.properties.discard_on_subsumed

    def should_be_discarded_on_shutdown(self, status: JobStatus) -> bool:
        props = self.properties
        return {
            JobStatus.FINISHED: props.discard_on_job_finished,
            JobStatus.CANCELED: props.discard_on_job_cancelled,
            JobStatus.FAILED: props.discard_on_job_failed,
            JobStatus.SUSPENDED: props.discard_on_job_suspended,
        }.get(status, False)

    def to_bytes(self) -> bytes:
        body: dict[str, Any] = {
            "version": _FORMAT_VERSION,
            "jobId": str(self.job_id),
            "checkpointId": self.checkpoint_id,
            "timestamp": self.timestamp_ms,
            "completionTimestamp": self.completion_timestamp_ms,
            "taskStates": dict(self.task_states),
            "properties": asdict(self.properties),
            "externalPointer": self.external_pointer,
        }
        return json.dumps(body, sort_keys=True).encode()

    @staticmethod
    def from_bytes(data: bytes, source: str = "<bytes>") -> CompletedCheckpoint:
        try:
            body = json.loads(data)
            if body.get("version") != _FORMAT_VERSION:
                raise ValueError(f"unsupported format version {body.get('version')!r}")
            return CompletedCheckpoint(
                job_id=JobID(body["jobId"]),
                checkpoint_id=int(body["checkpointId"]),
                timestamp_ms=int(body["timestamp"]),
                completion_timestamp_ms=int(body["completionTimestamp"]),
                task_states={str(k): str(v) for k, v in body["taskStates"].items()},
                properties=CheckpointProperties(**body["properties"]),
                external_pointer=body.get("externalPointer"),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise CorruptHaDataError(f"Cannot read completed checkpoint metadata from {source}: {e}") from e


class CheckpointsCleaner(abc.ABC):
    """Discards the state of subsumed or finished checkpoints (Flink's ``CheckpointsCleaner``)."""

    @abc.abstractmethod
    async def clean_checkpoint(self, checkpoint: CompletedCheckpoint, discard: bool) -> None:
        """Delete the checkpoint's state files if ``discard``."""


class CompletedCheckpointStore(abc.ABC):
    """The completed checkpoints of one job, recoverable by the next leader."""

    @abc.abstractmethod
    async def add_checkpoint_and_subsume_oldest_one(
        self,
        checkpoint: CompletedCheckpoint,
        cleaner: CheckpointsCleaner,
        post_cleanup: Callable[[], None] | None = None,
    ) -> CompletedCheckpoint | None:
        """Persist ``checkpoint`` first, then subsume per retention; returns the last subsumed one."""

    @abc.abstractmethod
    def get_all_checkpoints(self) -> list[CompletedCheckpoint]:
        """Oldest first."""

    def get_latest_checkpoint(self) -> CompletedCheckpoint | None:
        all_checkpoints = self.get_all_checkpoints()
        return all_checkpoints[-1] if all_checkpoints else None

    def get_latest_checkpoint_id(self) -> int:
        latest = self.get_latest_checkpoint()
        return latest.checkpoint_id if latest is not None else 0

    @abc.abstractmethod
    async def shutdown(self, status: JobStatus, cleaner: CheckpointsCleaner) -> None:
        """Globally terminal: discard per properties and remove all entries; otherwise keep HA data."""

    @abc.abstractmethod
    def get_number_of_retained_checkpoints(self) -> int: ...

    @abc.abstractmethod
    def get_max_number_of_retained_checkpoints(self) -> int: ...


class CheckpointIDCounter(abc.ABC):
    """Hands out unique, increasing checkpoint ids for one job, starting at 1."""

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def shutdown(self, status: JobStatus) -> None:
        """Deletes the counter only for globally terminal states."""

    @abc.abstractmethod
    async def get_and_increment(self) -> int: ...

    @abc.abstractmethod
    async def get(self) -> int: ...

    @abc.abstractmethod
    async def set_count(self, new_id: int) -> None: ...


class CheckpointRecoveryFactory(abc.ABC):
    @abc.abstractmethod
    async def create_recovered_completed_checkpoint_store(
        self, job_id: JobID, max_number_of_checkpoints_to_retain: int
    ) -> CompletedCheckpointStore:
        """A store holding every checkpoint recovered from the backend, sorted by id."""

    @abc.abstractmethod
    async def create_checkpoint_id_counter(self, job_id: JobID) -> CheckpointIDCounter: ...


def subsume_checkpoints(checkpoints: list[CompletedCheckpoint], num_retain: int) -> list[CompletedCheckpoint]:
    """Flink's ``CheckpointSubsumeHelper.subsume``: remove (in place) and return the subsumed checkpoints.

    While more than ``num_retain`` are kept, the oldest checkpoint other than the latest is removed if it is a
    savepoint, or the latest is a stop-with-savepoint, or another non-savepoint checkpoint remains. So at least one
    non-savepoint checkpoint is always kept unless the latest is a stop-with-savepoint.
    """
    if not checkpoints or len(checkpoints) <= num_retain:
        return []
    latest = checkpoints[-1]
    latest_non_savepoint = next((c for c in reversed(checkpoints) if not c.properties.is_savepoint), None)
    removed: list[CompletedCheckpoint] = []
    index = 0
    while len(checkpoints) > num_retain and index < len(checkpoints):
        candidate = checkpoints[index]
        if candidate is not latest and (
            candidate.properties.is_savepoint
            or latest.properties.is_synchronous
            or (latest_non_savepoint is not None and latest_non_savepoint is not candidate)
        ):
            checkpoints.pop(index)
            removed.append(candidate)
        else:
            index += 1
    return removed


class StandaloneCompletedCheckpointStore(CompletedCheckpointStore):
    """In-memory checkpoint store of the non-HA services (Flink's ``StandaloneCompletedCheckpointStore``)."""

    def __init__(self, max_number_of_checkpoints_to_retain: int = 1) -> None:
        if max_number_of_checkpoints_to_retain < 1:
            raise ValueError("Must retain at least one checkpoint.")
        self._max = max_number_of_checkpoints_to_retain
        self._checkpoints: list[CompletedCheckpoint] = []
        self._checkpoints_at_shutdown: list[CompletedCheckpoint] = []
        self._shut_down = False

    async def add_checkpoint_and_subsume_oldest_one(
        self,
        checkpoint: CompletedCheckpoint,
        cleaner: CheckpointsCleaner,
        post_cleanup: Callable[[], None] | None = None,
    ) -> CompletedCheckpoint | None:
        if self._shut_down:
            raise RuntimeError("Checkpoint store has already been shutdown.")
        self._checkpoints.append(checkpoint)
        removed = subsume_checkpoints(self._checkpoints, self._max)
        for subsumed in removed:
            await cleaner.clean_checkpoint(subsumed, subsumed.should_be_discarded_on_subsume())
        if post_cleanup is not None:
            post_cleanup()
        return removed[-1] if removed else None

    def get_all_checkpoints(self) -> list[CompletedCheckpoint]:
        return list(self._checkpoints)

    async def shutdown(self, status: JobStatus, cleaner: CheckpointsCleaner) -> None:
        if self._shut_down:
            return
        self._shut_down = True
        if not status.is_globally_terminal_state():
            self._checkpoints_at_shutdown = list(self._checkpoints)
        else:
            for checkpoint in self._checkpoints:
                await cleaner.clean_checkpoint(checkpoint, checkpoint.should_be_discarded_on_shutdown(status))
        self._checkpoints.clear()

    def get_number_of_retained_checkpoints(self) -> int:
        return len(self._checkpoints)

    def get_max_number_of_retained_checkpoints(self) -> int:
        return self._max


class StandaloneCheckpointIDCounter(CheckpointIDCounter):
    """In-memory counter starting at 1 (Flink's ``StandaloneCheckpointIDCounter``)."""

    def __init__(self) -> None:
        self._next = INITIAL_CHECKPOINT_ID

    async def start(self) -> None:
        return None

    async def shutdown(self, status: JobStatus) -> None:
        return None

    async def get_and_increment(self) -> int:
        value = self._next
        self._next += 1
        return value

    async def get(self) -> int:
        return self._next

    async def set_count(self, new_id: int) -> None:
        self._next = new_id


class StandaloneCheckpointRecoveryFactory(CheckpointRecoveryFactory):
    """A fresh in-memory store and counter per call: nothing survives the process."""

    async def create_recovered_completed_checkpoint_store(
        self, job_id: JobID, max_number_of_checkpoints_to_retain: int
    ) -> CompletedCheckpointStore:
        return StandaloneCompletedCheckpointStore(max(1, max_number_of_checkpoints_to_retain))

    async def create_checkpoint_id_counter(self, job_id: JobID) -> CheckpointIDCounter:
        return StandaloneCheckpointIDCounter()


class PerJobCheckpointRecoveryFactory(CheckpointRecoveryFactory):
    """One in-memory store and counter per job, kept across simulated failovers in one process (embedded HA)."""

    def __init__(self) -> None:
        self._stores: dict[JobID, StandaloneCompletedCheckpointStore] = {}
        self._counters: dict[JobID, StandaloneCheckpointIDCounter] = {}

    async def create_recovered_completed_checkpoint_store(
        self, job_id: JobID, max_number_of_checkpoints_to_retain: int
    ) -> CompletedCheckpointStore:
        previous = self._stores.get(job_id)
        store = StandaloneCompletedCheckpointStore(max(1, max_number_of_checkpoints_to_retain))
        if previous is not None:
            if not previous._shut_down:
                raise RuntimeError(
                    f"The checkpoint store of job {job_id} must be shut down before it is recovered again."
                )
            store._checkpoints = list(previous._checkpoints_at_shutdown)
        self._stores[job_id] = store
        return store

    async def create_checkpoint_id_counter(self, job_id: JobID) -> CheckpointIDCounter:
        return self._counters.setdefault(job_id, StandaloneCheckpointIDCounter())
