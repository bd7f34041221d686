"""Leader retrieval driver on the cluster ConfigMap (Flink's ``KubernetesLeaderRetrievalDriver``, §3.4).

Watches ``<cluster-id>-cluster-config-map`` by name (through the process's shared watcher) and extracts the
leader of one component from ``org.apache.flink.k8s.leader.<component>``: ``on_added`` notifies only a non-empty
leader, ``on_modified`` always notifies, ``on_deleted`` is ignored, watch errors go to the fatal error handler.
"""

from __future__ import annotations

import logging

from standby.ha import (
    FatalErrorHandler,
    LeaderInformation,
    LeaderRetrievalDriver,
    LeaderRetrievalDriverFactory,
    LeaderRetrievalError,
    LeaderRetrievalEventHandler,
)

from ._client import KubernetesConfigMap
from ._configmap_watcher import ConfigMapEventHandler, ConfigMapSubscription, SharedConfigMapWatcher
from ._utils import leader_key, parse_leader_information

_log = logging.getLogger(__name__)


class KubernetesLeaderRetrievalDriver(LeaderRetrievalDriver, ConfigMapEventHandler):
    """Flink's ``KubernetesLeaderRetrievalDriver`` for one component."""

    def __init__(
        self,
        watcher: SharedConfigMapWatcher,
        component_id: str,
        handler: LeaderRetrievalEventHandler,
        fatal_error_handler: FatalErrorHandler,
    ) -> None:
        self._watcher = watcher
        self._key = leader_key(component_id)
        self._handler = handler
        self._fatal_error_handler = fatal_error_handler
        self._running = True
        self._subscription: ConfigMapSubscription | None = None

    def start(self) -> None:
        self._subscription = self._watcher.subscribe(self)

    def extract(self, config_map: KubernetesConfigMap) -> LeaderInformation:
        return parse_leader_information(config_map.data.get(self._key))

    def on_added(self, config_map: KubernetesConfigMap) -> None:
        if not self._running:
            return
        info = self.extract(config_map)
        if not info.is_empty():
            self._handler.notify_leader_address(info)

    def on_modified(self, config_map: KubernetesConfigMap) -> None:
        if self._running:
            self._handler.notify_leader_address(self.extract(config_map))

    def on_deleted(self, config_map: KubernetesConfigMap) -> None:
        # Flink ignores it: the next leader re-creates the ConfigMap and publishes itself.
        return None

    def on_error(self, error: BaseException) -> None:
        if self._running:
            wrapped = LeaderRetrievalError(
                f"Error while watching the ConfigMap {self._watcher.name}: {error}"
            )
            wrapped.__cause__ = error
            self._fatal_error_handler.on_fatal_error(wrapped)

    async def close(self) -> None:
        self._running = False
        if self._subscription is not None:
            self._subscription.close()


class KubernetesLeaderRetrievalDriverFactory(LeaderRetrievalDriverFactory):
    """Flink's ``KubernetesLeaderRetrievalDriverFactory`` for one component id."""

    def __init__(self, watcher: SharedConfigMapWatcher, component_id: str) -> None:
        self._watcher = watcher
        self._component_id = component_id

    async def create(
        self, handler: LeaderRetrievalEventHandler, fatal_error_handler: FatalErrorHandler
    ) -> LeaderRetrievalDriver:
        driver = KubernetesLeaderRetrievalDriver(
            self._watcher, self._component_id, handler, fatal_error_handler
        )
        driver.start()
        return driver
