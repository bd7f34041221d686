"""StateHandleStore on etcd: pointer keys under a root, per-instance lock keys on the process's lease.

Port of Flink's ``ZooKeeperStateHandleStore`` (§2.6) to a flat key space:

* entry ``<root>/<name>`` holds a small envelope ``{"version": 1, "markedForDeletion": false, "handle": <pointer>}``
  around the storage helper's pointer to the payload on the HA storage dir;
* lock ``<root>/<name>/locks/<instance-uuid>`` is attached to the process's lock lease, so it vanishes with a dead
  process like ZooKeeper's ephemeral lock nodes;
* "marked for deletion" is an envelope flag (ZooKeeper: the ``locks`` parent is gone; Kubernetes:
  ``StateHandleWithDeleteMarker``). ``release_and_try_remove`` marks the entry in a txn that requires that no lock
  remains, then discards the payload, then deletes the entry; a failure in between leaves a marked entry that
  readers skip and a later call completes.

Writes that change entries are transactions: create with ``create_revision == 0``, replace with ``mod_revision ==
expected``, and — with a fence — a compare on the writer's election key (``FencingError`` otherwise). Taking and
releasing this instance's own locks is not fenced (standbys lock too).
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from standby.ha import (
    CorruptHaDataError,
    PossibleInconsistentStateError,
    ResourceVersion,
    RetrievableStateHandle,
    RetrievableStateStorageHelper,
    StateHandleAlreadyExistError,
    StateHandleNotExistError,
    StateHandleStore,
    StateHandleStoreError,
)

from ._client import (
    Compare,
    Delete,
    EtcdClient,
    EtcdError,
    EtcdUnavailableError,
    Get,
    KeyValue,
    Put,
    TxnResult,
)
from ._fencing import LeadershipFence, fenced_txn
from ._lease import EtcdLockLease, owner_description
from ._paths import LOCKS

_log = logging.getLogger(__name__)

T = TypeVar("T")

_ENVELOPE_VERSION = 1
#: attempts of optimistic loops (each is one etcd round trip; they only repeat on concurrent changes)
_MAX_ATTEMPTS = 32

_TxnBuilder = Callable[[int], Awaitable[TxnResult]]


class StateHandleVersionConflictError(StateHandleStoreError):
    """``replace`` found the entry at another version than expected (it was changed concurrently)."""


@dataclass(frozen=True)
class _Entry:
    name: str
    kv: KeyValue
    pointer: bytes | None  # None: the envelope is unreadable
    marked: bool


def encode_entry(pointer: bytes, marked_for_deletion: bool = False) -> bytes:
    body: dict[str, object] = {"version": _ENVELOPE_VERSION, "markedForDeletion": marked_for_deletion}
    try:
        body["handle"] = pointer.decode("utf-8")
    except UnicodeDecodeError:
        body["handleBase64"] = base64.b64encode(pointer).decode()
    return json.dumps(body, sort_keys=True).encode()


def decode_entry(value: bytes, source: str) -> tuple[bytes, bool]:
    """``(pointer, marked for deletion)``; raises CorruptHaDataError naming ``source``."""
    try:
        body = json.loads(value)
        if body.get("version") != _ENVELOPE_VERSION:
            raise ValueError(f"unsupported entry format version {body.get('version')!r}")
        if "handle" in body:
            pointer = str(body["handle"]).encode("utf-8")
        else:
            pointer = base64.b64decode(str(body["handleBase64"]), validate=True)
        return pointer, bool(body.get("markedForDeletion", False))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise CorruptHaDataError(
            f"Cannot read the state handle pointer in etcd key {source}: {e}. Remove the key "
            "(e.g. `standby ha clean`) if the entry is not needed any more."
        ) from e


class EtcdStateHandleStore(StateHandleStore[T], Generic[T]):
    """Named entries under ``root`` (e.g. ``/standby/default/execution-plans``), locked per store instance."""

    def __init__(
        self,
        client: EtcdClient,
        root: str,
        storage: RetrievableStateStorageHelper[T],
        lock_lease: EtcdLockLease,
        fence: LeadershipFence | None,
        lock_id: str | None = None,
    ) -> None:
        self._client = client
        self._root = root.rstrip("/")
        self._storage = storage
        self._lock_lease = lock_lease
        self._fence = fence
        #: Flink: ``lockNode = UUID.randomUUID()`` per store instance
        self.lock_id = lock_id or uuid.uuid4().hex

    def __repr__(self) -> str:
        return f"EtcdStateHandleStore(root={self._root!r}, lock={self.lock_id})"

    # ----------------------------------------------------------------------------------------- keys

    def _name(self, name: str) -> str:
        normalized = name.strip("/")
        if not normalized or "/" in normalized:
            raise ValueError(
                f"Invalid state handle name {name!r} in {self._root}: expected one non-empty segment"
            )
        return normalized

    def _entry_key(self, name: str) -> bytes:
        return f"{self._root}/{self._name(name)}".encode()

    def _locks_prefix(self, name: str) -> bytes:
        return f"{self._root}/{self._name(name)}/{LOCKS}/".encode()

    def _lock_key(self, name: str) -> bytes:
        return self._locks_prefix(name) + self.lock_id.encode()

    def _entry(self, name: str, kv: KeyValue) -> _Entry:
        try:
            pointer, marked = decode_entry(kv.value, kv.key.decode(errors="replace"))
        except CorruptHaDataError as e:
            _log.warning("%s", e)
            return _Entry(name, kv, None, False)
        return _Entry(name, kv, pointer, marked)

    async def _read(self, name: str) -> _Entry | None:
        kv, _ = await self._client.get(self._entry_key(name))
        return None if kv is None else self._entry(name, kv)

    async def _list(self) -> list[_Entry]:
        prefix = f"{self._root}/".encode()
        listing = await self._client.get_prefix(prefix)
        entries = []
        for kv in listing.kvs:
            rest = kv.key[len(prefix) :]
            if rest and b"/" not in rest:
                entries.append(self._entry(rest.decode(errors="replace"), kv))
        return entries

    async def _discard(self, handle: RetrievableStateHandle[T], why: str) -> None:
        try:
            await handle.discard_state()
        except Exception as e:
            _log.warning("Could not discard %s (%s): %s", handle.location, why, e)

    async def _lease_id(self) -> int:
        return await self._lock_lease.lease_id()

    async def _txn_with_lock(
        self, what: str, build: _TxnBuilder
    ) -> tuple[bool, list[list[KeyValue] | int | None]]:
        """Run a txn that attaches keys to the lock lease; a lease etcd no longer knows is replaced once."""
        for attempt in range(2):
            lease_id = await self._lease_id()
            try:
                result = await build(lease_id)
            except EtcdError as e:
                if attempt == 0 and "lease not found" in str(e):
                    self._lock_lease.invalidate(lease_id, "etcd does not know it any more")
                    continue
                raise
            return result.succeeded, result.responses
        raise EtcdError(f"Cannot {what}: etcd rejected two lock leases in a row")

    # ----------------------------------------------------------------------------------------- writes

    def _require_leadership(self, what: str) -> None:
        # fail fast, before a payload is written, when not the leader (etcd checks again in the txn)
        if self._fence is not None:
            self._fence.require(what)

    async def add_and_lock(self, name: str, state: T) -> RetrievableStateHandle[T]:
        key = self._entry_key(name)
        self._require_leadership(f"add {key.decode()}")
        existing = await self._read(name)
        if existing is not None:
            if existing.marked:
                await self.release_and_try_remove(name)
            else:
                raise StateHandleAlreadyExistError(f"etcd key {key.decode()} already exists")
        handle = await self._storage.store(state)
        value = encode_entry(self._storage.serialize_handle(handle))
        what = f"add {key.decode()}"
        try:

            async def build(lease_id: int) -> TxnResult:
                return await fenced_txn(
                    self._client,
                    self._fence,
                    what,
                    [Compare.create_revision(key, "==", 0)],
                    [Put(key, value), Put(self._lock_key(name), owner_description(self.lock_id), lease_id)],
                )

            succeeded, _ = await self._txn_with_lock(what, build)
        except EtcdUnavailableError as e:
            # Flink: keep the payload, the pointer may have been committed
            raise PossibleInconsistentStateError(
                f"Unknown outcome of adding {key.decode()} to etcd ({e}); keeping {handle.location}"
            ) from e
        except BaseException:
            await self._discard(handle, f"adding {key.decode()} failed")
            raise
        if not succeeded:
            await self._discard(handle, f"{key.decode()} exists already")
            raise StateHandleAlreadyExistError(f"etcd key {key.decode()} already exists")
        return handle

    async def replace(self, name: str, expected_version: ResourceVersion, state: T) -> None:
        key = self._entry_key(name)
        self._require_leadership(f"replace {key.decode()}")
        existing = await self._read(name)
        if existing is None or existing.marked:
            raise StateHandleNotExistError(
                f"etcd key {key.decode()} does not exist (or is marked for deletion)"
            )
        old_handle = self._deserialize(existing) if existing.pointer is not None else None
        handle = await self._storage.store(state)
        what = f"replace {key.decode()}"
        try:
            result = await fenced_txn(
                self._client,
                self._fence,
                what,
                [Compare.mod_revision(key, "==", expected_version.value)],
                [Put(key, encode_entry(self._storage.serialize_handle(handle)))],
                [Get(key)],
            )
        except EtcdUnavailableError as e:
            raise PossibleInconsistentStateError(
                f"Unknown outcome of replacing {key.decode()} in etcd ({e}); keeping {handle.location}"
            ) from e
        except BaseException:
            await self._discard(handle, f"replacing {key.decode()} failed")
            raise
        if not result.succeeded:
            await self._discard(handle, f"replacing {key.decode()} failed")
            current = result.get_result(0)
            if not current:
                raise StateHandleNotExistError(f"etcd key {key.decode()} does not exist")
            raise StateHandleVersionConflictError(
                f"etcd key {key.decode()} is at version {current[0].mod_revision}, not the expected "
                f"{expected_version.value}: it was changed concurrently; read it again"
            )
        if old_handle is not None and (existing.kv.mod_revision == expected_version.value):
            await self._discard(old_handle, f"replaced in {key.decode()}")

    async def release_and_try_remove(self, name: str) -> bool:
        key = self._entry_key(name)
        locks = self._locks_prefix(name)
        await self.release(name)
        entry: _Entry | None = None
        for _ in range(_MAX_ATTEMPTS):
            entry = await self._read(name)
            if entry is None:
                return True
            if entry.marked:
                break
            marked_value = encode_entry(entry.pointer, True) if entry.pointer is not None else None
            if marked_value is None:
                # Unreadable pointer: nothing to discard, remove the entry directly if unlocked.
                result = await fenced_txn(
                    self._client,
                    self._fence,
                    f"remove {key.decode()}",
                    [Compare.mod_revision(key, "==", entry.kv.mod_revision), Compare.no_keys_under(locks)],
                    [Delete(key), Delete(locks, prefix=True)],
                    [Get(locks, prefix=True)],
                )
                if result.succeeded:
                    return True
                if result.get_result(0):
                    return False
                continue
            result = await fenced_txn(
                self._client,
                self._fence,
                f"mark {key.decode()} for deletion",
                [Compare.mod_revision(key, "==", entry.kv.mod_revision), Compare.no_keys_under(locks)],
                [Put(key, marked_value), Get(key)],
                [Get(locks, prefix=True)],
            )
            if not result.succeeded:
                if result.get_result(0):
                    return False  # another instance still holds a lock
                continue  # changed concurrently: read again
            entry = self._entry(name, result.get_result(1)[0])
            break
        else:
            raise StateHandleStoreError(
                f"Cannot remove etcd key {key.decode()}: it kept changing during {_MAX_ATTEMPTS} attempts"
            )
        assert entry is not None
        if entry.pointer is not None:
            try:
                handle = self._deserialize(entry)
            except CorruptHaDataError as e:
                _log.warning("Removing %s without discarding its payload: %s", key.decode(), e)
            else:
                # Errors propagate: the entry stays marked (invisible) and a later call retries.
                await handle.discard_state()
        result = await fenced_txn(
            self._client,
            self._fence,
            f"delete {key.decode()}",
            [Compare.mod_revision(key, "==", entry.kv.mod_revision)],
            [Delete(key), Delete(locks, prefix=True)],
        )
        if not result.succeeded:
            _log.info("%s changed while it was being removed; left for a later removal", key.decode())
        return True

    async def clear_entries(self) -> None:
        prefix = f"{self._root}/".encode()
        await fenced_txn(
            self._client, self._fence, f"delete every entry under {self._root}", [], [Delete(prefix, True)]
        )

    # ----------------------------------------------------------------------------------------- reads, locks

    def _deserialize(self, entry: _Entry) -> RetrievableStateHandle[T]:
        assert entry.pointer is not None
        try:
            return self._storage.deserialize_handle(entry.pointer)
        except CorruptHaDataError:
            raise
        except Exception as e:
            raise CorruptHaDataError(
                f"Cannot read the state handle pointer in etcd key {entry.kv.key.decode(errors='replace')}: {e}"
            ) from e

    async def exists(self, name: str) -> ResourceVersion:
        entry = await self._read(name)
        if entry is None or entry.marked:
            return ResourceVersion.not_existing()
        return ResourceVersion(entry.kv.mod_revision)

    async def get_and_lock(self, name: str) -> RetrievableStateHandle[T]:
        key = self._entry_key(name)
        lock_key = self._lock_key(name)

        async def build(lease_id: int) -> TxnResult:
            return await self._client.txn(
                [Compare.create_revision(key, ">", 0)],
                [Put(lock_key, owner_description(self.lock_id), lease_id), Get(key)],
                what=f"lock {key.decode()}",
            )

        succeeded, responses = await self._txn_with_lock(f"lock {key.decode()}", build)
        if not succeeded:
            raise StateHandleNotExistError(f"etcd key {key.decode()} does not exist")
        kvs = responses[1]
        assert isinstance(kvs, list) and kvs
        try:
            pointer, marked = decode_entry(kvs[0].value, key.decode())
            if marked:
                raise StateHandleNotExistError(f"etcd key {key.decode()} is marked for deletion")
            return self._deserialize(_Entry(name, kvs[0], pointer, marked))
        except BaseException:
            await self.release(name)
            raise

    async def get_all_and_lock(self) -> list[tuple[RetrievableStateHandle[T], str]]:
        out: list[tuple[RetrievableStateHandle[T], str]] = []
        for entry in await self._list():
            if entry.marked:
                continue
            try:
                out.append((await self.get_and_lock(entry.name), entry.name))
            except StateHandleNotExistError:
                continue  # removed concurrently
            except CorruptHaDataError as e:
                _log.warning("Skipping unreadable entry %s: %s", entry.name, e)
        return out

    async def get_all_handles(self) -> list[str]:
        return [entry.name for entry in await self._list() if not entry.marked]

    async def release(self, name: str) -> None:
        await self._client.delete(self._lock_key(name))

    async def release_all(self) -> None:
        prefix = f"{self._root}/".encode()
        suffix = f"/{LOCKS}/{self.lock_id}".encode()
        listing = await self._client.get_prefix(prefix, keys_only=True)
        for kv in listing.kvs:
            if kv.key.endswith(suffix):
                await self._client.delete(kv.key)

    # ----------------------------------------------------------------------------------------- visible for tests

    async def lock_holders(self, name: str) -> list[str]:
        """Lock ids currently holding ``name``."""
        prefix = self._locks_prefix(name)
        listing = await self._client.get_prefix(prefix, keys_only=True)
        return [kv.key[len(prefix) :].decode() for kv in listing.kvs]
