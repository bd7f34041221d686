"""The ZooKeeper client of the HA backend: settings from ``high-availability.zookeeper.*``, a replaceable kazoo
client factory, and an asyncio face over kazoo's threads (Flink's ``ZooKeeperUtils.startCuratorFramework``).

kazoo runs its own threads: a connection thread that calls connection-state listeners and a callback thread that
runs watches and completes async results. Nothing here blocks in those threads; every event is handed to the event
loop with ``loop.call_soon_threadsafe`` and every operation is one of kazoo's ``*_async`` calls whose result is
bridged to an asyncio future. Operations are retried on connection loss with kazoo's ``KazooRetry`` parameters
(exponential backoff capped by ``max-retry-wait``), as Curator's ``BoundedExponentialBackoffRetry`` in Flink.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import enum
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from kazoo.client import KazooClient
from kazoo.exceptions import (
    ConnectionClosedError,
    ConnectionLoss,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    OperationTimeoutError,
    RolledBackError,
    RuntimeInconsistency,
    SessionExpiredError,
)
from kazoo.protocol.states import EventType, KazooState, WatchedEvent, ZnodeStat
from kazoo.retry import KazooRetry
from kazoo.security import CREATOR_ALL_ACL, OPEN_ACL_UNSAFE

from standby.config import Configuration, ConfigurationError, options
from standby.ha import FatalErrorHandler, FencingError, HighAvailabilityError

_log = logging.getLogger(__name__)

T = TypeVar("T")

__all__ = [
    "ConnectionState",
    "KazooClientFactory",
    "LatchFencing",
    "PinnedFencing",
    "TransactionError",
    "ZooKeeperClient",
    "ZooKeeperClientSettings",
    "ZooKeeperConnectionError",
    "default_kazoo_client_factory",
    "generate_zookeeper_path",
    "pin_fencing",
]

# Errors after which an operation is retried (kazoo's KazooRetry.RETRY_EXCEPTIONS + session expiry: kazoo opens a
# new session by itself, and every write that must not outlive a leadership is fenced).
_RETRYABLE = (ConnectionLoss, OperationTimeoutError, SessionExpiredError)
# The largest number of operations put into one multi-op when deleting a tree (bounded request size).
_MAX_OPS_PER_TRANSACTION = 256
_TREE_DELETE_ATTEMPTS = 20


def generate_zookeeper_path(*parts: str) -> str:
    """Flink's ``ZooKeeperUtils.generateZookeeperPath``: non-empty, slash-trimmed parts joined, leading ``/``."""
    segments = [p.strip("/") for p in parts]
    return "/" + "/".join(s for s in segments if s)


class ZooKeeperConnectionError(HighAvailabilityError):
    """ZooKeeper could not be reached (start timed out, or the client was closed)."""


