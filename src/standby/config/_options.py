"""The registry of every standby configuration option, with Flink's keys, defaults and deprecated keys.

Keys and defaults mirror Flink 2.3 (``HighAvailabilityOptions``, ``KubernetesHighAvailabilityOptions``,
``JobResultStoreOptions``, ``CleanupOptions`` ...); options marked "standby" in their description are our own.
Add new options here and to ``OPTION_SECTIONS``; ``docs/configuration.md`` is generated from this module.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Final

from ._errors import ConfigurationError
from ._option import ConfigOption
from ._parsing import parse_port_range

__all__ = [
    "ALL_OPTIONS",
    "CHECKPOINTING_INTERVAL",
    "CHECKPOINTING_TIMEOUT",
    "CHECKPOINTS_DIRECTORY",
    "CHECKPOINTS_NUM_RETAINED",
    "CLEANUP_STRATEGY_EXPONENTIAL_DELAY_ATTEMPTS",
    "CLEANUP_STRATEGY_EXPONENTIAL_DELAY_INITIAL_BACKOFF",
    "CLEANUP_STRATEGY_EXPONENTIAL_DELAY_MAX_BACKOFF",
    "CLEANUP_STRATEGY_FIXED_DELAY_ATTEMPTS",
    "CLEANUP_STRATEGY_FIXED_DELAY_DELAY",
    "CLEANUP_STRATEGY_TYPE",
    "HA_CLUSTER_ID",
    "HA_ETCD_CONNECTION_TIMEOUT",
    "HA_ETCD_ENDPOINTS",
    "HA_ETCD_KEEP_ALIVE_INTERVAL",
    "HA_ETCD_LEASE_TTL",
    "HA_ETCD_PASSWORD",
    "HA_ETCD_ROOT",
    "HA_ETCD_TLS_CA_FILE",
    "HA_ETCD_TLS_CERT_FILE",
    "HA_ETCD_TLS_KEY_FILE",
    "HA_ETCD_USERNAME",
    "HA_FILESYSTEM_INOTIFY",
    "HA_FILESYSTEM_POLL_INTERVAL",
    "HA_JOB_MANAGER_PORT_RANGE",
    "HA_KUBERNETES_LEASE_DURATION",
    "HA_KUBERNETES_RENEW_DEADLINE",
    "HA_KUBERNETES_RETRY_PERIOD",
    "HA_STORAGE_DIR",
    "HA_TYPE",
    "HA_ZOOKEEPER_APPLICATIONS_PATH",
    "HA_ZOOKEEPER_CLIENT_ACL",
    "HA_ZOOKEEPER_CLIENT_AUTHORIZATION",
    "HA_ZOOKEEPER_CONNECTION_TIMEOUT",
    "HA_ZOOKEEPER_ENSEMBLE_TRACKER",
    "HA_ZOOKEEPER_EXECUTION_PLANS_PATH",
    "HA_ZOOKEEPER_MAX_CLOSE_WAIT",
    "HA_ZOOKEEPER_MAX_RETRY_ATTEMPTS",
    "HA_ZOOKEEPER_MAX_RETRY_WAIT",
    "HA_ZOOKEEPER_QUORUM",
    "HA_ZOOKEEPER_RETRY_WAIT",
    "HA_ZOOKEEPER_ROOT",
    "HA_ZOOKEEPER_SESSION_TIMEOUT",
    "HA_ZOOKEEPER_SIMULATED_SESSION_EXPIRATION_PERCENT",
    "HA_ZOOKEEPER_TOLERATE_SUSPENDED_CONNECTIONS",
    "HEARTBEAT_INTERVAL",
    "HEARTBEAT_RPC_FAILURE_THRESHOLD",
    "HEARTBEAT_TIMEOUT",
    "JOB_MANAGER_BIND_HOST",
    "JOB_MANAGER_RPC_ADDRESS",
    "JOB_MANAGER_RPC_PORT",
    "JOB_RESULT_STORE_DELETE_ON_COMMIT",
    "JOB_RESULT_STORE_STORAGE_PATH",
    "KUBERNETES_CLUSTER_ID",
    "KUBERNETES_CONFIG_FILE",
    "KUBERNETES_CONTEXT",
    "KUBERNETES_NAMESPACE",
    "KUBERNETES_TRANSACTIONAL_OPERATION_INITIAL_RETRY_DELAY",
    "KUBERNETES_TRANSACTIONAL_OPERATION_MAX_RETRIES",
    "KUBERNETES_TRANSACTIONAL_OPERATION_MAX_RETRY_DELAY",
    "OPTION_SECTIONS",
    "PARALLELISM_DEFAULT",
    "RESTART_STRATEGY_EXPONENTIAL_DELAY_ATTEMPTS",
    "RESTART_STRATEGY_EXPONENTIAL_DELAY_BACKOFF_MULTIPLIER",
    "RESTART_STRATEGY_EXPONENTIAL_DELAY_INITIAL_BACKOFF",
    "RESTART_STRATEGY_EXPONENTIAL_DELAY_JITTER_FACTOR",
    "RESTART_STRATEGY_EXPONENTIAL_DELAY_MAX_BACKOFF",
    "RESTART_STRATEGY_EXPONENTIAL_DELAY_RESET_BACKOFF_THRESHOLD",
    "RESTART_STRATEGY_FIXED_DELAY_ATTEMPTS",
    "RESTART_STRATEGY_FIXED_DELAY_DELAY",
    "RESTART_STRATEGY_TYPE",
    "REST_ADDRESS",
    "REST_BIND_ADDRESS",
    "REST_BIND_PORT",
    "REST_PORT",
    "REST_SERVER_MAX_CONTENT_LENGTH",
    "RPC_ASK_TIMEOUT",
    "SECURITY_AUTH_TOKEN",
    "SECURITY_AUTH_TOKEN_FILE",
    "SLOT_REQUEST_TIMEOUT",
    "TASK_MANAGER_BIND_HOST",
    "TASK_MANAGER_HOST",
    "TASK_MANAGER_NUM_TASK_SLOTS",
    "TASK_MANAGER_RPC_PORT",
    "TASK_MANAGER_SLOT_TIMEOUT",
    "ZOOKEEPER_SASL_DISABLE",
    "find_option",
]

#: Java's Integer.MAX_VALUE, Flink's "retry forever" default for cleanup attempts.
_INT_MAX: Final = 2_147_483_647


# ------------------------------------------------------------------------------------------------------------------
# Validators: return None if the (converted) value is fine, else what is expected.


def _port(value: int) -> str | None:
    return None if 0 <= value <= 65535 else "expected a port between 0 and 65535"


def _port_range(value: str) -> str | None:
    try:
        parse_port_range(value)
    except ConfigurationError:
        return (
            "expected a port such as '6123', a range such as '50100-50200' or a comma-separated list of both"
        )
    return None


def _at_least(minimum: int) -> Callable[[int], str | None]:
    def check(value: int) -> str | None:
        return None if value >= minimum else f"expected an integer >= {minimum}"

    return check


def _positive_duration(value: timedelta) -> str | None:
    return None if value > timedelta(0) else "expected a positive duration such as '5 s'"


def _non_negative_duration(value: timedelta) -> str | None:
    return None if value >= timedelta(0) else "expected a duration >= 0 such as '5 s'"


def _percent(value: int) -> str | None:
    return None if 0 <= value <= 100 else "expected a percentage between 0 and 100"


def _rpc_failure_threshold(value: int) -> str | None:
    return None if value >= 1 or value == -1 else "expected an integer >= 1, or -1 to disable the mechanism"


def _at_least_one_second(value: timedelta) -> str | None:
    # etcd lease TTLs are whole seconds; anything shorter cannot be granted.
    return None if value >= timedelta(seconds=1) else "expected a duration of at least '1 s'"


_K8S_CLUSTER_ID_RE: Final = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def _k8s_cluster_id(value: str) -> str | None:
    # Flink's KubernetesUtils check: it names Kubernetes objects (DNS-1035 label, at most 45 characters so that
    # the derived ConfigMap names stay within limits).
    if len(value) <= 45 and _K8S_CLUSTER_ID_RE.match(value):
        return None
    return "expected at most 45 characters: lower-case letters, digits and '-', starting with a letter"


def _non_empty_items(value: list[str]) -> str | None:
    return None if all(item.strip() for item in value) else "expected a list of non-empty 'host:port' entries"


# ------------------------------------------------------------------------------------------------------------------
# High availability (HighAvailabilityOptions)

HA_TYPE: Final = ConfigOption(
    key="high-availability.type",
    type=str,
    default="NONE",
    deprecated_keys=("recovery.mode", "high-availability"),
    description=(
        "The high-availability mode. 'NONE' (or 'standalone') disables HA; 'embedded' elects in-process (tests). "
        "Built-in backends: 'zookeeper', 'kubernetes', 'etcd' (standby) and 'filesystem' (standby, single "
        "host). Anything else names a factory "
        "as 'package.module:FactoryClass' (Flink: the class name of a HighAvailabilityServicesFactory). "
        "Case-insensitive."
    ),
)

HA_CLUSTER_ID: Final = ConfigOption(
    key="high-availability.cluster-id",
    type=str,
    default="/default",
    deprecated_keys=("high-availability.zookeeper.path.namespace", "recovery.zookeeper.path.namespace"),
    description=(
        "The ID of the cluster; it separates the HA data of clusters that share a ZooKeeper/etcd root or a "
        "storage directory. Set it to a unique value per cluster."
    ),
)

HA_STORAGE_DIR: Final = ConfigOption(
    key="high-availability.storageDir",
    type=str,
    deprecated_keys=("high-availability.zookeeper.storageDir", "recovery.zookeeper.storageDir"),
    description=(
        "File system path (URI, any fsspec scheme) where HA payloads are stored (execution plans, checkpoint "
        "metadata, blobs); the coordination store only holds pointers to them. Required when HA is enabled."
    ),
)

HA_JOB_MANAGER_PORT_RANGE: Final = ConfigOption(
    key="high-availability.jobmanager.port",
    type=str,
    default="0",
    deprecated_keys=("recovery.jobmanager.port",),
    validator=_port_range,
    description=(
        "The port (range) of the JobManager's RPC endpoint in HA setups, used instead of 'jobmanager.rpc.port'. "
        "'0' picks a free port; TaskManagers find it through leader retrieval, so a random port or a range "
        "such as '50100-50200' works."
    ),
)

# ------------------------------------------------------------------------------------------------------------------
# ZooKeeper

HA_ZOOKEEPER_QUORUM: Final = ConfigOption(
    key="high-availability.zookeeper.quorum",
    type=str,
    deprecated_keys=("recovery.zookeeper.quorum",),
    description="The ZooKeeper connection string, e.g. 'host1:2181,host2:2181,host3:2181'. Required for ZooKeeper HA.",
)

HA_ZOOKEEPER_ROOT: Final = ConfigOption(
    key="high-availability.zookeeper.path.root",
    type=str,
    default="/flink",
    deprecated_keys=("recovery.zookeeper.path.root",),
    description="The root ZNode under which all clusters store their entries ('<root>/<cluster-id>/...').",
)

HA_ZOOKEEPER_EXECUTION_PLANS_PATH: Final = ConfigOption(
    key="high-availability.zookeeper.path.execution-plans",
    type=str,
    default="/execution-plans",
    deprecated_keys=("recovery.zookeeper.path.jobgraphs", "high-availability.zookeeper.path.jobgraphs"),
    description=(
        "ZNode (relative to '<root>/<cluster-id>') holding the pointers to submitted execution plans. "
        "Flink 1.x called it '/jobgraphs'."
    ),
)

HA_ZOOKEEPER_APPLICATIONS_PATH: Final = ConfigOption(
    key="high-availability.zookeeper.path.applications",
    type=str,
    default="/applications",
    description="ZNode (relative to '<root>/<cluster-id>') holding the pointers to submitted applications (Flink 2.3).",
)

HA_ZOOKEEPER_SESSION_TIMEOUT: Final = ConfigOption(
    key="high-availability.zookeeper.client.session-timeout",
    type=timedelta,
    default=timedelta(seconds=60),
    deprecated_keys=("recovery.zookeeper.client.session-timeout",),
    validator=_positive_duration,
    description=(
        "The requested ZooKeeper session timeout (the server caps it at its maxSessionTimeout). After a crash, "
        "the leader's ephemeral nodes vanish only when the session expires, so this bounds failover time."
    ),
)

HA_ZOOKEEPER_CONNECTION_TIMEOUT: Final = ConfigOption(
    key="high-availability.zookeeper.client.connection-timeout",
    type=timedelta,
    default=timedelta(seconds=15),
    deprecated_keys=("recovery.zookeeper.client.connection-timeout",),
    validator=_positive_duration,
    description="How long to wait for a connection to ZooKeeper to be established.",
)

HA_ZOOKEEPER_RETRY_WAIT: Final = ConfigOption(
    key="high-availability.zookeeper.client.retry-wait",
    type=timedelta,
    default=timedelta(seconds=5),
    deprecated_keys=("recovery.zookeeper.client.retry-wait",),
    validator=_non_negative_duration,
    description="Base pause between retries of a failed ZooKeeper operation (bounded exponential backoff).",
)

HA_ZOOKEEPER_MAX_RETRY_WAIT: Final = ConfigOption(
    key="high-availability.zookeeper.client.max-retry-wait",
    type=timedelta,
    default=timedelta(seconds=60),
    validator=_non_negative_duration,
    description="Upper bound of the exponential backoff between ZooKeeper retries.",
)

HA_ZOOKEEPER_MAX_RETRY_ATTEMPTS: Final = ConfigOption(
    key="high-availability.zookeeper.client.max-retry-attempts",
    type=int,
    default=3,
    deprecated_keys=("recovery.zookeeper.client.max-retry-attempts",),
    validator=_at_least(0),
    description="How many times a failed ZooKeeper operation is retried before the client gives up.",
)

HA_ZOOKEEPER_CLIENT_ACL: Final = ConfigOption(
    key="high-availability.zookeeper.client.acl",
    type=str,
    default="open",
    choices=("open", "creator"),
    description=(
        "ACL of the created ZNodes: 'open' (world-accessible) or 'creator' (only the authenticated creator; "
        "requires SASL or 'high-availability.zookeeper.client.authorization', so it cannot be combined with "
        "'zookeeper.sasl.disable: true')."
    ),
)

HA_ZOOKEEPER_TOLERATE_SUSPENDED_CONNECTIONS: Final = ConfigOption(
    key="high-availability.zookeeper.client.tolerate-suspended-connections",
    type=bool,
    default=False,
    description=(
        "If true, a suspended ZooKeeper connection does not revoke leadership; only a lost (expired) session "
        "does (FLINK-10052). More resilient to short network blips, at the price of a window in which an old "
        "leader may still believe it leads."
    ),
)

HA_ZOOKEEPER_ENSEMBLE_TRACKER: Final = ConfigOption(
    key="high-availability.zookeeper.client.ensemble-tracker",
    type=bool,
    default=True,
    description=(
        "Whether the client follows ensemble reconfigurations and updates its connection string. Disable it "
        "when ZooKeeper is reached through a load balancer or virtual IPs."
    ),
)

HA_ZOOKEEPER_CLIENT_AUTHORIZATION: Final = ConfigOption(
    key="high-availability.zookeeper.client.authorization",
    type=dict[str, str],
    secret=True,
    description=(
        "Authentication sent to ZooKeeper, as scheme:credentials pairs, e.g. 'digest:user:password' (quote a "
        "value containing ',' ) or a YAML map {digest: 'user:password'}."
    ),
)

HA_ZOOKEEPER_MAX_CLOSE_WAIT: Final = ConfigOption(
    key="high-availability.zookeeper.client.max-close-wait",
    type=timedelta,
    validator=_non_negative_duration,
    default_description="client default",
    description="How long closing the ZooKeeper client waits for its background threads; unset uses the client default.",
)

HA_ZOOKEEPER_SIMULATED_SESSION_EXPIRATION_PERCENT: Final = ConfigOption(
    key="high-availability.zookeeper.client.simulated-session-expiration-percent",
    type=int,
    validator=_percent,
    default_description="client default",
    description=(
        "Percentage of the session timeout after which a disconnected client considers its session expired "
        "even without hearing from the server (Curator's simulated session expiration); unset uses the default."
    ),
)

ZOOKEEPER_SASL_DISABLE: Final = ConfigOption(
    key="zookeeper.sasl.disable",
    type=bool,
    default=False,
    description="Disable SASL authentication towards ZooKeeper.",
)

# ------------------------------------------------------------------------------------------------------------------
# Kubernetes

HA_KUBERNETES_LEASE_DURATION: Final = ConfigOption(
    key="high-availability.kubernetes.leader-election.lease-duration",
    type=timedelta,
    default=timedelta(seconds=15),
    validator=_positive_duration,
    description=(
        "How long a leader lease is valid after its last renewal; a follower may take over once it has not "
        "been renewed for this long. Bounds failover time after a leader crash."
    ),
)

HA_KUBERNETES_RENEW_DEADLINE: Final = ConfigOption(
    key="high-availability.kubernetes.leader-election.renew-deadline",
    type=timedelta,
    default=timedelta(seconds=10),
    validator=_positive_duration,
    description=(
        "How long the leader keeps retrying to renew its lease before it gives up leadership. standby's default "
        "(10 s) is deliberately shorter than the lease duration (15 s), unlike Flink's 15 s: following client-go's "
        "guidance (renewDeadline < leaseDuration), a leader that cannot renew steps down before a follower can "
        "acquire the lease. Keep it below the lease duration."
    ),
)

HA_KUBERNETES_RETRY_PERIOD: Final = ConfigOption(
    key="high-availability.kubernetes.leader-election.retry-period",
    type=timedelta,
    default=timedelta(seconds=5),
    validator=_positive_duration,
    description="Pause between attempts to acquire or renew the leader lease.",
)

KUBERNETES_CLUSTER_ID: Final = ConfigOption(
    key="kubernetes.cluster-id",
    type=str,
    validator=_k8s_cluster_id,
    description=(
        "The cluster's name on Kubernetes; it names the HA ConfigMaps '<cluster-id>-cluster-config-map' and "
        "'<cluster-id>-<job-id>-config-map'. Required for Kubernetes HA."
    ),
)

KUBERNETES_NAMESPACE: Final = ConfigOption(
    key="kubernetes.namespace",
    type=str,
    default="default",
    description="The Kubernetes namespace holding the HA ConfigMaps.",
)

KUBERNETES_CONFIG_FILE: Final = ConfigOption(
    key="kubernetes.config.file",
    type=str,
    default_description="in-cluster config, else ~/.kube/config",
    description="Path of the kubeconfig file. Unset: the in-cluster service account, else the default kubeconfig.",
)

KUBERNETES_CONTEXT: Final = ConfigOption(
    key="kubernetes.context",
    type=str,
    default_description="current context",
    description="The kubeconfig context to use; unset uses the current context.",
)

KUBERNETES_TRANSACTIONAL_OPERATION_MAX_RETRIES: Final = ConfigOption(
    key="kubernetes.transactional-operation.max-retries",
    type=int,
    default=15,
    validator=_at_least(0),
    description=(
        "How often a ConfigMap read-check-update (compare-and-swap on resourceVersion) is retried after a "
        "conflict before it fails."
    ),
)

KUBERNETES_TRANSACTIONAL_OPERATION_INITIAL_RETRY_DELAY: Final = ConfigOption(
    key="kubernetes.transactional-operation.initial-retry-delay",
    type=timedelta,
    default=timedelta(milliseconds=50),
    validator=_non_negative_duration,
    description="First backoff delay between retries of a transactional ConfigMap operation.",
)

KUBERNETES_TRANSACTIONAL_OPERATION_MAX_RETRY_DELAY: Final = ConfigOption(
    key="kubernetes.transactional-operation.max-retry-delay",
    type=timedelta,
    default=timedelta(minutes=1),
    validator=_non_negative_duration,
    description="Upper bound of the backoff delay between retries of a transactional ConfigMap operation.",
)

# ------------------------------------------------------------------------------------------------------------------
# etcd (standby)

HA_ETCD_ENDPOINTS: Final = ConfigOption(
    key="high-availability.etcd.endpoints",
    type=list[str],
    validator=_non_empty_items,
    description="standby: the etcd endpoints as 'host:port' entries, e.g. '127.0.0.1:2379' or a YAML list. When unset, 127.0.0.1:2379.",
)

HA_ETCD_ROOT: Final = ConfigOption(
    key="high-availability.etcd.root",
    type=str,
    default="/standby",
    description="standby: key prefix under which all clusters store their entries ('<root>/<cluster-id>/...').",
)

HA_ETCD_LEASE_TTL: Final = ConfigOption(
    key="high-availability.etcd.lease-ttl",
    type=timedelta,
    default=timedelta(seconds=10),
    validator=_at_least_one_second,
    description=(
        "standby: TTL of the etcd lease that carries leadership and ephemeral leader information; a crashed "
        "leader is replaced after at most this long. etcd grants whole seconds."
    ),
)

HA_ETCD_KEEP_ALIVE_INTERVAL: Final = ConfigOption(
    key="high-availability.etcd.keep-alive-interval",
    type=timedelta,
    validator=_positive_duration,
    default_description="lease-ttl / 3",
    description="standby: how often the lease is refreshed. Unset means a third of 'high-availability.etcd.lease-ttl'.",
)

HA_ETCD_CONNECTION_TIMEOUT: Final = ConfigOption(
    key="high-availability.etcd.connection-timeout",
    type=timedelta,
    default=timedelta(seconds=5),
    validator=_positive_duration,
    description="standby: timeout of connecting to etcd and of each etcd request.",
)

HA_ETCD_USERNAME: Final = ConfigOption(
    key="high-availability.etcd.username",
    type=str,
    description="standby: user name for etcd authentication; unset disables authentication.",
)

HA_ETCD_PASSWORD: Final = ConfigOption(
    key="high-availability.etcd.password",
    type=str,
    secret=True,
    description="standby: password for etcd authentication (never logged).",
)

HA_ETCD_TLS_CA_FILE: Final = ConfigOption(
    key="high-availability.etcd.tls.ca-file",
    type=str,
    description="standby: PEM file of the CA that signed the etcd server certificates; setting it enables TLS.",
)

HA_ETCD_TLS_CERT_FILE: Final = ConfigOption(
    key="high-availability.etcd.tls.cert-file",
    type=str,
    description="standby: PEM client certificate for mutual TLS with etcd (with 'high-availability.etcd.tls.key-file').",
)

HA_ETCD_TLS_KEY_FILE: Final = ConfigOption(
    key="high-availability.etcd.tls.key-file",
    type=str,
    description="standby: PEM private key of the client certificate for mutual TLS with etcd.",
)

# ------------------------------------------------------------------------------------------------------------------
# File system backend (standby)

HA_FILESYSTEM_POLL_INTERVAL: Final = ConfigOption(
    key="high-availability.filesystem.poll-interval",
    type=timedelta,
    default=timedelta(milliseconds=100),
    validator=_positive_duration,
    description=(
        "standby: how often the single-host file-system backend polls for changes when inotify is unavailable."
    ),
)

HA_FILESYSTEM_INOTIFY: Final = ConfigOption(
    key="high-availability.filesystem.inotify",
    type=bool,
    default=True,
    description=(
        "standby: whether the single-host file-system backend watches its files with inotify (Linux); "
        "when false it only polls every 'high-availability.filesystem.poll-interval'."
    ),
)

# ------------------------------------------------------------------------------------------------------------------
# Job result store (JobResultStoreOptions)

JOB_RESULT_STORE_STORAGE_PATH: Final = ConfigOption(
    key="job-result-store.storage-path",
    type=str,
    default_description="{high-availability.storageDir}/job-result-store/{high-availability.cluster-id}",
    description=(
        "Where job results are persisted ('<job-id>_DIRTY.json' until cleanup finished, then '<job-id>.json'). "
        "Must be on storage that survives JobManager failover."
    ),
)

JOB_RESULT_STORE_DELETE_ON_COMMIT: Final = ConfigOption(
    key="job-result-store.delete-on-commit",
    type=bool,
    default=True,
    description=(
        "Delete a job's result once its cleanup has finished. Keeping results (false) guarantees that a "
        "finished job is never re-run after failover, but they must then be removed by hand. Deprecated in Flink 2.3."
    ),
)

# ------------------------------------------------------------------------------------------------------------------
# Cluster: JobManager, REST, TaskManager

JOB_MANAGER_RPC_ADDRESS: Final = ConfigOption(
    key="jobmanager.rpc.address",
    type=str,
    default="localhost",
    description="Address of the JobManager RPC endpoint when HA is off (with HA, it is found by leader retrieval).",
)

JOB_MANAGER_RPC_PORT: Final = ConfigOption(
    key="jobmanager.rpc.port",
    type=int,
    default=6123,
    validator=_port,
    description="Port of the JobManager RPC endpoint when HA is off (with HA see 'high-availability.jobmanager.port').",
)

JOB_MANAGER_BIND_HOST: Final = ConfigOption(
    key="jobmanager.bind-host",
    type=str,
    default="127.0.0.1",
    description=(
        "Local address the JobManager's RPC server binds to. standby binds to loopback unless told otherwise "
        "(Flink binds to all interfaces); set '0.0.0.0' to serve other hosts."
    ),
)

REST_ADDRESS: Final = ConfigOption(
    key="rest.address",
    type=str,
    default="localhost",
    description="Address clients use to reach the REST endpoint (published as its leader address).",
)

REST_PORT: Final = ConfigOption(
    key="rest.port",
    type=int,
    default=8081,
    validator=_port,
    description="Port clients use to reach the REST endpoint; also the bind port if 'rest.bind-port' is unset.",
)

REST_BIND_ADDRESS: Final = ConfigOption(
    key="rest.bind-address",
    type=str,
    default="127.0.0.1",
    description="Local address the REST server binds to. standby binds to loopback by default; set '0.0.0.0' to serve other hosts.",
)

REST_BIND_PORT: Final = ConfigOption(
    key="rest.bind-port",
    type=str,
    validator=_port_range,
    default_description="rest.port",
    description="Port (or range such as '50100-50200', or a list) the REST server binds to; unset uses 'rest.port'.",
)

REST_SERVER_MAX_CONTENT_LENGTH: Final = ConfigOption(
    key="rest.server.max-content-length",
    type=int,
    default=104_857_600,
    validator=_at_least(1),
    description="Largest request body, in bytes, the REST server accepts.",
)

TASK_MANAGER_NUM_TASK_SLOTS: Final = ConfigOption(
    key="taskmanager.numberOfTaskSlots",
    type=int,
    default=1,
    validator=_at_least(1),
    description="Number of parallel tasks a TaskManager can run.",
)

TASK_MANAGER_HOST: Final = ConfigOption(
    key="taskmanager.host",
    type=str,
    default_description="local host name",
    description="Address under which the TaskManager is reachable by the JobManager.",
)

PARALLELISM_DEFAULT: Final = ConfigOption(
    key="parallelism.default",
    type=int,
    default=1,
    validator=_at_least(1),
    description="Parallelism of jobs that do not set one.",
)

TASK_MANAGER_BIND_HOST: Final = ConfigOption(
    key="taskmanager.bind-host",
    type=str,
    default="127.0.0.1",
    description=(
        "Local address the TaskManager's RPC server binds to. standby binds to loopback unless told otherwise "
        "(Flink binds to '0.0.0.0'); set '0.0.0.0' to serve other hosts."
    ),
)

TASK_MANAGER_RPC_PORT: Final = ConfigOption(
    key="taskmanager.rpc.port",
    type=str,
    default="0",
    validator=_port_range,
    description=(
        "Port of the TaskManager's RPC server: '0' picks a free port (the TaskManager registers its actual "
        "address with the ResourceManager). A range such as '50100-50200' or a list is accepted; standby binds "
        "to its first port."
    ),
)

TASK_MANAGER_SLOT_TIMEOUT: Final = ConfigOption(
    key="taskmanager.slot.timeout",
    type=timedelta,
    default=timedelta(seconds=10),
    validator=_positive_duration,
    description=(
        "A slot allocated to a job that receives no task within this time is freed again (an outdated slot "
        "request). As in Flink, when unset it falls back to 'pekko.ask.timeout' if that is set."
    ),
)

RPC_ASK_TIMEOUT: Final = ConfigOption(
    key="pekko.ask.timeout",
    type=timedelta,
    default=timedelta(seconds=10),
    deprecated_keys=("akka.ask.timeout",),
    validator=_positive_duration,
    description=(
        "Timeout of RPC calls between JobManager, TaskManagers and clients (Flink: the Pekko ask timeout; "
        "standby's RPC is HTTP). Increase it if calls time out under load."
    ),
)

SLOT_REQUEST_TIMEOUT: Final = ConfigOption(
    key="slot.request.timeout",
    type=timedelta,
    default=timedelta(minutes=5),
    validator=_positive_duration,
    description=(
        "How long a JobMaster waits for the slots of a job (from the ResourceManager) before the attempt "
        "fails and the restart strategy decides. A bare number is milliseconds, as in Flink 1.x."
    ),
)

# ------------------------------------------------------------------------------------------------------------------
# Heartbeats (HeartbeatManagerOptions)

HEARTBEAT_INTERVAL: Final = ConfigOption(
    key="heartbeat.interval",
    type=timedelta,
    default=timedelta(seconds=10),
    validator=_positive_duration,
    description="Interval between heartbeat requests from a sender to its targets.",
)

HEARTBEAT_TIMEOUT: Final = ConfigOption(
    key="heartbeat.timeout",
    type=timedelta,
    default=timedelta(seconds=50),
    validator=_positive_duration,
    description="A heartbeat target that has not answered for this long is considered dead.",
)

HEARTBEAT_RPC_FAILURE_THRESHOLD: Final = ConfigOption(
    key="heartbeat.rpc-failure-threshold",
    type=int,
    default=2,
    validator=_rpc_failure_threshold,
    description=(
        "Consecutive failed heartbeat RPCs after which a target is considered unreachable (detects dead "
        "targets faster than the timeout); -1 disables this."
    ),
)

# ------------------------------------------------------------------------------------------------------------------
# Checkpointing (CheckpointingOptions)

CHECKPOINTING_INTERVAL: Final = ConfigOption(
    key="execution.checkpointing.interval",
    type=timedelta,
    validator=_positive_duration,
    default_description="checkpointing off",
    description="Interval between periodic checkpoints; unset disables checkpointing.",
)

CHECKPOINTING_TIMEOUT: Final = ConfigOption(
    key="execution.checkpointing.timeout",
    type=timedelta,
    default=timedelta(minutes=10),
    validator=_positive_duration,
    description="The maximum time that a checkpoint may take before it is discarded (expired).",
)

CHECKPOINTS_NUM_RETAINED: Final = ConfigOption(
    key="execution.checkpointing.num-retained",
    type=int,
    default=1,
    deprecated_keys=("state.checkpoints.num-retained",),
    description=(
        "Number of completed checkpoints kept; older ones are subsumed and discarded. "
        "A value <= 0 falls back to 1 with a warning, as Flink does."
    ),
)

CHECKPOINTS_DIRECTORY: Final = ConfigOption(
    key="execution.checkpointing.dir",
    type=str,
    deprecated_keys=("state.checkpoints.dir", "state.backend.fs.checkpointdir"),
    description=(
        "Directory (URI) for checkpoint data and metadata; must be reachable by every process. Flink 2.x key; "
        "'state.checkpoints.dir' still works."
    ),
)

# ------------------------------------------------------------------------------------------------------------------
# Restart and cleanup strategies (RestartStrategyOptions, CleanupOptions)

RESTART_STRATEGY_TYPE: Final = ConfigOption(
    key="restart-strategy.type",
    type=str,
    choices=("none", "off", "disable", "fixed-delay", "fixeddelay", "exponential-delay", "exponentialdelay"),
    default_description="exponential-delay if checkpointing is enabled, else none (as Flink 1.19+)",
    description=(
        "How failed jobs are restarted: 'none' (also 'off', 'disable'), 'fixed-delay' or 'exponential-delay'."
    ),
)

RESTART_STRATEGY_FIXED_DELAY_ATTEMPTS: Final = ConfigOption(
    key="restart-strategy.fixed-delay.attempts",
    type=int,
    default=1,
    validator=_at_least(0),
    description="Restart attempts of the 'fixed-delay' strategy before the job fails.",
)

RESTART_STRATEGY_FIXED_DELAY_DELAY: Final = ConfigOption(
    key="restart-strategy.fixed-delay.delay",
    type=timedelta,
    default=timedelta(seconds=1),
    validator=_non_negative_duration,
    description="Pause between two restart attempts of the 'fixed-delay' strategy.",
)


def _backoff_multiplier(value: float) -> str | None:
    # Flink's ExponentialDelayRestartBackoffTimeStrategy: the backoff must not shrink.
    return None if value >= 1.0 else "expected a number >= 1.0"


def _jitter_factor(value: float) -> str | None:
    return None if 0.0 <= value <= 1.0 else "expected a number between 0.0 and 1.0"


RESTART_STRATEGY_EXPONENTIAL_DELAY_INITIAL_BACKOFF: Final = ConfigOption(
    key="restart-strategy.exponential-delay.initial-backoff",
    type=timedelta,
    default=timedelta(seconds=1),
    validator=_non_negative_duration,
    description="First pause of the 'exponential-delay' restart strategy.",
)

RESTART_STRATEGY_EXPONENTIAL_DELAY_MAX_BACKOFF: Final = ConfigOption(
    key="restart-strategy.exponential-delay.max-backoff",
    type=timedelta,
    default=timedelta(minutes=1),
    validator=_non_negative_duration,
    description="Longest pause of the 'exponential-delay' restart strategy.",
)

RESTART_STRATEGY_EXPONENTIAL_DELAY_BACKOFF_MULTIPLIER: Final = ConfigOption(
    key="restart-strategy.exponential-delay.backoff-multiplier",
    type=float,
    default=1.5,
    validator=_backoff_multiplier,
    description="Factor by which the pause of the 'exponential-delay' restart strategy grows after each failure.",
)

RESTART_STRATEGY_EXPONENTIAL_DELAY_RESET_BACKOFF_THRESHOLD: Final = ConfigOption(
    key="restart-strategy.exponential-delay.reset-backoff-threshold",
    type=timedelta,
    default=timedelta(hours=1),
    validator=_non_negative_duration,
    description=(
        "After this long without a failure, the 'exponential-delay' restart strategy starts over with the "
        "initial backoff and a fresh count of attempts."
    ),
)

RESTART_STRATEGY_EXPONENTIAL_DELAY_JITTER_FACTOR: Final = ConfigOption(
    key="restart-strategy.exponential-delay.jitter-factor",
    type=float,
    default=0.1,
    validator=_jitter_factor,
    description=(
        "Random share (0.0 to 1.0) added to or subtracted from each pause of the 'exponential-delay' restart "
        "strategy, so that many jobs do not restart in lock step."
    ),
)

RESTART_STRATEGY_EXPONENTIAL_DELAY_ATTEMPTS: Final = ConfigOption(
    key="restart-strategy.exponential-delay.attempts-before-reset-backoff",
    type=int,
    default=_INT_MAX,
    validator=_at_least(1),
    description=(
        "Restarts of the 'exponential-delay' strategy before the job fails; the count starts over when the "
        "backoff is reset (default: practically infinite)."
    ),
)

CLEANUP_STRATEGY_TYPE: Final = ConfigOption(
    key="cleanup-strategy.type",
    type=str,
    default="exponential-delay",
    deprecated_keys=("cleanup-strategy",),
    choices=("none", "off", "disable", "fixed-delay", "fixeddelay", "exponential-delay", "exponentialdelay"),
    description=(
        "How the cleanup of a finished job's HA data is retried: 'exponential-delay', 'fixed-delay' or "
        "'none' (also 'off', 'disable': try once). The job stays marked dirty until cleanup succeeded."
    ),
)

CLEANUP_STRATEGY_EXPONENTIAL_DELAY_INITIAL_BACKOFF: Final = ConfigOption(
    key="cleanup-strategy.exponential-delay.initial-backoff",
    type=timedelta,
    default=timedelta(seconds=1),
    validator=_non_negative_duration,
    description="First pause of the 'exponential-delay' cleanup strategy; it doubles after each failed attempt.",
)

CLEANUP_STRATEGY_EXPONENTIAL_DELAY_MAX_BACKOFF: Final = ConfigOption(
    key="cleanup-strategy.exponential-delay.max-backoff",
    type=timedelta,
    default=timedelta(hours=1),
    validator=_non_negative_duration,
    description="Longest pause of the 'exponential-delay' cleanup strategy.",
)

CLEANUP_STRATEGY_EXPONENTIAL_DELAY_ATTEMPTS: Final = ConfigOption(
    key="cleanup-strategy.exponential-delay.attempts",
    type=int,
    default=_INT_MAX,
    validator=_at_least(0),
    description="Cleanup attempts of the 'exponential-delay' strategy (default: retry practically forever).",
)

CLEANUP_STRATEGY_FIXED_DELAY_DELAY: Final = ConfigOption(
    key="cleanup-strategy.fixed-delay.delay",
    type=timedelta,
    default=timedelta(minutes=1),
    validator=_non_negative_duration,
    description="Pause between cleanup attempts of the 'fixed-delay' strategy.",
)

CLEANUP_STRATEGY_FIXED_DELAY_ATTEMPTS: Final = ConfigOption(
    key="cleanup-strategy.fixed-delay.attempts",
    type=int,
    default=_INT_MAX,
    validator=_at_least(0),
    description="Cleanup attempts of the 'fixed-delay' strategy (default: retry practically forever).",
)

# ------------------------------------------------------------------------------------------------------------------
# Security (standby)

SECURITY_AUTH_TOKEN: Final = ConfigOption(
    key="security.auth.token",
    type=str,
    secret=True,
    description=(
        "standby: shared secret that RPC and REST clients must present; unset disables authentication "
        "(acceptable only on loopback). Prefer 'security.auth.token-file' to keep it out of command lines."
    ),
)

SECURITY_AUTH_TOKEN_FILE: Final = ConfigOption(
    key="security.auth.token-file",
    type=str,
    description="standby: file whose content (stripped) is the shared secret; used if 'security.auth.token' is unset.",
)

# ------------------------------------------------------------------------------------------------------------------
# Registry

#: Options grouped by documentation section, in documentation order.
OPTION_SECTIONS: Final[tuple[tuple[str, tuple[ConfigOption[Any], ...]], ...]] = (
    (
        "High availability",
        (HA_TYPE, HA_CLUSTER_ID, HA_STORAGE_DIR, HA_JOB_MANAGER_PORT_RANGE),
    ),
    (
        "ZooKeeper",
        (
            HA_ZOOKEEPER_QUORUM,
            HA_ZOOKEEPER_ROOT,
            HA_ZOOKEEPER_EXECUTION_PLANS_PATH,
            HA_ZOOKEEPER_APPLICATIONS_PATH,
            HA_ZOOKEEPER_SESSION_TIMEOUT,
            HA_ZOOKEEPER_CONNECTION_TIMEOUT,
            HA_ZOOKEEPER_RETRY_WAIT,
            HA_ZOOKEEPER_MAX_RETRY_WAIT,
            HA_ZOOKEEPER_MAX_RETRY_ATTEMPTS,
            HA_ZOOKEEPER_CLIENT_ACL,
            HA_ZOOKEEPER_TOLERATE_SUSPENDED_CONNECTIONS,
            HA_ZOOKEEPER_ENSEMBLE_TRACKER,
            HA_ZOOKEEPER_CLIENT_AUTHORIZATION,
            HA_ZOOKEEPER_MAX_CLOSE_WAIT,
            HA_ZOOKEEPER_SIMULATED_SESSION_EXPIRATION_PERCENT,
            ZOOKEEPER_SASL_DISABLE,
        ),
    ),
    (
        "Kubernetes",
        (
            HA_KUBERNETES_LEASE_DURATION,
            HA_KUBERNETES_RENEW_DEADLINE,
            HA_KUBERNETES_RETRY_PERIOD,
            KUBERNETES_CLUSTER_ID,
            KUBERNETES_NAMESPACE,
            KUBERNETES_CONFIG_FILE,
            KUBERNETES_CONTEXT,
            KUBERNETES_TRANSACTIONAL_OPERATION_MAX_RETRIES,
            KUBERNETES_TRANSACTIONAL_OPERATION_INITIAL_RETRY_DELAY,
            KUBERNETES_TRANSACTIONAL_OPERATION_MAX_RETRY_DELAY,
        ),
    ),
    (
        "etcd",
        (
            HA_ETCD_ENDPOINTS,
            HA_ETCD_ROOT,
            HA_ETCD_LEASE_TTL,
            HA_ETCD_KEEP_ALIVE_INTERVAL,
            HA_ETCD_CONNECTION_TIMEOUT,
            HA_ETCD_USERNAME,
            HA_ETCD_PASSWORD,
            HA_ETCD_TLS_CA_FILE,
            HA_ETCD_TLS_CERT_FILE,
            HA_ETCD_TLS_KEY_FILE,
        ),
    ),
    ("File system backend", (HA_FILESYSTEM_POLL_INTERVAL, HA_FILESYSTEM_INOTIFY)),
    ("Job result store", (JOB_RESULT_STORE_STORAGE_PATH, JOB_RESULT_STORE_DELETE_ON_COMMIT)),
    (
        "Cluster",
        (
            JOB_MANAGER_RPC_ADDRESS,
            JOB_MANAGER_RPC_PORT,
            JOB_MANAGER_BIND_HOST,
            REST_ADDRESS,
            REST_PORT,
            REST_BIND_ADDRESS,
            REST_BIND_PORT,
            REST_SERVER_MAX_CONTENT_LENGTH,
            TASK_MANAGER_NUM_TASK_SLOTS,
            TASK_MANAGER_HOST,
            TASK_MANAGER_BIND_HOST,
            TASK_MANAGER_RPC_PORT,
            TASK_MANAGER_SLOT_TIMEOUT,
            PARALLELISM_DEFAULT,
            RPC_ASK_TIMEOUT,
            SLOT_REQUEST_TIMEOUT,
        ),
    ),
    ("Heartbeats", (HEARTBEAT_INTERVAL, HEARTBEAT_TIMEOUT, HEARTBEAT_RPC_FAILURE_THRESHOLD)),
    (
        "Checkpointing",
        (CHECKPOINTING_INTERVAL, CHECKPOINTS_NUM_RETAINED, CHECKPOINTS_DIRECTORY, CHECKPOINTING_TIMEOUT),
    ),
    (
        "Restart and cleanup strategies",
        (
            RESTART_STRATEGY_TYPE,
            RESTART_STRATEGY_FIXED_DELAY_ATTEMPTS,
            RESTART_STRATEGY_FIXED_DELAY_DELAY,
            RESTART_STRATEGY_EXPONENTIAL_DELAY_INITIAL_BACKOFF,
            RESTART_STRATEGY_EXPONENTIAL_DELAY_MAX_BACKOFF,
            RESTART_STRATEGY_EXPONENTIAL_DELAY_BACKOFF_MULTIPLIER,
            RESTART_STRATEGY_EXPONENTIAL_DELAY_RESET_BACKOFF_THRESHOLD,
            RESTART_STRATEGY_EXPONENTIAL_DELAY_JITTER_FACTOR,
            RESTART_STRATEGY_EXPONENTIAL_DELAY_ATTEMPTS,
            CLEANUP_STRATEGY_TYPE,
            CLEANUP_STRATEGY_EXPONENTIAL_DELAY_INITIAL_BACKOFF,
            CLEANUP_STRATEGY_EXPONENTIAL_DELAY_MAX_BACKOFF,
            CLEANUP_STRATEGY_EXPONENTIAL_DELAY_ATTEMPTS,
            CLEANUP_STRATEGY_FIXED_DELAY_DELAY,
            CLEANUP_STRATEGY_FIXED_DELAY_ATTEMPTS,
        ),
    ),
    ("Security", (SECURITY_AUTH_TOKEN, SECURITY_AUTH_TOKEN_FILE)),
)

#: Every registered option, in documentation order.
ALL_OPTIONS: Final[tuple[ConfigOption[Any], ...]] = tuple(
    option for _, section in OPTION_SECTIONS for option in section
)

_BY_KEY: Final[dict[str, ConfigOption[Any]]] = {}
for _option in ALL_OPTIONS:
    for _key in _option.all_keys:
        if _key in _BY_KEY:
            raise AssertionError(f"configuration key '{_key}' is registered twice")
        _BY_KEY[_key] = _option
del _option, _key


def find_option(key: str) -> ConfigOption[Any] | None:
    """The registered option with this key or deprecated key, else None."""
    return _BY_KEY.get(key)
