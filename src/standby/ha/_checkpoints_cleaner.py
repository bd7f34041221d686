"""DefaultCheckpointsCleaner: deletes the state files of discarded checkpoints (Flink's ``CheckpointsCleaner``)."""

from __future__ import annotations

import asyncio
import logging

from ._checkpoint import CheckpointsCleaner, CompletedCheckpoint
from ._storage_helper import filesystem_for

_log = logging.getLogger(__name__)


class DefaultCheckpointsCleaner(CheckpointsCleaner):
    """Deletes every task state file of a discarded checkpoint, then its directory (``external_pointer``).

    Files are fsspec URLs or local paths; missing files are fine (cleaning is idempotent). A failure to delete is
    logged and does not stop the cleaning of the other files, as Flink's cleaner only logs discard failures.
    """

    def __init__(self) -> None:
        self._cleaned = 0
        self._in_progress = 0

    @property
    def number_of_cleaned_checkpoints(self) -> int:
        return self._cleaned

    @property
    def number_of_checkpoints_to_clean(self) -> int:
        return self._in_progress

    async def clean_checkpoint(self, checkpoint: CompletedCheckpoint, discard: bool) -> None:
        if not discard:
            return
        self._in_progress += 1
        try:
            await asyncio.to_thread(self._discard, checkpoint)
            self._cleaned += 1
        finally:
            self._in_progress -= 1

    @staticmethod
    def _discard(checkpoint: CompletedCheckpoint) -> None:
        for location in checkpoint.task_states.values():
            try:
                fs, path = filesystem_for(location)
                fs.rm_file(path)
            except FileNotFoundError:
                pass
            except Exception as e:
                _log.warning(
                    "Could not discard state file %s of checkpoint %d of job %s: %s",
                    location,
                    checkpoint.checkpoint_id,
                    checkpoint.job_id,
                    e,
                )
        if checkpoint.external_pointer:
            try:
                fs, path = filesystem_for(checkpoint.external_pointer)
                if fs.exists(path):
                    fs.rm(path, recursive=True)
            except Exception as e:
                _log.warning(
                    "Could not discard the directory %s of checkpoint %d of job %s: %s",
                    checkpoint.external_pointer,
                    checkpoint.checkpoint_id,
                    checkpoint.job_id,
                    e,
                )