# --------------------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class ZooKeeperClientSettings:
    """Client settings, the ``high-availability.zookeeper.*`` options of Flink (durations in seconds)."""

    quorum: str
    root: str = "/flink"
    cluster_id: str = "/default"
    session_timeout: float = 60.0
    connection_timeout: float = 15.0
    retry_wait: float = 5.0
    max_retry_wait: float = 60.0
    max_retry_attempts: int = 3
    acl: str = "open"
    authorization: Mapping[str, str] = field(default_factory=dict)
    tolerate_suspended_connections: bool = False
    #: Curator's simulated session expiration: after this percentage of the session timeout without a
    #: connection, the session counts as LOST even though no server said so (the server has expired it by then).
    simulated_session_expiration_percent: int = 100
    execution_plans_path: str = "/execution-plans"
    max_close_wait: float | None = None

    def __post_init__(self) -> None:
        if not self.quorum or not self.quorum.strip():
            raise ConfigurationError(
                "high-availability.zookeeper.quorum is not set; set it to the ZooKeeper connection string, "
                "e.g. 'host1:2181,host2:2181,host3:2181'"
            )
        if self.acl not in ("open", "creator"):
            raise ConfigurationError(
                f"Invalid value {self.acl!r} for 'high-availability.zookeeper.client.acl': expected 'open' or 'creator'"
            )
        if self.acl == "creator" and not self.authorization:
            # Flink: 'creator' needs an authenticated identity (SASL); we authenticate with digest credentials.
            raise ConfigurationError(
                "'high-availability.zookeeper.client.acl: creator' needs credentials: set "
                "'high-availability.zookeeper.client.authorization', e.g. 'digest:user:password'"
            )
        if self.session_timeout <= 0 or self.connection_timeout <= 0:
            raise ConfigurationError(
                "ZooKeeper session and connection timeouts must be positive "
                f"(got session-timeout={self.session_timeout}s, connection-timeout={self.connection_timeout}s)"
            )
        if self.max_retry_attempts < 0:
            raise ConfigurationError(
                "Invalid value for 'high-availability.zookeeper.client.max-retry-attempts': "
                f"{self.max_retry_attempts} (expected >= 0)"
            )
        if not 0 < self.simulated_session_expiration_percent <= 100:
            raise ConfigurationError(
                "Invalid value for 'high-availability.zookeeper.client.simulated-session-expiration-percent': "
                f"{self.simulated_session_expiration_percent} (expected 1..100)"
            )

    @property
    def namespace(self) -> str:
        """``<root>/<cluster-id>``, e.g. ``/flink/default`` (Curator's namespace in Flink)."""
        return generate_zookeeper_path(self.root, self.cluster_id)

    @classmethod
    def from_configuration(cls, config: Configuration) -> ZooKeeperClientSettings:
        """Settings from the ``high-availability.zookeeper.*`` options (Flink's keys and defaults)."""
        return _settings_from_configuration(config)

    def command_retry(self) -> KazooRetry:
        """Operation retries: ``max-retry-attempts`` retries after the first try, backoff from ``retry-wait``
        doubling up to ``max-retry-wait`` (Curator's BoundedExponentialBackoffRetry)."""
        return KazooRetry(
            max_tries=self.max_retry_attempts + 1,
            delay=self.retry_wait,
            backoff=2,
            max_delay=self.max_retry_wait,
            ignore_expire=True,
        )

    def connection_retry(self) -> KazooRetry:
        """Reconnects: forever, starting fast; the pause is capped by ``max-retry-wait`` and by a third of the session
        timeout so that a restarted server is found again while the session can still be saved."""
        cap = max(0.05, min(self.max_retry_wait, self.session_timeout / 3))
        return KazooRetry(max_tries=-1, delay=min(0.05, cap), backoff=2, max_delay=cap, ignore_expire=True)


def _seconds(value: timedelta) -> float:
    return value.total_seconds()


def _settings_from_configuration(config: Configuration) -> ZooKeeperClientSettings:
    """The typed ``high-availability.zookeeper.*`` options (deprecated keys and Flink's value forms included)."""
    quorum = config.get(options.HA_ZOOKEEPER_QUORUM)
    authorization: dict[str, str] | None = config.get(options.HA_ZOOKEEPER_CLIENT_AUTHORIZATION)
    kwargs: dict[str, Any] = {
        "quorum": quorum or "",
        "root": config.get(options.HA_ZOOKEEPER_ROOT),
        "cluster_id": config.get(options.HA_CLUSTER_ID),
        "execution_plans_path": config.get(options.HA_ZOOKEEPER_EXECUTION_PLANS_PATH),
        "session_timeout": _seconds(config.get(options.HA_ZOOKEEPER_SESSION_TIMEOUT)),
        "connection_timeout": _seconds(config.get(options.HA_ZOOKEEPER_CONNECTION_TIMEOUT)),
        "retry_wait": _seconds(config.get(options.HA_ZOOKEEPER_RETRY_WAIT)),
        "max_retry_wait": _seconds(config.get(options.HA_ZOOKEEPER_MAX_RETRY_WAIT)),
        "max_retry_attempts": config.get(options.HA_ZOOKEEPER_MAX_RETRY_ATTEMPTS),
        "acl": config.get(options.HA_ZOOKEEPER_CLIENT_ACL).strip().lower(),
        "authorization": authorization or {},
        "tolerate_suspended_connections": config.get(options.HA_ZOOKEEPER_TOLERATE_SUSPENDED_CONNECTIONS),
    }
    percent = config.get(options.HA_ZOOKEEPER_SIMULATED_SESSION_EXPIRATION_PERCENT)
    if percent is not None:
        kwargs["simulated_session_expiration_percent"] = percent
    close_wait = config.get(options.HA_ZOOKEEPER_MAX_CLOSE_WAIT)
    if close_wait is not None:
        kwargs["max_close_wait"] = _seconds(close_wait)
    if (
        kwargs["acl"] == "creator"
        and config.get(options.ZOOKEEPER_SASL_DISABLE)
        and not kwargs["authorization"]
    ):
        # Flink: 'creator' needs an authenticated identity; without SASL only digest credentials give one.
        raise ConfigurationError(
            "'high-availability.zookeeper.client.acl: creator' cannot be combined with "
            "'zookeeper.sasl.disable: true' unless 'high-availability.zookeeper.client.authorization' is set"
        )
    return ZooKeeperClientSettings(**kwargs)


# --------------------------------------------------------------------------------------------------- the seam


