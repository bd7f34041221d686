"""Runs the Kubernetes API test app with uvicorn on 127.0.0.1: in the caller's event loop or in a thread."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import socket
import threading
from collections.abc import Callable, Generator
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import uvicorn
import yaml

from ._app import KubernetesApiApp, RequestRecord, ServerSettings, install_reset_log_filter
from ._faults import FaultInjector, FaultState, LoopDispatcher
from ._resources import CONFIGMAPS, LEASES, ResourceType
from ._store import ObjectStore
from ._types import JsonObject

T = TypeVar("T")

LOOPBACK = "127.0.0.1"
DEFAULT_TOKEN = "standby-test-token"
_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 15.0


class _Uvicorn(uvicorn.Server):
    """uvicorn without signal capture (the owner decides), telling us when it listens and before it stops."""

    def __init__(self, config: uvicorn.Config, app: KubernetesApiApp, on_started: Callable[[], None]) -> None:
        super().__init__(config)
        self._api = app
        self._on_started = on_started
        self.exit_requested = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def main_loop(self) -> None:
        # uvicorn polls should_exit every 0.1 s; waking on an event makes stop() (and test teardown) prompt.
        # on_tick(0) still refreshes the Date header about once a second.
        while not await self.on_tick(0):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.exit_requested.wait(), timeout=1.0)
            if self.exit_requested.is_set():
                self.should_exit = True

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self._on_started()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # Stop accepting first, then end watch streams (they never end on their own), then let uvicorn
        # close the connections.
        for server in getattr(self, "servers", []):
            server.close()
        self._api.begin_shutdown()
        await super().shutdown(sockets=sockets)


class KubernetesApiTestServer:
    """A Kubernetes API server for tests: ConfigMaps and Leases over real HTTP on 127.0.0.1.

    Use it as ``async with KubernetesApiTestServer() as server:`` (served by the running event loop) or
    ``with KubernetesApiTestServer() as server:`` / ``start()``/``stop()`` (served by a background thread,
    so synchronous tests and other processes can use it). Point clients at :attr:`url` or at a kubeconfig
    from :meth:`write_kubeconfig`. Faults are under :attr:`faults`; the object accessors below read and
    write the store directly (thread-safe) for test set-up and assertions.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        token: str | None = DEFAULT_TOKEN,
        history_limit: int = 1000,
        watch_timeout: float = 1800.0,
        bookmark_interval: float = 60.0,
        too_large_resource_version_wait: float = 3.0,
        max_pause: float = 60.0,
        initial_resource_version: int = 1,
    ) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be 0..65535, got {port}")
        self._requested_port = port
        self._token = token
        self._store = ObjectStore(
            history_limit=history_limit, initial_resource_version=initial_resource_version
        )
        self._fault_state = FaultState(self._store, max_pause=max_pause)
        self._dispatcher = LoopDispatcher()
        self._faults = FaultInjector(self._fault_state, self._dispatcher)
        self._app = KubernetesApiApp(
            self._store,
            self._fault_state,
            ServerSettings(
                token=token,
                watch_timeout=watch_timeout,
                bookmark_interval=bookmark_interval,
                too_large_resource_version_wait=too_large_resource_version_wait,
            ),
        )
        self._port: int | None = None
        self._uvicorn: _Uvicorn | None = None
        self._serve_task: asyncio.Task[None] | None = None
        self._state = "new"
        self._thread: threading.Thread | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None
        self._thread_stop: asyncio.Event | None = None

    # ------------------------------------------------------------------ addresses and config

    @property
    def host(self) -> str:
        return LOOPBACK

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(
                "the Kubernetes API test server is not started; call start() or use it as a context"
            )
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: the cluster server URL for clients."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def token(self) -> str | None:
        """The bearer token clients must send (None when authentication is off)."""
        return self._token

    def kubeconfig(self, namespace: str = "default", *, context: str = "standby-test") -> dict[str, Any]:
        """A kubeconfig document (as a dict) pointing at this server with its token."""
        user: dict[str, Any] = {"token": self._token} if self._token is not None else {"token": "unused"}
        return {
            "apiVersion": "v1",
            "kind": "Config",
            # Plain HTTP: there is no TLS to verify. The flag only spares lightkube from loading the system
            # CA bundle for every client (about 0.3 s each on a busy CI machine).
            "clusters": [
                {"name": context, "cluster": {"server": self.url, "insecure-skip-tls-verify": True}}
            ],
            "users": [{"name": context, "user": user}],
            "contexts": [
                {"name": context, "context": {"cluster": context, "user": context, "namespace": namespace}}
            ],
            "current-context": context,
            "preferences": {},
        }

    def write_kubeconfig(
        self, path: str | Path, namespace: str = "default", *, context: str = "standby-test"
    ) -> Path:
        """Write :meth:`kubeconfig` as YAML to ``path`` (for ``lightkube.KubeConfig.from_file``); returns it."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(self.kubeconfig(namespace, context=context), sort_keys=False))
        return target

    # ------------------------------------------------------------------ faults and store access

    @property
    def faults(self) -> FaultInjector:
        return self._faults

    @property
    def store(self) -> ObjectStore:
        """The store itself: only touch it from the server's event loop (async mode); else use the accessors."""
        return self._store

    def _call(self, function: Callable[[], T]) -> T:
        return self._dispatcher.call(function)

    @property
    def resource_version(self) -> int:
        """The newest cluster-wide resourceVersion."""
        return self._call(lambda: self._store.resource_version)

    @property
    def open_watches(self) -> int:
        """How many watch streams are open now."""
        return self._call(lambda: self._store.open_watches)

    async def wait_for_open_watches(self, count: int, timeout: float = 10.0) -> None:
        """Wait until at least ``count`` watch streams are open (a watch registers before its first event)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.open_watches < count:
            if loop.time() >= deadline:
                raise TimeoutError(
                    f"{self.open_watches} watch streams open after {timeout} s, expected at least {count}"
                )
            await asyncio.sleep(0.005)

    def requests(self) -> list[RequestRecord]:
        """The API requests answered so far (oldest first, the last 1000)."""
        return self._call(lambda: list(self._app.requests))

    def clear_requests(self) -> None:
        self._call(self._app.requests.clear)

    def get_object(self, resource: ResourceType, namespace: str, name: str) -> JsonObject | None:
        """A copy of the stored object, or None."""
        return self._call(lambda: copy.deepcopy(self._store.peek(resource, namespace, name)))

    def get_configmap(self, namespace: str, name: str) -> JsonObject | None:
        """A copy of the stored ConfigMap (with kind, apiVersion, metadata), or None when absent."""
        return self.get_object(CONFIGMAPS, namespace, name)

    def get_lease(self, namespace: str, name: str) -> JsonObject | None:
        return self.get_object(LEASES, namespace, name)

    def configmaps(self, namespace: str | None = None) -> list[JsonObject]:
        """Copies of all ConfigMaps (of one namespace, or all), sorted by namespace and name."""
        return self._call(lambda: copy.deepcopy(self._store.objects(CONFIGMAPS, namespace)))

    def leases(self, namespace: str | None = None) -> list[JsonObject]:
        return self._call(lambda: copy.deepcopy(self._store.objects(LEASES, namespace)))

    def put_configmap(
        self,
        namespace: str,
        name: str,
        data: dict[str, str] | None = None,
        *,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
    ) -> JsonObject:
        """Create or unconditionally replace a ConfigMap, as a client write would (new resourceVersion, event)."""
        body: JsonObject = {
            "metadata": {"name": name, "labels": labels or {}, "annotations": annotations or {}},
            "data": data or {},
        }

        def write() -> JsonObject:
            if self._store.peek(CONFIGMAPS, namespace, name) is None:
                obj, _ = self._store.create(CONFIGMAPS, namespace, body)
            else:
                obj, _ = self._store.replace(CONFIGMAPS, namespace, name, body)
            return copy.deepcopy(obj)

        return self._call(write)

    def delete_configmap(self, namespace: str, name: str) -> bool:
        """Delete a ConfigMap if it exists (a real write with a DELETED event); True when it existed."""

        def delete() -> bool:
            if self._store.peek(CONFIGMAPS, namespace, name) is None:
                return False
            self._store.delete(CONFIGMAPS, namespace, name)
            return True

        return self._call(delete)

    # ------------------------------------------------------------------ lifecycle in the caller's loop

    async def start_async(self) -> None:
        """Serve from the running event loop; returns once the port accepts connections."""
        if self._state != "new":
            raise RuntimeError(f"the Kubernetes API test server cannot be started when {self._state}")
        self._state = "starting"
        install_reset_log_filter()
        # proto must be IPPROTO_TCP: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP,
        # and without it every response (headers and body are two writes) waits ~40 ms for a delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((LOOPBACK, self._requested_port))
        except OSError as error:
            sock.close()
            self._state = "failed"
            raise OSError(
                f"cannot bind the Kubernetes API test server to {LOOPBACK}:{self._requested_port}: {error}; "
                "use port=0 for a free port"
            ) from error
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            host=LOOPBACK,
            port=self._port,
            http="h11",
            ws="none",
            lifespan="off",
            interface="asgi3",
            log_config=None,
            log_level="warning",
            access_log=False,
            proxy_headers=False,
            server_header=False,
            timeout_graceful_shutdown=5,
        )
        started = asyncio.Event()
        self._dispatcher.bind(asyncio.get_running_loop())
        self._uvicorn = _Uvicorn(config, self._app, started.set)
        self._serve_task = asyncio.create_task(
            self._uvicorn.serve(sockets=[sock]), name=f"kubernetes-api-test-server:{self._port}"
        )
        waiter = asyncio.create_task(started.wait())
        done, _ = await asyncio.wait(
            {self._serve_task, waiter}, timeout=_START_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
        )
        if waiter not in done:
            waiter.cancel()
            self._state = "failed"
            self._dispatcher.bind(None)
            if self._serve_task in done:
                cause = self._serve_task.exception() if not self._serve_task.cancelled() else None
                raise RuntimeError(f"the Kubernetes API test server failed to start: {cause!r}") from cause
            self._serve_task.cancel()
            raise TimeoutError(f"the Kubernetes API test server did not start within {_START_TIMEOUT} s")
        self._state = "running"

    async def stop_async(self) -> None:
        """Stop serving: open watches end, connections close; the store stays readable."""
        if self._state != "running":
            return
        self._state = "stopping"
        assert self._uvicorn is not None and self._serve_task is not None
        self._uvicorn.should_exit = True
        self._uvicorn.exit_requested.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._serve_task), timeout=_STOP_TIMEOUT)
        except TimeoutError:
            self._uvicorn.force_exit = True
            self._serve_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._serve_task
        finally:
            self._dispatcher.bind(None)
            self._state = "stopped"

    async def __aenter__(self) -> KubernetesApiTestServer:
        await self.start_async()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop_async()

    # ------------------------------------------------------------------ lifecycle in a background thread

    def start(self) -> None:
        """Serve from a background thread with its own event loop; returns once the port accepts connections."""
        if self._state != "new":
            raise RuntimeError(f"the Kubernetes API test server cannot be started when {self._state}")
        ready = threading.Event()
        failure: list[BaseException] = []

        async def main() -> None:
            self._thread_loop = asyncio.get_running_loop()
            self._thread_stop = asyncio.Event()
            try:
                await self.start_async()
            except BaseException as error:
                failure.append(error)
                ready.set()
                return
            ready.set()
            try:
                await self._thread_stop.wait()
            finally:
                await self.stop_async()

        self._thread = threading.Thread(
            target=asyncio.run, args=(main(),), name="kubernetes-api-test-server", daemon=True
        )
        self._thread.start()
        if not ready.wait(_START_TIMEOUT + 5):
            raise TimeoutError("the Kubernetes API test server thread did not start")
        if failure:
            self._thread.join(timeout=_STOP_TIMEOUT)
            raise failure[0]

    def stop(self) -> None:
        """Stop a server started with :meth:`start` (idempotent)."""
        thread, loop, stop = self._thread, self._thread_loop, self._thread_stop
        if thread is None or loop is None or stop is None:
            return
        if thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(stop.set)
            thread.join(timeout=_STOP_TIMEOUT + 5)
            if thread.is_alive():
                raise TimeoutError("the Kubernetes API test server thread did not stop")
        self._thread = None

    def __enter__(self) -> KubernetesApiTestServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
