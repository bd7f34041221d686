"""BlobStore: HA copies of job artifacts (the job file) under ``<storageDir>/<cluster-id>/blob/``."""

from __future__ import annotations

import abc

from ._types import JobID


class BlobStore(abc.ABC):
    """Flink's ``BlobStoreService``: put/get/delete blobs of a job, and remove everything on cluster cleanup."""

    @abc.abstractmethod
    async def put(self, data: bytes, job_id: JobID | None, blob_key: str) -> bool: ...

    @abc.abstractmethod
    async def get(self, job_id: JobID | None, blob_key: str) -> bytes | None:
        """The blob, or None when this store does not have it."""

    @abc.abstractmethod
    async def delete(self, job_id: JobID | None, blob_key: str) -> bool: ...

    @abc.abstractmethod
    async def delete_all(self, job_id: JobID) -> bool: ...

    @abc.abstractmethod
    async def cleanup_all_data(self) -> None: ...

    async def close(self) -> None:
        return None


class VoidBlobStore(BlobStore):
    """The blob store of the non-HA services: stores nothing."""

    async def put(self, data: bytes, job_id: JobID | None, blob_key: str) -> bool:
        return True

    async def get(self, job_id: JobID | None, blob_key: str) -> bytes | None:
        return None

    async def delete(self, job_id: JobID | None, blob_key: str) -> bool:
        return True

    async def delete_all(self, job_id: JobID) -> bool:
        return True

    async def cleanup_all_data(self) -> None:
        return None
