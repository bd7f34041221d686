"""ZooKeeperStateHandleStore: pointers to HA payloads as znodes, with per-instance lock children (reference §2.6).

Port of Flink's ``ZooKeeperStateHandleStore``. Layout under the store's root node::

    <root>/<name>                      PERSISTENT, data = the storage helper's pointer (versioned JSON)
    <root>/<name>/locks                PERSISTENT
    <root>/<name>/locks/<instance-id>  EPHEMERAL, one per store instance (process) holding a lock

* An entry whose ``locks`` child is gone (a node without children) is *marked for deletion*: it counts as absent,
  and ``add_and_lock`` removes it before writing the name again.
* ``add_and_lock`` writes the payload file first, then creates node, ``locks`` and the own lock in one multi-op.
  Errors that prove the multi-op was not applied discard the file and are re-raised; any other error raises
  ``PossibleInconsistentStateError`` and keeps the file (the pointer may have been committed).
* ``release_and_try_remove`` refuses (returns False) while another instance still holds a lock (FLINK-6612).

Beyond Flink: with a ``fencing`` token every write (add, replace, removal, clear) is one multi-op that also checks
the leader's latch node and its version, pinned when the write starts (all its steps and retries check the same
leadership session), so a deposed leader cannot change the store (``FencingError``). Locks and reads are not
fenced. After an ambiguous failure the pointer bytes (which name a unique payload file) tell whether a write was
applied.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Generic, NoReturn, TypeVar

from kazoo.exceptions import (
    AuthFailedError,
    BadArgumentsError,
    BadVersionError,
    InvalidACLError,
    NoAuthError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    NotReadOnlyCallError,
    SessionMovedError,
)

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
    StateHandleStoreError,
)

from ._client import LatchFencing, Op, PinnedFencing, TransactionError, ZooKeeperClient, pin_fencing

_log = logging.getLogger(__name__)

T = TypeVar("T")

__all__ = ["LOCKS_NODE", "SAFE_PRE_COMMIT_ERRORS", "ZooKeeperStateHandleStore"]

LOCKS_NODE = "locks"

#: Flink's ``SAFE_PRE_COMMIT_EXCEPTIONS``: the multi-op was certainly not applied, so the new payload can go.
SAFE_PRE_COMMIT_ERRORS: tuple[type[BaseException], ...] = (
    NodeExistsError,
    BadArgumentsError,
    NoNodeError,
    NoAuthError,
    BadVersionError,
    AuthFailedError,
    InvalidACLError,
    SessionMovedError,
    NotReadOnlyCallError,
)
_MAX_GET_ALL_ROUNDS = 100


class ZooKeeperStateHandleStore(StateHandleStore[T], Generic[T]):
    """Flink's ``ZooKeeperStateHandleStore`` over one root node; ``fencing`` fences every write (beyond Flink)."""

    def __init__(
        self,
        client: ZooKeeperClient,
        root_path: str,
        storage: RetrievableStateStorageHelper[T],
        fencing: LatchFencing | None = None,
    ) -> None:
        self._client = client
        self.root_path = root_path.rstrip("/") or "/"
        self._storage = storage
        self._fencing = fencing
        #: this instance's lock node name (Flink: ``lockNode = UUID.randomUUID()``)
        self.lock_node = str(uuid.uuid4())

    def __repr__(self) -> str:
        return f"ZooKeeperStateHandleStore{{root='{self.root_path}', lockNode='{self.lock_node}'}}"

    # ------------------------------------------------------------------------------------------------ paths

    def path(self, name: str) -> str:
        """The node of entry ``name`` (a leading ``/`` in the name, as Flink's names have, is accepted)."""
        stripped = name.strip("/")
        if not stripped or "/" in stripped:
            raise ValueError(f"Invalid state handle name {name!r}: expected one path segment")
        return f"{self.root_path.rstrip('/')}/{stripped}"

    def _locks_path(self, path: str) -> str:
        return f"{path}/{LOCKS_NODE}"

    def _lock_path(self, path: str) -> str:
        return f"{path}/{LOCKS_NODE}/{self.lock_node}"

    # ------------------------------------------------------------------------------------------------ writes

    async def add_and_lock(self, name: str, state: T) -> RetrievableStateHandle[T]:
        path = self.path(name)
        fencing = self._check_leadership()
        stat = await self._client.exists(path)
        if stat is not None:
            if stat.numChildren > 0:
                raise StateHandleAlreadyExistError(
                    f"State handle {path} already exists; replace it or remove it first."
                )
            # Marked for deletion by an interrupted removal: finish that removal first.
            if not await self._release_and_try_remove(name, fencing):
                raise StateHandleStoreError(
                    f"State handle {path} is marked for deletion but could not be removed; retry later."
                )
        await self._client.ensure_path(self.root_path)
        # The payload first: a pointer must never name a file that does not exist.
        handle = await self._storage.store(state)
        pointer = self._storage.serialize_handle(handle)
        try:
            await self._client.fenced_commit(
                fencing,
                [
                    Op.create(path, pointer),
                    Op.create(self._locks_path(path)),
                    Op.create(self._lock_path(path), ephemeral=True),
                ],
            )
        except Exception as e:
            if await self._pointer_is(path, pointer):
                return handle  # an earlier attempt (its answer lost in a connection loss) was applied
            error = e.error if isinstance(e, TransactionError) else e
            if isinstance(error, NodeExistsError):
                await self._discard(handle)
                raise StateHandleAlreadyExistError(
                    f"State handle {path} was created concurrently by another instance."
                ) from error
            await self._fail(f"Could not add state handle {path}", path, handle, e)
        return handle

    async def replace(self, name: str, expected_version: ResourceVersion, state: T) -> None:
        path = self.path(name)
        fencing = self._check_leadership()
        stat = await self._client.exists(path)
        if stat is None or stat.numChildren == 0:
            raise StateHandleNotExistError(f"State handle {path} does not exist; cannot replace it.")
        if await self._client.exists(self._lock_path(path)) is None:
            # Our lock is ephemeral: gone with our session, and so is our latch node if we were the leader.
            await self._check_leadership_remotely(fencing)
            raise StateHandleStoreError(
                f"State handle {path} may only be replaced by an instance holding a lock on it "
                f"(lock {self._lock_path(path)} does not exist)."
            )
        old_handle = await self._read_handle_or_none(path)
        new_handle = await self._storage.store(state)
        pointer = self._storage.serialize_handle(new_handle)
        try:
            await self._client.fenced_commit(fencing, [Op.set(path, pointer, expected_version.value)])
        except Exception as e:
            if not await self._pointer_is(path, pointer):
                error = e.error if isinstance(e, TransactionError) else e
                if isinstance(error, NoNodeError):
                    await self._discard(new_handle)
                    raise StateHandleNotExistError(
                        f"State handle {path} does not exist; cannot replace it."
                    ) from e
                await self._fail(
                    f"Could not replace state handle {path} at version {expected_version.value}",
                    path,
                    new_handle,
                    e,
                )
        if old_handle is not None:
            await self._discard(old_handle)

    async def _fail(
        self, message: str, path: str, handle: RetrievableStateHandle[T], e: Exception
    ) -> NoReturn:
        """Raise for a failed write: discard the new payload only if the write was certainly not applied."""
        if isinstance(e, FencingError):
            await self._discard(handle)
            raise e
        error = e.error if isinstance(e, TransactionError) else e
        if isinstance(error, SAFE_PRE_COMMIT_ERRORS):
            await self._discard(handle)
            raise StateHandleStoreError(f"{message}: {type(error).__name__} {error}".rstrip()) from error
        raise PossibleInconsistentStateError(
            f"{message}: {type(error).__name__}; the write may or may not have been applied, so the payload "
            f"{handle.location} is kept. Read the entry again before acting on it."
        ) from error

    async def release_and_try_remove(self, name: str) -> bool:
        return await self._release_and_try_remove(name, self._check_leadership())

    async def _release_and_try_remove(self, name: str, fencing: PinnedFencing | None) -> bool:
        path = self.path(name)
        handle: RetrievableStateHandle[T] | None = None
        try:
            handle = await self._read_handle_or_none(path)
        except CorruptHaDataError as e:
            _log.warning("Removing %s whose pointer cannot be read (its payload is left behind): %s", path, e)
        await self.release(name)
        # 1. mark for deletion: from now on no instance can lock it
        try:
            await self._client.fenced_commit(fencing, [Op.delete(self._locks_path(path))])
        except TransactionError as e:
            if isinstance(e.error, NotEmptyError):
                _log.debug("Not removing %s: another instance still holds a lock on it", path)
                return False
            if not isinstance(e.error, NoNodeError):
                raise
        # 2. the payload (a failure propagates and leaves the entry marked for deletion), 3. the pointer
        if handle is not None:
            await handle.discard_state()
        try:
            await self._client.fenced_commit(fencing, [Op.delete(path)])
        except TransactionError as e:
            if isinstance(e.error, NotEmptyError):
                return False
            if not isinstance(e.error, NoNodeError):
                raise
        return True

    async def clear_entries(self) -> None:
        """Remove the root node and everything below it (Flink: ``deleteChildren(root, deleteSelf=true)``)."""
        await self._client.delete_tree(self.root_path, fencing=self._fencing)

    # ------------------------------------------------------------------------------------------------ reads & locks

    async def exists(self, name: str) -> ResourceVersion:
        stat = await self._client.exists(self.path(name))
        if stat is None or stat.numChildren == 0:
            return ResourceVersion.not_existing()
        return ResourceVersion(stat.version)

    async def get_and_lock(self, name: str) -> RetrievableStateHandle[T]:
        path = self.path(name)
        try:
            await self._client.create(self._lock_path(path), ephemeral=True)
        except NodeExistsError:
            pass  # we hold it already
        except NoNodeError:
            raise StateHandleNotExistError(
                f"State handle {path} does not exist or is marked for deletion."
            ) from None
        try:
            data, _ = await self._client.get(path)
            return self._deserialize(path, data)
        except NoNodeError:
            await self.release(name)
            raise StateHandleNotExistError(f"State handle {path} does not exist.") from None
        except BaseException:
            await self.release(name)
            raise

    async def get_all_and_lock(self) -> list[tuple[RetrievableStateHandle[T], str]]:
        client = self._client
        for _ in range(_MAX_GET_ALL_ROUNDS):
            try:
                children, stat = await client.get_children_and_stat(self.root_path)
            except NoNodeError:
                return []
            result: list[tuple[RetrievableStateHandle[T], str]] = []
            for child in sorted(children):
                try:
                    result.append((await self.get_and_lock(child), child))
                except StateHandleNotExistError:
                    continue  # removed or marked for deletion meanwhile
                except CorruptHaDataError as e:
                    # Flink: an unreadable pointer is logged and skipped (an unreadable payload fails later).
                    _log.warning("Skipping state handle %s/%s: %s", self.root_path, child, e)
            after = await client.exists(self.root_path)
            if after is not None and after.cversion == stat.cversion:
                return result
            # children changed while we read them: read again (Flink's cversion loop)
        raise StateHandleStoreError(
            f"The children of {self.root_path} kept changing during {_MAX_GET_ALL_ROUNDS} reads; retry later."
        )

    async def get_all_handles(self) -> list[str]:
        try:
            children = await self._client.get_children(self.root_path)
        except NoNodeError:
            return []
        stats = await asyncio.gather(*(self._client.exists(self.path(c)) for c in children))
        return sorted(c for c, s in zip(children, stats, strict=True) if s is not None and s.numChildren > 0)

    async def release(self, name: str) -> None:
        try:
            await self._client.delete(self._lock_path(self.path(name)))
        except NoNodeError:
            pass

    async def release_all(self) -> None:
        try:
            children = await self._client.get_children(self.root_path)
        except NoNodeError:
            return
        for child in children:
            await self.release(child)

    # ------------------------------------------------------------------------------------------------ helpers

    def _check_leadership(self) -> PinnedFencing | None:
        """The token of this write, pinned to the current leadership session (all steps and retries use it).

        Raises ``FencingError`` at once when this process knows it is not the leader (no payload is written).
        """
        return pin_fencing(self._fencing)

    async def _check_leadership_remotely(self, fencing: LatchFencing | None) -> None:
        """Raise ``FencingError`` if our latch node is gone or moved on (deposed, but not told yet)."""
        if fencing is None:
            return
        path, version = fencing.fencing_token()
        stat = await self._client.exists(path)
        if stat is None or stat.version != version:
            raise FencingError(
                f"Write refused: the leader latch node {path} of this process is gone or no longer at version "
                f"{version}, so the leadership session of this write has ended. The new leader owns this data now."
            )

    def _deserialize(self, path: str, data: bytes) -> RetrievableStateHandle[T]:
        try:
            return self._storage.deserialize_handle(data)
        except Exception as e:
            raise CorruptHaDataError(
                f"Cannot read the state handle pointer in {path}: {e}. Remove the node if its payload is lost."
            ) from e

    async def _read_handle_or_none(self, path: str) -> RetrievableStateHandle[T] | None:
        try:
            data, _ = await self._client.get(path)
        except NoNodeError:
            return None
        return self._deserialize(path, data)

    async def _pointer_is(self, path: str, pointer: bytes) -> bool:
        """Whether ``path`` holds exactly ``pointer`` (it names a unique payload file, so only our write put it)."""
        try:
            data, _ = await self._client.get(path, retry=False)
        except NoNodeError:
            return False
        except Exception as e:
            _log.debug("Cannot read %s to resolve an ambiguous write: %s", path, e)
            return False
        return bytes(data) == pointer

    async def _discard(self, handle: RetrievableStateHandle[T]) -> None:
        try:
            await handle.discard_state()
        except Exception as e:
            _log.warning("Could not discard the payload %s: %s", handle.location, e)
