"""Identifiers and status enums shared by the HA services and the runtime (JobID, JobStatus)."""

from __future__ import annotations

import enum
import re
import uuid

_JOB_ID_RE = re.compile(r"^[0-9a-f]{32}$")


class JobID(str):
    """A job identifier: 32 lower-case hex characters, as Flink's ``JobID.toHexString()``.

    A ``str`` subclass so it can be used directly in paths, keys and JSON.
    """

    __slots__ = ()

    def __new__(cls, value: str) -> JobID:
        text = str(value).strip().lower()
        if not _JOB_ID_RE.match(text):
            raise ValueError(f"Invalid job id {value!r}: expected 32 hexadecimal characters")
        return super().__new__(cls, text)

    @classmethod
    def generate(cls) -> JobID:
        return cls(uuid.uuid4().hex)

    @classmethod
    def is_valid(cls, value: str) -> bool:
        return bool(_JOB_ID_RE.match(value))


#: Flink's ``HighAvailabilityServices.DEFAULT_JOB_ID`` (``new JobID(0L, 0L)``).
DEFAULT_JOB_ID = JobID("0" * 32)


class JobStatus(enum.Enum):
    """Flink's ``JobStatus``: a job's state; three of them are globally terminal."""

    INITIALIZING = "INITIALIZING"
    CREATED = "CREATED"
    RUNNING = "RUNNING"
    FAILING = "FAILING"
    FAILED = "FAILED"
    CANCELLING = "CANCELLING"
    CANCELED = "CANCELED"
    FINISHED = "FINISHED"
    RESTARTING = "RESTARTING"
    SUSPENDED = "SUSPENDED"
    RECONCILING = "RECONCILING"

    def is_globally_terminal_state(self) -> bool:
        """FINISHED, CANCELED and FAILED end a job for good; its HA data may then be removed."""
        return self in (JobStatus.FINISHED, JobStatus.CANCELED, JobStatus.FAILED)

    def is_terminal_state(self) -> bool:
        """Globally terminal states plus SUSPENDED (ended locally; another leader will recover it)."""
        return self.is_globally_terminal_state() or self is JobStatus.SUSPENDED


class ApplicationStatus(enum.Enum):
    """Flink's ``ApplicationStatus`` as stored in job results (``application-status``)."""

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    UNKNOWN = "UNKNOWN"

    @classmethod
    def from_job_status(cls, status: JobStatus) -> ApplicationStatus:
        return {
            JobStatus.FINISHED: cls.SUCCEEDED,
            JobStatus.FAILED: cls.FAILED,
            JobStatus.CANCELED: cls.CANCELED,
        }.get(status, cls.UNKNOWN)

    def to_job_status(self) -> JobStatus | None:
        return {
            ApplicationStatus.SUCCEEDED: JobStatus.FINISHED,
            ApplicationStatus.FAILED: JobStatus.FAILED,
            ApplicationStatus.CANCELED: JobStatus.CANCELED,
        }.get(self)
