"""Tests of the option registry (keys, defaults, deprecated keys from Flink) and of ConfigOption itself."""

from __future__ import annotations

import dataclasses
import enum
from datetime import timedelta
from typing import Any

import pytest

import standby.config
import standby.config.options
from standby.config import ConfigOption, Configuration, ConfigurationError, MemorySize, options
from standby.config.options import ALL_OPTIONS, HA_TYPE, find_option


def _module_options() -> dict[str, ConfigOption[Any]]:
    return {name: value for name, value in vars(options).items() if isinstance(value, ConfigOption)}


def test_public_api_is_pinned() -> None:
    assert sorted(standby.config.__all__) == sorted(
        [
            "CONFIG_ENV_VAR",
            "CONFIG_FILE_NAME",
            "ConfigOption",
            "Configuration",
            "ConfigurationError",
            "MemorySize",
            "format_duration",
            "format_list",
            "format_map",
            "is_sensitive_key",
            "options",
            "parse_bool",
            "parse_duration",
            "parse_list",
            "parse_map",
            "parse_memory",
            "parse_port_range",
            "render_options_markdown",
            "validate",
        ]
    )
    for name in standby.config.__all__:
        assert hasattr(standby.config, name), name
    assert options is standby.config.options
    assert HA_TYPE is options.HA_TYPE


def test_every_option_constant_is_registered_and_exported() -> None:
    module_options = _module_options()
    assert set(module_options.values()) == set(ALL_OPTIONS)
    assert len(ALL_OPTIONS) == len(set(ALL_OPTIONS))
    assert set(options.__all__) == set(module_options) | {"ALL_OPTIONS", "OPTION_SECTIONS", "find_option"}


def test_keys_are_unique_across_keys_and_deprecated_keys() -> None:
    seen: list[str] = [key for option in ALL_OPTIONS for key in option.all_keys]
    assert len(seen) == len(set(seen))


def test_every_option_is_documented() -> None:
    for option in ALL_OPTIONS:
        assert option.description.strip(), option.key
        assert option.description.rstrip().endswith((".", ")")), option.key


def test_find_option_by_key_and_deprecated_key() -> None:
    assert find_option("high-availability.type") is options.HA_TYPE
    assert find_option("recovery.mode") is options.HA_TYPE
    assert find_option("state.checkpoints.dir") is options.CHECKPOINTS_DIRECTORY
    assert find_option("no.such.key") is None


