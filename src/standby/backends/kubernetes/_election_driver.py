"""Leader election driver on the cluster ConfigMap (Flink's ``KubernetesLeaderElectionDriver``, §3.3).

One driver per process (FLIP-285), created lazily by ``DefaultLeaderElectionService``. It runs a
``KubernetesLeaderElector`` round on ``<cluster-id>-cluster-config-map``: acquiring grants leadership with a fresh
session id, losing revokes it and starts a fresh round (re-join the election).

* ``has_leadership()`` is local: the elector's state, which turns false at the renew deadline (before the lease can
  expire for the followers, since the renew deadline is shorter than the lease) and as soon as the watch shows
  another holder. Flink's driver GETs the ConfigMap instead; the answer is the same within the deadline and costs
  no round trip.
* Leader information is the data key ``org.apache.flink.k8s.leader.<component>`` = ``"<session-uuid>,<address>"``,
  written by compare-and-swap only while the lock annotation names this process in its current term.
* The shared watch of the cluster ConfigMap reports external changes of the leader information
  (``on_all_leader_information_change``, only while the ConfigMap says we lead), reports an externally deleted
  ConfigMap and watch errors to ``on_error``, and feeds the elector (faster failover: a standby tries to acquire as
  soon as it sees the lock released).
"""

from __future__ import annotations

import logging
import uuid

from standby.ha import (
    FencingError,
    LeaderElectionDriver,
    LeaderElectionDriverFactory,
    LeaderElectionDriverListener,
    LeaderElectionError,
    LeaderInformation,
    LeaderInformationRegister,
)

from ._client import KubernetesClient, KubernetesConfigMap, RetryPolicy
from ._configmap_watcher import ConfigMapEventHandler, ConfigMapSubscription, SharedConfigMapWatcher
from ._fencing import FencedConfigMapWriter, LeaderFence
from ._leader_elector import (
    Clock,
    KubernetesLeaderElectionConfiguration,
    KubernetesLeaderElector,
    LeaderCallbackHandler,
    LeadershipState,
    holds_lock,
)
from ._utils import (
    encode_leader_information,
    is_leader_key,
    leader_key,
    leader_name_of_key,
    parse_leader_information,
)

_log = logging.getLogger(__name__)


def extract_leader_information(config_map: KubernetesConfigMap) -> LeaderInformationRegister:
    """Every ``org.apache.flink.k8s.leader.*`` key of the ConfigMap (unparsable values count as empty)."""
    return LeaderInformationRegister(
        {
            leader_name_of_key(key): parse_leader_information(value)
            for key, value in config_map.data.items()
            if is_leader_key(key)
        }
    )


