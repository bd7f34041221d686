"""FileSystemJobResultStore: job results as JSON files in Flink's layout and format (FLIP-194, §1.10).

Layout: ``<job-result-store.storage-path>`` (default ``<high-availability.storageDir>/job-result-store/<cluster-id>``)
holds ``<jobId>_DIRTY.json`` until the job's cleanup finished, then ``<jobId>.json`` (or nothing, when
``job-result-store.delete-on-commit`` is true, the default). Body: ``{"result": {...}, "version": 1}`` with Flink's
field names, so that Flink 2.3 and standby can read each other's files.

Interoperability with Flink (what each side can read of the other's files):

* standby reads every field Flink writes. Accumulators are base64 of a Java-serialized ``OptionalFailure``: values
  of type Long/Integer/Short/Byte/Double/Float/Boolean/String are decoded; anything else (user classes, failed
  accumulators) is kept as a ``JavaSerializedValue`` holding the raw base64 text, and written back unchanged. Reading
  never fails because of an accumulator. ``failure-cause.serialized-throwable`` is kept as base64 text.
* Flink reads standby's files: id, name, application-status, net-runtime, start-time, end-time, and accumulators
  (written as the JDK would serialize ``OptionalFailure.of(Long|Double|Boolean|String)``). A ``failure-cause`` is
  only readable by Flink if it carries a ``serialized-throwable`` (a Java-serialized ``SerializedThrowable``) that
  came from Flink: standby cannot produce one, so Flink fails to parse standby's results of FAILED jobs that have a
  failure cause, and Flink's JobResultStore treats such a file as unreadable.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fsspec import AbstractFileSystem

from standby.config import Configuration, options

from ._config_access import cluster_id, storage_dir
from ._errors import CorruptHaDataError, HighAvailabilityError
from ._java_serialization import JavaDeserializationError, decode_optional_failure, encode_optional_failure
from ._job_result_store import (
    FailureCause,
    JobResult,
    JobResultEntry,
    JobResultEntryExistsError,
    JobResultStore,
    NoSuchJobResultError,
)
from ._storage_helper import filesystem_for
from ._types import ApplicationStatus, JobID

_log = logging.getLogger(__name__)

#: Flink's ``FileSystemJobResultStore.DIRTY_FILE_EXTENSION`` and ``FILE_EXTENSION``.
DIRTY_FILE_EXTENSION = "_DIRTY.json"
FILE_EXTENSION = ".json"
#: Version of the JSON body (Flink's ``JsonJobResultEntry``).
JOB_RESULT_FORMAT_VERSION = 1


class JobResultStoreError(HighAvailabilityError):
    """The job result store's directory cannot be listed or written."""


@dataclass(frozen=True)
class JavaSerializedValue:
    """An accumulator value standby cannot decode: the base64 text of its Java serialization, kept verbatim."""

    base64: str


def default_job_result_store_path(config: Configuration) -> str:
    """Flink's ``createDefaultJobResultStorePath``: ``<storageDir>/job-result-store/<cluster-id>``."""
    return f"{storage_dir(config).rstrip('/')}/job-result-store/{cluster_id(config)}"


# ---------------------------------------------------------------------------------------------------- JSON codec


def _encode_accumulator(name: str, value: Any) -> str:
    if isinstance(value, JavaSerializedValue):
        return value.base64
    if not isinstance(value, (bool, int, float, str)):
        _log.warning(
            "Accumulator %r has a value of type %s that cannot be written for Flink; writing its text instead",
            name,
            type(value).__name__,
        )
        value = str(value)
    try:
        data = encode_optional_failure(value)
    except ValueError:  # an int beyond java.lang.Long
        data = encode_optional_failure(str(value))
    return base64.b64encode(data).decode("ascii")


def _decode_accumulator(raw: Any) -> Any:
    if not isinstance(raw, str):
        return JavaSerializedValue(json.dumps(raw))
    try:
        return decode_optional_failure(base64.b64decode(raw, validate=True))
    except (JavaDeserializationError, binascii.Error, ValueError):
        return JavaSerializedValue(raw)


