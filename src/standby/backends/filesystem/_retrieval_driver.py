"""FileSystemLeaderRetrievalDriver: follows ``leader/<component>/connection_info`` (inotify, else polling).

Reports the stored leader information, or "no leader" when the file is missing, was written under an older
fencing epoch, or its writer process is dead (ZooKeeper's ephemeral node would be gone). The death of a leader is
noticed at once: its lock file ``leader/latch.lock`` is closed by the kernel, which the watch reports.
"""

from __future__ import annotations

import logging
from pathlib import Path

from standby.ha import (
    CorruptHaDataError,
    FatalErrorHandler,
    LeaderInformation,
    LeaderRetrievalDriver,
    LeaderRetrievalDriverFactory,
    LeaderRetrievalError,
    LeaderRetrievalEventHandler,
)

from ._files import read_or_none
from ._leader_files import (
    CONNECTION_INFO_FILE,
    EPOCH_FILE,
    LATCH_FILE,
    decode_leader_information,
    effective_leader_information,
    read_epoch,
)
from ._watcher import CHANGE_MASK, IN_CLOSE_NOWRITE, DirectoryWatcher, WatchEvent

_log = logging.getLogger(__name__)


class FileSystemLeaderRetrievalDriver(LeaderRetrievalDriver):
    def __init__(
        self,
        leader_dir: Path,
        boundary: Path,
        component_id: str,
        handler: LeaderRetrievalEventHandler,
        fatal_error_handler: FatalErrorHandler,
        poll_interval: float,
        use_inotify: bool = True,
    ) -> None:
        self._leader_dir = leader_dir
        self._component_dir = leader_dir / component_id
        self._path = self._component_dir / CONNECTION_INFO_FILE
        self._handler = handler
        self._fatal_error_handler = fatal_error_handler
        self._watcher = DirectoryWatcher(boundary, poll_interval, self._on_events, use_inotify)
        self._running = False

    @property
    def uses_inotify(self) -> bool:
        return self._watcher.uses_inotify

    async def start(self) -> None:
        self._running = True
        await self._watcher.start()
        self._watcher.watch(self._leader_dir, CHANGE_MASK | IN_CLOSE_NOWRITE)
        self._watcher.watch(self._component_dir, CHANGE_MASK)
        self._evaluate()

    def _on_events(self, events: list[WatchEvent]) -> None:
        if not self._running:
            return
        if events and all(self._irrelevant(e) for e in events):
            return
        self._evaluate()

    def _irrelevant(self, event: WatchEvent) -> bool:
        if event.directory == self._leader_dir and event.name not in (
            LATCH_FILE,
            EPOCH_FILE,
            self._component_dir.name,
            "",
        ):
            return True  # temp files, other components
        # reads are no changes (and our own reads must not wake us), except the leader's lock file being closed
        return bool(event.mask & IN_CLOSE_NOWRITE) and event.name != LATCH_FILE

    def _evaluate(self) -> None:
        raw = read_or_none(self._path)
        if raw is None:
            self._handler.notify_leader_address(LeaderInformation.empty())
            return
        try:
            stored = decode_leader_information(raw, self._path)
        except CorruptHaDataError as e:
            error = LeaderRetrievalError(f"Could not handle the change of {self._path}: {e}")
            error.__cause__ = e
            self._fatal_error_handler.on_fatal_error(error)
            return
        self._handler.notify_leader_address(
            effective_leader_information(stored, read_epoch(self._leader_dir))
        )

    async def close(self) -> None:
        self._running = False
        await self._watcher.close()

    def __repr__(self) -> str:
        return f"FileSystemLeaderRetrievalDriver({str(self._path)!r})"


class FileSystemLeaderRetrievalDriverFactory(LeaderRetrievalDriverFactory):
    def __init__(
        self,
        leader_dir: Path,
        boundary: Path,
        component_id: str,
        poll_interval: float,
        use_inotify: bool = True,
    ) -> None:
        self._leader_dir = leader_dir
        self._boundary = boundary
        self._component_id = component_id
        self._poll_interval = poll_interval
        self._use_inotify = use_inotify

    async def create(
        self, handler: LeaderRetrievalEventHandler, fatal_error_handler: FatalErrorHandler
    ) -> LeaderRetrievalDriver:
        driver = FileSystemLeaderRetrievalDriver(
            self._leader_dir,
            self._boundary,
            self._component_id,
            handler,
            fatal_error_handler,
            self._poll_interval,
            self._use_inotify,
        )
        await driver.start()
        return driver
