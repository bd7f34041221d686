"""Backend environments of the benchmarks: is a backend available here, its server, and its configuration.

Each environment says why it cannot run (backend package not merged, server not installed) instead of failing,
starts its coordination server on 127.0.0.1 (real ZooKeeper and etcd from ``standby.testing.servers``, the
Kubernetes API test server in its own process), and builds the configuration of one cluster. Modules of
backends or fixtures that are not on this branch yet are imported by name, so this file type-checks without them.
"""

from __future__ import annotations

import abc
import contextlib
import importlib
import importlib.util
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from ._common import BenchmarkError

#: ZooKeeper as the Flink harness runs its own (tickTime 200 ms): a session expires within one tick after its
#: timeout, and sessions of 2 s and 4 s are both allowed.
ZK_TICK_MS = 200
ZK_MIN_SESSION_MS = 1000
ZK_MAX_SESSION_MS = 60_000


def module_missing(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except ModuleNotFoundError:
        return True


def _servers_module() -> Any:
    """``standby.testing.servers`` (branch ``servers``), or None when it is not on this branch."""
    if module_missing("standby.testing.servers"):
        return None
    return importlib.import_module("standby.testing.servers")


def _duration_ms(seconds: float) -> str:
    return f"{round(seconds * 1000)} ms"


class BackendEnv(abc.ABC):
    """One backend with its server: ``unavailable_reason()``, then ``start()``, ``config(...)``, ``stop()``."""

    #: ``high-availability.type``
    ha_type: str = ""

    def __init__(self, label: str | None = None) -> None:
        self.label = label or self.ha_type
        self._started = False

    @abc.abstractmethod
    def unavailable_reason(self) -> str | None:
        """Why this backend cannot run here (None when it can)."""

    def _backend_missing(self) -> str | None:
        """Why the backend's factory (``standby.ha.BUILTIN_BACKENDS``) cannot be loaded, or None."""
        from standby.ha import BUILTIN_BACKENDS

        target = BUILTIN_BACKENDS.get(self.ha_type, f"standby.backends.{self.ha_type}:?")
        module, _, attribute = target.partition(":")
        if module_missing(module):
            return f"{module} is not on this branch yet (branch '{self.ha_type}' not merged into main)"
        try:
            loaded = importlib.import_module(module)
        except Exception as e:
            return f"{module} cannot be imported: {type(e).__name__}: {e}"
        if not hasattr(loaded, attribute):
            return (
                f"{module} has no {attribute} yet (the '{self.ha_type}' backend is unfinished on this branch)"
            )
        return None

    def start(self, work_dir: Path) -> None:
        """Start the coordination server (nothing for the filesystem backend)."""
        self._started = True

    def stop(self) -> None:
        self._started = False

    @abc.abstractmethod
    def backend_settings(self) -> dict[str, str]:
        """The backend's own keys (server address, session or lease length)."""

    def config(self, cluster_id: str, storage_dir: Path, **extra: str) -> dict[str, str]:
        """A complete HA configuration of cluster ``cluster_id`` with payloads under ``storage_dir``."""
        values = {
            "high-availability.type": self.ha_type,
            "high-availability.storageDir": str(storage_dir),
            "high-availability.cluster-id": cluster_id,
        }
        values.update(self.backend_settings())
        values.update(extra)
        return values

    @property
    def failure_timeout_s(self) -> float:
        """How long the backend takes to notice a dead leader (session, lease), 0 when the kernel tells at once."""
        return 0.0

    def describe(self) -> dict[str, Any]:
        """Metadata recorded next to the results."""
        return {"backend": self.ha_type, "label": self.label}

    def __enter__(self) -> BackendEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def new_cluster_id(prefix: str) -> str:
    """A unique cluster id that is also a valid Kubernetes name (lower case, digits, dashes)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class FileSystemEnv(BackendEnv):
    """``filesystem``: flock on a local directory, no server."""

    ha_type = "filesystem"

    def unavailable_reason(self) -> str | None:
        return self._backend_missing()

    def backend_settings(self) -> dict[str, str]:
        return {}


class ZooKeeperEnv(BackendEnv):
    """``zookeeper`` against a real ZooKeeper 3.8 (Debian package) started here, or a given one."""

    ha_type = "zookeeper"

    def __init__(
        self, session_timeout_s: float = 4.0, label: str | None = None, connect: str | None = None
    ) -> None:
        super().__init__(label or f"zookeeper-{session_timeout_s:g}s")
        self.session_timeout_s = session_timeout_s
        self._given_connect = connect
        self._server: Any = None

    def unavailable_reason(self) -> str | None:
        missing = self._backend_missing()
        if missing is not None:
            return missing
        return self.server_unavailable_reason()

    def start(self, work_dir: Path) -> None:
        if self._given_connect is None and self._server is None:
            servers = _servers_module()
            if servers is None:
                raise BenchmarkError("standby.testing.servers is missing: cannot start ZooKeeper")
            work_dir.mkdir(parents=True, exist_ok=True)
            self._server = servers.ZooKeeperServer(
                base_dir=work_dir,
                tick_time_ms=ZK_TICK_MS,
                min_session_timeout_ms=ZK_MIN_SESSION_MS,
                max_session_timeout_ms=ZK_MAX_SESSION_MS,
            )
            self._server.start()
        super().start(work_dir)

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            with contextlib.suppress(Exception):
                server.close()
        super().stop()

    @property
    def connect_string(self) -> str:
        if self._given_connect is not None:
            return self._given_connect
        if self._server is None:
            raise BenchmarkError("the ZooKeeper server of the benchmark is not started")
        return str(self._server.connect_string)

    @property
    def failure_timeout_s(self) -> float:
        return self.session_timeout_s

    def server_unavailable_reason(self) -> str | None:
        """Why no ZooKeeper server can be started here (the backend package is not needed for that)."""
        if self._given_connect is not None:
            return None
        servers = _servers_module()
        if servers is None:
            return "standby.testing.servers (branch 'servers') is not on this branch: no ZooKeeper fixture"
        reason: str | None = servers.zookeeper_unavailable_reason()
        return f"ZooKeeper server not available: {reason}" if reason else None

    def share_server_with(self, other: ZooKeeperEnv) -> None:
        """Use ``other``'s running server (same ZooKeeper for several session timeouts)."""
        self._given_connect = other.connect_string

    def backend_settings(self) -> dict[str, str]:
        return {
            "high-availability.zookeeper.quorum": self.connect_string,
            "high-availability.zookeeper.path.root": "/standby-bench",
            "high-availability.zookeeper.client.session-timeout": _duration_ms(self.session_timeout_s),
        }

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "session_timeout_s": self.session_timeout_s,
            "zookeeper_tick_ms": ZK_TICK_MS if self._given_connect is None else None,
        }


