"""Real etcd 3.4 test servers on 127.0.0.1: a single member and a multi-member cluster.

The servers run Debian's etcd (package ``etcd-server``, /usr/bin/etcd), each member with its own temporary directory
(``data/`` and ``etcd.log``), client and peer ports chosen by :mod:`standby.testing._ports`, and short raft timings
(heartbeat 50 ms, election timeout 500 ms) so leader elections in tests take a fraction of a second. Readiness is
the member's ``/health`` endpoint answering ``{"health": "true"}``.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import re
import shutil
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

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
    "EtcdCluster",
    "EtcdInstallation",
    "EtcdServer",
    "etcd_unavailable_reason",
    "find_etcd",
    "require_etcd",
]

_DEBIAN_ETCD = Path("/usr/bin/etcd")
_INSTALL_HINT = (
    "install Debian's `etcd-server` package with scripts/install-test-servers (needs root or passwordless sudo), "
    "or set STANDBY_ETCD to an etcd 3.4+ binary"
)
_VERSION_TIMEOUT = 30.0
_HTTP_TIMEOUT = 1.0

# Architectures etcd 3.4 runs on without ETCD_UNSUPPORTED_ARCH (etcdmain checkSupportArch).
_SUPPORTED_ARCHES = frozenset({"amd64", "ppc64le"})
_GOARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "i386": "386",
    "i686": "386",
    "armv7l": "arm",
    "armv6l": "arm",
    "riscv64": "riscv64",
}

# No proxy for loopback health checks, whatever http_proxy says.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# --------------------------------------------------------------------------------------------- installation


@dataclass(frozen=True)
class EtcdInstallation:
    """Where the etcd server binary lives, its version and Go architecture."""

    etcd: str
    version: str | None
    arch: str | None
    source: str

    def environment(self) -> dict[str, str]:
        """The environment for an etcd child: no inherited ``ETCD_*`` settings (they would override our flags'
        intent or clash with them), plus ``ETCD_UNSUPPORTED_ARCH`` where etcd 3.4 insists on it (e.g. arm64)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD_")}
        if self.arch is not None and self.arch not in _SUPPORTED_ARCHES:
            env["ETCD_UNSUPPORTED_ARCH"] = self.arch
        return env


def _machine_goarch() -> str | None:
    return _GOARCH.get(platform.machine().lower())