class KazooClientFactory(Protocol):
    """Builds the (not yet started) kazoo client; tests pass their own to observe or redirect the client."""

    def __call__(self, settings: ZooKeeperClientSettings) -> KazooClient: ...


def default_kazoo_client_factory(settings: ZooKeeperClientSettings) -> KazooClient:
    """A kazoo client for ``settings``: quorum, session timeout, retries, ACL and digest authorization."""
    auth = [(scheme, credentials) for scheme, credentials in settings.authorization.items()]
    return KazooClient(
        hosts=settings.quorum,
        timeout=settings.session_timeout,
        connection_retry=settings.connection_retry(),
        command_retry=settings.command_retry(),
        default_acl=CREATOR_ALL_ACL if settings.acl == "creator" else OPEN_ACL_UNSAFE,
        auth_data=auth or None,
        logger=logging.getLogger("standby.backends.zookeeper.kazoo"),
    )


# --------------------------------------------------------------------------------------------------- states


class ConnectionState(enum.Enum):
    """Curator's connection states, as our listeners see them (always on the event loop)."""

    CONNECTED = "CONNECTED"  # first connection, or a new session after LOST
    SUSPENDED = "SUSPENDED"  # connection lost; the session may still be alive
    RECONNECTED = "RECONNECTED"  # connection back after SUSPENDED, same session
    LOST = "LOST"  # session expired (reported by the server, or simulated after the session timeout)


ConnectionListener = Callable[[ConnectionState], None]


class TransactionError(HighAvailabilityError):
    """A multi-op failed; ``index`` is the failing operation and ``error`` the ZooKeeper error of it."""

    def __init__(self, index: int, error: BaseException, operations: Sequence[Op]) -> None:
        op = operations[index] if 0 <= index < len(operations) else None
        super().__init__(f"ZooKeeper transaction failed at operation {index} ({op}): {type(error).__name__}")
        self.index = index
        self.error = error


@dataclass(frozen=True)
class Op:
    """One operation of a multi-op (``kind`` is check, create, set or delete)."""

    kind: str
    path: str
    data: bytes = b""
    version: int = -1
    ephemeral: bool = False

    @staticmethod
    def check(path: str, version: int) -> Op:
        return Op("check", path, version=version)

    @staticmethod
    def create(path: str, data: bytes = b"", *, ephemeral: bool = False) -> Op:
        return Op("create", path, data=data, ephemeral=ephemeral)

    @staticmethod
    def set(path: str, data: bytes, version: int = -1) -> Op:
        return Op("set", path, data=data, version=version)

    @staticmethod
    def delete(path: str, version: int = -1) -> Op:
        return Op("delete", path, version=version)

    def __str__(self) -> str:
        return f"{self.kind} {self.path}" + (f" v{self.version}" if self.version >= 0 else "")


class LatchFencing(abc.ABC):
    """The fencing token of this process' leadership: the path and version of its own latch node.

    The election driver bumps the latch node's version on every grant, so the version names one leadership
    session. Every write made on behalf of a leader is a multi-op that starts with ``check(path, version)``: once
    the process is deposed (its ephemeral latch node is gone with its session) or granted a new session (the
    version moved on), the write fails as a whole with ``FencingError``.
    """

    @abc.abstractmethod
    def fencing_token(self) -> tuple[str, int]:
        """``(latch node path, version)`` while leader; raises ``FencingError`` otherwise."""


class PinnedFencing(LatchFencing):
    """The token of ``source`` taken once: a write and all its retries belong to one leadership session.

    Without pinning, a write retried after a reconnect would take the token of the *next* session of the same
    process and commit in it. ``fencing_token()`` returns the pinned token while ``source`` still presents it and
    raises ``FencingError`` once ``source`` is not leader or leads in another session (a refusal before sending).
    """

    def __init__(self, source: LatchFencing) -> None:
        self._source = source
        self.token = source.fencing_token()  # FencingError when not leader

    def fencing_token(self) -> tuple[str, int]:
        current = self._source.fencing_token()
        if current != self.token:
            path, version = self.token
            raise FencingError(
                f"Write refused: it was started in the leadership session of latch node {path} (version "
                f"{version}), which has ended; this process now leads with {current[0]} (version {current[1]}). "
                "A write of an ended session is not applied; the new session writes again if it needs to."
            )
        return self.token


def pin_fencing(fencing: LatchFencing | None) -> PinnedFencing | None:
    """``fencing`` pinned to its current session (``None`` stays ``None``); ``FencingError`` when not leader."""
    if fencing is None or isinstance(fencing, PinnedFencing):
        return fencing
    return PinnedFencing(fencing)


