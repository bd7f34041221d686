"""Real ZooKeeper 3.8 test servers on 127.0.0.1: a standalone server, an ensemble, and real session expiry.

The servers run Debian's ZooKeeper (package ``zookeeper``, jars in /usr/share/java) under the system JVM, each with
its own temporary directory (config, data, log), ports chosen by :mod:`standby.testing._ports`, a small ``tickTime``
so that sessions of one to ten seconds can be negotiated and expire promptly, the AdminServer disabled, and all
four-letter-word commands enabled (readiness is ``ruok`` answering ``imok`` plus a ``Mode`` in ``srvr``).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from kazoo.client import KazooClient
from kazoo.protocol.states import KazooState

from ._ports import LOOPBACK, free_port, free_ports
from ._server_process import (
    ServerNotInstalledError,
    ServerProcess,
    ServerStartError,
    make_work_dir,
    read_log_tail,
    remove_work_dir,
    wait_until,
)

__all__ = [
    "ZOOKEEPER_MAIN_CLASS",
    "ZooKeeperEnsemble",
    "ZooKeeperInstallation",
    "ZooKeeperServer",
    "expire_session",
    "find_zookeeper",
    "four_letter_word",
    "require_zookeeper",
    "zookeeper_unavailable_reason",
]

ZOOKEEPER_MAIN_CLASS = "org.apache.zookeeper.server.quorum.QuorumPeerMain"

_DEBIAN_ZOOKEEPER_JAR = Path("/usr/share/java/zookeeper.jar")
# Debian's jar lists its dependencies in its manifest but no SLF4J binding: without one ZooKeeper logs nothing.
_DEBIAN_SLF4J_SIMPLE = Path("/usr/share/java/slf4j-simple.jar")
_INSTALL_HINT = (
    "install Debian's `zookeeper` package (it pulls in a Java runtime) with scripts/install-test-servers "
    "(needs root or passwordless sudo), or set STANDBY_ZOOKEEPER_HOME to an unpacked ZooKeeper 3.8 release"
)
_VERSION_RE = re.compile(r"zookeeper-(\d+\.\d+\.\d+)")
_JAVA_CHECK_TIMEOUT = 30.0

_DEFAULT_JVM_OPTIONS: tuple[str, ...] = (
    "-Xms16m",
    "-Xmx256m",
    # Fast JVM start and a small footprint: tests run several JVMs side by side.
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Djava.net.preferIPv4Stack=true",
    "-Dzookeeper.admin.enableServer=false",
    "-Dzookeeper.jmx.log4j.disable=true",
    "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
    "-Dorg.slf4j.simpleLogger.showDateTime=true",
    "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSS",
)

_SERVING_MODES_STANDALONE = frozenset({"standalone"})
_SERVING_MODES_LEADER = frozenset({"leader"})
_SERVING_MODES_QUORUM = frozenset({"leader", "follower"})


# --------------------------------------------------------------------------------------------- installation


@dataclass(frozen=True)
class ZooKeeperInstallation:
    """Where the ZooKeeper server software lives: the ``java`` binary and the classpath for the server."""

    java: str
    classpath: tuple[str, ...]
    version: str | None
    source: str

    def command(self, config_path: Path, jvm_options: Sequence[str]) -> list[str]:
        return [
            self.java,
            *jvm_options,
            "-cp",
            os.pathsep.join(self.classpath),
            ZOOKEEPER_MAIN_CLASS,
            str(config_path),
        ]


def _find_java() -> str | None:
    explicit = os.environ.get("STANDBY_JAVA")
    if explicit:
        return explicit
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.access(os.path.join(java_home, "bin", "java"), os.X_OK):
        return os.path.join(java_home, "bin", "java")
    return shutil.which("java")


def _jars_in(directory: Path) -> list[str]:
    return sorted(str(p) for p in directory.glob("*.jar"))


def _classpath_from_env() -> tuple[list[str], str] | None:
    explicit = os.environ.get("STANDBY_ZOOKEEPER_CLASSPATH")
    if explicit:
        entries: list[str] = []
        for entry in explicit.split(os.pathsep):
            path = Path(entry)
            entries.extend([*_jars_in(path), str(path)] if path.is_dir() else [str(path)])
        return entries, f"STANDBY_ZOOKEEPER_CLASSPATH={explicit}"
    home = os.environ.get("STANDBY_ZOOKEEPER_HOME")
    if home:
        root = Path(home)
        # Release tarball layout: lib/*.jar, and conf/ holds logback.xml.
        entries = [*_jars_in(root / "lib"), *_jars_in(root), str(root / "conf")]
        return entries, f"STANDBY_ZOOKEEPER_HOME={home}"
    return None


def _jar_version(jar: str) -> str | None:
    """The version in a jar's name, or in the name of a versioned sibling link (Debian: zookeeper-3.8.0.jar)."""
    match = _VERSION_RE.search(os.path.basename(jar))
    if match:
        return match.group(1)
    path = Path(jar)
    try:
        target = path.resolve()
        for sibling in sorted(path.parent.glob("zookeeper-*.jar")):
            match = _VERSION_RE.fullmatch(sibling.name.removesuffix(".jar"))
            if match and sibling.resolve() == target:
                return match.group(1)
    except OSError:
        return None
    return None