class EtcdEnv(BackendEnv):
    """``etcd`` against a real etcd (Debian package) started here."""

    ha_type = "etcd"

    def __init__(self, lease_ttl_s: float = 2.0, label: str | None = None) -> None:
        super().__init__(label or f"etcd-{lease_ttl_s:g}s")
        self.lease_ttl_s = lease_ttl_s
        self._server: Any = None

    def unavailable_reason(self) -> str | None:
        missing = self._backend_missing()
        if missing is not None:
            return missing
        servers = _servers_module()
        if servers is None:
            return "standby.testing.servers (branch 'servers') is not on this branch: no etcd fixture"
        reason: str | None = servers.etcd_unavailable_reason()
        return f"etcd server not available: {reason}" if reason else None

    def start(self, work_dir: Path) -> None:
        if self._server is None:
            servers = _servers_module()
            if servers is None:
                raise BenchmarkError("standby.testing.servers is missing: cannot start etcd")
            work_dir.mkdir(parents=True, exist_ok=True)
            self._server = servers.EtcdServer(base_dir=work_dir)
            self._server.start()
        super().start(work_dir)

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            with contextlib.suppress(Exception):
                server.close()
        super().stop()

    def backend_settings(self) -> dict[str, str]:
        if self._server is None:
            raise BenchmarkError("the etcd server of the benchmark is not started")
        return {
            "high-availability.etcd.endpoints": str(self._server.endpoint),
            "high-availability.etcd.root": "/standby-bench",
            "high-availability.etcd.lease-ttl": _duration_ms(self.lease_ttl_s),
        }

    @property
    def failure_timeout_s(self) -> float:
        return self.lease_ttl_s

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "lease_ttl_s": self.lease_ttl_s}


class KubernetesEnv(BackendEnv):
    """``kubernetes`` against the in-repo Kubernetes API test server, run in its own process."""

    ha_type = "kubernetes"
    namespace = "standby-bench"

    def __init__(self, lease_s: float = 2.0, label: str | None = None) -> None:
        super().__init__(label or f"kubernetes-{lease_s:g}s")
        self.lease_s = lease_s
        self._server: Any = None
        self._dir: Path | None = None
        self.kubeconfig: Path | None = None

    def unavailable_reason(self) -> str | None:
        missing = self._backend_missing()
        if missing is not None:
            return missing
        if module_missing("standby.testing.kubernetes_api_server"):
            return "standby.testing.kubernetes_api_server is not on this branch"
        return None

    def start(self, work_dir: Path) -> None:
        if self._server is None:
            k8s = importlib.import_module("standby.testing.kubernetes_api_server")
            work_dir.mkdir(parents=True, exist_ok=True)
            self._dir = Path(tempfile.mkdtemp(prefix="k8s-api-", dir=work_dir))
            self.kubeconfig = self._dir / "kubeconfig"
            self._server = k8s.KubernetesApiServerProcess(
                kubeconfig=self.kubeconfig, namespace=self.namespace
            )
            self._server.start()
        super().start(work_dir)

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            with contextlib.suppress(Exception):
                server.stop()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        super().stop()

    def backend_settings(self) -> dict[str, str]:
        if self.kubeconfig is None:
            raise BenchmarkError("the Kubernetes API test server of the benchmark is not started")
        # renew deadline and retry period scaled as the backend's tests do (renew < lease, retry < renew)
        return {
            "kubernetes.namespace": self.namespace,
            "kubernetes.config.file": str(self.kubeconfig),
            "high-availability.kubernetes.leader-election.lease-duration": _duration_ms(self.lease_s),
            "high-availability.kubernetes.leader-election.renew-deadline": _duration_ms(self.lease_s / 2),
            "high-availability.kubernetes.leader-election.retry-period": _duration_ms(self.lease_s / 10),
        }

    @property
    def failure_timeout_s(self) -> float:
        return self.lease_s

    def config(self, cluster_id: str, storage_dir: Path, **extra: str) -> dict[str, str]:
        values = super().config(cluster_id, storage_dir, **extra)
        values.setdefault("kubernetes.cluster-id", cluster_id)
        return values

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "lease_duration_s": self.lease_s,
            "renew_deadline_s": self.lease_s / 2,
            "retry_period_s": self.lease_s / 10,
            "server": "standby.testing.kubernetes_api_server (in-repo test server, own process)",
        }


def primitive_backends() -> list[BackendEnv]:
    """The backends of the HA-primitive benchmarks (default session/lease lengths do not matter there)."""
    return [
        FileSystemEnv(),
        ZooKeeperEnv(4.0, label="zookeeper"),
        EtcdEnv(2.0, label="etcd"),
        KubernetesEnv(2.0, label="kubernetes"),
    ]
