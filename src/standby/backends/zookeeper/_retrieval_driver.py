"""ZooKeeper leader retrieval driver: watches one component's ``connection_info`` node (reference §2.4).

Port of Flink's ``ZooKeeperLeaderRetrievalDriver``: every change of the node is read and reported; a suspended
connection clears the leader only under ``ON_SUSPENDED_CONNECTION`` (the default,
``tolerate-suspended-connections: false``), a lost session always clears it, and after a reconnect the node is
read again (the retrieval service drops repeats).
"""

from __future__ import annotations

import enum
import logging

from kazoo.protocol.states import ZnodeStat

from standby.ha import (
    CorruptHaDataError,
    FatalErrorHandler,
    LeaderInformation,
    LeaderRetrievalDriver,
    LeaderRetrievalDriverFactory,
    LeaderRetrievalError,
    LeaderRetrievalEventHandler,
)

from ._client import ConnectionState, NodeWatcher, ZooKeeperClient
from ._election_driver import CONNECTION_INFO_NODE
from ._leader_codec import decode_leader_information

_log = logging.getLogger(__name__)

__all__ = [
    "LeaderInformationClearancePolicy",
    "ZooKeeperLeaderRetrievalDriver",
    "ZooKeeperLeaderRetrievalDriverFactory",
]


class LeaderInformationClearancePolicy(enum.Enum):
    """When a retriever forgets the leader because of connection trouble (Flink's enum of the same name)."""

    ON_SUSPENDED_CONNECTION = "ON_SUSPENDED_CONNECTION"
    ON_LOST_CONNECTION = "ON_LOST_CONNECTION"

    @staticmethod
    def for_tolerate_suspended_connections(tolerate: bool) -> LeaderInformationClearancePolicy:
        """Flink's ``ZooKeeperUtils.createLeaderRetrievalDriverFactory`` choice."""
        return (
            LeaderInformationClearancePolicy.ON_LOST_CONNECTION
            if tolerate
            else LeaderInformationClearancePolicy.ON_SUSPENDED_CONNECTION
        )


class ZooKeeperLeaderRetrievalDriver(LeaderRetrievalDriver):
    """Reports the leader stored in ``<component path>/connection_info`` to a retrieval event handler."""

    def __init__(
        self,
        client: ZooKeeperClient,
        component_path: str,
        handler: LeaderRetrievalEventHandler,
        fatal_error_handler: FatalErrorHandler,
        policy: LeaderInformationClearancePolicy,
    ) -> None:
        self._client = client
        self.connection_info_path = f"{component_path.rstrip('/')}/{CONNECTION_INFO_NODE}"
        self._handler = handler
        self._fatal_error_handler = fatal_error_handler
        self._policy = policy
        self._watcher = NodeWatcher(client, self.connection_info_path, self._on_node, self._on_error)
        self._notified = False
        self._closed = False

    async def start(self) -> None:
        self._client.add_connection_listener(self._on_connection_state)
        await self._watcher.start()

    async def close(self) -> None:
        # Flink (FLINK-33053) also removes the server-side watch; kazoo has no removeWatches call, so the watch
        # lives until the node next changes (one notification, ignored) or the session ends.
        if self._closed:
            return
        self._closed = True
        self._client.remove_connection_listener(self._on_connection_state)
        await self._watcher.close()

    def _notify(self, info: LeaderInformation) -> None:
        if self._closed:
            return
        if info.is_empty() and not self._notified:
            return  # Flink reports nothing while the node never existed
        self._notified = True
        self._handler.notify_leader_address(info)

    def _on_node(self, data: bytes | None, _stat: ZnodeStat | None) -> None:
        try:
            info = decode_leader_information(data, self.connection_info_path)
        except CorruptHaDataError as e:
            error = LeaderRetrievalError(
                f"Could not handle node changed event of {self.connection_info_path}: {e}"
            )
            error.__cause__ = e
            self._fatal_error_handler.on_fatal_error(error)
            return
        self._notify(info)

    def _on_error(self, error: BaseException) -> None:
        if not self._closed:
            self._fatal_error_handler.on_fatal_error(error)

    def _on_connection_state(self, state: ConnectionState) -> None:
        if state is ConnectionState.SUSPENDED:
            if self._policy is LeaderInformationClearancePolicy.ON_SUSPENDED_CONNECTION:
                self._notify(LeaderInformation.empty())
        elif state is ConnectionState.LOST:
            self._notify(LeaderInformation.empty())
        # CONNECTED / RECONNECTED: the watcher reads the node again and reports it

    def __repr__(self) -> str:
        return f"ZooKeeperLeaderRetrievalDriver{{connectionInformationPath='{self.connection_info_path}'}}"


class ZooKeeperLeaderRetrievalDriverFactory(LeaderRetrievalDriverFactory):
    """Creates retrieval drivers for one component path (``<namespace>/leader/<component>``)."""

    def __init__(
        self,
        client: ZooKeeperClient,
        component_path: str,
        policy: LeaderInformationClearancePolicy | None = None,
    ) -> None:
        self._client = client
        self.component_path = component_path
        self.policy = policy or LeaderInformationClearancePolicy.for_tolerate_suspended_connections(
            client.settings.tolerate_suspended_connections
        )

    async def create(
        self, handler: LeaderRetrievalEventHandler, fatal_error_handler: FatalErrorHandler
    ) -> ZooKeeperLeaderRetrievalDriver:
        driver = ZooKeeperLeaderRetrievalDriver(
            self._client, self.component_path, handler, fatal_error_handler, self.policy
        )
        try:
            await driver.start()
        except BaseException:
            await driver.close()
            raise
        return driver