@pytest.mark.parametrize(
    ("option", "key", "default", "deprecated_keys"),
    [
        (options.HA_TYPE, "high-availability.type", "NONE", ("recovery.mode", "high-availability")),
        (
            options.HA_CLUSTER_ID,
            "high-availability.cluster-id",
            "/default",
            ("high-availability.zookeeper.path.namespace", "recovery.zookeeper.path.namespace"),
        ),
        (
            options.HA_STORAGE_DIR,
            "high-availability.storageDir",
            None,
            ("high-availability.zookeeper.storageDir", "recovery.zookeeper.storageDir"),
        ),
        (
            options.HA_JOB_MANAGER_PORT_RANGE,
            "high-availability.jobmanager.port",
            "0",
            ("recovery.jobmanager.port",),
        ),
        (
            options.HA_ZOOKEEPER_QUORUM,
            "high-availability.zookeeper.quorum",
            None,
            ("recovery.zookeeper.quorum",),
        ),
        (
            options.HA_ZOOKEEPER_ROOT,
            "high-availability.zookeeper.path.root",
            "/flink",
            ("recovery.zookeeper.path.root",),
        ),
        (
            options.HA_ZOOKEEPER_EXECUTION_PLANS_PATH,
            "high-availability.zookeeper.path.execution-plans",
            "/execution-plans",
            ("recovery.zookeeper.path.jobgraphs", "high-availability.zookeeper.path.jobgraphs"),
        ),
        (
            options.HA_ZOOKEEPER_APPLICATIONS_PATH,
            "high-availability.zookeeper.path.applications",
            "/applications",
            (),
        ),
        (
            options.HA_ZOOKEEPER_SESSION_TIMEOUT,
            "high-availability.zookeeper.client.session-timeout",
            timedelta(seconds=60),
            ("recovery.zookeeper.client.session-timeout",),
        ),
        (
            options.HA_ZOOKEEPER_CONNECTION_TIMEOUT,
            "high-availability.zookeeper.client.connection-timeout",
            timedelta(seconds=15),
            ("recovery.zookeeper.client.connection-timeout",),
        ),
        (
            options.HA_ZOOKEEPER_RETRY_WAIT,
            "high-availability.zookeeper.client.retry-wait",
            timedelta(seconds=5),
            ("recovery.zookeeper.client.retry-wait",),
        ),
        (
            options.HA_ZOOKEEPER_MAX_RETRY_WAIT,
            "high-availability.zookeeper.client.max-retry-wait",
            timedelta(seconds=60),
            (),
        ),
        (
            options.HA_ZOOKEEPER_MAX_RETRY_ATTEMPTS,
            "high-availability.zookeeper.client.max-retry-attempts",
            3,
            ("recovery.zookeeper.client.max-retry-attempts",),
        ),
        (options.HA_ZOOKEEPER_CLIENT_ACL, "high-availability.zookeeper.client.acl", "open", ()),
        (
            options.HA_ZOOKEEPER_TOLERATE_SUSPENDED_CONNECTIONS,
            "high-availability.zookeeper.client.tolerate-suspended-connections",
            False,
            (),
        ),
        (
            options.HA_ZOOKEEPER_ENSEMBLE_TRACKER,
            "high-availability.zookeeper.client.ensemble-tracker",
            True,
            (),
        ),
        (
            options.HA_ZOOKEEPER_CLIENT_AUTHORIZATION,
            "high-availability.zookeeper.client.authorization",
            None,
            (),
        ),
        (options.HA_ZOOKEEPER_MAX_CLOSE_WAIT, "high-availability.zookeeper.client.max-close-wait", None, ()),
        (
            options.HA_ZOOKEEPER_SIMULATED_SESSION_EXPIRATION_PERCENT,
            "high-availability.zookeeper.client.simulated-session-expiration-percent",
            None,
            (),
        ),
        (options.ZOOKEEPER_SASL_DISABLE, "zookeeper.sasl.disable", False, ()),
        (options.JOB_RESULT_STORE_STORAGE_PATH, "job-result-store.storage-path", None, ()),
        (options.JOB_RESULT_STORE_DELETE_ON_COMMIT, "job-result-store.delete-on-commit", True, ()),
        (
            options.HA_KUBERNETES_LEASE_DURATION,
            "high-availability.kubernetes.leader-election.lease-duration",
            timedelta(seconds=15),
            (),
        ),
        (
            options.HA_KUBERNETES_RENEW_DEADLINE,
            "high-availability.kubernetes.leader-election.renew-deadline",
            timedelta(seconds=10),
            (),
        ),
        (
            options.HA_KUBERNETES_RETRY_PERIOD,
            "high-availability.kubernetes.leader-election.retry-period",
            timedelta(seconds=5),
            (),
        ),
        (options.KUBERNETES_CLUSTER_ID, "kubernetes.cluster-id", None, ()),
        (options.KUBERNETES_NAMESPACE, "kubernetes.namespace", "default", ()),
        (options.KUBERNETES_CONFIG_FILE, "kubernetes.config.file", None, ()),
        (options.KUBERNETES_CONTEXT, "kubernetes.context", None, ()),
        (
            options.KUBERNETES_TRANSACTIONAL_OPERATION_MAX_RETRIES,
            "kubernetes.transactional-operation.max-retries",
            15,
            (),
        ),
        (
            options.KUBERNETES_TRANSACTIONAL_OPERATION_INITIAL_RETRY_DELAY,
            "kubernetes.transactional-operation.initial-retry-delay",
            timedelta(milliseconds=50),
            (),
        ),
        (
            options.KUBERNETES_TRANSACTIONAL_OPERATION_MAX_RETRY_DELAY,
            "kubernetes.transactional-operation.max-retry-delay",
            timedelta(minutes=1),
            (),
        ),
        (options.HA_ETCD_ENDPOINTS, "high-availability.etcd.endpoints", None, ()),
        (options.HA_ETCD_ROOT, "high-availability.etcd.root", "/standby", ()),
        (options.HA_ETCD_LEASE_TTL, "high-availability.etcd.lease-ttl", timedelta(seconds=10), ()),
        (options.HA_ETCD_KEEP_ALIVE_INTERVAL, "high-availability.etcd.keep-alive-interval", None, ()),
        (
            options.HA_ETCD_CONNECTION_TIMEOUT,
            "high-availability.etcd.connection-timeout",
            timedelta(seconds=5),
            (),
        ),
        (options.HA_ETCD_USERNAME, "high-availability.etcd.username", None, ()),
        (options.HA_ETCD_PASSWORD, "high-availability.etcd.password", None, ()),
        (options.HA_ETCD_TLS_CA_FILE, "high-availability.etcd.tls.ca-file", None, ()),
        (options.HA_ETCD_TLS_CERT_FILE, "high-availability.etcd.tls.cert-file", None, ()),
        (options.HA_ETCD_TLS_KEY_FILE, "high-availability.etcd.tls.key-file", None, ()),
        (
            options.HA_FILESYSTEM_POLL_INTERVAL,
            "high-availability.filesystem.poll-interval",
            timedelta(milliseconds=100),
            (),
        ),
        (options.HA_FILESYSTEM_INOTIFY, "high-availability.filesystem.inotify", True, ()),
        (options.JOB_MANAGER_RPC_ADDRESS, "jobmanager.rpc.address", "localhost", ()),
        (options.JOB_MANAGER_RPC_PORT, "jobmanager.rpc.port", 6123, ()),
        (options.JOB_MANAGER_BIND_HOST, "jobmanager.bind-host", "127.0.0.1", ()),
        (options.REST_ADDRESS, "rest.address", "localhost", ()),
        (options.REST_PORT, "rest.port", 8081, ()),
        (options.REST_BIND_ADDRESS, "rest.bind-address", "127.0.0.1", ()),
        (options.REST_BIND_PORT, "rest.bind-port", None, ()),
        (options.REST_SERVER_MAX_CONTENT_LENGTH, "rest.server.max-content-length", 104857600, ()),
        (options.TASK_MANAGER_NUM_TASK_SLOTS, "taskmanager.numberOfTaskSlots", 1, ()),
        (options.TASK_MANAGER_HOST, "taskmanager.host", None, ()),
        (options.PARALLELISM_DEFAULT, "parallelism.default", 1, ()),
        (options.TASK_MANAGER_BIND_HOST, "taskmanager.bind-host", "127.0.0.1", ()),
        (options.TASK_MANAGER_RPC_PORT, "taskmanager.rpc.port", "0", ()),
        (options.TASK_MANAGER_SLOT_TIMEOUT, "taskmanager.slot.timeout", timedelta(seconds=10), ()),
        (options.RPC_ASK_TIMEOUT, "pekko.ask.timeout", timedelta(seconds=10), ("akka.ask.timeout",)),
        (options.SLOT_REQUEST_TIMEOUT, "slot.request.timeout", timedelta(minutes=5), ()),
        (options.HEARTBEAT_INTERVAL, "heartbeat.interval", timedelta(seconds=10), ()),
        (options.HEARTBEAT_TIMEOUT, "heartbeat.timeout", timedelta(seconds=50), ()),
        (options.HEARTBEAT_RPC_FAILURE_THRESHOLD, "heartbeat.rpc-failure-threshold", 2, ()),
        (options.CHECKPOINTING_INTERVAL, "execution.checkpointing.interval", None, ()),
        (options.CHECKPOINTING_TIMEOUT, "execution.checkpointing.timeout", timedelta(minutes=10), ()),
        (
            options.CHECKPOINTS_NUM_RETAINED,
            "execution.checkpointing.num-retained",
            1,
            ("state.checkpoints.num-retained",),
        ),
        (
            options.CHECKPOINTS_DIRECTORY,
            "execution.checkpointing.dir",
            None,
            ("state.checkpoints.dir", "state.backend.fs.checkpointdir"),
        ),
        (options.RESTART_STRATEGY_TYPE, "restart-strategy.type", None, ()),
        (options.RESTART_STRATEGY_FIXED_DELAY_ATTEMPTS, "restart-strategy.fixed-delay.attempts", 1, ()),
        (
            options.RESTART_STRATEGY_FIXED_DELAY_DELAY,
            "restart-strategy.fixed-delay.delay",
            timedelta(seconds=1),
            (),
        ),
        (
            options.RESTART_STRATEGY_EXPONENTIAL_DELAY_INITIAL_BACKOFF,
            "restart-strategy.exponential-delay.initial-backoff",
            timedelta(seconds=1),
            (),
        ),
        (
            options.RESTART_STRATEGY_EXPONENTIAL_DELAY_MAX_BACKOFF,
            "restart-strategy.exponential-delay.max-backoff",
            timedelta(minutes=1),
            (),
        ),
        (
            options.RESTART_STRATEGY_EXPONENTIAL_DELAY_BACKOFF_MULTIPLIER,
            "restart-strategy.exponential-delay.backoff-multiplier",
            1.5,
            (),
        ),
        (
            options.RESTART_STRATEGY_EXPONENTIAL_DELAY_RESET_BACKOFF_THRESHOLD,
            "restart-strategy.exponential-delay.reset-backoff-threshold",
            timedelta(hours=1),
            (),
        ),
        (
            options.RESTART_STRATEGY_EXPONENTIAL_DELAY_JITTER_FACTOR,
            "restart-strategy.exponential-delay.jitter-factor",
            0.1,
            (),
        ),
        (
            options.RESTART_STRATEGY_EXPONENTIAL_DELAY_ATTEMPTS,
            "restart-strategy.exponential-delay.attempts-before-reset-backoff",
            2147483647,
            (),
        ),
        (options.CLEANUP_STRATEGY_TYPE, "cleanup-strategy.type", "exponential-delay", ("cleanup-strategy",)),
        (
            options.CLEANUP_STRATEGY_EXPONENTIAL_DELAY_INITIAL_BACKOFF,
            "cleanup-strategy.exponential-delay.initial-backoff",
            timedelta(seconds=1),
            (),
        ),
        (
            options.CLEANUP_STRATEGY_EXPONENTIAL_DELAY_MAX_BACKOFF,
            "cleanup-strategy.exponential-delay.max-backoff",
            timedelta(hours=1),
            (),
        ),
        (
            options.CLEANUP_STRATEGY_EXPONENTIAL_DELAY_ATTEMPTS,
            "cleanup-strategy.exponential-delay.attempts",
            2147483647,
            (),
        ),
        (
            options.CLEANUP_STRATEGY_FIXED_DELAY_DELAY,
            "cleanup-strategy.fixed-delay.delay",
            timedelta(minutes=1),
            (),
        ),
        (
            options.CLEANUP_STRATEGY_FIXED_DELAY_ATTEMPTS,
            "cleanup-strategy.fixed-delay.attempts",
            2147483647,
            (),
        ),
        (options.SECURITY_AUTH_TOKEN, "security.auth.token", None, ()),
        (options.SECURITY_AUTH_TOKEN_FILE, "security.auth.token-file", None, ()),
    ],
    ids=lambda value: value.key if isinstance(value, ConfigOption) else "",
)
def test_flink_keys_defaults_and_deprecated_keys(
    option: ConfigOption[Any], key: str, default: object, deprecated_keys: tuple[str, ...]
) -> None:
    assert option.key == key
    assert option.default == default
    assert option.deprecated_keys == deprecated_keys
    assert Configuration().get(option) == default