class KubernetesLeaderElectionDriver(LeaderElectionDriver, LeaderCallbackHandler, ConfigMapEventHandler):
    """Flink's ``KubernetesLeaderElectionDriver``."""

    def __init__(
        self,
        client: KubernetesClient,
        configuration: KubernetesLeaderElectionConfiguration,
        state: LeadershipState,
        watcher: SharedConfigMapWatcher,
        listener: LeaderElectionDriverListener,
        retry: RetryPolicy,
        *,
        clock: Clock | None = None,
        cluster_data_deleted: bool = False,
    ) -> None:
        self._configuration = configuration
        self._state = state
        self._watcher = watcher
        self._listener = listener
        self._running = False
        self._subscription: ConfigMapSubscription | None = None
        self._ignore_deletion = cluster_data_deleted
        self._writer = FencedConfigMapWriter(
            client,
            configuration.config_map_name,
            retry,
            LeaderFence(configuration.lock_identity, state.current_term),
        )
        self._elector = KubernetesLeaderElector(
            client, configuration, state, self, clock=clock, may_create=lambda: not self._ignore_deletion
        )

    @property
    def elector(self) -> KubernetesLeaderElector:
        return self._elector

    @property
    def config_map_name(self) -> str:
        return self._configuration.config_map_name

    def start(self) -> None:
        self._running = True
        self._subscription = self._watcher.subscribe(self)
        self._elector.run()

    def ignore_deletion(self) -> None:
        """The services are deleting the cluster's HA data: a DELETED ConfigMap is expected, not an error, and the
        elector must not create the ConfigMap again."""
        self._ignore_deletion = True

    # ------------------------------------------------------------------ LeaderElectionDriver

    def has_leadership(self) -> bool:
        return self._running and self._state.is_leading()

    async def publish_leader_information(self, component_id: str, info: LeaderInformation) -> None:
        key = leader_key(component_id)

        def change(current: KubernetesConfigMap) -> dict[str, str] | None:
            data = dict(current.data)
            if info.is_empty():
                if key not in data:
                    return None
                del data[key]
            else:
                value = encode_leader_information(info)
                if data.get(key) == value:
                    return None
                data[key] = value
            return data

        try:
            await self._writer.update(change)
        except FencingError as e:
            # Flink: the update function declines silently when the lock is not ours.
            _log.debug("Not publishing leader information of %s: %s", component_id, e)
        except Exception as e:
            self._listener.on_error(
                LeaderElectionError(
                    f"Could not write the leader information of {component_id} to ConfigMap "
                    f"{self.config_map_name}: {e}"
                )
            )

    async def delete_leader_information(self, component_id: str) -> None:
        await self.publish_leader_information(component_id, LeaderInformation.empty())

    async def close(self) -> None:
        if not self._running:
            return
        self._running = False
        if self._subscription is not None:
            self._subscription.close()
        await self._elector.stop(release=True)

    # ------------------------------------------------------------------ LeaderCallbackHandler

    def is_leader(self) -> None:
        if self._running:
            self._listener.on_grant_leadership(uuid.uuid4())

    def not_leader(self) -> None:
        if self._running:
            self._listener.on_revoke_leadership()
            # re-join the election with a fresh round (FLINK-34007)
            self._elector.run()

    # ------------------------------------------------------------------ ConfigMapEventHandler

    def on_added(self, config_map: KubernetesConfigMap) -> None:
        if self._running:
            self._elector.observe(config_map)

    def on_modified(self, config_map: KubernetesConfigMap) -> None:
        if not self._running:
            return
        self._elector.observe(config_map)
        if self._state.is_leading() and holds_lock(config_map, self._configuration.lock_identity):
            self._listener.on_all_leader_information_change(extract_leader_information(config_map))

    def on_deleted(self, config_map: KubernetesConfigMap) -> None:
        if self._running and not self._ignore_deletion:
            self._listener.on_error(
                LeaderElectionError(
                    f"ConfigMap {self.config_map_name} has been deleted externally. This indicates that somebody "
                    "has interfered with the HA data of the cluster; restart the JobManagers to recover."
                )
            )

    def on_error(self, error: BaseException) -> None:
        if self._running:
            wrapped = LeaderElectionError(
                f"Error while watching the ConfigMap {self.config_map_name}: {error}"
            )
            wrapped.__cause__ = error
            self._listener.on_error(wrapped)


class KubernetesLeaderElectionDriverFactory(LeaderElectionDriverFactory):
    """Creates the process's driver; every driver shares the process's lock identity and leadership state."""

    def __init__(
        self,
        client: KubernetesClient,
        configuration: KubernetesLeaderElectionConfiguration,
        state: LeadershipState,
        watcher: SharedConfigMapWatcher,
        retry: RetryPolicy,
        *,
        clock: Clock | None = None,
    ) -> None:
        self._client = client
        self._configuration = configuration
        self._state = state
        self._watcher = watcher
        self._retry = retry
        self._clock = clock
        self._cluster_data_deleted = False
        self._drivers: list[KubernetesLeaderElectionDriver] = []

    async def create(self, listener: LeaderElectionDriverListener) -> LeaderElectionDriver:
        driver = KubernetesLeaderElectionDriver(
            self._client,
            self._configuration,
            self._state,
            self._watcher,
            listener,
            self._retry,
            clock=self._clock,
            cluster_data_deleted=self._cluster_data_deleted,
        )
        self._drivers = [d for d in self._drivers if d._running]
        self._drivers.append(driver)
        driver.start()
        return driver

    def cluster_data_deleted(self) -> None:
        """Called by the services before they delete the cluster ConfigMap (``cleanup_all_data``)."""
        self._cluster_data_deleted = True
        for driver in self._drivers:
            driver.ignore_deletion()

    @property
    def current_driver(self) -> KubernetesLeaderElectionDriver | None:
        running = [d for d in self._drivers if d._running]
        return running[-1] if running else None
