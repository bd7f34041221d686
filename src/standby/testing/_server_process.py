"""Shared plumbing for test-server subprocesses: launch with a log file, bounded stop/kill, log tails, waits.

ZooKeeper and etcd test servers both run as child processes of the test process. Each one is started in its own
session (so a Ctrl-C in the terminal reaches pytest first and the fixtures stop the servers in order), writes its
output to a log file in its working directory, and is killed at interpreter exit if a test leaked it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

__all__ = [
    "ServerNotInstalledError",
    "ServerStartError",
    "ServerProcess",
    "make_work_dir",
    "read_log_tail",
    "remove_work_dir",
    "wait_until",
]

_T = TypeVar("_T")

# Polling interval of readiness checks; readiness itself is bounded by a deadline.
POLL_INTERVAL = 0.05
_KILL_WAIT = 10.0
_LOG_TAIL_BYTES = 64 * 1024


class ServerNotInstalledError(RuntimeError):
    """The server software (Debian's zookeeper / etcd-server package) is not installed on this machine."""


class ServerStartError(RuntimeError):
    """A test server did not become ready in time or exited while starting; the message carries its log tail."""


_live_lock = threading.Lock()
_live: set[ServerProcess] = set()


def _kill_leaked_servers() -> None:
    # Runs at interpreter exit: a test that forgot to stop its server must not leave a JVM or etcd behind.
    with _live_lock:
        leaked = list(_live)
    for proc in leaked:
        proc.kill()


atexit.register(_kill_leaked_servers)


def make_work_dir(prefix: str, base_dir: str | os.PathLike[str] | None) -> Path:
    """A fresh private directory for one server (its data, config and log)."""
    if base_dir is not None:
        Path(base_dir).mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=None if base_dir is None else os.fspath(base_dir)))


def remove_work_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def wait_until(
    predicate: Callable[[], _T | None],
    timeout: float,
    describe: str,
    *,
    interval: float = POLL_INTERVAL,
    on_timeout: Callable[[str], BaseException] | None = None,
) -> _T:
    """Poll ``predicate`` until it returns a truthy value or ``timeout`` seconds pass.

    Returns the truthy value. On timeout raises ``on_timeout(message)`` or :class:`TimeoutError`.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            message = f"timed out after {timeout:.1f}s waiting for {describe}"
            raise (on_timeout(message) if on_timeout is not None else TimeoutError(message))
        time.sleep(interval)


class ServerProcess:
    """One server child process whose output goes to ``log_path`` (appended across restarts)."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        cwd: Path,
        log_path: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.cwd = cwd
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self._popen: subprocess.Popen[bytes] | None = None
        self.last_returncode: int | None = None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._popen.poll() if self._popen is not None else None

    def launch(self) -> None:
        if self.running:
            raise RuntimeError(
                f"{self.name} is already running (pid {self.pid}); stop it before starting it again"
            )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
            log.write(
                f"\n===== {stamp} standby.testing starting {self.name}: {' '.join(self.argv)}\n".encode()
            )
            log.flush()
            try:
                self._popen = subprocess.Popen(
                    self.argv,
                    cwd=self.cwd,
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as exc:
                raise ServerStartError(f"cannot run {self.name} ({self.argv[0]}): {exc}") from exc
        with _live_lock:
            _live.add(self)

    def terminate(self, timeout: float = 10.0) -> None:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL."""
        popen = self._popen
        if popen is None:
            return
        if popen.poll() is None:
            try:
                popen.send_signal(signal.SIGTERM)
                # A paused (SIGSTOPped) server only acts on SIGTERM once it runs again.
                popen.send_signal(signal.SIGCONT)
            except ProcessLookupError:
                pass
            try:
                popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return
        self._reaped()

    def kill(self) -> None:
        """SIGKILL and reap (bounded)."""
        popen = self._popen
        if popen is None:
            return
        if popen.poll() is None:
            try:
                popen.kill()
            except ProcessLookupError:
                pass
            try:
                popen.wait(_KILL_WAIT)
            except subprocess.TimeoutExpired as exc:
                raise RuntimeError(
                    f"{self.name} (pid {popen.pid}) did not die within {_KILL_WAIT}s of SIGKILL; "
                    f"it is probably stuck in the kernel (D state): check `ps -o stat,wchan -p {popen.pid}`"
                ) from exc
        self._reaped()

    def pause(self) -> None:
        """SIGSTOP: the process keeps its sockets but answers nothing (a frozen JVM / long GC pause)."""
        if self.running and self._popen is not None:
            self._popen.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        if self.running and self._popen is not None:
            self._popen.send_signal(signal.SIGCONT)

    def _forget(self) -> None:
        with _live_lock:
            _live.discard(self)

    def _reaped(self) -> None:
        # Stopped on purpose: from now on the server is "not running", not "exited while starting".
        if self._popen is not None:
            self.last_returncode = self._popen.returncode
        self._popen = None
        self._forget()

    def log_tail(self, lines: int = 60) -> str:
        return read_log_tail(self.log_path, lines)

    def exited_message(self) -> str | None:
        """A message for a process that exited by itself (not stopped by us), else ``None``."""
        code = self.returncode
        if code is None:
            return None
        self._forget()
        return f"{self.name} (pid {self.pid}) exited by itself with code {code}"


def read_log_tail(path: Path, lines: int = 60) -> str:
    """The last ``lines`` lines of a log file (at most 64 KiB are read)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - _LOG_TAIL_BYTES))
            data = f.read()
    except OSError as exc:
        return f"<cannot read log {path}: {exc}>"
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])
