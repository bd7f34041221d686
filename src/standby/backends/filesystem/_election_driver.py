"""FileSystemLeaderElectionDriver: leadership = an exclusive ``flock`` on ``<cluster>/leader/latch.lock``.

The kernel releases a ``flock`` the moment its holder closes the file or dies (also by SIGKILL), so a standby
takes over at once: contenders wait for the close event of the lock file (inotify) and then take the lock,
with a poll every ``high-availability.filesystem.poll-interval`` as fallback. No thread blocks in ``flock``.

On acquiring, the new leader increments the fencing epoch (``leader/epoch``, under the lock), removes leader
information of older epochs (ZooKeeper: ephemeral nodes vanishing with the old session) and is granted a fresh
session id. Leader information is written atomically (temp file, fsync, rename) and only while the lock is held;
``LeaderFence`` makes every store write check the same (lock held, lock file not replaced, epoch unchanged).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import uuid
from pathlib import Path

from standby.ha import (
    FencingError,
    LeaderElectionDriver,
    LeaderElectionDriverFactory,
    LeaderElectionDriverListener,
    LeaderElectionError,
    LeaderInformation,
)

from ._files import atomic_write, current_process, flock_try, read_or_none, same_file
from ._leader_files import (
    CONNECTION_INFO_FILE,
    EPOCH_FILE,
    LATCH_FILE,
    decode_leader_information,
    encode_epoch,
    encode_leader_information,
    highest_leader_information_epoch,
    read_epoch,
    remove_stale_leader_information,
)
from ._watcher import CHANGE_MASK, IN_CLOSE_NOWRITE, DirectoryWatcher, WatchEvent

_log = logging.getLogger(__name__)

#: Retries right after the lock file was closed: the kernel reports the close just before it drops the lock.
_QUICK_RETRY_DELAYS = (0.0, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02)


class LeaderFence:
    """The fencing check of one process's stores: passes only while its driver holds the leader lock."""

    def __init__(self) -> None:
        self._driver: FileSystemLeaderElectionDriver | None = None

    def attach(self, driver: FileSystemLeaderElectionDriver) -> None:
        self._driver = driver

    def detach(self, driver: FileSystemLeaderElectionDriver) -> None:
        if self._driver is driver:
            self._driver = None

    def __call__(self, what: str) -> None:
        driver = self._driver
        if driver is None or not driver.has_leadership():
            raise FencingError(
                f"Refused to {what}: this process is not the leader (it does not hold the leader lock). "
                "Only the leader writes HA data."
            )
        driver.verify_fencing(what)