def job_result_to_json(result: JobResult) -> dict[str, Any]:
    """The ``result`` object of Flink's ``JobResultSerializer`` (only fields Flink's deserializer knows)."""
    body: dict[str, Any] = {
        "id": str(result.job_id),
        "name": result.name,
        "application-status": result.application_status.value,
        "accumulator-results": {
            name: _encode_accumulator(name, value) for name, value in result.accumulator_results.items()
        },
        "net-runtime": result.net_runtime_ms,
    }
    if result.failure_cause is not None:
        cause: dict[str, Any] = {
            "class": result.failure_cause.class_name,
            "stack-trace": result.failure_cause.stack_trace,
        }
        if result.failure_cause.serialized_throwable is not None:
            cause["serialized-throwable"] = result.failure_cause.serialized_throwable
        body["failure-cause"] = cause
    body["start-time"] = result.start_time_ms
    body["end-time"] = result.end_time_ms
    return body


def job_result_from_json(body: Mapping[str, Any], source: str = "<json>") -> JobResult:
    """Inverse of ``job_result_to_json``; unknown fields are ignored, unreadable accumulators kept raw."""
    try:
        job_id = JobID(body["id"])
        status_text = body.get("application-status", "UNKNOWN")
        try:
            status = ApplicationStatus(str(status_text))
        except ValueError:
            _log.warning("Unknown application status %r in %s; using UNKNOWN", status_text, source)
            status = ApplicationStatus.UNKNOWN
        accumulators_raw = body.get("accumulator-results") or {}
        if not isinstance(accumulators_raw, Mapping):
            raise ValueError("'accumulator-results' is not an object")
        accumulators = {str(k): _decode_accumulator(v) for k, v in accumulators_raw.items()}
        failure: FailureCause | None = None
        cause = body.get("failure-cause")
        if cause is not None:
            if not isinstance(cause, Mapping):
                raise ValueError("'failure-cause' is not an object")
            serialized = cause.get("serialized-throwable")
            failure = FailureCause(
                class_name=str(cause.get("class", "")),
                stack_trace=str(cause.get("stack-trace", "")),
                serialized_throwable=str(serialized) if serialized is not None else None,
            )
        return JobResult(
            job_id=job_id,
            name=str(body.get("name") or ""),
            application_status=status,
            accumulator_results=accumulators,
            net_runtime_ms=int(body.get("net-runtime", -1)),
            failure_cause=failure,
            start_time_ms=int(body.get("start-time", -1)),
            end_time_ms=int(body.get("end-time", -1)),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise CorruptHaDataError(f"Cannot read the job result in {source}: {e!r}") from e


def encode_job_result_entry(entry: JobResultEntry) -> bytes:
    """The file body: ``{"result": {...}, "version": 1}`` (Flink's ``JsonJobResultEntry``)."""
    body = {"result": job_result_to_json(entry.job_result), "version": JOB_RESULT_FORMAT_VERSION}
    return json.dumps(body).encode()


def decode_job_result_entry(data: bytes, source: str = "<bytes>") -> JobResultEntry:
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise CorruptHaDataError(f"Cannot read the job result file {source}: not JSON ({e})") from e
    if not isinstance(body, dict) or not isinstance(body.get("result"), dict):
        raise CorruptHaDataError(f"Cannot read the job result file {source}: no 'result' object")
    # Flink writes "version" and ignores it on read; so do we.
    return JobResultEntry(job_result_from_json(body["result"], source))


# ---------------------------------------------------------------------------------------------------- the store


class FileSystemJobResultStore(JobResultStore):
    """Flink's ``FileSystemJobResultStore`` on any fsspec filesystem; the base dir is created on first use."""

    def __init__(self, base_path: str, delete_on_commit: bool = True) -> None:
        self._fs: AbstractFileSystem
        self._fs, self._base = filesystem_for(base_path)
        self._base = self._base.rstrip("/")
        self._delete_on_commit = delete_on_commit
        self._lock = asyncio.Lock()
        self._base_created = False

    @classmethod
    def from_configuration(cls, config: Configuration) -> FileSystemJobResultStore:
        configured = config.get(options.JOB_RESULT_STORE_STORAGE_PATH)
        path = (
            configured.strip() if configured and configured.strip() else default_job_result_store_path(config)
        )
        delete_on_commit = config.get(options.JOB_RESULT_STORE_DELETE_ON_COMMIT)
        return cls(path, delete_on_commit)

    @property
    def base_path(self) -> str:
        return str(self._fs.unstrip_protocol(self._base))

    @property
    def delete_on_commit(self) -> bool:
        return self._delete_on_commit

    @staticmethod
    def is_dirty_file(name: str) -> bool:
        return name.endswith(DIRTY_FILE_EXTENSION)

    @staticmethod
    def is_clean_file(name: str) -> bool:
        return name.endswith(FILE_EXTENSION) and not name.endswith(DIRTY_FILE_EXTENSION)

    def dirty_path(self, job_id: JobID) -> str:
        return f"{self._base}/{job_id}{DIRTY_FILE_EXTENSION}"

    def clean_path(self, job_id: JobID) -> str:
        return f"{self._base}/{job_id}{FILE_EXTENSION}"

    def _url(self, path: str) -> str:
        return str(self._fs.unstrip_protocol(path))

    def _ensure_base_dir(self) -> None:
        if not self._base_created:
            try:
                self._fs.makedirs(self._base, exist_ok=True)
            except OSError as e:
                raise JobResultStoreError(
                    f"Cannot create the base directory {self.base_path} of the JobResultStore: {e}. "
                    "Check the permissions of the HA storage dir."
                ) from e
            self._base_created = True

    # -- contract

    async def create_dirty_result(self, entry: JobResultEntry) -> None:
        async with self._lock:
            if await self._has_dirty(entry.job_id) or await self._has_clean(entry.job_id):
                raise JobResultEntryExistsError(
                    f"Job result store already contains an entry for job {entry.job_id}"
                )
            await asyncio.to_thread(self._write_dirty, entry)

    def _write_dirty(self, entry: JobResultEntry) -> None:
        self._ensure_base_dir()
        path = self.dirty_path(entry.job_id)
        data = encode_job_result_entry(entry)
        try:
            # Flink: WriteMode.NO_OVERWRITE
            with self._fs.open(path, "xb") as out:
                out.write(data)
        except FileExistsError:
            raise JobResultEntryExistsError(
                f"Job result store already contains an entry for job {entry.job_id}"
            ) from None
        except OSError as e:
            raise JobResultStoreError(f"Cannot write the dirty job result {self._url(path)}: {e}") from e

    async def mark_result_as_clean(self, job_id: JobID) -> None:
        async with self._lock:
            if await self._has_clean(job_id):
                _log.debug("The job %s is already marked as clean. No action required.", job_id)
                return
            await asyncio.to_thread(self._mark_clean, job_id)

    def _mark_clean(self, job_id: JobID) -> None:
        dirty = self.dirty_path(job_id)
        if not self._fs.exists(dirty):
            raise NoSuchJobResultError(
                f"Could not mark job {job_id} as clean as it is not present in the job result store "
                f"({self._url(dirty)} does not exist)."
            )
        try:
            if self._delete_on_commit:
                self._fs.rm_file(dirty)
            else:
                self._fs.mv(dirty, self.clean_path(job_id))
        except OSError as e:
            raise JobResultStoreError(f"Cannot mark the job result {self._url(dirty)} as clean: {e}") from e

    async def has_dirty_job_result_entry(self, job_id: JobID) -> bool:
        return await self._has_dirty(job_id)

    async def has_clean_job_result_entry(self, job_id: JobID) -> bool:
        return await self._has_clean(job_id)

    async def _has_dirty(self, job_id: JobID) -> bool:
        return bool(await asyncio.to_thread(self._fs.exists, self.dirty_path(job_id)))

    async def _has_clean(self, job_id: JobID) -> bool:
        return bool(await asyncio.to_thread(self._fs.exists, self.clean_path(job_id)))

    async def get_dirty_results(self) -> list[JobResult]:
        async with self._lock:
            return await asyncio.to_thread(self._read_dirty_results)

    def _read_dirty_results(self) -> list[JobResult]:
        self._ensure_base_dir()
        try:
            listing = self._fs.ls(self._base, detail=True)
        except OSError as e:
            raise JobResultStoreError(
                f"The base directory {self.base_path} of the JobResultStore isn't accessible ({e}). "
                "No dirty JobResults can be restored."
            ) from e
        results: list[JobResult] = []
        for info in sorted(listing, key=lambda i: str(i["name"])):
            path = str(info["name"])
            if info.get("type") == "directory" or not self.is_dirty_file(path.rsplit("/", 1)[-1]):
                continue
            try:
                data = self._fs.cat_file(path)
            except FileNotFoundError:
                continue  # cleaned concurrently
            except OSError as e:
                raise JobResultStoreError(f"Cannot read the dirty job result {self._url(path)}: {e}") from e
            results.append(decode_job_result_entry(data, self._url(path)).job_result)
        return results

    def __repr__(self) -> str:
        return f"FileSystemJobResultStore({self.base_path!r}, delete_on_commit={self._delete_on_commit})"
