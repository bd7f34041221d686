"""DirectoryWatcher: wake-ups on changes in a few directories — Linux inotify (via ctypes), else polling.

The filesystem backend's stand-in for ZooKeeper watches. inotify delivers a change within microseconds; a poll
tick every ``poll_interval`` runs in any case, as a fallback (and where inotify is unavailable, e.g. macOS).
Directories that do not exist yet are covered by watching their nearest existing ancestor.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_log = logging.getLogger(__name__)

IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_CLOSE_NOWRITE = 0x00000010
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_CLOEXEC = 0o2000000
IN_NONBLOCK = 0o4000

#: What a watched directory reports: entries created, removed, renamed, written, and the directory itself going.
CHANGE_MASK = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
)

_EVENT_HEADER = struct.Struct("iIII")


@dataclass(frozen=True)
class WatchEvent:
    """One inotify event: the watched directory, the entry name ('' for the directory itself) and the mask."""

    directory: Path
    name: str
    mask: int

    @property
    def closed(self) -> bool:
        return bool(self.mask & (IN_CLOSE_WRITE | IN_CLOSE_NOWRITE))

    @property
    def overflow(self) -> bool:
        return bool(self.mask & IN_Q_OVERFLOW)


class _Inotify:
    """Thin ctypes binding of inotify_init1 / inotify_add_watch / inotify_rm_watch."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        self._init1 = libc.inotify_init1
        self._init1.argtypes = [ctypes.c_int]
        self._init1.restype = ctypes.c_int
        self._add = libc.inotify_add_watch
        self._add.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self._add.restype = ctypes.c_int
        self._rm = libc.inotify_rm_watch
        self._rm.argtypes = [ctypes.c_int, ctypes.c_int]
        self._rm.restype = ctypes.c_int
        fd = self._init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_init1 failed: {os.strerror(err)}")
        self.fd = fd

    def add_watch(self, path: Path, mask: int) -> int:
        wd = self._add(self.fd, os.fsencode(path), mask | IN_ONLYDIR)
        if wd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_add_watch({path}) failed: {os.strerror(err)}")
        return int(wd)

    def rm_watch(self, wd: int) -> None:
        self._rm(self.fd, wd)  # EINVAL for a watch the kernel already dropped: nothing to do

    def read(self) -> list[tuple[int, int, str]]:
        events: list[tuple[int, int, str]] = []
        while True:
            try:
                data = os.read(self.fd, 64 * 1024)
            except BlockingIOError:
                return events
            if not data:
                return events
            offset = 0
            while offset + _EVENT_HEADER.size <= len(data):
                wd, mask, _cookie, length = _EVENT_HEADER.unpack_from(data, offset)
                offset += _EVENT_HEADER.size
                raw_name = data[offset : offset + length].rstrip(b"\0")
                offset += length
                events.append((wd, mask, os.fsdecode(raw_name)))

    def close(self) -> None:
        os.close(self.fd)


def inotify_available() -> bool:
    return sys.platform.startswith("linux")


class DirectoryWatcher:
    """Calls ``callback(events)`` on changes in the watched directories, and ``callback([])`` every poll tick.

    ``watch(directory, mask)`` adds a directory; a missing one is covered by its nearest existing ancestor below
    ``boundary`` until it appears. The callback runs on the event loop and must not block for long.
    """

    def __init__(
        self,
        boundary: Path,
        poll_interval: float,
        callback: Callable[[list[WatchEvent]], None],
        use_inotify: bool = True,
    ) -> None:
        self._boundary = boundary
        self._poll_interval = poll_interval
        self._callback = callback
        self._desired: dict[Path, int] = {}
        self._watches: dict[int, tuple[Path, int]] = {}
        self._by_path: dict[Path, int] = {}
        self._inotify: _Inotify | None = None
        self._use_inotify = use_inotify and inotify_available()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._poll_task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def uses_inotify(self) -> bool:
        return self._inotify is not None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self._use_inotify:
            try:
                self._inotify = _Inotify()
                self._loop.add_reader(self._inotify.fd, self._on_readable)
            except (OSError, AttributeError) as e:
                _log.info(
                    "inotify is not available (%s); polling every %.3fs instead", e, self._poll_interval
                )
                self._inotify = None
        self._resync()
        self._poll_task = self._loop.create_task(self._poll(), name=f"DirectoryWatcher({self._boundary})")

    def watch(self, directory: Path, mask: int = CHANGE_MASK) -> None:
        self._desired[directory] = self._desired.get(directory, 0) | mask
        self._resync()

    def unwatch(self, directory: Path) -> None:
        self._desired.pop(directory, None)
        self._resync()

    def _target(self, directory: Path) -> Path | None:
        current = directory
        while True:
            if current.is_dir():
                return current
            if (
                current == self._boundary
                or current.parent == current
                or self._boundary not in current.parents
            ):
                return self._boundary if self._boundary.is_dir() else None
            current = current.parent

    def _resync(self) -> None:
        if self._inotify is None or self._closed:
            return
        wanted: dict[Path, int] = {}
        for directory, mask in self._desired.items():
            target = self._target(directory)
            if target is None:
                continue
            # an ancestor standing in for a missing directory must report creations
            extra = 0 if target == directory else IN_CREATE | IN_MOVED_TO
            wanted[target] = wanted.get(target, 0) | mask | extra
        for path, wd in list(self._by_path.items()):
            if path not in wanted:
                self._inotify.rm_watch(wd)
                del self._by_path[path]
                self._watches.pop(wd, None)
        for path, mask in wanted.items():
            current = self._by_path.get(path)
            if current is not None and self._watches.get(current, (path, 0))[1] == mask:
                continue
            try:
                # for a watched path this replaces the mask and keeps the watch descriptor
                wd = self._inotify.add_watch(path, mask)
            except OSError as e:
                _log.debug("Cannot watch %s: %s", path, e)
                continue
            if current is not None and current != wd:
                self._watches.pop(current, None)
            self._by_path[path] = wd
            self._watches[wd] = (path, mask)

    def _on_readable(self) -> None:
        if self._inotify is None or self._closed:
            return
        try:
            raw = self._inotify.read()
        except OSError as e:
            _log.warning("Reading inotify events failed: %s", e)
            return
        events: list[WatchEvent] = []
        resync = False
        for wd, mask, name in raw:
            if mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF | IN_CREATE | IN_MOVED_TO | IN_Q_OVERFLOW):
                resync = True
            if mask & IN_IGNORED:
                entry = self._watches.pop(wd, None)
                if entry is not None and self._by_path.get(entry[0]) == wd:
                    del self._by_path[entry[0]]
                continue
            directory = self._watches.get(wd, (self._boundary, 0))[0]
            events.append(WatchEvent(directory, name, mask))
        if resync:
            self._resync()
        if events:
            self._dispatch(events)

    def _dispatch(self, events: list[WatchEvent]) -> None:
        try:
            self._callback(events)
        except Exception:
            _log.exception("Directory watch callback failed")

    async def _poll(self) -> None:
        while not self._closed:
            await asyncio.sleep(self._poll_interval)
            self._resync()
            self._dispatch([])

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        task, self._poll_task = self._poll_task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        if self._inotify is not None:
            if self._loop is not None:
                self._loop.remove_reader(self._inotify.fd)
            self._inotify.close()
            self._inotify = None
