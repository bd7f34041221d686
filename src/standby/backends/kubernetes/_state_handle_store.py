"""KubernetesStateHandleStore: pointers to HA payloads as ConfigMap data keys (Flink's ``KubernetesStateHandleStore``).

Each entry is one data key ``<prefix><name>`` (``executionPlan-<jobId>`` in the cluster ConfigMap,
``checkpointID-<%019d>`` in a job's ConfigMap) whose value is base64 of a small JSON of our own instead of Flink's
Java-serialized ``StateHandleWithDeleteMarker``::

    {"version": 1, "handle": <the storage helper's pointer JSON>, "markedForDeletion": false}

(a pointer that is not JSON is kept as ``"handleBytes": <base64>``). Semantics follow Flink (§3.5):

* every write is a read-check-update with compare-and-swap on the ConfigMap's resourceVersion, and is fenced
  (see ``_fencing``): a non-leader's ``add_and_lock``/``replace``/``clear_entries`` raise ``FencingError`` (Flink:
  a silent no-op) and discard the payload just written; ``release_and_try_remove`` returns False (as Flink), so
  the caller keeps the payload and retries later;
* ``add_and_lock`` of identical contents is idempotent (a retry after an ambiguous failure finds its own entry);
* removal is a two-phase soft delete: mark the entry for deletion, discard the payload, remove the key. A marked
  entry is invisible to readers; if discarding fails the entry stays marked and a later call finishes the job;
* there are no locks on Kubernetes (only the leader writes): ``get_and_lock`` does not lock, ``release`` and
  ``release_all`` are no-ops, and ``release_and_try_remove`` never waits for other instances;
* reads (``exists``, ``get_and_lock``, ``get_all_*``) are as fresh as a GET but transfer the ConfigMap only when
  it changed since this store last read or wrote it (``FencedConfigMapWriter.read``): recovering N plans would
  otherwise move the whole ConfigMap N times;
* ``replace`` does not compare ``expected_version``: it is the ConfigMap's resourceVersion, which every write of
  any key (leader renewals included) changes; the compare-and-swap of the update itself protects the entry.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from standby.ha import (
    CorruptHaDataError,
    FencingError,
    PossibleInconsistentStateError,
    ResourceVersion,
    RetrievableStateHandle,
    RetrievableStateStorageHelper,
    StateHandleAlreadyExistError,
    StateHandleNotExistError,
    StateHandleStore,
)

from ._client import ConfigMapNotFoundError, KubernetesConfigMap, KubernetesError
from ._fencing import FencedConfigMapWriter

T = TypeVar("T")

_log = logging.getLogger(__name__)

ENTRY_FORMAT_VERSION = 1


@dataclass(frozen=True)
class StoredEntry:
    """A decoded ConfigMap value: the storage helper's pointer and the soft-delete marker."""

    pointer: bytes
    marked_for_deletion: bool


