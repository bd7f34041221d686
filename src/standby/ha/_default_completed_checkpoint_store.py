"""DefaultCompletedCheckpointStore: completed checkpoints kept in any StateHandleStore, with Flink's retention rules.

Port of Flink's ``DefaultCompletedCheckpointStore``, ``DefaultCompletedCheckpointStoreUtils`` and
``CheckpointStoreUtil`` (§1.8): a new checkpoint is persisted first and only then older ones are subsumed;
recovery reads every entry sorted by name and fails (never skips) on a checkpoint it cannot read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from ._checkpoint import (
    INVALID_CHECKPOINT_ID,
    CheckpointsCleaner,
    CompletedCheckpoint,
    CompletedCheckpointStore,
    subsume_checkpoints,
)
from ._config_access import max_retained_checkpoints as max_retained_checkpoints
from ._errors import CheckpointStoreError, CorruptHaDataError
from ._state_handle_store import StateHandleStore
from ._types import JobStatus

_log = logging.getLogger(__name__)


def checkpoint_id_to_name(checkpoint_id: int) -> str:
    """Flink's ``checkpointIDToName``: the id zero-padded to 19 digits, so names sort like ids."""
    if checkpoint_id < 0:
        raise ValueError(f"Checkpoint id must not be negative, got {checkpoint_id}")
    return f"{checkpoint_id:019d}"


def name_to_checkpoint_id(name: str) -> int:
    """Flink's ``nameToCheckpointID``: the id of a name (a leading '/' is ignored), -1 if it is not one."""
    text = name[1:] if name.startswith("/") else name
    if not text.isdigit() or not text.isascii():
        _log.warning(
            "Could not parse checkpoint id from %r. This indicates that the name is malformed.", name
        )
        return INVALID_CHECKPOINT_ID
    return int(text)


class DefaultCompletedCheckpointStore(CompletedCheckpointStore):
    """Keeps up to ``max_retain`` completed checkpoints of one job in a ``StateHandleStore``."""

    def __init__(
        self,
        max_retain: int,
        store: StateHandleStore[CompletedCheckpoint],
        completed_checkpoints: Sequence[CompletedCheckpoint] = (),
    ) -> None:
        if max_retain < 1:
            raise ValueError("Must retain at least one checkpoint.")
        self._max_retain = max_retain
        self._store = store
        self._checkpoints: list[CompletedCheckpoint] = list(completed_checkpoints)
        self._running = True

    @property
    def state_handle_store(self) -> StateHandleStore[CompletedCheckpoint]:
        return self._store

    async def add_checkpoint_and_subsume_oldest_one(
        self,
        checkpoint: CompletedCheckpoint,
        cleaner: CheckpointsCleaner,
        post_cleanup: Callable[[], None] | None = None,
    ) -> CompletedCheckpoint | None:
        if not self._running:
            raise RuntimeError("Checkpoint store has already been shutdown.")
        name = checkpoint_id_to_name(checkpoint.checkpoint_id)
        # Persist first: if this fails, the in-memory list (and the older checkpoints) stay untouched.
        await self._store.add_and_lock(name, checkpoint)
        self._checkpoints.append(checkpoint)
        subsumed = subsume_checkpoints(self._checkpoints, self._max_retain)
        for old in subsumed:
            # CheckpointSubsumeHelper: a failing subsume action is logged, never fails the new checkpoint.
            # Its state is discarded only once the pointer is gone: while another instance still holds a lock on
            # it (a standby recovering), the files must stay readable. (Flink 2.x defers this decision to its
            # shared-state registry; without one, removal success is the safe signal.)
            try:
                if await self._try_remove(old.checkpoint_id):
                    await cleaner.clean_checkpoint(old, old.should_be_discarded_on_subsume())
            except Exception:
                _log.warning("Fail to subsume the old checkpoint %d.", old.checkpoint_id, exc_info=True)
        if post_cleanup is not None:
            post_cleanup()
        _log.debug("Added checkpoint %d to %s.", checkpoint.checkpoint_id, self._store)
        return max(subsumed, key=lambda c: c.checkpoint_id) if subsumed else None

    def get_all_checkpoints(self) -> list[CompletedCheckpoint]:
        return list(self._checkpoints)

    def get_number_of_retained_checkpoints(self) -> int:
        return len(self._checkpoints)

    def get_max_number_of_retained_checkpoints(self) -> int:
        return self._max_retain

    async def shutdown(self, status: JobStatus, cleaner: CheckpointsCleaner) -> None:
        if not self._running:
            return
        self._running = False
        if status.is_globally_terminal_state():
            _log.info("Shutting down the checkpoint store (job %s)", status.value)
            for checkpoint in self._checkpoints:
                discard = checkpoint.should_be_discarded_on_shutdown(status)
                try:
                    if await self._try_remove(checkpoint.checkpoint_id):
                        await cleaner.clean_checkpoint(checkpoint, discard)
                except Exception:
                    _log.warning(
                        "Fail to remove checkpoint %d during shutdown.",
                        checkpoint.checkpoint_id,
                        exc_info=True,
                    )
            self._checkpoints.clear()
            await self._store.clear_entries()
        else:
            _log.info("Suspending the checkpoint store (job %s): HA data is kept", status.value)
            # Clear the local handles, but don't remove any state.
            self._checkpoints.clear()
            await self._store.release_all()

    async def _try_remove(self, checkpoint_id: int) -> bool:
        return await self._store.release_and_try_remove(checkpoint_id_to_name(checkpoint_id))

    def __repr__(self) -> str:
        ids = [c.checkpoint_id for c in self._checkpoints]
        return f"DefaultCompletedCheckpointStore(max_retain={self._max_retain}, checkpoints={ids})"


async def retrieve_completed_checkpoints(
    store: StateHandleStore[CompletedCheckpoint],
) -> list[CompletedCheckpoint]:
    """Flink's ``retrieveCompletedCheckpoints``: all entries, locked, sorted by name; unreadable ones are fatal."""
    entries = await store.get_all_and_lock()
    entries.sort(key=lambda entry: entry[1])
    _log.info("Found %d checkpoints in %s.", len(entries), store)
    checkpoints: list[CompletedCheckpoint] = []
    for handle, name in entries:
        checkpoint_id = name_to_checkpoint_id(name)
        try:
            checkpoints.append(await handle.retrieve_state())
        except (CorruptHaDataError, OSError) as e:
            raise CheckpointStoreError(
                f"Could not retrieve checkpoint {checkpoint_id} from state handle under {name} "
                f"(file {handle.location}). This indicates that the retrieved state handle is broken. "
                f"Try cleaning the state handle store. Cause: {e}"
            ) from e
    return checkpoints


async def recover_completed_checkpoint_store(
    store: StateHandleStore[CompletedCheckpoint], max_retain: int
) -> DefaultCompletedCheckpointStore:
    """A ``DefaultCompletedCheckpointStore`` holding every checkpoint found in ``store`` (oldest first)."""
    checkpoints = await retrieve_completed_checkpoints(store)
    return DefaultCompletedCheckpointStore(max_retain, store, checkpoints)
