"""JobResult and the JobResultStore contract (FLIP-194), with the in-memory store of the non-HA services."""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._types import ApplicationStatus, JobID, JobStatus


@dataclass(frozen=True)
class FailureCause:
    """Why a job failed: exception class name and text (Flink stores class, stack trace, serialized throwable)."""

    class_name: str
    stack_trace: str
    serialized_throwable: str | None = None


@dataclass(frozen=True)
class JobResult:
    """The outcome of a globally terminated job, as Flink's ``JobResult``."""

    job_id: JobID
    name: str
    application_status: ApplicationStatus
    accumulator_results: Mapping[str, Any] = field(default_factory=dict)
    net_runtime_ms: int = 0
    failure_cause: FailureCause | None = None
    start_time_ms: int = -1
    end_time_ms: int = -1

    @property
    def job_status(self) -> JobStatus | None:
        return self.application_status.to_job_status()

    def is_success(self) -> bool:
        return self.application_status is ApplicationStatus.SUCCEEDED


@dataclass(frozen=True)
class JobResultEntry:
    job_result: JobResult

    @property
    def job_id(self) -> JobID:
        return self.job_result.job_id


class JobResultStore(abc.ABC):
    """Results of globally terminated jobs: dirty until their cleanup finished, then clean.

    Contract (Flink's ``AbstractThreadsafeJobResultStore``): creating a dirty entry for a job that has any entry
    fails with ``RuntimeError``; marking clean is idempotent; marking clean without a dirty entry fails with
    ``LookupError``.
    """

    @abc.abstractmethod
    async def create_dirty_result(self, entry: JobResultEntry) -> None: ...

    @abc.abstractmethod
    async def mark_result_as_clean(self, job_id: JobID) -> None: ...

    async def has_job_result_entry(self, job_id: JobID) -> bool:
        return await self.has_dirty_job_result_entry(job_id) or await self.has_clean_job_result_entry(job_id)

    @abc.abstractmethod
    async def has_dirty_job_result_entry(self, job_id: JobID) -> bool: ...

    @abc.abstractmethod
    async def has_clean_job_result_entry(self, job_id: JobID) -> bool: ...

    @abc.abstractmethod
    async def get_dirty_results(self) -> list[JobResult]: ...


class JobResultEntryExistsError(RuntimeError):
    """Flink: ``IllegalStateException("Job result store already contains an entry for job %s")``."""


class NoSuchJobResultError(LookupError):
    """Flink: ``NoSuchElementException`` when marking a job clean that has no dirty entry."""


class EmbeddedJobResultStore(JobResultStore):
    """In-memory job results (Flink's ``EmbeddedJobResultStore``), for the non-HA and embedded services."""

    def __init__(self) -> None:
        self._dirty: dict[JobID, JobResultEntry] = {}
        self._clean: dict[JobID, JobResultEntry] = {}
        self._lock = asyncio.Lock()

    async def create_dirty_result(self, entry: JobResultEntry) -> None:
        async with self._lock:
            if entry.job_id in self._dirty or entry.job_id in self._clean:
                raise JobResultEntryExistsError(
                    f"Job result store already contains an entry for job {entry.job_id}"
                )
            self._dirty[entry.job_id] = entry

    async def mark_result_as_clean(self, job_id: JobID) -> None:
        async with self._lock:
            if job_id in self._clean:
                return
            entry = self._dirty.pop(job_id, None)
            if entry is None:
                raise NoSuchJobResultError(
                    f"Could not mark job {job_id} as clean as it is not present in the job result store."
                )
            self._clean[job_id] = entry

    async def has_dirty_job_result_entry(self, job_id: JobID) -> bool:
        return job_id in self._dirty

    async def has_clean_job_result_entry(self, job_id: JobID) -> bool:
        return job_id in self._clean

    async def get_dirty_results(self) -> list[JobResult]:
        return [e.job_result for e in self._dirty.values()]