def _canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def encode_entry(pointer: bytes, marked_for_deletion: bool = False) -> str:
    """The ConfigMap value of an entry (deterministic: equal pointers give equal values)."""
    body: dict[str, Any] = {"version": ENTRY_FORMAT_VERSION, "markedForDeletion": marked_for_deletion}
    try:
        body["handle"] = json.loads(pointer.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        body["handleBytes"] = base64.b64encode(pointer).decode("ascii")
    return base64.b64encode(_canonical_json(body)).decode("ascii")


def decode_entry(value: str, key: str, config_map_name: str) -> StoredEntry:
    """Inverse of ``encode_entry``; ``CorruptHaDataError`` naming the key and ConfigMap when unreadable."""
    try:
        body: Any = json.loads(base64.b64decode(value.encode("ascii"), validate=True))
        if not isinstance(body, dict) or body.get("version") != ENTRY_FORMAT_VERSION:
            raise ValueError(
                f"unsupported entry format (version {body.get('version') if isinstance(body, dict) else None!r})"
            )
        if "handle" in body:
            pointer = _canonical_json(body["handle"])
        else:
            pointer = base64.b64decode(str(body["handleBytes"]).encode("ascii"), validate=True)
        return StoredEntry(pointer, bool(body.get("markedForDeletion", False)))
    except (ValueError, KeyError, TypeError, UnicodeError, binascii.Error) as e:
        raise CorruptHaDataError(
            f"Cannot read entry {key} of ConfigMap {config_map_name}: {e}. Remove the key or the ConfigMap "
            "(standby ha clean) if the data is not needed."
        ) from e


class _MarkedForDeletion(Exception):
    """Inside an update: the key holds an entry marked for deletion."""


class KubernetesStateHandleStore(StateHandleStore[T], Generic[T]):
    """Flink's ``KubernetesStateHandleStore``; entry ``name`` is the data key ``key_prefix + name``."""

    def __init__(
        self,
        writer: FencedConfigMapWriter,
        storage: RetrievableStateStorageHelper[T],
        key_prefix: str,
    ) -> None:
        if not key_prefix:
            raise ValueError(
                "a key prefix is needed to tell the store's keys from the other keys of the ConfigMap"
            )
        self._writer = writer
        self._storage = storage
        self._prefix = key_prefix

    @property
    def config_map_name(self) -> str:
        return self._writer.config_map_name

    @property
    def key_prefix(self) -> str:
        return self._prefix

    def _key(self, name: str) -> str:
        return self._prefix + name

    def _decode(self, key: str, value: str) -> StoredEntry:
        return decode_entry(value, key, self.config_map_name)

    async def _config_map(self) -> KubernetesConfigMap:
        current = await self._writer.read()
        if current is None:
            raise KubernetesError(
                f"ConfigMap {self.config_map_name} does not exist. It may have been deleted externally."
            )
        return current

    # ------------------------------------------------------------------ writes

    async def add_and_lock(self, name: str, state: T) -> RetrievableStateHandle[T]:
        key = self._key(name)
        handle = await self._storage.store(state)
        value = encode_entry(self._storage.serialize_handle(handle))

        def change(current: KubernetesConfigMap) -> dict[str, str] | None:
            existing = current.data.get(key)
            if existing is not None:
                if existing == value:
                    return None  # our own earlier attempt was applied (idempotent retry)
                try:
                    old = self._decode(key, existing)
                except CorruptHaDataError:
                    _log.warning(
                        "Overwriting the unreadable entry %s of ConfigMap %s", key, self.config_map_name
                    )
                else:
                    if old.marked_for_deletion:
                        raise _MarkedForDeletion()
                    raise StateHandleAlreadyExistError(
                        f"{key} already exists in ConfigMap {self.config_map_name}"
                    )
            return {**current.data, key: value}

        try:
            for _attempt in range(2):
                try:
                    await self._writer.update(change)
                    return handle
                except _MarkedForDeletion:
                    # a leftover of an interrupted removal: finish it (idempotent), then add again
                    if not await self.release_and_try_remove(name):
                        raise FencingError(
                            f"Could not remove the entry {key} marked for deletion from ConfigMap "
                            f"{self.config_map_name}: this process is not the leader"
                        ) from None
            raise StateHandleAlreadyExistError(
                f"{key} of ConfigMap {self.config_map_name} was re-added while it was being removed"
            )
        except PossibleInconsistentStateError:
            raise  # the pointer may be stored: keep the payload
        except BaseException:
            await self._discard_quietly(handle, "the payload of a failed add")
            raise

    async def replace(self, name: str, expected_version: ResourceVersion, state: T) -> None:
        key = self._key(name)
        handle = await self._storage.store(state)
        value = encode_entry(self._storage.serialize_handle(handle))
        replaced: list[StoredEntry] = []

        def change(current: KubernetesConfigMap) -> dict[str, str] | None:
            existing = current.data.get(key)
            if existing is None:
                raise StateHandleNotExistError(f"Could not find {key} in ConfigMap {self.config_map_name}")
            if existing == value:
                return None  # our own earlier attempt was applied: keep the old handle found then
            try:
                old = self._decode(key, existing)
            except CorruptHaDataError:
                old = None
            if old is not None and old.marked_for_deletion:
                raise _MarkedForDeletion()
            replaced.clear()
            if old is not None:
                replaced.append(old)
            return {**current.data, key: value}

        try:
            await self._writer.update(change)
        except _MarkedForDeletion:
            error = StateHandleNotExistError(
                f"Could not replace {key} in ConfigMap {self.config_map_name}: it is marked for deletion"
            )
            try:
                await self.release_and_try_remove(name)
            except Exception as cleanup_error:
                error.add_note(f"finishing the removal of the old entry failed too: {cleanup_error!r}")
            await self._discard_quietly(handle, "the payload of a failed replace")
            raise error from None
        except PossibleInconsistentStateError:
            raise
        except BaseException:
            await self._discard_quietly(handle, "the payload of a failed replace")
            raise
        for old_entry in replaced:
            await self._discard_pointer_quietly(old_entry.pointer, f"the replaced payload of {key}")

    async def release_and_try_remove(self, name: str) -> bool:
        key = self._key(name)
        marked: list[StoredEntry] = []

        def mark(current: KubernetesConfigMap) -> dict[str, str] | None:
            marked.clear()
            existing = current.data.get(key)
            if existing is None:
                return None
            try:
                entry = self._decode(key, existing)
            except CorruptHaDataError:
                _log.warning("Removing the unreadable entry %s of ConfigMap %s", key, self.config_map_name)
                return {k: v for k, v in current.data.items() if k != key}
            marked.append(entry)
            if entry.marked_for_deletion:
                return None
            return {**current.data, key: encode_entry(entry.pointer, True)}

        try:
            await self._writer.update(mark)
        except FencingError as e:
            _log.info("Not removing %s: %s", key, e)
            return False
        except ConfigMapNotFoundError:
            return True  # no ConfigMap, no entry
        if not marked:
            return True  # absent (or unreadable and removed)
        pointer = marked[0].pointer
        try:
            handle = self._storage.deserialize_handle(pointer)
        except CorruptHaDataError as e:
            _log.warning("Cannot discard the payload of %s (%s); removing the entry only", key, e)
        else:
            # if this raises, the entry stays marked (invisible) and a later call retries: idempotent
            await handle.discard_state()
        marked_value = encode_entry(pointer, True)

        def remove(current: KubernetesConfigMap) -> dict[str, str] | None:
            if current.data.get(key) != marked_value:
                return None
            return {k: v for k, v in current.data.items() if k != key}

        try:
            await self._writer.update(remove)
        except FencingError as e:
            _log.info("Not removing %s after discarding its payload: %s", key, e)
            return False
        return True

    async def clear_entries(self) -> None:
        def change(current: KubernetesConfigMap) -> dict[str, str] | None:
            kept = {k: v for k, v in current.data.items() if not k.startswith(self._prefix)}
            return None if len(kept) == len(current.data) else kept

        try:
            await self._writer.update(change)
        except ConfigMapNotFoundError:
            return  # nothing to clear

    async def release(self, name: str) -> None:
        return None  # no locks on Kubernetes

    async def release_all(self) -> None:
        return None

    # ------------------------------------------------------------------ reads

    async def exists(self, name: str) -> ResourceVersion:
        key = self._key(name)
        current = await self._config_map()
        value = current.data.get(key)
        if value is None:
            return ResourceVersion.not_existing()
        try:
            if self._decode(key, value).marked_for_deletion:
                return ResourceVersion.not_existing()
        except CorruptHaDataError:
            pass  # it exists; reading it will tell what is wrong
        return ResourceVersion(_version_number(current.resource_version))

    async def get_and_lock(self, name: str) -> RetrievableStateHandle[T]:
        key = self._key(name)
        current = await self._config_map()
        value = current.data.get(key)
        if value is None:
            raise StateHandleNotExistError(f"Could not find {key} in ConfigMap {self.config_map_name}")
        entry = self._decode(key, value)
        if entry.marked_for_deletion:
            raise StateHandleNotExistError(
                f"{key} in ConfigMap {self.config_map_name} is already marked for deletion"
            )
        return self._storage.deserialize_handle(entry.pointer)

    async def get_all_and_lock(self) -> list[tuple[RetrievableStateHandle[T], str]]:
        current = await self._writer.read()
        if current is None:
            return []
        result: list[tuple[RetrievableStateHandle[T], str]] = []
        for key in sorted(current.data):
            if not key.startswith(self._prefix):
                continue
            try:
                entry = self._decode(key, current.data[key])
                if entry.marked_for_deletion:
                    continue
                result.append((self._storage.deserialize_handle(entry.pointer), key[len(self._prefix) :]))
            except CorruptHaDataError as e:
                _log.warning("Skipping entry %s of ConfigMap %s: %s", key, self.config_map_name, e)
        return result

    async def get_all_handles(self) -> list[str]:
        current = await self._config_map()
        names: list[str] = []
        for key in sorted(current.data):
            if not key.startswith(self._prefix):
                continue
            try:
                if self._decode(key, current.data[key]).marked_for_deletion:
                    continue
            except CorruptHaDataError:
                pass
            names.append(key[len(self._prefix) :])
        return names

    # ------------------------------------------------------------------ helpers

    async def _discard_quietly(self, handle: RetrievableStateHandle[T], what: str) -> None:
        try:
            await handle.discard_state()
        except Exception as e:
            _log.warning("Could not discard %s at %s: %s", what, handle.location, e)

    async def _discard_pointer_quietly(self, pointer: bytes, what: str) -> None:
        try:
            handle = self._storage.deserialize_handle(pointer)
        except CorruptHaDataError as e:
            _log.warning("Could not discard %s: %s", what, e)
            return
        await self._discard_quietly(handle, what)

    def __repr__(self) -> str:
        return f"KubernetesStateHandleStore(config_map={self.config_map_name!r}, prefix={self._prefix!r})"


def _version_number(resource_version: str | None) -> int:
    """Kubernetes resourceVersions are opaque strings; in practice etcd revisions (decimal)."""
    if resource_version is not None and resource_version.isdigit():
        return int(resource_version)
    return 0
