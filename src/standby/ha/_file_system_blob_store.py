"""FileSystemBlobStore: HA copies of job artifacts under ``<storageDir>/<cluster-id>/blob/`` (Flink §1.11).

Layout as Flink's ``BlobUtils``: ``blob/job_<jobId>/blob_<key>``, and ``blob/no_job/blob_<key>`` for blobs of no job.
``create_blob_store_from_config`` gives a ``VoidBlobStore`` when high availability is off.
"""

from __future__ import annotations

import asyncio
import logging
import re

from fsspec import AbstractFileSystem

from standby.config import Configuration

from ._blob_store import BlobStore, VoidBlobStore
from ._config_access import ha_storage_path
from ._errors import HighAvailabilityError
from ._factory import high_availability_type
from ._storage_helper import filesystem_for
from ._types import JobID

_log = logging.getLogger(__name__)

_BLOB_KEY_RE = re.compile(r"^[A-Za-z0-9._-]+$")
NO_JOB_DIR = "no_job"
JOB_DIR_PREFIX = "job_"
BLOB_FILE_PREFIX = "blob_"


class BlobStoreError(HighAvailabilityError):
    """A blob could not be written to or read from the HA storage dir."""


class FileSystemBlobStore(BlobStore):
    """Blobs as files under ``<base_path>`` (``<storageDir>/<cluster-id>/blob``) on any fsspec filesystem."""

    def __init__(self, base_path: str) -> None:
        self._fs: AbstractFileSystem
        self._fs, base = filesystem_for(base_path)
        self._base = base.rstrip("/")

    @classmethod
    def from_configuration(cls, config: Configuration) -> FileSystemBlobStore:
        return cls(f"{ha_storage_path(config)}/blob")

    @property
    def base_path(self) -> str:
        return str(self._fs.unstrip_protocol(self._base))

    def job_dir(self, job_id: JobID | None) -> str:
        return f"{self._base}/{NO_JOB_DIR if job_id is None else JOB_DIR_PREFIX + str(job_id)}"

    def blob_path(self, job_id: JobID | None, blob_key: str) -> str:
        if not _BLOB_KEY_RE.match(blob_key):
            raise ValueError(f"Invalid blob key {blob_key!r}: use letters, digits, '.', '_' and '-' only")
        return f"{self.job_dir(job_id)}/{BLOB_FILE_PREFIX}{blob_key}"

    async def put(self, data: bytes, job_id: JobID | None, blob_key: str) -> bool:
        path = self.blob_path(job_id, blob_key)

        def write() -> None:
            self._fs.makedirs(self.job_dir(job_id), exist_ok=True)
            with self._fs.open(path, "wb") as out:  # Flink: WriteMode.OVERWRITE
                out.write(data)

        try:
            await asyncio.to_thread(write)
        except OSError as e:
            raise BlobStoreError(f"Cannot write blob {self._fs.unstrip_protocol(path)}: {e}") from e
        return True

    async def get(self, job_id: JobID | None, blob_key: str) -> bytes | None:
        path = self.blob_path(job_id, blob_key)
        try:
            data: bytes = await asyncio.to_thread(self._fs.cat_file, path)
        except FileNotFoundError:
            return None
        except OSError as e:
            raise BlobStoreError(f"Cannot read blob {self._fs.unstrip_protocol(path)}: {e}") from e
        return data

    async def delete(self, job_id: JobID | None, blob_key: str) -> bool:
        return await asyncio.to_thread(self._delete, self.blob_path(job_id, blob_key))

    async def delete_all(self, job_id: JobID) -> bool:
        return await asyncio.to_thread(self._delete, self.job_dir(job_id))

    def _delete(self, path: str) -> bool:
        # Flink's FileSystemBlobStore.delete: remove, then try to remove the (now maybe empty) parents.
        try:
            if self._fs.exists(path):
                self._fs.rm(path, recursive=True)
            else:
                _log.debug("The given path %s is not present anymore. No deletion is required.", path)
        except Exception as e:
            _log.warning("Failed to delete blob at %s: %s", path, e)
            return False
        for parent in (path.rsplit("/", 1)[0], self._base):
            self._remove_if_empty(parent)
        return True

    def _remove_if_empty(self, directory: str) -> None:
        try:
            if directory.startswith(self._base) and self._fs.isdir(directory) and not self._fs.ls(directory):
                self._fs.rmdir(directory)
        except Exception:
            pass

    async def cleanup_all_data(self) -> None:
        def remove_all() -> None:
            if self._fs.exists(self._base):
                self._fs.rm(self._base, recursive=True)

        _log.info("Removing all HA blobs under %s", self.base_path)
        try:
            await asyncio.to_thread(remove_all)
        except OSError as e:
            raise BlobStoreError(f"Cannot remove the HA blob directory {self.base_path}: {e}") from e

    def __repr__(self) -> str:
        return f"FileSystemBlobStore({self.base_path!r})"


def create_blob_store_from_config(config: Configuration) -> BlobStore:
    """Flink's ``BlobUtils.createBlobStoreFromConfig``: a ``FileSystemBlobStore`` in HA mode, else a void one."""
    if high_availability_type(config) in ("none", "embedded"):
        return VoidBlobStore()
    return FileSystemBlobStore.from_configuration(config)