def test_every_registered_option_is_covered_by_the_defaults_table() -> None:
    marks = getattr(test_flink_keys_defaults_and_deprecated_keys, "pytestmark")  # noqa: B009
    covered = {params[0] for mark in marks if mark.name == "parametrize" for params in mark.args[1]}
    assert covered == set(ALL_OPTIONS)


def test_kubernetes_renew_deadline_is_below_lease_duration() -> None:
    conf = Configuration()
    assert conf.get(options.HA_KUBERNETES_RENEW_DEADLINE) < conf.get(options.HA_KUBERNETES_LEASE_DURATION)
    assert conf.get(options.HA_KUBERNETES_RETRY_PERIOD) < conf.get(options.HA_KUBERNETES_RENEW_DEADLINE)
    assert "renewDeadline < leaseDuration" in options.HA_KUBERNETES_RENEW_DEADLINE.description


def test_secret_options_are_marked() -> None:
    for option in (
        options.SECURITY_AUTH_TOKEN,
        options.HA_ETCD_PASSWORD,
        options.HA_ZOOKEEPER_CLIENT_AUTHORIZATION,
    ):
        assert option.is_sensitive, option.key
    assert not options.HA_TYPE.is_sensitive


# ---------------------------------------------------------------------------------------------------------- ConfigOption


