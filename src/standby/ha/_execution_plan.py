"""ExecutionPlan (our serializable job description) and the ExecutionPlanStore interface."""

from __future__ import annotations

import abc
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._errors import CorruptHaDataError
from ._types import JobID

_FORMAT_VERSION = 1


@dataclass(frozen=True)
class ExecutionPlan:
    """What a new leader needs to run a submitted job again.

    ``user_code`` is the key of the job file in the blob store; ``entry`` the class to run in it.
    """

    job_id: JobID
    name: str
    parallelism: int = 1
    user_code: str | None = None
    entry: str | None = None
    args: Sequence[str] = ()
    configuration: Mapping[str, str] = field(default_factory=dict)
    submitted_at_ms: int = 0

    def to_bytes(self) -> bytes:
        body: dict[str, Any] = {
            "version": _FORMAT_VERSION,
            "jobId": str(self.job_id),
            "name": self.name,
            "parallelism": self.parallelism,
            "userCode": self.user_code,
            "entry": self.entry,
            "args": list(self.args),
            "configuration": dict(self.configuration),
            "submittedAt": self.submitted_at_ms,
        }
        return json.dumps(body, sort_keys=True).encode()

    @staticmethod
    def from_bytes(data: bytes, source: str = "<bytes>") -> ExecutionPlan:
        try:
            body = json.loads(data)
            if body.get("version") != _FORMAT_VERSION:
                raise ValueError(f"unsupported format version {body.get('version')!r}")
            return ExecutionPlan(
                job_id=JobID(body["jobId"]),
                name=str(body["name"]),
                parallelism=int(body["parallelism"]),
                user_code=body.get("userCode"),
                entry=body.get("entry"),
                args=tuple(str(a) for a in body.get("args", [])),
                configuration={str(k): str(v) for k, v in body.get("configuration", {}).items()},
                submitted_at_ms=int(body.get("submittedAt", 0)),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise CorruptHaDataError(f"Cannot read execution plan from {source}: {e}") from e


class ExecutionPlanListener(abc.ABC):
    """Told when another JobManager adds or removes a plan (Flink's ``ExecutionPlanListener``)."""

    @abc.abstractmethod
    def on_added_execution_plan(self, job_id: JobID) -> None: ...

    @abc.abstractmethod
    def on_removed_execution_plan(self, job_id: JobID) -> None: ...


class ExecutionPlanStore(abc.ABC):
    """The submitted execution plans of a cluster, recoverable by the next leader."""

    @abc.abstractmethod
    async def start(self, listener: ExecutionPlanListener) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None:
        """Release every lock of this instance (FLINK-10011) and stop watching."""

    @abc.abstractmethod
    async def recover_execution_plan(self, job_id: JobID) -> ExecutionPlan | None:
        """The plan, locked by this instance; None if it does not exist."""

    @abc.abstractmethod
    async def put_execution_plan(self, plan: ExecutionPlan) -> None: ...

    @abc.abstractmethod
    async def get_job_ids(self) -> list[JobID]: ...

    @abc.abstractmethod
    async def global_cleanup(self, job_id: JobID) -> None:
        """Remove the plan; fails (to be retried) while another instance still holds a lock on it."""

    @abc.abstractmethod
    async def local_cleanup(self, job_id: JobID) -> None:
        """Release this instance's lock only."""


class StandaloneExecutionPlanStore(ExecutionPlanStore):
    """No-op store of the non-HA services: nothing is persisted, nothing recovered."""

    async def start(self, listener: ExecutionPlanListener) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def recover_execution_plan(self, job_id: JobID) -> ExecutionPlan | None:
        return None

    async def put_execution_plan(self, plan: ExecutionPlan) -> None:
        return None

    async def get_job_ids(self) -> list[JobID]:
        return []

    async def global_cleanup(self, job_id: JobID) -> None:
        return None

    async def local_cleanup(self, job_id: JobID) -> None:
        return None


def plan_configuration(values: Mapping[str, object]) -> dict[str, str]:
    """Stringify a job configuration for an ``ExecutionPlan``."""
    return {str(k): str(v) for k, v in values.items()}