# --------------------------------------------------------------------------------------------------- the client


class ZooKeeperClient:
    """One kazoo session per JobManager process, used by every part of the ZooKeeper backend.

    All methods must be called on the event loop that ran :meth:`start`. Paths are absolute; use :meth:`path` to
    build paths under the cluster namespace ``<root>/<cluster-id>``.
    """

    def __init__(
        self,
        settings: ZooKeeperClientSettings,
        kazoo_factory: KazooClientFactory | None = None,
        fatal_error_handler: FatalErrorHandler | None = None,
    ) -> None:
        self.settings = settings
        self._kazoo_factory = kazoo_factory or default_kazoo_client_factory
        self._fatal_error_handler = fatal_error_handler
        self._kazoo: KazooClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listeners: list[ConnectionListener] = []
        self._state: ConnectionState | None = None
        self._session_id: int | None = None
        self._connected_event: asyncio.Event | None = None
        self._expiry_timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._retry = settings.command_retry()

    # ---------------------------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Connect within ``connection-timeout``; raises ``ZooKeeperConnectionError`` naming the quorum."""
        if self._kazoo is not None:
            raise RuntimeError("ZooKeeperClient.start() was already called")
        self._loop = asyncio.get_running_loop()
        self._connected_event = asyncio.Event()
        kazoo = self._kazoo_factory(self.settings)
        self._kazoo = kazoo
        kazoo.add_listener(self._on_kazoo_state)
        try:
            await asyncio.to_thread(kazoo.start, self.settings.connection_timeout)
        except Exception as e:
            await asyncio.to_thread(self._stop_kazoo, kazoo)
            self._closed = True
            raise ZooKeeperConnectionError(
                f"Could not connect to ZooKeeper at {self.settings.quorum!r} within "
                f"{self.settings.connection_timeout:g}s ({type(e).__name__}: {e}). Check "
                "'high-availability.zookeeper.quorum' and that the ensemble is up."
            ) from e
        # The listener saw CONNECTED on the kazoo thread; make the state visible before start() returns.
        self._session_id = kazoo.client_id[0] if kazoo.client_id else None
        if self._state is None:
            self._state = ConnectionState.CONNECTED
        self._connected_event.set()

    async def close(self) -> None:
        """Close the session (its ephemeral nodes vanish at once); idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
        kazoo = self._kazoo
        if kazoo is not None:
            kazoo.remove_listener(self._on_kazoo_state)
            close_wait = self.settings.max_close_wait
            stop = asyncio.to_thread(self._stop_kazoo, kazoo)
            if close_wait is None:
                await stop
            else:
                try:
                    await asyncio.wait_for(stop, close_wait)
                except TimeoutError:
                    _log.warning("Closing the ZooKeeper client took longer than %ss; not waiting", close_wait)
        self._listeners.clear()

    @staticmethod
    def _stop_kazoo(kazoo: KazooClient) -> None:
        try:
            kazoo.stop()
        finally:
            kazoo.close()

    @property
    def closed(self) -> bool:
        return self._closed

    # ---------------------------------------------------------------------------------------------- properties

    @property
    def kazoo(self) -> KazooClient:
        """The underlying kazoo client (for tests and tools)."""
        if self._kazoo is None:
            raise RuntimeError("ZooKeeperClient is not started")
        return self._kazoo

    @property
    def namespace(self) -> str:
        return self.settings.namespace

    def path(self, *parts: str) -> str:
        """An absolute path under the namespace."""
        return generate_zookeeper_path(self.namespace, *parts)

    @property
    def session_id(self) -> int | None:
        """The current ZooKeeper session id (``ephemeralOwner`` of our ephemeral nodes)."""
        kazoo = self._kazoo
        if kazoo is None or kazoo.client_id is None:
            return None
        session: int = kazoo.client_id[0]
        return session

    @property
    def connection_state(self) -> ConnectionState | None:
        return self._state

    @property
    def is_connected(self) -> bool:
        return self._state in (ConnectionState.CONNECTED, ConnectionState.RECONNECTED)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("ZooKeeperClient is not started")
        return self._loop

    # ---------------------------------------------------------------------------------------------- states

    def add_connection_listener(self, listener: ConnectionListener) -> None:
        """``listener(state)`` on the event loop for every connection state change."""
        self._listeners.append(listener)

    def remove_connection_listener(self, listener: ConnectionListener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def _on_kazoo_state(self, state: str) -> None:
        # kazoo's connection thread: never block, hand over to the loop.
        session = self._kazoo.client_id[0] if self._kazoo is not None and self._kazoo.client_id else None
        self.call_soon_threadsafe(self._handle_kazoo_state, state, session)

    def call_soon_threadsafe(self, callback: Callable[..., object], *args: Any) -> None:
        """Run ``callback(*args)`` on the loop; dropped (with a debug log) once the loop is closed."""
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:
            _log.debug("Event loop closed; dropping a ZooKeeper event for %s", callback)

    def _handle_kazoo_state(self, state: str, session: int | None) -> None:
        if self._closed:
            return
        if state == KazooState.SUSPENDED:
            self._set_state(ConnectionState.SUSPENDED)
            self._arm_simulated_expiry()
        elif state == KazooState.LOST:
            self._set_state(ConnectionState.LOST)
        elif state == KazooState.CONNECTED:
            if self._expiry_timer is not None:
                self._expiry_timer.cancel()
                self._expiry_timer = None
            previous, old_session = self._state, self._session_id
            self._session_id = session
            if previous in (ConnectionState.SUSPENDED, ConnectionState.LOST) and old_session == session:
                self._set_state(ConnectionState.RECONNECTED)
            else:
                if previous is ConnectionState.SUSPENDED:
                    # New session without kazoo reporting LOST first (e.g. after a simulated expiry was cancelled).
                    self._set_state(ConnectionState.LOST)
                self._set_state(ConnectionState.CONNECTED)

    def _arm_simulated_expiry(self) -> None:
        if self._expiry_timer is not None:
            return
        delay = self.settings.session_timeout * self.settings.simulated_session_expiration_percent / 100.0

        def expire() -> None:
            self._expiry_timer = None
            if self._state is ConnectionState.SUSPENDED and not self._closed:
                _log.warning(
                    "No ZooKeeper connection for %.1fs (the session timeout): treating session 0x%x as LOST",
                    delay,
                    self._session_id or 0,
                )
                self._set_state(ConnectionState.LOST)

        self._expiry_timer = self.loop.call_later(delay, expire)

    def _set_state(self, state: ConnectionState) -> None:
        if state is self._state:
            return
        _log.info("ZooKeeper connection state of %s: %s", self.settings.quorum, state.value)
        self._state = state
        assert self._connected_event is not None
        if state in (ConnectionState.CONNECTED, ConnectionState.RECONNECTED):
            self._connected_event.set()
        else:
            self._connected_event.clear()
        for listener in list(self._listeners):
            try:
                listener(state)
            except Exception as e:
                _log.exception("ZooKeeper connection listener %s failed", listener)
                self._report_fatal(e)

    def _report_fatal(self, error: BaseException) -> None:
        # Flink's UnhandledErrorListener: background errors go to the fatal error handler.
        if self._fatal_error_handler is not None:
            self._fatal_error_handler.on_fatal_error(error)

    # ---------------------------------------------------------------------------------------------- watches

    def threadsafe_watch(self, callback: Callable[[WatchedEvent], None]) -> Callable[[WatchedEvent], None]:
        """A kazoo watch function that runs ``callback(event)`` on the loop.

        Create it once per watcher and reuse it: kazoo keeps watch functions in sets, so the same function
        registered twice on a path fires once.
        """

        def watch(event: WatchedEvent) -> None:
            self.call_soon_threadsafe(callback, event)

        return watch

    # ---------------------------------------------------------------------------------------------- operations

    async def _bridge(self, async_result: Any) -> Any:
        loop = self.loop
        future: asyncio.Future[Any] = loop.create_future()

        def transfer(result: Any) -> None:
            if future.done():
                return
            try:
                future.set_result(result.get_nowait())
            except BaseException as e:
                future.set_exception(e)

        def completed(result: Any) -> None:
            # kazoo's callback thread
            self.call_soon_threadsafe(transfer, result)

        async_result.rawlink(completed)
        return await future

    async def _wait_connected(self) -> None:
        """Wait until connected, at most ``connection-timeout`` (Curator blocks operations the same way).

        kazoo queues requests made while it reconnects and sends them only after the reconnect, so a request is
        submitted only while kazoo itself reports a live connection.
        """
        if self._closed:
            raise ConnectionClosedError("The ZooKeeper client is closed")
        event = self._connected_event
        if event is None:
            raise RuntimeError("ZooKeeperClient is not started")
        loop = self.loop
        deadline = loop.time() + self.settings.connection_timeout
        while True:
            if self._closed:
                raise ConnectionClosedError("The ZooKeeper client is closed")
            if event.is_set() and self.kazoo.connected:
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ConnectionLoss(
                    f"not connected to ZooKeeper at {self.settings.quorum!r} "
                    f"within {self.settings.connection_timeout:g}s"
                )
            if event.is_set():
                # kazoo lost the connection; our SUSPENDED event is on its way to the loop
                await asyncio.sleep(min(0.01, remaining))
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    async def call(self, start: Callable[[KazooClient], Any], *, retry: bool = True) -> Any:
        """Run one kazoo ``*_async`` call (``start(kazoo)`` returns its async result), retrying on connection loss.

        Each attempt waits for a connection (at most ``connection-timeout``) and for its answer (at most the session
        timeout plus the connection timeout; a request queued by kazoo is then abandoned as a time-out).
        """
        attempt = 0
        delay = self._retry.delay
        answer_timeout = self.settings.session_timeout + self.settings.connection_timeout
        while True:
            try:
                await self._wait_connected()
                try:
                    return await asyncio.wait_for(self._bridge(start(self.kazoo)), answer_timeout)
                except TimeoutError:
                    raise OperationTimeoutError(
                        f"no answer from ZooKeeper within {answer_timeout:g}s"
                    ) from None
            except ConnectionClosedError:
                raise
            except _RETRYABLE as e:
                attempt += 1
                if not retry or self._closed or attempt >= self._retry.max_tries:
                    raise
                jitter = random.uniform(1.0 - self._retry.max_jitter, 1.0 + self._retry.max_jitter)
                pause = delay * jitter
                _log.debug(
                    "ZooKeeper operation failed (%s); retry %d in %.2fs", type(e).__name__, attempt, pause
                )
                await asyncio.sleep(pause)
                delay = min(pause * self._retry.backoff, self._retry.max_delay)

    async def get(
        self, path: str, watch: Callable[[WatchedEvent], None] | None = None, *, retry: bool = True
    ) -> tuple[bytes, ZnodeStat]:
        result: tuple[bytes, ZnodeStat] = await self.call(
            lambda k: k.get_async(path, watch=watch), retry=retry
        )
        return result

    async def exists(
        self, path: str, watch: Callable[[WatchedEvent], None] | None = None
    ) -> ZnodeStat | None:
        stat: ZnodeStat | None = await self.call(lambda k: k.exists_async(path, watch=watch))
        return stat

    async def get_children(self, path: str, watch: Callable[[WatchedEvent], None] | None = None) -> list[str]:
        children: list[str] = await self.call(lambda k: k.get_children_async(path, watch=watch))
        return children

    async def get_children_and_stat(
        self, path: str, watch: Callable[[WatchedEvent], None] | None = None
    ) -> tuple[list[str], ZnodeStat]:
        result: tuple[list[str], ZnodeStat] = await self.call(
            lambda k: k.get_children_async(path, watch=watch, include_data=True)
        )
        return result

    async def create(
        self,
        path: str,
        value: bytes = b"",
        *,
        ephemeral: bool = False,
        sequence: bool = False,
        makepath: bool = False,
        retry: bool = True,
    ) -> str:
        created: str = await self.call(
            lambda k: k.create_async(path, value, ephemeral=ephemeral, sequence=sequence, makepath=makepath),
            retry=retry,
        )
        return created

    async def set(self, path: str, value: bytes, version: int = -1, *, retry: bool = True) -> ZnodeStat:
        stat: ZnodeStat = await self.call(lambda k: k.set_async(path, value, version), retry=retry)
        return stat

    async def delete(self, path: str, version: int = -1) -> None:
        await self.call(lambda k: k.delete_async(path, version))

    async def ensure_path(self, path: str) -> None:
        """Create ``path`` and its parents as empty persistent nodes if missing."""
        if await self.exists(path) is not None:
            return
        parent = path.rsplit("/", 1)[0]
        if parent:
            await self.ensure_path(parent)
        with contextlib.suppress(NodeExistsError):
            await self.create(path)

    async def commit(self, operations: Sequence[Op]) -> list[Any]:
        """One multi-op; raises ``TransactionError`` naming the failing operation (nothing was applied)."""
        return await self._commit(lambda: operations)

    async def fenced_commit(self, fencing: LatchFencing | None, operations: Sequence[Op]) -> list[Any]:
        """A multi-op prefixed with ``check(latch node, version)``: applied only in this leadership session.

        The token is pinned when the call starts (see :class:`PinnedFencing`): every retry checks the same latch
        node version, so the write commits in the session it was started in or not at all. Raises
        ``FencingError`` if the process is not leader, leads in a later session by the time of a retry, or its
        latch node is gone or has another version when the transaction is applied. Without ``fencing`` the
        operations are committed as they are (Flink's unfenced writes). Other failures raise
        ``TransactionError`` with the index in ``operations``.
        """
        pinned = pin_fencing(fencing)
        if pinned is None:
            return await self.commit(operations)

        def build() -> Sequence[Op]:
            path, version = pinned.fencing_token()  # FencingError when no longer leader in this session
            return [Op.check(path, version), *operations]

        try:
            results = await self._commit(build)
        except TransactionError as e:
            if e.index == 0:
                path, version = pinned.token
                raise FencingError(
                    f"Write refused: the leader latch node {path} of this process is gone or no longer at version "
                    f"{version} ({type(e.error).__name__}), so it is no longer the leader in the session of this "
                    f"write. Operations: {', '.join(map(str, operations))}. The current leader owns this data now."
                ) from e.error
            raise TransactionError(e.index - 1, e.error, operations) from e.error
        return results[1:]

    async def _commit(self, build: Callable[[], Sequence[Op]]) -> list[Any]:
        operations: list[Sequence[Op]] = []

        def start(kazoo: KazooClient) -> Any:
            ops = build()
            operations[:] = [ops]
            transaction = kazoo.transaction()
            for op in ops:
                if op.kind == "check":
                    transaction.check(op.path, op.version)
                elif op.kind == "create":
                    transaction.create(op.path, op.data, ephemeral=op.ephemeral)
                elif op.kind == "set":
                    transaction.set_data(op.path, op.data, op.version)
                elif op.kind == "delete":
                    transaction.delete(op.path, op.version)
                else:
                    raise ValueError(f"unknown transaction operation {op.kind!r}")
            return transaction.commit_async()

        results: list[Any] = await self.call(start)
        ops = operations[0]
        for index, result in enumerate(results):
            if isinstance(result, Exception) and not isinstance(
                result, RolledBackError | RuntimeInconsistency
            ):
                raise TransactionError(index, result, ops)
        if any(isinstance(r, Exception) for r in results):
            raise TransactionError(len(ops), RuntimeInconsistency(), ops)
        return results

    # ---------------------------------------------------------------------------------------------- trees

    async def list_tree(self, path: str) -> list[str]:
        """``path`` and all nodes below it, children before parents (empty if ``path`` does not exist)."""
        try:
            children = await self.get_children(path)
        except NoNodeError:
            return []
        nodes: list[str] = []
        for child in children:
            nodes.extend(await self.list_tree(f"{path.rstrip('/')}/{child}"))
        nodes.append(path)
        return nodes

    async def delete_tree(self, path: str, fencing: LatchFencing | None = None) -> None:
        """Delete ``path`` and everything below it; idempotent, robust against concurrent changes.

        With ``fencing`` each batch of deletes is a fenced multi-op (children first, so a partial delete leaves
        a consistent tree), all batches pinned to the session of the first one.
        """
        pinned: PinnedFencing | None = None
        for _ in range(_TREE_DELETE_ATTEMPTS):
            nodes = await self.list_tree(path)
            if not nodes:
                return
            try:
                for start in range(0, len(nodes), _MAX_OPS_PER_TRANSACTION):
                    batch = [Op.delete(n) for n in nodes[start : start + _MAX_OPS_PER_TRANSACTION]]
                    if pinned is None:
                        pinned = pin_fencing(fencing)
                    await self.fenced_commit(pinned, batch)
                return
            except TransactionError as e:
                if not isinstance(e.error, NoNodeError | NotEmptyError):
                    raise
                # A node appeared or vanished meanwhile (CURATOR-430): list again.
        raise HighAvailabilityError(
            f"Could not delete {path}: it kept changing during {_TREE_DELETE_ATTEMPTS} attempts; retry the cleanup"
        )


# --------------------------------------------------------------------------------------------------- watchers


class NodeWatcher:
    """Reports the data of one node (``None`` when absent) on start, on every change and after every reconnect.

    A ZooKeeper watch fires once; this re-reads and re-arms after each event. kazoo drops its watches when the
    connection is lost, so a reconnect triggers a fresh read as well. Callbacks run on the event loop.
    """

    def __init__(
        self,
        client: ZooKeeperClient,
        path: str,
        callback: Callable[[bytes | None, ZnodeStat | None], None],
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self._client = client
        self.path = path
        self._callback = callback
        self._on_error = on_error
        self._watch = client.threadsafe_watch(self._on_event)
        self._refresher = _Refresher(self._refresh, f"NodeWatcher({path})", self._failed)
        self._closed = False

    async def start(self) -> None:
        """Start watching; the first report happens before this returns (errors propagate)."""
        self._client.add_connection_listener(self._on_state)
        await self._refresher.run_now()

    def start_soon(self) -> None:
        """Start watching from synchronous code; the first report follows in the watcher's own task."""
        self._client.add_connection_listener(self._on_state)
        self._refresher.trigger()

    def stop_soon(self) -> None:
        """Stop reporting at once (from synchronous code); ``close()`` later waits for the task to end."""
        self._closed = True
        self._client.remove_connection_listener(self._on_state)
        self._refresher.cancel()

    async def close(self) -> None:
        # The server-side watch stays until it fires once more; the closed flag makes that a no-op.
        self._closed = True
        self._client.remove_connection_listener(self._on_state)
        await self._refresher.close()

    def _on_event(self, event: WatchedEvent) -> None:
        if self._closed or event.type == EventType.NONE:
            return  # NONE: connection events; the reconnect triggers a refresh
        self._refresher.trigger()

    def _on_state(self, state: ConnectionState) -> None:
        if state in (ConnectionState.CONNECTED, ConnectionState.RECONNECTED) and not self._closed:
            self._refresher.trigger()

    def _failed(self, error: BaseException) -> None:
        if self._on_error is not None and not self._closed:
            self._on_error(error)

    async def _refresh(self) -> None:
        if self._closed:
            return
        for _ in range(10):  # the node may appear/vanish between the two reads
            try:
                data, stat = await self._client.get(self.path, watch=self._watch)
            except NoNodeError:
                exists = await self._client.exists(self.path, watch=self._watch)
                if exists is not None:
                    continue
                data, stat = None, None
            if not self._closed:
                self._callback(data, stat)
            return


class ChildrenWatcher:
    """Reports the children of one node (empty when absent) on start, on every change and after reconnects."""

    def __init__(
        self,
        client: ZooKeeperClient,
        path: str,
        callback: Callable[[list[str]], None],
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self._client = client
        self.path = path
        self._callback = callback
        self._on_error = on_error
        self._watch = client.threadsafe_watch(self._on_event)
        self._refresher = _Refresher(self._refresh, f"ChildrenWatcher({path})", self._failed)
        self._closed = False

    async def start(self) -> None:
        """Start watching; the first report happens before this returns (errors propagate)."""
        self._client.add_connection_listener(self._on_state)
        await self._refresher.run_now()

    def start_soon(self) -> None:
        """Start watching from synchronous code; the first report follows in the watcher's own task."""
        self._client.add_connection_listener(self._on_state)
        self._refresher.trigger()

    def stop_soon(self) -> None:
        """Stop reporting at once (from synchronous code); ``close()`` later waits for the task to end."""
        self._closed = True
        self._client.remove_connection_listener(self._on_state)
        self._refresher.cancel()

    async def close(self) -> None:
        self._closed = True
        self._client.remove_connection_listener(self._on_state)
        await self._refresher.close()

    def _on_event(self, event: WatchedEvent) -> None:
        if self._closed or event.type == EventType.NONE:
            return
        self._refresher.trigger()

    def _on_state(self, state: ConnectionState) -> None:
        if state in (ConnectionState.CONNECTED, ConnectionState.RECONNECTED) and not self._closed:
            self._refresher.trigger()

    def _failed(self, error: BaseException) -> None:
        if self._on_error is not None and not self._closed:
            self._on_error(error)

    async def _refresh(self) -> None:
        if self._closed:
            return
        for _ in range(10):
            try:
                children = await self._client.get_children(self.path, watch=self._watch)
            except NoNodeError:
                # Watch the node's creation (an exists watch) and report no children.
                if await self._client.exists(self.path, watch=self._watch) is not None:
                    continue
                children = []
            if not self._closed:
                self._callback(sorted(children))
            return


class _Refresher:
    """Runs ``action`` in one owned task; triggers while it runs coalesce into one more run."""

    def __init__(
        self,
        action: Callable[[], Awaitable[None]],
        name: str,
        on_error: Callable[[BaseException], None],
    ) -> None:
        self._action = action
        self._name = name
        self._on_error = on_error
        self._task: asyncio.Task[None] | None = None
        self._dirty = False
        self._closed = False

    async def run_now(self) -> None:
        """Run once now (errors propagate), e.g. the initial read of ``start``."""
        await self._action()

    def trigger(self) -> None:
        if self._closed:
            return
        self._dirty = True
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self._name)

    async def _run(self) -> None:
        while self._dirty and not self._closed:
            self._dirty = False
            try:
                await self._action()
            except asyncio.CancelledError:
                raise
            except _RETRYABLE as e:
                # Still disconnected after the retries: the next reconnect triggers another run.
                _log.debug("%s: refresh postponed until reconnect (%s)", self._name, type(e).__name__)
            except ConnectionClosedError:
                return
            except Exception as e:
                _log.warning("%s: refresh failed: %s", self._name, e)
                self._on_error(e)

    def cancel(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()

    async def close(self) -> None:
        self._closed = True
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
