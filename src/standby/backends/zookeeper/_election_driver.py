"""ZooKeeper leader election driver: one latch per process, leader information as ephemeral nodes, fencing.

Port of Flink's ``ZooKeeperLeaderElectionDriver`` (reference §2.3, §2.5) with the leader latch recipe implemented on
kazoo primitives (Curator's ``LeaderLatch``):

* every contender process creates one EPHEMERAL_SEQUENTIAL node ``<leader>/latch/_c_<uuid>-latch-<seq>``; the lowest
  sequence number leads; every other contender watches only its predecessor (no herd effect);
* each leadership period gets a fresh session id (uuid4);
* leader information is written to ``<leader>/<component>/connection_info`` as EPHEMERAL nodes, only by the latch
  holder; a node owned by another ZooKeeper session is deleted first (Flink's
  ``writeLeaderInformationToZooKeeper`` loop);
* the leader watches the leader subtree (without ``latch``) and reports external changes; unreadable data counts
  as empty so that it is rewritten;
* SUSPENDED revokes leadership unless ``tolerate-suspended-connections`` is set; LOST (session expired, or no
  connection for the session timeout) always revokes. After a reconnect the latch is checked again and leadership
  is granted again, with a new session id, if our node is still the lowest;
* ``close()`` deletes the latch node, so the next contender takes over at once.

Beyond Flink: the driver is the fencing token of the process. Every grant first bumps the version of the own latch
node (an empty ``set_data``) and only then tells the contender; the version it returns is the token of that
leadership session. Every write made for the leader is a multi-op that first checks the latch node (path and that
version): a deposed leader's write fails with ``FencingError``, and so does a write of an earlier session of the
same process (revoked on SUSPENDED and granted again after the reconnect, within one ZooKeeper session). ZooKeeper
orders all writes, so a write of session N commits before the bump of session N+1, hence before N+1 is granted, or
not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import Callable
from uuid import UUID

from kazoo.exceptions import (
    BadVersionError,
    ConnectionClosedError,
    ConnectionLoss,
    NodeExistsError,
    NoNodeError,
    OperationTimeoutError,
    SessionExpiredError,
)
from kazoo.protocol.states import EventType, WatchedEvent, ZnodeStat

from standby.ha import (
    CorruptHaDataError,
    FencingError,
    LeaderElectionDriver,
    LeaderElectionDriverFactory,
    LeaderElectionDriverListener,
    LeaderElectionError,
    LeaderInformation,
)

from ._client import (
    ChildrenWatcher,
    ConnectionState,
    LatchFencing,
    NodeWatcher,
    Op,
    PinnedFencing,
    TransactionError,
    ZooKeeperClient,
)
from ._leader_codec import decode_leader_information, encode_leader_information

_log = logging.getLogger(__name__)

__all__ = [
    "CONNECTION_INFO_NODE",
    "LEADER_LATCH_NODE",
    "LEADER_NODE",
    "ZooKeeperLeaderElectionDriver",
    "ZooKeeperLeaderElectionDriverFactory",
    "latch_sequence",
]

LEADER_NODE = "leader"
LEADER_LATCH_NODE = "latch"
CONNECTION_INFO_NODE = "connection_info"

_LATCH_SUFFIX = "-latch-"
_RETRYABLE = (ConnectionLoss, OperationTimeoutError, SessionExpiredError)
# Bounds of the loops below: each iteration reacts to a concurrent change, so a few suffice.
_MAX_LATCH_CHECKS = 50
_MAX_WRITE_ATTEMPTS = 20


def latch_sequence(name: str) -> int | None:
    """The sequence number of a latch node name (``..-latch-0000000007`` → 7), ``None`` for other names."""
    _, sep, digits = name.rpartition(_LATCH_SUFFIX)
    if not sep or not digits.isdigit():
        return None
    return int(digits)


class ZooKeeperLeaderElectionDriver(LeaderElectionDriver, LatchFencing):
    """The leader election driver of one process (create it through the factory)."""

    def __init__(
        self,
        client: ZooKeeperClient,
        leader_path: str,
        listener: LeaderElectionDriverListener,
        *,
        tolerate_suspended_connections: bool = False,
        on_close: Callable[[ZooKeeperLeaderElectionDriver], None] | None = None,
    ) -> None:
        self._client = client
        self._leader_path = leader_path.rstrip("/")
        self._latch_path = f"{self._leader_path}/{LEADER_LATCH_NODE}"
        self._listener = listener
        self._tolerate_suspended = tolerate_suspended_connections
        self._on_close = on_close
        # One protection id per driver (Curator's ProtectedMode): a latch node whose create answer was lost
        # in a connection loss is found again by its name instead of being left behind as an orphan.
        self._prefix = f"_c_{uuid.uuid4()}{_LATCH_SUFFIX}"
        self._node: str | None = None
        # The latch node version set by the bump of the current grant: the fencing token of this session.
        self._node_version = -1
        self._leader = False
        self._session_id: UUID | None = None
        self._running = False
        self._closed = False
        self._wakeup = asyncio.Event()
        self._latch_task: asyncio.Task[None] | None = None
        self._latch_watch = client.threadsafe_watch(self._on_latch_event)
        self._tree: ChildrenWatcher | None = None
        self._components: dict[str, NodeWatcher] = {}
        self._retired: list[NodeWatcher] = []

    # --------------------------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Join the election (the grant, if any, follows asynchronously) and watch the leader subtree."""
        if self._running or self._closed:
            raise RuntimeError(f"{self!r} was already started")
        self._running = True
        self._client.add_connection_listener(self._on_connection_state)
        await self._client.ensure_path(self._latch_path)
        self._tree = ChildrenWatcher(
            self._client, self._leader_path, self._on_components, self._listener.on_error
        )
        await self._tree.start()
        self._latch_task = asyncio.get_running_loop().create_task(
            self._latch_loop(), name=f"zookeeper-leader-latch({self._latch_path})"
        )
        self._wakeup.set()

    async def close(self) -> None:
        """Leave the election: the latch node is deleted, so the next contender takes over at once."""
        if self._closed:
            return
        self._closed = True
        self._running = False
        self._leader = False  # no revoke callback: the service detaches this driver (Curator's SILENT close)
        self._client.remove_connection_listener(self._on_connection_state)
        task, self._latch_task = self._latch_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._tree is not None:
            await self._tree.close()
        for watcher in [*self._components.values(), *self._retired]:
            await watcher.close()
        self._components.clear()
        self._retired.clear()
        node, self._node = self._node, None
        if node is not None and not self._client.closed:
            try:
                await self._client.delete(node)
            except NoNodeError:
                pass
            except Exception as e:
                # The node vanishes with the session anyway; hand-over is then only delayed.
                _log.warning("Could not delete the latch node %s on close: %s", node, e)
        if self._on_close is not None:
            self._on_close(self)

    def __repr__(self) -> str:
        # Flink: ZooKeeperLeaderElectionDriver{leaderLatchPath='/<namespace>/latch'}
        return f"ZooKeeperLeaderElectionDriver{{leaderLatchPath='{self._latch_path}'}}"

    # --------------------------------------------------------------------------------------------- state

    def has_leadership(self) -> bool:
        return self._leader

    @property
    def latch_node(self) -> str | None:
        """The path of this process' latch node (``None`` before it is created or after it vanished)."""
        return self._node

    @property
    def leader_session_id(self) -> UUID | None:
        """The session id of the current leadership period, ``None`` when not leader."""
        return self._session_id if self._leader else None

    def fencing_token(self) -> tuple[str, int]:
        node = self._node
        if not self._leader or node is None:
            raise FencingError(
                f"Write refused: this process is not the leader of {self._latch_path} (latch node {node}). "
                "Only the current leader may write; the write is not applied."
            )
        return node, self._node_version

    # --------------------------------------------------------------------------------------------- latch

    def _on_latch_event(self, event: WatchedEvent) -> None:
        if event.type != EventType.NONE and not self._closed:
            self._wakeup.set()

    def _on_connection_state(self, state: ConnectionState) -> None:
        if self._closed:
            return
        if state is ConnectionState.SUSPENDED:
            # FLINK-10052: with the default policy a suspended connection already ends the leadership.
            if not self._tolerate_suspended:
                self._revoke("connection to ZooKeeper suspended")
        elif state is ConnectionState.LOST:
            self._revoke("ZooKeeper session lost")
        else:
            # CONNECTED (new session) or RECONNECTED: check the latch again; re-grant if still the lowest.
            self._wakeup.set()

    def _grant(self, version: int) -> None:
        self._leader = True
        self._node_version = version
        self._session_id = uuid.uuid4()
        _log.info(
            "Leadership granted to %s (latch node %s, version %d), session %s",
            self,
            self._node,
            version,
            self._session_id,
        )
        self._listener.on_grant_leadership(self._session_id)

    def _revoke(self, reason: str) -> None:
        if not self._leader:
            return
        self._leader = False
        _log.info("Leadership of %s revoked: %s", self, reason)
        self._listener.on_revoke_leadership()

    async def _latch_loop(self) -> None:
        while not self._closed:
            await self._wakeup.wait()
            self._wakeup.clear()
            try:
                await self._check_latch()
            except asyncio.CancelledError:
                raise
            except ConnectionClosedError:
                return
            except _RETRYABLE as e:
                # Disconnected: the reconnect wakes us up again.
                _log.debug("%s: latch check postponed (%s)", self, type(e).__name__)
            except Exception as e:
                _log.exception("%s: leader latch failed", self)
                self._listener.on_error(e)

    async def _check_latch(self) -> None:
        client = self._client
        for _ in range(_MAX_LATCH_CHECKS):
            if self._closed or not client.is_connected:
                return
            try:
                children = await client.get_children(self._latch_path)
            except NoNodeError:
                await client.ensure_path(self._latch_path)
                continue
            latch = sorted((c for c in children if latch_sequence(c) is not None), key=_sequence_key)
            mine = [c for c in latch if c.startswith(self._prefix)]
            node = self._node
            if node is None or node.rsplit("/", 1)[1] not in latch:
                if node is not None:
                    _log.info("%s: latch node %s is gone", self, node)
                    self._node = None
                    self._revoke("latch node is gone")
                if mine:
                    self._node = f"{self._latch_path}/{mine[0]}"
                else:
                    await self._create_latch_node()
                continue
            name = node.rsplit("/", 1)[1]
            for stale in mine:
                if stale != name:
                    # a node of an earlier create whose answer was lost: it would otherwise block the latch
                    with contextlib.suppress(NoNodeError):
                        await client.delete(f"{self._latch_path}/{stale}")
            index = latch.index(name)
            if index == 0:
                # Watch our own node too: if it is deleted (expiry, or by hand), leadership must end.
                stat = await client.exists(node, watch=self._latch_watch)
                if stat is None or stat.ephemeralOwner != client.session_id:
                    self._node = None
                    self._revoke("latch node is gone")
                    continue
                if self._leader:
                    if stat.version == self._node_version:
                        return
                    # Changed by someone else: writes of this session would all fail; start a new session.
                    self._revoke(
                        f"latch node {node} was changed (version {stat.version}, not {self._node_version})"
                    )
                    continue
                if not self._may_grant():
                    return  # the reconnect wakes us up again
                # A new leadership session: move the token on BEFORE telling the contender. A write of an earlier
                # session of this process (e.g. queued by kazoo during a disconnect) then commits before this bump,
                # so before the grant, or fails its version check.
                try:
                    bumped = await client.set(node, b"", version=stat.version, retry=False)
                except (NoNodeError, BadVersionError):
                    continue  # deleted or changed in between: look again
                if not self._may_grant():
                    return  # not granted; after a reconnect the next check bumps again
                self._grant(bumped.version)
                return
            self._revoke("another latch node is lower")
            # An exists-watch also fires when the predecessor's data changes (its own grant bumps it): every event
            # wakes the loop, which looks again and re-arms this watch, so only a deletion changes anything.
            predecessor = f"{self._latch_path}/{latch[index - 1]}"
            if await client.exists(predecessor, watch=self._latch_watch) is None:
                continue  # gone in between: look again
            return
        raise LeaderElectionError(
            f"The leader latch {self._latch_path} kept changing during {_MAX_LATCH_CHECKS} checks; "
            "is another program creating or deleting nodes in it?"
        )

    def _may_grant(self) -> bool:
        # A method, not an inline check: the state changes across the awaits of the latch check.
        return not self._closed and self._client.is_connected

    async def _create_latch_node(self) -> None:
        # No automatic retry: after a connection loss the node may exist; the next check finds it by its prefix.
        created = await self._client.create(
            f"{self._latch_path}/{self._prefix}", ephemeral=True, sequence=True, makepath=True, retry=False
        )
        self._node = created
        _log.debug("%s: created latch node %s", self, created)

    # --------------------------------------------------------------------------------------------- leader info

    def _component_path(self, component_id: str) -> str:
        return f"{self._leader_path}/{component_id}"

    def _connection_info_path(self, component_id: str) -> str:
        return f"{self._leader_path}/{component_id}/{CONNECTION_INFO_NODE}"

    async def publish_leader_information(self, component_id: str, info: LeaderInformation) -> None:
        if not self.has_leadership():
            _log.debug("%s: not leader, not publishing %s for %s", self, info, component_id)
            return
        try:
            await self._write_leader_information(component_id, info)
        except FencingError as e:
            # Deposed between the check and the write: the latch check will revoke.
            _log.info("%s: leader information of %s not written: %s", self, component_id, e)
            self._wakeup.set()
        except Exception as e:
            self._listener.on_error(e)

    async def _write_leader_information(self, component_id: str, info: LeaderInformation) -> None:
        """Flink's ``writeLeaderInformationToZooKeeper`` loop; every write is fenced by the latch node.

        All steps check the token of the session the call started in: a loop that outlives its session fails
        with ``FencingError`` instead of writing in the next one.
        """
        client = self._client
        path = self._connection_info_path(component_id)
        data = encode_leader_information(info)
        fencing = PinnedFencing(self)  # FencingError when not leader
        for _ in range(_MAX_WRITE_ATTEMPTS):
            if not self.has_leadership():
                return
            stat = await client.exists(path)
            try:
                if stat is not None:
                    if stat.ephemeralOwner == client.session_id:
                        await client.fenced_commit(fencing, [Op.set(path, data)])
                        return
                    # Owned by another session (an old leader's, or written by hand): delete and create ours.
                    await client.fenced_commit(fencing, [Op.delete(path)])
                    continue
                await client.ensure_path(self._component_path(component_id))
                await client.fenced_commit(fencing, [Op.create(path, data, ephemeral=True)])
                return
            except TransactionError as e:
                if isinstance(e.error, NoNodeError | NodeExistsError):
                    continue  # changed concurrently: look again
                raise
        raise LeaderElectionError(
            f"Could not write the leader information of {component_id} to {path}: the node kept changing during "
            f"{_MAX_WRITE_ATTEMPTS} attempts"
        )

    async def delete_leader_information(self, component_id: str) -> None:
        try:
            await self._client.delete_tree(self._component_path(component_id), fencing=self)
        except FencingError as e:
            _log.info("%s: leader information of %s not deleted: %s", self, component_id, e)
        except Exception as e:
            self._listener.on_error(e)

    # --------------------------------------------------------------------------------------------- leader watch

    def _on_components(self, children: list[str]) -> None:
        if self._closed:
            return
        current = {c for c in children if c != LEADER_LATCH_NODE}
        for component_id in list(self._components):
            if component_id not in current:
                watcher = self._components.pop(component_id)
                watcher.stop_soon()
                self._retired.append(watcher)
        for component_id in sorted(current - set(self._components)):
            watcher = NodeWatcher(
                self._client,
                self._connection_info_path(component_id),
                functools.partial(self._on_leader_information, component_id),
                self._listener.on_error,
            )
            self._components[component_id] = watcher
            watcher.start_soon()

    def _on_leader_information(self, component_id: str, data: bytes | None, _stat: ZnodeStat | None) -> None:
        # Flink: handled only while running and leading; a removed node reports empty information.
        if self._closed or not self._leader:
            return
        try:
            info = decode_leader_information(data, self._connection_info_path(component_id))
        except CorruptHaDataError as e:
            _log.warning("%s: %s; treating it as empty so that it is rewritten", self, e)
            info = LeaderInformation.empty()
        self._listener.on_leader_information_change(component_id, info)


