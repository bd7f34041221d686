"""StateHandleStore: pointers in the coordination store to payloads on the HA storage dir (Flink §1.12)."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, order=True)
class ResourceVersion:
    """Version of a stored entry (ZooKeeper stat version, etcd mod revision, K8s resourceVersion, file version).

    ``ResourceVersion.not_existing()`` is the sentinel for "absent or marked for deletion".
    """

    value: int

    @staticmethod
    def not_existing() -> ResourceVersion:
        return ResourceVersion(-1)

    def is_existing(self) -> bool:
        return self.value >= 0


class RetrievableStateHandle(abc.ABC, Generic[T]):
    """A handle on a payload written to the HA storage dir; what a store keeps is a pointer to it."""

    @abc.abstractmethod
    async def retrieve_state(self) -> T:
        """Read and decode the payload; raises ``CorruptHaDataError`` naming the file when it cannot."""

    @abc.abstractmethod
    async def discard_state(self) -> None:
        """Delete the payload (idempotent: a missing file is not an error)."""

    @property
    @abc.abstractmethod
    def state_size(self) -> int: ...

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Where the payload is (a URL or path), for messages and tools."""


class RetrievableStateStorageHelper(abc.ABC, Generic[T]):
    """Writes a payload and returns a handle on it (Flink's ``RetrievableStateStorageHelper``)."""

    @abc.abstractmethod
    async def store(self, state: T) -> RetrievableStateHandle[T]: ...

    @abc.abstractmethod
    def serialize_handle(self, handle: RetrievableStateHandle[T]) -> bytes:
        """The small pointer stored in the coordination store (versioned JSON of our own)."""

    @abc.abstractmethod
    def deserialize_handle(self, data: bytes) -> RetrievableStateHandle[T]:
        """Inverse of ``serialize_handle``; raises ``CorruptHaDataError`` for unreadable pointers."""


class StateHandleStore(abc.ABC, Generic[T]):
    """Named entries, each a pointer to a payload, with per-instance locks (Flink's ``StateHandleStore``).

    Errors: ``StateHandleNotExistError``, ``StateHandleAlreadyExistError``, ``PossibleInconsistentStateError``
    (the payload must then be kept: the pointer may have been written), ``FencingError`` (writer not leader).
    """

    @abc.abstractmethod
    async def add_and_lock(self, name: str, state: T) -> RetrievableStateHandle[T]:
        """Write the payload first, then the pointer and this instance's lock in one atomic step."""

    @abc.abstractmethod
    async def replace(self, name: str, expected_version: ResourceVersion, state: T) -> None:
        """Replace the entry if it still has ``expected_version``; the old payload is discarded on success."""

    @abc.abstractmethod
    async def exists(self, name: str) -> ResourceVersion:
        """The entry's version; ``not_existing()`` when absent or marked for deletion."""

    @abc.abstractmethod
    async def get_and_lock(self, name: str) -> RetrievableStateHandle[T]: ...

    @abc.abstractmethod
    async def get_all_and_lock(self) -> list[tuple[RetrievableStateHandle[T], str]]:
        """All live entries, locked; entries whose pointer cannot be read are logged and skipped."""

    @abc.abstractmethod
    async def get_all_handles(self) -> list[str]:
        """Names of all live entries."""

    @abc.abstractmethod
    async def release_and_try_remove(self, name: str) -> bool:
        """Release our lock and remove the entry and payload; False while another instance holds a lock.

        Idempotent: an absent entry counts as removed (True).
        """

    @abc.abstractmethod
    async def clear_entries(self) -> None:
        """Remove all entries (payloads are not discarded)."""

    @abc.abstractmethod
    async def release(self, name: str) -> None:
        """Release this instance's lock on ``name``."""

    @abc.abstractmethod
    async def release_all(self) -> None:
        """Release every lock of this instance."""