@functools.cache
def _locate(env_key: tuple[str | None, ...]) -> EtcdInstallation | str:
    del env_key  # only the cache key
    explicit = os.environ.get("STANDBY_ETCD")
    if explicit:
        binary: str | None = explicit
        source = f"STANDBY_ETCD={explicit}"
    elif _DEBIAN_ETCD.is_file():
        binary, source = str(_DEBIAN_ETCD), "Debian package etcd-server (/usr/bin/etcd)"
    else:
        binary, source = shutil.which("etcd"), "etcd on PATH"
    if binary is None or not os.access(binary, os.X_OK):
        where = binary or f"{_DEBIAN_ETCD} or etcd on PATH"
        return f"etcd unavailable: no etcd server binary ({where} missing or not executable); {_INSTALL_HINT}"
    probe = EtcdInstallation(binary, None, _machine_goarch(), source)
    try:
        result = subprocess.run(
            [binary, "--version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_VERSION_TIMEOUT,
            check=False,
            env=probe.environment(),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"etcd unavailable: `{binary} --version` failed ({exc}); {_INSTALL_HINT}"
    output = (result.stdout + result.stderr).decode(errors="replace")
    if result.returncode != 0:
        return (
            f"etcd unavailable: `{binary} --version` exited with {result.returncode}: {output.strip()[-500:]}; "
            f"{_INSTALL_HINT}"
        )
    version_match = re.search(r"etcd Version:\s*(\S+)", output)
    arch_match = re.search(r"Go OS/Arch:\s*\S+/(\S+)", output)
    return EtcdInstallation(
        etcd=binary,
        version=version_match.group(1) if version_match else None,
        arch=arch_match.group(1) if arch_match else probe.arch,
        source=source,
    )


def _env_key() -> tuple[str | None, ...]:
    return tuple(os.environ.get(name) for name in ("STANDBY_ETCD", "PATH"))


def find_etcd() -> EtcdInstallation | None:
    """The local etcd server installation, or ``None`` (see :func:`etcd_unavailable_reason`).

    Looks at ``STANDBY_ETCD``, then Debian's /usr/bin/etcd, then ``etcd`` on ``PATH``.
    """
    found = _locate(_env_key())
    return found if isinstance(found, EtcdInstallation) else None


def etcd_unavailable_reason() -> str | None:
    """Why no etcd server can be started here (naming the package and the install script), or ``None``."""
    found = _locate(_env_key())
    return found if isinstance(found, str) else None


def require_etcd() -> EtcdInstallation:
    """The local etcd installation; raises :class:`ServerNotInstalledError` with the reason if missing."""
    found = _locate(_env_key())
    if isinstance(found, str):
        raise ServerNotInstalledError(found)
    return found


# --------------------------------------------------------------------------------------------- one member


@dataclass(frozen=True)
class _ClusterSpec:
    initial_cluster: str
    token: str


class EtcdServer:
    """A real etcd server process on 127.0.0.1 (single member, or one member of an :class:`EtcdCluster`).

    Ports and data directory stay the same across :meth:`stop`/:meth:`start`/:meth:`restart`, so data survives
    a restart. Use as a context manager: ``with EtcdServer() as etcd: aetcd.Client(etcd.host, etcd.port)``.
    """

    def __init__(
        self,
        *,
        installation: EtcdInstallation | None = None,
        base_dir: str | os.PathLike[str] | None = None,
        name: str = "standby-etcd",
        client_port: int | None = None,
        peer_port: int | None = None,
        heartbeat_interval_ms: int = 50,
        election_timeout_ms: int = 500,
        startup_timeout: float = 30.0,
        extra_args: Sequence[str] = (),
        keep_files: bool = False,
        _cluster: _ClusterSpec | None = None,
    ) -> None:
        if election_timeout_ms < 5 * heartbeat_interval_ms:
            # etcd refuses to start otherwise; say so before spawning it.
            raise ValueError(
                f"election_timeout_ms ({election_timeout_ms}) must be at least 5 x heartbeat_interval_ms "
                f"({heartbeat_interval_ms})"
            )
        self._installation = installation
        self.name = name
        self.host = LOOPBACK
        self.port = client_port if client_port is not None else free_port()
        self.peer_port = peer_port if peer_port is not None else free_port()
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.election_timeout_ms = election_timeout_ms
        self.startup_timeout = startup_timeout
        self.extra_args = tuple(extra_args)
        self.keep_files = keep_files
        self._cluster = _cluster or _ClusterSpec(f"{name}={self.peer_url}", f"standby-{uuid.uuid4().hex}")
        self.work_dir = make_work_dir(f"{name}-", base_dir)
        self.data_dir = self.work_dir / "data"
        self.log_path = self.work_dir / "etcd.log"
        self._process: ServerProcess | None = None
        self._closed = False

    # ----------------------------------------------------------------------------------------- properties

    @property
    def client_url(self) -> str:
        """``"http://127.0.0.1:<client port>"``."""
        return f"http://{self.host}:{self.port}"

    @property
    def peer_url(self) -> str:
        return f"http://{self.host}:{self.peer_port}"

    @property
    def endpoint(self) -> str:
        """``"127.0.0.1:<client port>"``."""
        return f"{self.host}:{self.port}"

    @property
    def endpoints(self) -> list[str]:
        """The client URLs to give an etcd client (one here)."""
        return [self.client_url]

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` as ``aetcd.Client(host, port)`` takes them."""
        return self.host, self.port

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self._process.running else None

    @property
    def installation(self) -> EtcdInstallation:
        if self._installation is None:
            self._installation = require_etcd()
        return self._installation

    # ----------------------------------------------------------------------------------------- lifecycle

    def start(self) -> EtcdServer:
        """Start and wait until ``/health`` is true (bounded by ``startup_timeout``); returns ``self``."""
        self.launch()
        self.wait_ready()
        return self

    def launch(self) -> None:
        """Start the process without waiting (cluster members must start together to form a quorum)."""
        if self._closed:
            raise RuntimeError(f"etcd {self.name} on {self.endpoint} is closed; create a new server")
        if self.running:
            return
        installation = self.installation
        self._process = ServerProcess(
            f"etcd {self.name}",
            [installation.etcd, *self._arguments()],
            cwd=self.work_dir,
            log_path=self.log_path,
            env=installation.environment(),
        )
        self._process.launch()

    def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until ``/health`` reports true; on failure the member is killed and :class:`ServerStartError`
        carries the log tail."""
        limit = self.startup_timeout if timeout is None else timeout

        def healthy() -> bool:
            self._raise_if_exited()
            return self.is_healthy()

        try:
            wait_until(healthy, limit, f"etcd {self.name} on {self.endpoint} to report /health true")
        except TimeoutError as exc:
            message = self._failure_message(str(exc))
            self.kill()
            raise ServerStartError(message) from None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gracefully (SIGTERM, then SIGKILL after ``timeout`` seconds). Data and ports are kept."""
        if self._process is not None:
            self._process.terminate(timeout)

    def kill(self) -> None:
        """SIGKILL the member (a crash). Data and ports are kept."""
        if self._process is not None:
            self._process.kill()

    def restart(self, *, kill: bool = False) -> None:
        """Stop (or with ``kill=True`` crash) and start again with the same ports and data."""
        if kill:
            self.kill()
        else:
            self.stop()
        self.start()

    def pause(self) -> None:
        """SIGSTOP the member: connections stay open, nothing is answered."""
        if self._process is not None:
            self._process.pause()

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        if self._process is not None:
            self._process.resume()

    def close(self) -> None:
        """Stop the member and remove its working directory (unless ``keep_files``)."""
        if self._closed:
            return
        try:
            self.stop()
        finally:
            self._closed = True
            if not self.keep_files:
                remove_work_dir(self.work_dir)

    def __enter__(self) -> EtcdServer:
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
        return f"<EtcdServer {self.name} {self.client_url} {state} dir={self.work_dir}>"

    # ----------------------------------------------------------------------------------------- probes

    def is_healthy(self) -> bool:
        """Whether ``GET /health`` answers ``{"health": "true"}`` (the member sees a leader)."""
        try:
            body = self._http("GET", "/health")
        except (OSError, ValueError):
            return False
        return isinstance(body, dict) and body.get("health") == "true"

    def status(self) -> dict[str, Any]:
        """The member's ``Maintenance.Status`` via the JSON gateway (``member_id``, ``leader``, ``raftTerm``...)."""
        body = self._http("POST", "/v3/maintenance/status", {})
        if not isinstance(body, dict):
            raise ValueError(f"unexpected status answer from {self.client_url}: {body!r}")
        return body

    def member_id(self) -> str:
        header = self.status().get("header", {})
        return str(header.get("member_id"))

    def is_leader(self) -> bool:
        try:
            status = self.status()
        except (OSError, ValueError):
            return False
        return str(status.get("leader")) == str(status.get("header", {}).get("member_id"))

    def log_tail(self, lines: int = 60) -> str:
        return read_log_tail(self.log_path, lines)

    # ----------------------------------------------------------------------------------------- internals

    def _arguments(self) -> list[str]:
        return [
            "--name",
            self.name,
            "--data-dir",
            str(self.data_dir),
            "--listen-client-urls",
            self.client_url,
            "--advertise-client-urls",
            self.client_url,
            "--listen-peer-urls",
            self.peer_url,
            "--initial-advertise-peer-urls",
            self.peer_url,
            # Ignored by etcd once the data directory holds a member: restarts reuse the stored membership.
            "--initial-cluster",
            self._cluster.initial_cluster,
            "--initial-cluster-token",
            self._cluster.token,
            "--initial-cluster-state",
            "new",
            "--heartbeat-interval",
            str(self.heartbeat_interval_ms),
            "--election-timeout",
            str(self.election_timeout_ms),
            "--logger",
            "zap",
            "--log-outputs",
            "stderr",
            *self.extra_args,
        ]

    def _http(self, method: str, path: str, payload: object = None) -> object:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(self.client_url + path, data=data, method=method)
        try:
            with _HTTP.open(request, timeout=_HTTP_TIMEOUT) as response:
                raw = response.read(1 << 20)
        except urllib.error.HTTPError as exc:
            # /health answers 503 with a JSON body while there is no leader.
            raw = exc.read(1 << 20)
        parsed: object = json.loads(raw)
        return parsed

    def _raise_if_exited(self) -> None:
        process = self._process
        if process is None:
            raise ServerStartError(f"etcd {self.name} on {self.endpoint} was never started")
        exited = process.exited_message()
        if exited is not None:
            raise ServerStartError(self._failure_message(exited))

    def _failure_message(self, what: str) -> str:
        return (
            f"etcd {self.name} on {self.client_url} failed to start: {what}. Data {self.data_dir}, "
            f"log {self.log_path}; last log lines:\n{self.log_tail(40)}"
        )


# --------------------------------------------------------------------------------------------- cluster


class EtcdCluster:
    """An etcd cluster of ``size`` real members on 127.0.0.1 (default 3: survives one member down).

    ``members[i]`` is an :class:`EtcdServer` named ``standby-etcd-<i>``. :meth:`start` waits until every member
    is healthy.
    """

    def __init__(
        self,
        size: int = 3,
        *,
        installation: EtcdInstallation | None = None,
        base_dir: str | os.PathLike[str] | None = None,
        heartbeat_interval_ms: int = 50,
        election_timeout_ms: int = 500,
        startup_timeout: float = 30.0,
        extra_args: Sequence[str] = (),
        keep_files: bool = False,
    ) -> None:
        if size < 1:
            raise ValueError(f"a cluster needs at least one member, got size={size}")
        self.startup_timeout = startup_timeout
        self.keep_files = keep_files
        self.work_dir = make_work_dir("standby-etcd-cluster-", base_dir)
        names = [f"standby-etcd-{i}" for i in range(size)]
        ports = free_ports(2 * size)
        peer_ports = ports[size:]
        spec = _ClusterSpec(
            ",".join(
                f"{name}=http://{LOOPBACK}:{port}" for name, port in zip(names, peer_ports, strict=True)
            ),
            f"standby-{uuid.uuid4().hex}",
        )
        self.members: tuple[EtcdServer, ...] = tuple(
            EtcdServer(
                installation=installation,
                base_dir=self.work_dir,
                name=names[i],
                client_port=ports[i],
                peer_port=peer_ports[i],
                heartbeat_interval_ms=heartbeat_interval_ms,
                election_timeout_ms=election_timeout_ms,
                startup_timeout=startup_timeout,
                extra_args=extra_args,
                keep_files=True,  # the cluster removes its whole directory on close
                _cluster=spec,
            )
            for i in range(size)
        )
        self._closed = False

    @property
    def endpoints(self) -> list[str]:
        """Client URLs of all members (``http://127.0.0.1:<port>``)."""
        return [member.client_url for member in self.members]

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """``(host, port)`` of all members."""
        return [member.address for member in self.members]

    @property
    def size(self) -> int:
        return len(self.members)

    def __len__(self) -> int:
        return len(self.members)

    def __getitem__(self, index: int) -> EtcdServer:
        return self.members[index]

    def __iter__(self) -> Iterator[EtcdServer]:
        return iter(self.members)

    def start(self) -> EtcdCluster:
        """Start all stopped members together and wait until every member is healthy; returns ``self``."""
        if self._closed:
            raise RuntimeError(f"etcd cluster in {self.work_dir} is closed; create a new one")
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
        """Wait until every running member reports ``/health`` true (each sees a leader)."""
        limit = self.startup_timeout if timeout is None else timeout

        def ready() -> bool:
            running = []
            for member in self.members:
                if member._process is None:
                    continue
                exited = member._process.exited_message()
                if exited is not None:
                    raise ServerStartError(self._failure_message(exited))
                if member.running:
                    running.append(member)
            return bool(running) and all(member.is_healthy() for member in running)

        try:
            wait_until(ready, limit, f"the etcd cluster {','.join(self.endpoints)} to be healthy")
        except TimeoutError as exc:
            raise ServerStartError(self._failure_message(str(exc))) from None

    def leader(self) -> EtcdServer | None:
        """The running member that is the raft leader right now, if any."""
        for member in self.members:
            if member.running and member.is_leader():
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
        """Start one member again (same ports and data) and wait until it is healthy."""
        member = self.members[index]
        member.launch()
        try:
            member.wait_ready()
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
        """Stop every member and remove the cluster's directory (unless ``keep_files``)."""
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

    def __enter__(self) -> EtcdCluster:
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
        return f"<EtcdCluster {','.join(self.endpoints)} dir={self.work_dir}>"

    def _failure_message(self, what: str) -> str:
        parts = [f"etcd cluster {','.join(self.endpoints)} is not healthy: {what}."]
        for member in self.members:
            state = "running" if member.running else "not running"
            parts.append(f"--- {member.name} ({member.client_url}, {state}), log {member.log_path}:")
            parts.append(member.log_tail(15))
        return "\n".join(parts)