class FileSystemLeaderElectionDriver(LeaderElectionDriver):
    """One per process (created by ``DefaultLeaderElectionService``); see the module docstring."""

    def __init__(
        self,
        leader_dir: Path,
        boundary: Path,
        listener: LeaderElectionDriverListener,
        poll_interval: float,
        use_inotify: bool = True,
        fence: LeaderFence | None = None,
    ) -> None:
        self._leader_dir = leader_dir
        self._fence = fence
        self._lock_path = leader_dir / LATCH_FILE
        self._epoch_path = leader_dir / EPOCH_FILE
        self._listener = listener
        self._poll_interval = poll_interval
        self._watcher = DirectoryWatcher(boundary, poll_interval, self._on_events, use_inotify)
        self._identity = current_process()
        self.driver_id = uuid.uuid4().hex
        self._fd: int | None = None
        self._leader = False
        self._epoch = -1
        self._closed = False
        self._wake = asyncio.Event()
        self._lock_closed = False
        self._published: dict[str, bytes | None] = {}
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._fence is not None:
            self._fence.attach(self)
        await asyncio.to_thread(self._leader_dir.mkdir, parents=True, exist_ok=True)
        self._open_lock_file()
        await self._watcher.start()
        self._watcher.watch(self._leader_dir, CHANGE_MASK | IN_CLOSE_NOWRITE)
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"{self!r}")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._leader = False
        if self._fence is not None:
            self._fence.detach(self)
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._watcher.close()
        self._close_lock_file()  # releases the flock: a waiting standby takes over now

    def _open_lock_file(self) -> None:
        self._leader_dir.mkdir(parents=True, exist_ok=True)
        # O_CLOEXEC: a child process must never inherit (and so keep alive) the leader lock
        self._fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def _close_lock_file(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    # ------------------------------------------------------------------ LeaderElectionDriver

    def has_leadership(self) -> bool:
        return self._leader

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def uses_inotify(self) -> bool:
        return self._watcher.uses_inotify

    def verify_fencing(self, what: str) -> None:
        """Raise ``FencingError`` unless we hold the lock on the current lock file and our epoch is current."""
        fd = self._fd
        if not self._leader or fd is None:
            raise FencingError(
                f"Refused to {what}: this process no longer holds the leader lock {self._lock_path}."
            )
        try:
            replaced = not same_file(fd, self._lock_path)
        except OSError:
            replaced = True
        if replaced:
            self._wake.set()
            raise FencingError(
                f"Refused to {what}: the leader lock file {self._lock_path} was deleted or replaced, "
                "so another process may lead."
            )
        current = read_epoch(self._leader_dir)
        if current != self._epoch:
            self._wake.set()
            raise FencingError(
                f"Refused to {what}: the fencing epoch in {self._epoch_path} is {current}, "
                f"this leader's epoch is {self._epoch} (stale leader)."
            )

    async def publish_leader_information(self, component_id: str, info: LeaderInformation) -> None:
        if not self._leader:
            return
        path = self._leader_dir / component_id / CONNECTION_INFO_FILE
        try:
            self.verify_fencing(f"publish the leader information of {component_id}")
            data = encode_leader_information(info, self._epoch, self._identity, self.driver_id)
            previous = self._published.get(component_id)
            self._published[component_id] = data  # before writing: our own write is no external change
            try:
                await asyncio.to_thread(functools.partial(atomic_write, path, data, sync_dir=False))
            except BaseException:
                self._published[component_id] = previous
                raise
            self._watcher.watch(path.parent, CHANGE_MASK)
        except Exception as e:
            self._listener.on_error(
                LeaderElectionError(
                    f"Could not write the leader information of {component_id} to {path}: {e}"
                )
            )

    async def delete_leader_information(self, component_id: str) -> None:
        if not self._leader:
            return
        component_dir = self._leader_dir / component_id
        self._published.pop(component_id, None)
        self._watcher.unwatch(component_dir)

        def delete() -> None:
            with contextlib.suppress(FileNotFoundError):
                (component_dir / CONNECTION_INFO_FILE).unlink()
            with contextlib.suppress(OSError):
                component_dir.rmdir()

        try:
            await asyncio.to_thread(delete)
        except Exception as e:
            self._listener.on_error(
                LeaderElectionError(f"Could not delete the leader information of {component_id}: {e}")
            )

    # ------------------------------------------------------------------ the election loop

    def _on_events(self, events: list[WatchEvent]) -> None:
        if not events:  # poll tick
            self._wake.set()
            return
        for event in events:
            if event.name == LATCH_FILE and event.closed:
                self._lock_closed = True
                self._wake.set()
            elif event.mask & IN_CLOSE_NOWRITE and not event.mask & ~IN_CLOSE_NOWRITE:
                continue  # somebody read a file: not a change (and our own reads must not wake us)
            else:
                self._wake.set()

    async def _wait(self) -> bool:
        """Wait for a wake-up; True if it was the lock file being closed (a leader may just have let go)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=self._poll_interval * 2)
        self._wake.clear()
        lock_closed, self._lock_closed = self._lock_closed, False
        return lock_closed

    async def _run(self) -> None:
        while not self._closed:
            try:
                await self._contend()
                if not self._closed:
                    await self._lead()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                _log.exception("Leader election on %s failed", self._lock_path)
                self._leader = False
                self._close_lock_file()
                self._listener.on_error(
                    LeaderElectionError(f"Leader election on {self._lock_path} failed: {e}")
                )
                await self._wait()
                if not self._closed:
                    self._open_lock_file()

    def _try_acquire(self) -> bool:
        for _ in range(3):
            if self._fd is None:
                self._open_lock_file()
            assert self._fd is not None
            if not flock_try(self._fd):
                return False
            if same_file(self._fd, self._lock_path):
                return True
            # the file was deleted or replaced after we opened it: a lock on it is worthless
            self._close_lock_file()
        return False

    async def _contend(self) -> None:
        while not self._closed:
            self._wake.clear()
            if self._try_acquire():
                await self._on_acquired()
                return
            lock_closed = await self._wait()
            if lock_closed and not self._closed:
                for delay in _QUICK_RETRY_DELAYS:
                    if self._try_acquire():
                        await self._on_acquired()
                        return
                    await asyncio.sleep(delay)

    async def _on_acquired(self) -> None:
        def bump_epoch() -> tuple[int, list[str]]:
            # above every epoch seen, also in leader files (the epoch file is not fsynced: a host crash may
            # lose its last update, and it only has to order the leaders of processes alive together)
            epoch = max(read_epoch(self._leader_dir), highest_leader_information_epoch(self._leader_dir)) + 1
            atomic_write(self._epoch_path, encode_epoch(epoch), sync_file=False, sync_dir=False)
            return epoch, remove_stale_leader_information(self._leader_dir, epoch)

        # on the loop thread: a few small files without fsync, and a thread hop costs more than it saves
        epoch, removed = bump_epoch()
        if self._closed:
            return
        self._epoch = epoch
        self._published.clear()
        self._leader = True
        session_id = uuid.uuid4()
        _log.info(
            "Acquired the leader lock %s (epoch %d, session %s); removed stale leader information of %s",
            self._lock_path,
            epoch,
            session_id,
            removed or "no component",
        )
        self._listener.on_grant_leadership(session_id)

    async def _lead(self) -> None:
        while not self._closed:
            if not self._still_leader():
                _log.warning(
                    "Lost leadership on %s: the lock file was replaced or the epoch moved on", self._lock_path
                )
                self._leader = False
                self._close_lock_file()
                self._open_lock_file()
                self._listener.on_revoke_leadership()
                return
            self._check_leader_information()
            await self._wait()

    def _still_leader(self) -> bool:
        fd = self._fd
        try:
            return (
                fd is not None
                and same_file(fd, self._lock_path)
                and read_epoch(self._leader_dir) == self._epoch
            )
        except OSError:
            return False

    def _check_leader_information(self) -> None:
        """Self-healing: report leader information changed or deleted by someone else (Flink's TreeCache)."""
        for component_id, published in list(self._published.items()):
            path = self._leader_dir / component_id / CONNECTION_INFO_FILE
            current = read_or_none(path)
            if current == published:
                continue
            self._published[component_id] = current
            if current is None:
                info = LeaderInformation.empty()
            else:
                try:
                    info = decode_leader_information(current, path).info
                except Exception:
                    info = LeaderInformation.empty()  # unreadable: treated as empty, so it gets rewritten
            _log.info("Leader information of %s changed externally to %s", component_id, info)
            self._listener.on_leader_information_change(component_id, info)

    def __repr__(self) -> str:
        return f"FileSystemLeaderElectionDriver({str(self._lock_path)!r})"


class FileSystemLeaderElectionDriverFactory(LeaderElectionDriverFactory):
    """Creates the driver of one process and attaches it to the process's ``LeaderFence``."""

    def __init__(
        self,
        leader_dir: Path,
        boundary: Path,
        poll_interval: float,
        fence: LeaderFence | None = None,
        use_inotify: bool = True,
    ) -> None:
        self._leader_dir = leader_dir
        self._boundary = boundary
        self._poll_interval = poll_interval
        self._fence = fence
        self._use_inotify = use_inotify

    async def create(self, listener: LeaderElectionDriverListener) -> LeaderElectionDriver:
        driver = FileSystemLeaderElectionDriver(
            self._leader_dir, self._boundary, listener, self._poll_interval, self._use_inotify, self._fence
        )
        await driver.start()
        return driver
