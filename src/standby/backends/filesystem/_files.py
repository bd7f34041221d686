"""File primitives of the filesystem backend: atomic writes, exclusive creates, flock sections, process identity.

Everything relies on POSIX semantics of ONE local filesystem: ``rename`` and ``link`` are atomic, ``flock`` locks
are released by the kernel when the holding file description is closed (also when the process dies). Network
filesystems (NFS, SMB) do not give these guarantees; the backend is for several processes on one host.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from standby.ha import StateHandleStoreError

#: How long a short critical section (a metadata update under ``flock``) may be waited for.
LOCK_TIMEOUT_SECONDS = 30.0


def fsync_dir(directory: Path) -> None:
    """Make a rename or link in ``directory`` durable."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_temp(directory: Path, name: str, data: bytes, sync: bool = True) -> Path:
    temp = directory / f".{name}.tmp-{uuid.uuid4().hex[:12]}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if sync:  # after a host crash the file holds the old or the new content, never a torn one
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    os.close(fd)
    return temp


def atomic_write(path: Path, data: bytes, *, sync_file: bool = True, sync_dir: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically: write a temp file, fsync, rename over, fsync the directory.

    Readers always see the old or the new content. The fsyncs make the change survive a crash of the host;
    leader files skip some of them: like ZooKeeper's ephemeral nodes they need not outlive the processes.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = _write_temp(path.parent, path.name, data, sync_file)
    try:
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    if sync_dir:
        fsync_dir(path.parent)


def exclusive_create(path: Path, data: bytes) -> None:
    """Create ``path`` with ``data`` atomically; ``FileExistsError`` if it exists (``link`` never overwrites)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = _write_temp(path.parent, path.name, data)
    try:
        os.link(temp, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temp)
    fsync_dir(path.parent)


def read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None


@contextlib.contextmanager
def locked(lock_path: Path, timeout: float = LOCK_TIMEOUT_SECONDS) -> Iterator[None]:
    """An exclusive ``flock`` on ``lock_path`` (created if missing) for a short read-modify-write section.

    Blocking; call it from a worker thread. Waits at most ``timeout`` seconds for other holders.
    """
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        deadline = time.monotonic() + timeout
        delay = 0.0005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StateHandleStoreError(
                        f"Timed out after {timeout:.0f}s waiting for the lock file {lock_path}; another process "
                        "holds it. If no standby process is running, remove the file."
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.02)
        yield
    finally:
        os.close(fd)  # releases the flock


def flock_try(fd: int) -> bool:
    """Try to take an exclusive ``flock`` without blocking."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise


def same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (not deleted or replaced)."""
    try:
        on_disk = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    held = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)


# ---------------------------------------------------------------------------------------------- processes


def _pid_namespace() -> int | None:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None


@dataclass(frozen=True)
class ProcessIdentity:
    """Who wrote a file: pid, its start time (pids are reused), pid namespace and host name."""

    pid: int
    create_time: float
    pid_namespace: int | None
    host: str

    def to_json(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "createTime": self.create_time,
            "pidNamespace": self.pid_namespace,
            "host": self.host,
        }

    @staticmethod
    def from_json(body: Any) -> ProcessIdentity | None:
        if not isinstance(body, dict):
            return None
        try:
            pid_ns = body.get("pidNamespace")
            return ProcessIdentity(
                pid=int(body["pid"]),
                create_time=float(body["createTime"]),
                pid_namespace=int(pid_ns) if pid_ns is not None else None,
                host=str(body.get("host", "")),
            )
        except (KeyError, TypeError, ValueError):
            return None


@functools.cache
def _current(pid: int) -> ProcessIdentity:
    return ProcessIdentity(
        pid, round(psutil.Process(pid).create_time(), 2), _pid_namespace(), socket.gethostname()
    )


def current_process() -> ProcessIdentity:
    return _current(os.getpid())  # keyed by pid: a forked child gets its own identity


def is_alive(identity: ProcessIdentity) -> bool | None:
    """True/False when we can tell whether the process still runs; None when it is in another pid namespace.

    Stands in for ZooKeeper's ephemeral nodes: a lock or leader entry of a dead process is stale.
    """
    me = current_process()
    if identity.pid_namespace != me.pid_namespace or identity.host != me.host:
        return None
    if identity.pid == me.pid:
        return identity.create_time == me.create_time
    try:
        process = psutil.Process(identity.pid)
        if round(process.create_time(), 2) != identity.create_time:
            return False  # the pid was reused
        # a killed process that its parent has not reaped yet is a zombie: its files are closed already
        return process.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.Error:
        return None


def json_bytes(body: Any) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