class Mode(enum.Enum):
    A = 1


def test_config_option_is_a_frozen_hashable_dataclass() -> None:
    option = ConfigOption(key="x.list", type=list[str], default=["a"], deprecated_keys=["old.list"])
    assert dataclasses.is_dataclass(option)
    assert option.deprecated_keys == ("old.list",)
    assert option.all_keys == ("x.list", "old.list")
    assert option.has_default
    assert hash(option) == hash(ConfigOption(key="x.list", type=list[str], default=["a"]))
    assert option == ConfigOption(key="x.list", type=list[str], default=["a"], deprecated_keys=("old.list",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        option.key = "y"  # type: ignore[misc]
    renamed = dataclasses.replace(option, key="y.list")
    assert renamed.key == "y.list"
    assert renamed.deprecated_keys == ("old.list",)
    assert not ConfigOption(key="z", type=int).has_default


@pytest.mark.parametrize(
    ("option_type", "name"),
    [
        (str, "String"),
        (int, "Integer"),
        (float, "Double"),
        (bool, "Boolean"),
        (timedelta, "Duration"),
        (MemorySize, "MemorySize"),
        (list[str], "List<String>"),
        (dict[str, str], "Map"),
        (Mode, "Enum (A)"),
    ],
)
def test_supported_types_have_doc_names(option_type: Any, name: str) -> None:
    assert ConfigOption(key="k", type=option_type).type_name == name


@pytest.mark.parametrize("option_type", [bytes, list[int], dict[str, int], tuple[str], object])
def test_unsupported_types_are_rejected(option_type: Any) -> None:
    with pytest.raises(TypeError, match="Unsupported option type"):
        ConfigOption(key="k", type=option_type)


def test_invalid_definitions_are_rejected_at_construction() -> None:
    with pytest.raises(ValueError, match="Invalid default of option 'k': Invalid value 'abc' for 'k'"):
        # mypy cannot catch this one (it infers ConfigOption[object]); construction does.
        ConfigOption(key="k", type=timedelta, default="abc")
    with pytest.raises(ValueError, match="Invalid default of option 'k'"):
        ConfigOption(key="k", type=str, default="maybe", choices=("yes", "no"))
    with pytest.raises(ValueError, match="Invalid default of option 'k'"):
        ConfigOption(key="k", type=int, default=-1, validator=lambda v: None if v >= 0 else "expected >= 0")
    with pytest.raises(TypeError, match="choices are only supported for str options"):
        ConfigOption(key="k", type=int, default=1, choices=("1",))
    with pytest.raises(TypeError, match="deprecated_keys of 'k' must be a sequence"):
        ConfigOption(key="k", type=int, deprecated_keys="old")
    with pytest.raises(ValueError, match="Invalid option key"):
        ConfigOption(key=" k", type=int)


def test_convert_and_format_value() -> None:
    option = ConfigOption(key="k", type=timedelta, default=timedelta(seconds=1))
    assert option.convert("2 min") == timedelta(minutes=2)
    assert option.format_value(timedelta(minutes=2)) == "2 min"
    with pytest.raises(ConfigurationError, match="Invalid value 'x' for 'k'"):
        option.convert("x")
