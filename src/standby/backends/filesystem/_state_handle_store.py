"""FileSystemStateHandleStore: pointers as files in a directory, with per-instance lock files (ZooKeeper's model).

Layout of one store directory (e.g. ``<cluster>/execution-plans`` or ``<cluster>/jobs/<jobId>/checkpoints``):

* ``<name>`` — the pointer: a JSON header line ``{"format":1,"version":<n>}`` followed by the handle bytes of the
  storage helper (``{"version":1,"path":...,"size":...}``); replaced atomically (rename), created exclusively (link).
* ``<name>.locks/<instance-id>`` — one lock file per store instance holding the entry, with the owner's pid and
  start time. ZooKeeper makes lock nodes ephemeral; here a lock whose process is dead is stale and ignored.
* An entry is *marked for deletion* when its pointer exists but its ``.locks`` directory does not (ZooKeeper: a node
  without ``locks`` child): it is invisible (``exists`` is false) and removed by the next removal or add.
* ``.lock`` — ``flock`` held for each read-modify-write, so processes on the same host never interleave updates.

Writes (add, replace, remove, clear) are fenced: ``fence(what)`` must pass (the process holds the leader lock),
else ``FencingError``. Releasing locks is never fenced: a deposed leader must still release (FLINK-10011).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from standby.ha import (
    CorruptHaDataError,
    ResourceVersion,
    RetrievableStateHandle,
    RetrievableStateStorageHelper,
    StateHandleAlreadyExistError,
    StateHandleNotExistError,
    StateHandleStore,
    StateHandleStoreError,
)

from ._files import (
    ProcessIdentity,
    atomic_write,
    current_process,
    exclusive_create,
    is_alive,
    json_bytes,
    locked,
    read_or_none,
)

T = TypeVar("T")

_log = logging.getLogger(__name__)

POINTER_FORMAT = 1
LOCKS_SUFFIX = ".locks"
STORE_LOCK_FILE = ".lock"

Fence = Callable[[str], None]


def _check_name(name: str) -> None:
    if (
        not name
        or "/" in name
        or "\0" in name
        or name.startswith(".")
        or name.endswith(LOCKS_SUFFIX)
        or len(name.encode()) > 200
    ):
        raise ValueError(
            f"Invalid entry name {name!r}: it must be a plain file name, not start with '.', "
            f"and not end with '{LOCKS_SUFFIX}'"
        )


class _Pointer(Generic[T]):
    def __init__(self, version: int, handle_bytes: bytes, raw: bytes) -> None:
        self.version = version
        self.handle_bytes = handle_bytes
        self.raw = raw


def _encode_pointer(version: int, handle_bytes: bytes) -> bytes:
    return json_bytes({"format": POINTER_FORMAT, "version": version}) + b"\n" + handle_bytes


def _decode_pointer(raw: bytes, path: Path) -> _Pointer[T]:
    header, sep, handle_bytes = raw.partition(b"\n")
    try:
        body = json.loads(header)
        if not sep or not isinstance(body, dict) or body.get("format") != POINTER_FORMAT:
            raise ValueError("unknown pointer format")
        version = int(body["version"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise CorruptHaDataError(
            f"Cannot read the pointer file {path}: {e}. Remove the file to continue."
        ) from e
    return _Pointer(version, handle_bytes, raw)


class FileSystemStateHandleStore(StateHandleStore[T]):
    """A ``StateHandleStore`` over a local directory (one instance = one lock identity)."""

    def __init__(
        self,
        root: Path,
        storage: RetrievableStateStorageHelper[T],
        fence: Fence | None = None,
        instance_id: str | None = None,
    ) -> None:
        self._root = root
        self._storage = storage
        self._fence = fence
        self.instance_id = instance_id or uuid.uuid4().hex
        self._owner = current_process()

    @property
    def root(self) -> Path:
        return self._root

    # ------------------------------------------------------------------ paths and helpers

    def _pointer_path(self, name: str) -> Path:
        _check_name(name)
        return self._root / name

    def _locks_dir(self, name: str) -> Path:
        return self._root / (name + LOCKS_SUFFIX)

    def _own_lock(self, name: str) -> Path:
        return self._locks_dir(name) / self.instance_id

    def _check_fence(self, what: str) -> None:
        if self._fence is not None:
            self._fence(what)

    def _store_lock(self) -> contextlib.AbstractContextManager[None]:
        return locked(self._root / STORE_LOCK_FILE)

    def _read_pointer(self, name: str) -> _Pointer[T] | None:
        path = self._pointer_path(name)
        raw = read_or_none(path)
        return None if raw is None else _decode_pointer(raw, path)

    def _is_live(self, name: str) -> bool:
        return self._pointer_path(name).is_file() and self._locks_dir(name).is_dir()

    def _write_own_lock(self, name: str) -> None:
        lock = self._own_lock(name)
        lock.parent.mkdir(exist_ok=True)
        body = {"instance": self.instance_id, "owner": self._owner.to_json()}
        lock.write_bytes(json_bytes(body))

    def _lock_is_stale(self, lock: Path) -> bool:
        raw = read_or_none(lock)
        if raw is None:
            return True
        try:
            owner = ProcessIdentity.from_json(json.loads(raw).get("owner"))
        except (ValueError, AttributeError):
            owner = None
        if owner is None:
            # locks are written under the store lock, so an unreadable one was left by a crashed writer
            return True
        return is_alive(owner) is False

    def _entry_names(self) -> list[str]:
        try:
            names = os.listdir(self._root)
        except FileNotFoundError:
            return []
        return sorted(
            n
            for n in names
            if not n.startswith(".") and not n.endswith(LOCKS_SUFFIX) and (self._root / n).is_file()
        )

    # ------------------------------------------------------------------ StateHandleStore

    async def add_and_lock(self, name: str, state: T) -> RetrievableStateHandle[T]:
        self._check_fence(f"add {self._root / name}")
        pointer_path = self._pointer_path(name)
        if await asyncio.to_thread(pointer_path.exists):
            if await asyncio.to_thread(self._is_live, name):
                raise StateHandleAlreadyExistError(f"The entry {pointer_path} already exists.")
            # marked for deletion: finish that removal first (Flink's ZooKeeperStateHandleStore.addAndLock)
            await self.release_and_try_remove(name)
        handle = await self._storage.store(state)
        try:
            handle_bytes = self._storage.serialize_handle(handle)
            await asyncio.to_thread(self._commit_add, name, handle_bytes)
        except Exception:
            # nothing was committed (the link is the commit point): the new payload must go
            await handle.discard_state()
            raise
        return handle

    def _commit_add(self, name: str, handle_bytes: bytes) -> None:
        pointer_path = self._pointer_path(name)
        self._root.mkdir(parents=True, exist_ok=True)
        with self._store_lock():
            self._check_fence(f"add {pointer_path}")
            if pointer_path.exists():
                raise StateHandleAlreadyExistError(f"The entry {pointer_path} already exists.")
            locks = self._locks_dir(name)
            if locks.exists():
                shutil.rmtree(locks, ignore_errors=True)  # left over by a crashed add
            self._write_own_lock(name)
            try:
                exclusive_create(pointer_path, _encode_pointer(0, handle_bytes))
            except BaseException:
                shutil.rmtree(locks, ignore_errors=True)
                raise

    async def replace(self, name: str, expected_version: ResourceVersion, state: T) -> None:
        self._check_fence(f"replace {self._root / name}")
        handle = await self._storage.store(state)
        try:
            handle_bytes = self._storage.serialize_handle(handle)
            old = await asyncio.to_thread(self._commit_replace, name, expected_version, handle_bytes)
        except Exception:
            await handle.discard_state()
            raise
        try:
            old_handle = self._storage.deserialize_handle(old.handle_bytes)
        except CorruptHaDataError as e:
            _log.warning("Cannot discard the replaced payload of %s: %s", self._root / name, e)
            return
        await old_handle.discard_state()

    def _commit_replace(
        self, name: str, expected_version: ResourceVersion, handle_bytes: bytes
    ) -> _Pointer[T]:
        pointer_path = self._pointer_path(name)
        with self._store_lock():
            self._check_fence(f"replace {pointer_path}")
            current = self._read_pointer(name)
            if current is None or not self._locks_dir(name).is_dir():
                raise StateHandleNotExistError(f"Could not replace {pointer_path}: the entry does not exist.")
            if current.version != expected_version.value:
                raise StateHandleStoreError(
                    f"Could not replace {pointer_path}: it has version {current.version}, "
                    f"expected {expected_version.value} (changed concurrently)."
                )
            atomic_write(pointer_path, _encode_pointer(current.version + 1, handle_bytes))
            return current

    async def exists(self, name: str) -> ResourceVersion:
        def check() -> ResourceVersion:
            pointer = self._read_pointer(name)
            if pointer is None or not self._locks_dir(name).is_dir():
                return ResourceVersion.not_existing()
            return ResourceVersion(pointer.version)

        return await asyncio.to_thread(check)

    async def get_and_lock(self, name: str) -> RetrievableStateHandle[T]:
        pointer = await asyncio.to_thread(self._lock_entry, name)
        try:
            return self._storage.deserialize_handle(pointer.handle_bytes)
        except Exception:
            await self.release(name)
            raise

    def _lock_entry(self, name: str) -> _Pointer[T]:
        pointer_path = self._pointer_path(name)
        if not self._root.is_dir():
            raise StateHandleNotExistError(f"The entry {pointer_path} does not exist.")
        with self._store_lock():
            if not self._is_live(name):
                raise StateHandleNotExistError(f"The entry {pointer_path} does not exist.")
            pointer = self._read_pointer(name)
            if pointer is None:
                raise StateHandleNotExistError(f"The entry {pointer_path} does not exist.")
            self._write_own_lock(name)
            return pointer

    async def get_all_and_lock(self) -> list[tuple[RetrievableStateHandle[T], str]]:
        entries: list[tuple[RetrievableStateHandle[T], str]] = []
        for name in await asyncio.to_thread(self._entry_names):
            try:
                entries.append((await self.get_and_lock(name), name))
            except StateHandleNotExistError:
                continue  # removed concurrently or marked for deletion
            except CorruptHaDataError as e:
                _log.warning("Skipping the unreadable entry %s: %s", self._root / name, e)
        return entries

    async def get_all_handles(self) -> list[str]:
        def live_names() -> list[str]:
            return [n for n in self._entry_names() if self._locks_dir(n).is_dir()]

        return await asyncio.to_thread(live_names)

    async def release_and_try_remove(self, name: str) -> bool:
        self._check_fence(f"remove {self._root / name}")
        outcome, pointer = await asyncio.to_thread(self._mark_for_deletion, name)
        if outcome == "locked":
            return False
        if outcome == "absent" or pointer is None:
            return True
        handle: RetrievableStateHandle[T] | None
        try:
            handle = self._storage.deserialize_handle(pointer.handle_bytes)
        except CorruptHaDataError as e:
            _log.warning("Removing %s without discarding its payload: %s", self._root / name, e)
            handle = None
        if handle is not None:
            # if this fails the entry stays marked for deletion; the next removal finishes it
            await handle.discard_state()
        await asyncio.to_thread(self._delete_marked, name, pointer.raw)
        return True

    def _mark_for_deletion(self, name: str) -> tuple[str, _Pointer[T] | None]:
        pointer_path = self._pointer_path(name)
        locks = self._locks_dir(name)
        if not self._root.is_dir():
            return "absent", None  # nothing to remove (and no directory to create for the store lock)
        with self._store_lock():
            self._check_fence(f"remove {pointer_path}")
            raw = read_or_none(pointer_path)
            if raw is None:
                # nothing to remove; tidy an orphaned lock directory
                with contextlib.suppress(FileNotFoundError):
                    self._own_lock(name).unlink()
                if locks.is_dir() and all(self._lock_is_stale(lock) for lock in locks.iterdir()):
                    shutil.rmtree(locks, ignore_errors=True)
                return "absent", None
            try:
                pointer: _Pointer[T] | None = _decode_pointer(raw, pointer_path)
            except CorruptHaDataError as e:
                _log.warning("%s", e)
                pointer = _Pointer(-1, b"", raw)
            if locks.is_dir():
                with contextlib.suppress(FileNotFoundError):
                    self._own_lock(name).unlink()
                for lock in list(locks.iterdir()):
                    if not self._lock_is_stale(lock):
                        _log.debug("Cannot remove %s: %s still holds a lock", pointer_path, lock.name)
                        return "locked", None
                shutil.rmtree(locks, ignore_errors=True)
            return "marked", pointer

    def _delete_marked(self, name: str, raw: bytes) -> None:
        pointer_path = self._pointer_path(name)
        with self._store_lock():
            # only the entry we marked: a concurrent add may have put a new one under the same name
            if not self._locks_dir(name).exists() and read_or_none(pointer_path) == raw:
                with contextlib.suppress(FileNotFoundError):
                    pointer_path.unlink()

    async def clear_entries(self) -> None:
        self._check_fence(f"clear {self._root}")

        def clear() -> None:
            if not self._root.is_dir():
                return
            with self._store_lock():
                self._check_fence(f"clear {self._root}")
                for entry in os.listdir(self._root):
                    path = self._root / entry
                    if entry.endswith(LOCKS_SUFFIX) and path.is_dir():
                        shutil.rmtree(path, ignore_errors=True)
                    elif not entry.startswith(".") and path.is_file():
                        with contextlib.suppress(FileNotFoundError):
                            path.unlink()

        await asyncio.to_thread(clear)

    async def release(self, name: str) -> None:
        def unlink() -> None:
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                self._own_lock(name).unlink()

        await asyncio.to_thread(unlink)

    async def release_all(self) -> None:
        def unlink_all() -> None:
            try:
                entries = os.listdir(self._root)
            except FileNotFoundError:
                return
            for entry in entries:
                if entry.endswith(LOCKS_SUFFIX):
                    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                        (self._root / entry / self.instance_id).unlink()

        await asyncio.to_thread(unlink_all)

    def __repr__(self) -> str:
        return f"FileSystemStateHandleStore({str(self._root)!r}, instance={self.instance_id[:8]})"