def _sequence_key(name: str) -> int:
    sequence = latch_sequence(name)
    return sequence if sequence is not None else -1


class ZooKeeperLeaderElectionDriverFactory(LeaderElectionDriverFactory, LatchFencing):
    """Creates the election driver of the process and serves as the fencing token of its stores."""

    def __init__(self, client: ZooKeeperClient, leader_path: str | None = None) -> None:
        self._client = client
        self.leader_path = leader_path or client.path(LEADER_NODE)
        self._driver: ZooKeeperLeaderElectionDriver | None = None

    @property
    def driver(self) -> ZooKeeperLeaderElectionDriver | None:
        """The running driver (``None`` while no contender is registered)."""
        return self._driver

    async def create(self, listener: LeaderElectionDriverListener) -> ZooKeeperLeaderElectionDriver:
        driver = ZooKeeperLeaderElectionDriver(
            self._client,
            self.leader_path,
            listener,
            tolerate_suspended_connections=self._client.settings.tolerate_suspended_connections,
            on_close=self._detach,
        )
        self._driver = driver
        try:
            await driver.start()
        except BaseException:
            await driver.close()
            raise
        return driver

    def _detach(self, driver: ZooKeeperLeaderElectionDriver) -> None:
        if self._driver is driver:
            self._driver = None

    def fencing_token(self) -> tuple[str, int]:
        driver = self._driver
        if driver is None:
            raise FencingError(
                f"Write refused: no leader election runs in this process for {self.leader_path}, so it is not the "
                "leader. Start the leader election and write only after leadership was granted."
            )
        return driver.fencing_token()