@functools.cache
def _locate(env_key: tuple[str | None, ...]) -> ZooKeeperInstallation | str:
    del env_key  # only the cache key: the environment variables that steer the search
    java = _find_java()
    if java is None:
        return f"ZooKeeper unavailable: no Java runtime (java is not on PATH and JAVA_HOME is unset); {_INSTALL_HINT}"
    from_env = _classpath_from_env()
    if from_env is not None:
        classpath, source = from_env
    elif _DEBIAN_ZOOKEEPER_JAR.is_file():
        classpath = [str(_DEBIAN_ZOOKEEPER_JAR)]
        if _DEBIAN_SLF4J_SIMPLE.is_file():
            classpath.append(str(_DEBIAN_SLF4J_SIMPLE))
        source = "Debian package zookeeper (/usr/share/java)"
    else:
        return f"ZooKeeper unavailable: {_DEBIAN_ZOOKEEPER_JAR} not found; {_INSTALL_HINT}"
    server_jars = [p for p in classpath if re.search(r"zookeeper(-\d[^/]*)?\.jar$", os.path.basename(p))]
    if not server_jars:
        return f"ZooKeeper unavailable: no zookeeper*.jar on the classpath from {source}; {_INSTALL_HINT}"
    version = next((v for v in map(_jar_version, server_jars) if v is not None), None)
    try:
        check = subprocess.run(
            [java, "-version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_JAVA_CHECK_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"ZooKeeper unavailable: the Java runtime {java} does not run ({exc}); {_INSTALL_HINT}"
    if check.returncode != 0:
        detail = check.stderr.decode(errors="replace").strip()[-500:]
        return f"ZooKeeper unavailable: `{java} -version` failed with code {check.returncode}: {detail}; {_INSTALL_HINT}"
    return ZooKeeperInstallation(java=java, classpath=tuple(classpath), version=version, source=source)


def _env_key() -> tuple[str | None, ...]:
    names = ("STANDBY_JAVA", "JAVA_HOME", "PATH", "STANDBY_ZOOKEEPER_CLASSPATH", "STANDBY_ZOOKEEPER_HOME")
    return tuple(os.environ.get(name) for name in names)


def find_zookeeper() -> ZooKeeperInstallation | None:
    """The local ZooKeeper server installation, or ``None`` (see :func:`zookeeper_unavailable_reason`).

    Looks at ``STANDBY_ZOOKEEPER_CLASSPATH`` (jars/directories), then ``STANDBY_ZOOKEEPER_HOME`` (a release
    tarball), then Debian's /usr/share/java/zookeeper.jar; Java from ``STANDBY_JAVA``, ``JAVA_HOME`` or ``PATH``.
    """
    found = _locate(_env_key())
    return found if isinstance(found, ZooKeeperInstallation) else None


def zookeeper_unavailable_reason() -> str | None:
    """Why no ZooKeeper server can be started here (naming the package and the install script), or ``None``."""
    found = _locate(_env_key())
    return found if isinstance(found, str) else None


def require_zookeeper() -> ZooKeeperInstallation:
    """The local ZooKeeper installation; raises :class:`ServerNotInstalledError` with the reason if missing."""
    found = _locate(_env_key())
    if isinstance(found, str):
        raise ServerNotInstalledError(found)
    return found


# --------------------------------------------------------------------------------------------- four-letter words


def four_letter_word(host: str, port: int, command: str, timeout: float = 2.0) -> str:
    """Send a four-letter-word command (``ruok``, ``srvr``, ``mntr``, ``cons``, ...) and return the answer.

    Raises :class:`OSError` when the server does not accept the connection or does not answer in ``timeout``.
    """
    if len(command) != 4:
        raise ValueError(f"four-letter-word commands have four letters, got {command!r}")
    chunks: list[bytes] = []
    total = 0
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(command.encode("ascii"))
        while total < 1 << 20:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    return b"".join(chunks).decode("utf-8", errors="replace")


def _parse_mode(srvr: str) -> str | None:
    for line in srvr.splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return None


# --------------------------------------------------------------------------------------------- one server


@dataclass(frozen=True)
class _QuorumPeer:
    server_id: int
    host: str
    quorum_port: int
    election_port: int

    def config_line(self) -> str:
        return f"server.{self.server_id}={self.host}:{self.quorum_port}:{self.election_port}"


class ZooKeeperServer:
    """A real ZooKeeper server process on 127.0.0.1 (a single server, or one member of a :class:`ZooKeeperEnsemble`).

    The port, working directory (``zoo.cfg``, ``data/``, ``zookeeper.log``) and data stay the same across
    :meth:`stop`/:meth:`start`/:meth:`restart`, so sessions survive a restart that is shorter than their timeout.
    Use as a context manager: ``with ZooKeeperServer() as zk: KazooClient(zk.connect_string)``.

    A single server runs by default as a quorum of one (``standaloneEnabled=false``, ``srvr`` reports
    ``Mode: leader``) rather than in ZooKeeper's standalone mode: in standalone mode ZooKeeper 3.8.0 accepts client
    connections before its database is loaded and then fails to close them (ZOOKEEPER-5051, a NullPointerException
    in ``removeCnxn``), so a client that reconnects while the server restarts hangs until its connect timeout, which
    is the whole session timeout. A quorum of one has no such window and behaves the same for clients.
    ``quorum_of_one=False`` gives the real standalone mode (``Mode: standalone``).
    """

    def __init__(
        self,
        *,
        installation: ZooKeeperInstallation | None = None,
        base_dir: str | os.PathLike[str] | None = None,
        port: int | None = None,
        tick_time_ms: int = 250,
        min_session_timeout_ms: int | None = None,
        max_session_timeout_ms: int = 60_000,
        init_limit: int = 20,
        sync_limit: int = 8,
        startup_timeout: float = 60.0,
        jvm_options: Sequence[str] | None = None,
        extra_config: Mapping[str, str] | None = None,
        keep_files: bool = False,
        quorum_of_one: bool = True,
        _quorum: tuple[int, Sequence[_QuorumPeer]] | None = None,
    ) -> None:
        if tick_time_ms <= 0:
            raise ValueError(f"tick_time_ms must be positive, got {tick_time_ms}")
        self._installation = installation
        self.host = LOOPBACK
        self.port = port if port is not None else free_port()
        self._serving_modes = _SERVING_MODES_QUORUM
        if _quorum is None:
            if quorum_of_one:
                quorum_port, election_port = free_ports(2)
                _quorum = (1, (_QuorumPeer(1, LOOPBACK, quorum_port, election_port),))
                self._serving_modes = _SERVING_MODES_LEADER
            else:
                self._serving_modes = _SERVING_MODES_STANDALONE
        self.tick_time_ms = tick_time_ms
        # ZooKeeper's own default bounds are 2 and 20 ticks; 20 ticks of a small tick are too short for clients
        # that ask for several seconds, so the upper bound is explicit.
        self.min_session_timeout_ms = (
            min_session_timeout_ms if min_session_timeout_ms is not None else 2 * tick_time_ms
        )
        self.max_session_timeout_ms = max_session_timeout_ms
        self.init_limit = init_limit
        self.sync_limit = sync_limit
        self.startup_timeout = startup_timeout
        self.jvm_options: tuple[str, ...] = (
            tuple(jvm_options) if jvm_options is not None else _DEFAULT_JVM_OPTIONS
        )
        self.extra_config: dict[str, str] = dict(extra_config or {})
        self.keep_files = keep_files
        self._quorum = _quorum
        self._single = len(_quorum[1]) == 1 if _quorum is not None else True
        name = f"zookeeper-{_quorum[0]}" if _quorum is not None and not self._single else "zookeeper"
        self.name = name
        self.work_dir = make_work_dir(f"standby-{name}-", base_dir)
        self.data_dir = self.work_dir / "data"
        self.config_path = self.work_dir / "zoo.cfg"
        self.log_path = self.work_dir / "zookeeper.log"
        self._process: ServerProcess | None = None
        self._closed = False

    # ----------------------------------------------------------------------------------------- properties

    @property
    def connect_string(self) -> str:
        """``"127.0.0.1:<port>"``, for ``KazooClient(hosts=...)``."""
        return f"{self.host}:{self.port}"

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def server_id(self) -> int | None:
        """The ``myid`` of an ensemble member (1 for a quorum of one), ``None`` in standalone mode."""
        return self._quorum[0] if self._quorum is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self._process.running else None

    @property
    def installation(self) -> ZooKeeperInstallation:
        if self._installation is None:
            self._installation = require_zookeeper()
        return self._installation

    # ----------------------------------------------------------------------------------------- lifecycle

    def start(self) -> ZooKeeperServer:
        """Start the server and wait until it serves (bounded by ``startup_timeout``); returns ``self``."""
        self.launch()
        self.wait_ready()
        return self

    def launch(self) -> None:
        """Start the process without waiting for readiness (ensemble members must start together)."""
        if self._closed:
            raise RuntimeError(f"{self.name} on {self.connect_string} is closed; create a new server")
        if self.running:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._quorum is not None:
            (self.data_dir / "myid").write_text(f"{self._quorum[0]}\n")
        self.config_path.write_text(self._render_config())
        self._process = ServerProcess(
            self.name,
            self.installation.command(self.config_path, self.jvm_options),
            cwd=self.work_dir,
            log_path=self.log_path,
        )
        self._process.launch()

    def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until ``ruok`` answers ``imok`` and ``srvr`` reports a serving mode; on failure the server is
        killed and :class:`ServerStartError` carries the log tail."""
        limit = self.startup_timeout if timeout is None else timeout
        modes = self._serving_modes

        def serving() -> bool:
            process = self._process
            if process is None:
                raise ServerStartError(f"{self.name} on {self.connect_string} was never started")
            exited = process.exited_message()
            if exited is not None:
                raise ServerStartError(self._failure_message(exited))
            return self.is_ok() and self.mode() in modes

        try:
            wait_until(
                serving, limit, f"{self.name} on {self.connect_string} to serve (mode {'/'.join(modes)})"
            )
        except TimeoutError as exc:
            message = self._failure_message(str(exc))
            self.kill()
            raise ServerStartError(message) from None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gracefully (SIGTERM, then SIGKILL after ``timeout`` seconds). Data and port are kept."""
        if self._process is not None:
            self._process.terminate(timeout)

    def kill(self) -> None:
        """SIGKILL the server (a crash). Data and port are kept."""
        if self._process is not None:
            self._process.kill()

    def restart(self, *, kill: bool = False) -> None:
        """Stop (or with ``kill=True`` crash) and start again on the same port with the same data."""
        if kill:
            self.kill()
        else:
            self.stop()
        self.start()

    def pause(self) -> None:
        """SIGSTOP the JVM: connections stay open but nothing is answered (like a long GC pause)."""
        if self._process is not None:
            self._process.pause()

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        if self._process is not None:
            self._process.resume()

    def close(self) -> None:
        """Stop the server and remove its working directory (unless ``keep_files``)."""
        if self._closed:
            return
        try:
            self.stop()
        finally:
            self._closed = True
            if not self.keep_files:
                remove_work_dir(self.work_dir)

    def __enter__(self) -> ZooKeeperServer:
        if not self.running:
            try:
                self.start()
            except BaseException:
                self.keep_files = True  # the error message points at the log: keep it for inspection
                self.close()
                raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"<ZooKeeperServer {self.name} {self.connect_string} {state} dir={self.work_dir}>"

    # ----------------------------------------------------------------------------------------- probes

    def four_letter_word(self, command: str, timeout: float = 2.0) -> str:
        """Send a four-letter-word command to this server (see :func:`four_letter_word`)."""
        return four_letter_word(self.host, self.port, command, timeout)

    def is_ok(self) -> bool:
        """Whether ``ruok`` answers ``imok``."""
        try:
            return self.four_letter_word("ruok", timeout=1.0).strip() == "imok"
        except OSError:
            return False

    def mode(self) -> str | None:
        """``leader``, ``follower`` or ``standalone`` from ``srvr``; ``None`` when not serving or unreachable."""
        try:
            return _parse_mode(self.four_letter_word("srvr", timeout=1.0))
        except OSError:
            return None

    def log_tail(self, lines: int = 60) -> str:
        return read_log_tail(self.log_path, lines)

    # ----------------------------------------------------------------------------------------- internals

    def _render_config(self) -> str:
        settings: dict[str, str] = {
            "tickTime": str(self.tick_time_ms),
            "initLimit": str(self.init_limit),
            "syncLimit": str(self.sync_limit),
            "dataDir": str(self.data_dir),
            "clientPort": str(self.port),
            "clientPortAddress": self.host,
            "minSessionTimeout": str(self.min_session_timeout_ms),
            "maxSessionTimeout": str(self.max_session_timeout_ms),
            "admin.enableServer": "false",
            "4lw.commands.whitelist": "*",
            # Unlimited connections per client IP: every test client comes from 127.0.0.1 (the default is 60).
            "maxClientCnxns": "0",
            # Test data need not survive a machine crash; skipping fsync keeps ZooKeeper fast on slow CI disks.
            # Restarts and SIGKILL still keep everything (the page cache survives the process).
            "forceSync": "no",
            "preAllocSize": "4096",
        }
        if self._quorum is not None and self._single:
            # Without this a single server line still means standalone mode (see the class docstring).
            settings["standaloneEnabled"] = "false"
        settings.update(self.extra_config)
        lines = [f"{key}={value}" for key, value in settings.items()]
        if self._quorum is not None:
            lines.extend(peer.config_line() for peer in self._quorum[1])
        return "# written by standby.testing.ZooKeeperServer\n" + "\n".join(lines) + "\n"

    def _failure_message(self, what: str) -> str:
        return (
            f"ZooKeeper server {self.name} on {self.connect_string} failed to start: {what}. "
            f"Config {self.config_path}, log {self.log_path}; last log lines:\n{self.log_tail(40)}"
        )


# --------------------------------------------------------------------------------------------- ensemble


class ZooKeeperEnsemble:
    """A ZooKeeper ensemble of ``size`` real servers on 127.0.0.1 (default 3: survives one member down).

    ``members[i]`` is a :class:`ZooKeeperServer` with ``server_id`` ``i + 1``. :meth:`start` waits until every
    member serves and exactly one is the leader.
    """

    def __init__(
        self,
        size: int = 3,
        *,
        installation: ZooKeeperInstallation | None = None,
        base_dir: str | os.PathLike[str] | None = None,
        tick_time_ms: int = 250,
        min_session_timeout_ms: int | None = None,
        max_session_timeout_ms: int = 60_000,
        init_limit: int = 20,
        sync_limit: int = 8,
        startup_timeout: float = 60.0,
        jvm_options: Sequence[str] | None = None,
        extra_config: Mapping[str, str] | None = None,
        keep_files: bool = False,
    ) -> None:
        if size < 1:
            raise ValueError(f"an ensemble needs at least one server, got size={size}")
        self.startup_timeout = startup_timeout
        self.keep_files = keep_files
        self.work_dir = make_work_dir("standby-zookeeper-ensemble-", base_dir)
        peers: list[_QuorumPeer] = []
        client_ports = free_ports(size)
        for server_id in range(1, size + 1):
            quorum_port, election_port = free_ports(2)
            peers.append(_QuorumPeer(server_id, LOOPBACK, quorum_port, election_port))
        self.members: tuple[ZooKeeperServer, ...] = tuple(
            ZooKeeperServer(
                installation=installation,
                base_dir=self.work_dir,
                port=client_ports[i],
                tick_time_ms=tick_time_ms,
                min_session_timeout_ms=min_session_timeout_ms,
                max_session_timeout_ms=max_session_timeout_ms,
                init_limit=init_limit,
                sync_limit=sync_limit,
                startup_timeout=startup_timeout,
                jvm_options=jvm_options,
                extra_config=extra_config,
                keep_files=True,  # the ensemble removes its whole directory on close
                _quorum=(peers[i].server_id, tuple(peers)),
            )
            for i in range(size)
        )
        self._closed = False

    @property
    def connect_string(self) -> str:
        """All members, comma separated: ``"127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3"``."""
        return ",".join(member.connect_string for member in self.members)

    @property
    def size(self) -> int:
        return len(self.members)

    def __len__(self) -> int:
        return len(self.members)

    def __getitem__(self, index: int) -> ZooKeeperServer:
        return self.members[index]

    def __iter__(self) -> Iterator[ZooKeeperServer]:
        return iter(self.members)

    def start(self) -> ZooKeeperEnsemble:
        """Start all stopped members together and wait for a serving quorum with one leader; returns ``self``."""
        if self._closed:
            raise RuntimeError(f"ZooKeeper ensemble in {self.work_dir} is closed; create a new one")
        for member in self.members:
            member.launch()
        try:
            self.wait_ready()
        except BaseException:
            for member in self.members:
                member.kill()
            raise
        return self

    def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until every running member serves as leader or follower and exactly one is the leader."""
        limit = self.startup_timeout if timeout is None else timeout

        def ready() -> bool:
            modes = []
            for member in self.members:
                process = member._process
                if process is None:
                    continue
                exited = process.exited_message()
                if exited is not None:
                    raise ServerStartError(self._failure_message(f"{member.name}: {exited}"))
                if member.running:
                    modes.append(member.mode() if member.is_ok() else None)
            return (
                bool(modes) and all(m in _SERVING_MODES_QUORUM for m in modes) and modes.count("leader") == 1
            )

        try:
            wait_until(ready, limit, f"the ZooKeeper ensemble {self.connect_string} to elect one leader")
        except TimeoutError as exc:
            raise ServerStartError(self._failure_message(str(exc))) from None

    def leader(self) -> ZooKeeperServer | None:
        """The member that reports ``Mode: leader`` right now, if any."""
        for member in self.members:
            if member.running and member.mode() == "leader":
                return member
        return None

    def leader_index(self) -> int | None:
        leader = self.leader()
        return None if leader is None else self.members.index(leader)

    def stop_member(self, index: int, timeout: float = 10.0) -> None:
        self.members[index].stop(timeout)

    def kill_member(self, index: int) -> None:
        self.members[index].kill()

    def start_member(self, index: int) -> None:
        """Start one member again (same port and data) and wait until the ensemble has it serving again."""
        member = self.members[index]
        member.launch()
        try:
            member.wait_ready()
            self.wait_ready()
        except BaseException:
            member.kill()
            raise

    def restart_member(self, index: int, *, kill: bool = False) -> None:
        if kill:
            self.kill_member(index)
        else:
            self.stop_member(index)
        self.start_member(index)

    def stop(self, timeout: float = 10.0) -> None:
        for member in self.members:
            member.stop(timeout)

    def kill(self) -> None:
        for member in self.members:
            member.kill()

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop every member and remove the ensemble's directory (unless ``keep_files``)."""
        if self._closed:
            return
        try:
            self.stop()
        finally:
            self._closed = True
            for member in self.members:
                member.close()
            if not self.keep_files:
                remove_work_dir(self.work_dir)

    def __enter__(self) -> ZooKeeperEnsemble:
        try:
            self.start()
        except BaseException:
            self.keep_files = True  # the error message points at the logs: keep them for inspection
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ZooKeeperEnsemble {self.connect_string} dir={self.work_dir}>"

    def _failure_message(self, what: str) -> str:
        parts = [f"ZooKeeper ensemble {self.connect_string} is not serving: {what}."]
        for member in self.members:
            state = f"running, mode {member.mode()}" if member.running else "not running"
            parts.append(f"--- {member.name} ({member.connect_string}, {state}), log {member.log_path}:")
            parts.append(member.log_tail(15))
        return "\n".join(parts)


# --------------------------------------------------------------------------------------------- session expiry


def expire_session(client: Any, *, timeout: float = 15.0, wait_for_reconnect: bool = True) -> None:
    """Expire ``client``'s ZooKeeper session for real, on the server.

    The technique of kazoo's test harness (before it switched to a client-side simulation): a second connection
    attaches to the same session (same id and password) and closes it, which makes the server end the session
    and drop the first connection. The client then reconnects, learns that its session expired, reports
    ``KazooState.LOST`` to its listeners and (unless stopped) opens a new session (``KazooState.CONNECTED``).
    Ephemeral nodes of the old session are gone when this returns.

    Blocks until the client saw ``LOST`` (and, with ``wait_for_reconnect``, is connected again), at most
    ``timeout`` seconds each; raises :class:`TimeoutError` otherwise. Call it from a thread that is not one of
    ``client``'s own callback threads.
    """
    session = client.client_id
    if session is None or not client.connected:
        raise RuntimeError("expire_session needs a connected KazooClient (client.client_id is None)")
    lost = threading.Event()
    reconnected = threading.Event()

    def watch(state: str) -> bool:
        if state == KazooState.LOST:
            lost.set()
        elif state == KazooState.CONNECTED and lost.is_set():
            reconnected.set()
            return True  # kazoo removes a listener that returns True
        return False

    client.add_listener(watch)
    hosts = ",".join(f"{host}:{port}" for host, port in client.hosts)
    # The session keeps the timeout it was created with; the intruder's own timeout only bounds its connect.
    intruder = KazooClient(hosts=hosts, client_id=session)
    try:
        intruder.start(timeout=timeout)
        intruder.stop()
    finally:
        intruder.close()
    try:
        if not lost.wait(timeout):
            raise TimeoutError(
                f"client of session 0x{session[0]:x} was not notified of the expiry within {timeout}s; "
                "is the client stopped or connected elsewhere?"
            )
        if wait_for_reconnect and not reconnected.wait(timeout):
            raise TimeoutError(f"client did not reconnect with a new session within {timeout}s of the expiry")
    finally:
        client.remove_listener(watch)  # a no-op when kazoo already removed it
