"""Tests of Configuration: typed access, deprecated keys, YAML files, -D overrides, round trips and validation."""

from __future__ import annotations

import enum
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from standby.config import (
    ConfigOption,
    Configuration,
    ConfigurationError,
    MemorySize,
    options,
    validate,
)


class Color(enum.Enum):
    RED = "r"
    DARK_BLUE = "b"


COLOR = ConfigOption(key="test.color", type=Color, default=Color.RED, description="A colour.")
SIZE = ConfigOption(key="test.size", type=MemorySize, default=MemorySize.of_mebibytes(10))
RATIO = ConfigOption(key="test.ratio", type=float, default=0.5)
NAMES = ConfigOption(key="test.names", type=list[str], default=["a"])
LABELS = ConfigOption(key="test.labels", type=dict[str, str], deprecated_keys=("test.old-labels",))


def _deprecation_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "standby.config" and "deprecated" in r.getMessage()]


# ---------------------------------------------------------------------------------------------------------- get / set


def test_get_returns_default_when_unset() -> None:
    conf = Configuration()
    assert conf.get(options.HA_TYPE) == "NONE"
    assert conf.get(options.HA_CLUSTER_ID) == "/default"
    assert conf.get(options.HEARTBEAT_TIMEOUT) == timedelta(seconds=50)
    assert conf.get(options.HA_STORAGE_DIR) is None
    assert conf.get(options.JOB_RESULT_STORE_DELETE_ON_COMMIT) is True


def test_get_converts_raw_strings() -> None:
    conf = Configuration(
        {
            "high-availability.type": "zookeeper",
            "heartbeat.timeout": "1 min",
            "jobmanager.rpc.port": "7000",
            "zookeeper.sasl.disable": "TRUE",
            "test.size": "1 gb",
            "test.ratio": "0.25",
            "test.color": "dark_blue",
        }
    )
    assert conf.get(options.HA_TYPE) == "zookeeper"
    assert conf.get(options.HEARTBEAT_TIMEOUT) == timedelta(minutes=1)
    assert conf.get(options.JOB_MANAGER_RPC_PORT) == 7000
    assert conf.get(options.ZOOKEEPER_SASL_DISABLE) is True
    assert conf.get(SIZE) == MemorySize.of_gibibytes(1)
    assert conf.get(RATIO) == 0.25
    assert conf.get(COLOR) is Color.DARK_BLUE


def test_get_optional_ignores_the_default() -> None:
    conf = Configuration({"heartbeat.interval": "5 s"})
    assert conf.get_optional(options.HEARTBEAT_TIMEOUT) is None
    assert conf.get_optional(options.HEARTBEAT_INTERVAL) == timedelta(seconds=5)


def test_set_validates_stores_typed_value_and_returns_self() -> None:
    conf = Configuration()
    assert conf.set(options.HEARTBEAT_TIMEOUT, timedelta(seconds=3)) is conf
    assert conf.get(options.HEARTBEAT_TIMEOUT) == timedelta(seconds=3)
    assert conf.get_raw("heartbeat.timeout") == timedelta(seconds=3)
    assert conf.to_dict() == {"heartbeat.timeout": "3 s"}
    with pytest.raises(ConfigurationError, match=r"Invalid value '70000' for 'jobmanager\.rpc\.port'"):
        conf.set(options.JOB_MANAGER_RPC_PORT, 70000)
    assert "jobmanager.rpc.port" not in conf


def test_set_none_removes_the_option_and_its_deprecated_keys() -> None:
    conf = Configuration({"high-availability.storageDir": "/a", "recovery.zookeeper.storageDir": "/b"})
    conf.set(options.HA_STORAGE_DIR, None)
    assert conf.get(options.HA_STORAGE_DIR) is None
    assert not conf.contains(options.HA_STORAGE_DIR)


def test_set_string_get_raw_keys_contains_and_len() -> None:
    conf = Configuration().set_string("high-availability.type", "etcd").set_string("custom.key", "x")
    assert conf.get_raw("high-availability.type") == "etcd"
    assert conf.get_raw("missing") is None
    assert conf.keys() == ["high-availability.type", "custom.key"]
    assert conf.contains(options.HA_TYPE)
    assert options.HA_TYPE in conf
    assert "custom.key" in conf
    assert not conf.contains(options.HA_CLUSTER_ID)
    assert len(conf) == 2
    assert conf.remove_key("custom.key")
    assert conf.keys() == ["high-availability.type"]


def test_default_lists_are_not_shared() -> None:
    conf = Configuration()
    names = conf.get(NAMES)
    names.append("mutated")
    assert conf.get(NAMES) == ["a"]
    assert NAMES.default == ["a"]


# ---------------------------------------------------------------------------------------------------------- errors


def test_bad_value_message_names_key_value_and_accepted_forms() -> None:
    conf = Configuration({"heartbeat.timeout": "abc"})
    with pytest.raises(ConfigurationError) as info:
        conf.get(options.HEARTBEAT_TIMEOUT)
    assert str(info.value) == (
        "Invalid value 'abc' for 'heartbeat.timeout': expected a duration such as '50 s', '500 ms', '1 min' "
        "or a number of milliseconds"
    )
    assert info.value.key == "heartbeat.timeout"
    assert info.value.value == "abc"


@pytest.mark.parametrize(
    ("key", "raw", "option", "message_part"),
    [
        (
            "jobmanager.rpc.port",
            "4.2",
            options.JOB_MANAGER_RPC_PORT,
            "Invalid value '4.2' for 'jobmanager.rpc.port': expected an integer",
        ),
        (
            "jobmanager.rpc.port",
            True,
            options.JOB_MANAGER_RPC_PORT,
            "Invalid value 'true' for 'jobmanager.rpc.port'",
        ),
        (
            "zookeeper.sasl.disable",
            "yes",
            options.ZOOKEEPER_SASL_DISABLE,
            "Invalid value 'yes' for 'zookeeper.sasl.disable': expected 'true' or 'false'",
        ),
        ("zookeeper.sasl.disable", 1, options.ZOOKEEPER_SASL_DISABLE, "expected 'true' or 'false'"),
        ("test.size", "1 xb", SIZE, "Invalid value '1 xb' for 'test.size': unknown memory unit 'xb'"),
        (
            "test.color",
            "green",
            COLOR,
            "Invalid value 'green' for 'test.color': expected one of 'red', 'dark_blue' (case-insensitive)",
        ),
        ("test.ratio", "half", RATIO, "Invalid value 'half' for 'test.ratio': expected a number"),
        ("heartbeat.interval", "5 fortnights", options.HEARTBEAT_INTERVAL, "unknown time unit 'fortnights'"),
        (
            "heartbeat.interval",
            1.5,
            options.HEARTBEAT_INTERVAL,
            "Invalid value '1.5' for 'heartbeat.interval'",
        ),
        ("heartbeat.interval", "0 s", options.HEARTBEAT_INTERVAL, "expected a positive duration"),
        (
            "high-availability.type",
            ["a"],
            options.HA_TYPE,
            "Invalid value 'a' for 'high-availability.type': expected a string",
        ),
        (
            "high-availability.jobmanager.port",
            "x-y",
            options.HA_JOB_MANAGER_PORT_RANGE,
            "expected a port such as '6123'",
        ),
        ("kubernetes.cluster-id", "My_Cluster", options.KUBERNETES_CLUSTER_ID, "lower-case letters"),
        ("heartbeat.rpc-failure-threshold", "0", options.HEARTBEAT_RPC_FAILURE_THRESHOLD, "or -1 to disable"),
    ],
)
def test_bad_values_are_rejected_with_the_key_named(
    key: str, raw: object, option: ConfigOption[Any], message_part: str
) -> None:
    conf = Configuration({key: raw})
    with pytest.raises(ConfigurationError) as info:
        conf.get(option)
    assert message_part in str(info.value)
    assert info.value.key == key


def test_choices_are_case_insensitive_and_canonicalised() -> None:
    conf = Configuration({"high-availability.zookeeper.client.acl": "CREATOR"})
    assert conf.get(options.HA_ZOOKEEPER_CLIENT_ACL) == "creator"
    conf.set_string("high-availability.zookeeper.client.acl", "closed")
    with pytest.raises(ConfigurationError) as info:
        conf.get(options.HA_ZOOKEEPER_CLIENT_ACL)
    assert str(info.value) == (
        "Invalid value 'closed' for 'high-availability.zookeeper.client.acl': "
        "expected one of 'open', 'creator' (case-insensitive)"
    )


def test_restart_strategy_choices_include_flink_aliases() -> None:
    for value in ("none", "off", "disable", "fixed-delay", "fixeddelay", "exponential-delay"):
        assert (
            Configuration({"restart-strategy.type": value.upper()}).get(options.RESTART_STRATEGY_TYPE)
            == value
        )
    with pytest.raises(ConfigurationError, match="expected one of 'none', 'off'"):
        Configuration({"restart-strategy.type": "failure-ratio"}).get(options.RESTART_STRATEGY_TYPE)


def test_secret_values_are_masked_in_errors_and_repr() -> None:
    conf = Configuration(
        {
            "high-availability.zookeeper.client.authorization": "digest-without-colon",
            "security.auth.token": "s3cr3t",
            "high-availability.etcd.password": "pw",
            "high-availability.type": "etcd",
        }
    )
    with pytest.raises(ConfigurationError) as info:
        conf.get(options.HA_ZOOKEEPER_CLIENT_AUTHORIZATION)
    assert "digest-without-colon" not in str(info.value)
    assert "Invalid value '******' for 'high-availability.zookeeper.client.authorization'" in str(info.value)
    shown = repr(conf)
    assert "s3cr3t" not in shown
    assert "'pw'" not in shown
    assert "etcd" in shown
    assert conf.to_dict()["security.auth.token"] == "s3cr3t"  # needed for subprocesses


# ---------------------------------------------------------------------------------------------------------- deprecated keys


def test_deprecated_key_is_read_and_warned_once(caplog: pytest.LogCaptureFixture) -> None:
    conf = Configuration({"recovery.mode": "zookeeper"})
    with caplog.at_level(logging.WARNING, logger="standby.config"):
        assert conf.get(options.HA_TYPE) == "zookeeper"
        assert conf.get(options.HA_TYPE) == "zookeeper"
        assert conf.get_optional(options.HA_TYPE) == "zookeeper"
    records = _deprecation_records(caplog)
    assert len(records) == 1
    assert "'recovery.mode'" in records[0].getMessage()
    assert "'high-availability.type'" in records[0].getMessage()
    assert records[0].levelno == logging.WARNING


def test_deprecated_keys_are_tried_in_order_and_each_warned(caplog: pytest.LogCaptureFixture) -> None:
    conf = Configuration({"high-availability": "kubernetes"})
    with caplog.at_level(logging.WARNING, logger="standby.config"):
        assert conf.get(options.HA_TYPE) == "kubernetes"
        conf.set_string("recovery.mode", "zookeeper")
        assert conf.get(options.HA_TYPE) == "zookeeper"  # 'recovery.mode' is listed first
        # A second Configuration warns again: the "once" is per Configuration (a copy inherits it).
        assert conf.copy().get(options.HA_TYPE) == "zookeeper"
        assert Configuration({"high-availability": "x"}).get(options.HA_TYPE) == "x"
    messages = [r.getMessage() for r in _deprecation_records(caplog)]
    assert len(messages) == 3
    assert "'high-availability'" in messages[0]
    assert "'recovery.mode'" in messages[1]


def test_new_key_wins_over_deprecated_key_without_warning(caplog: pytest.LogCaptureFixture) -> None:
    conf = Configuration(
        {
            "high-availability.zookeeper.path.jobgraphs": "/old",
            "high-availability.zookeeper.path.execution-plans": "/new",
        }
    )
    with caplog.at_level(logging.WARNING, logger="standby.config"):
        assert conf.get(options.HA_ZOOKEEPER_EXECUTION_PLANS_PATH) == "/new"
    assert _deprecation_records(caplog) == []


def test_jobgraphs_keys_still_configure_execution_plans_path() -> None:
    for key in ("recovery.zookeeper.path.jobgraphs", "high-availability.zookeeper.path.jobgraphs"):
        assert Configuration({key: "/jg"}).get(options.HA_ZOOKEEPER_EXECUTION_PLANS_PATH) == "/jg"


def test_bad_value_under_deprecated_key_names_both_keys() -> None:
    conf = Configuration({"state.checkpoints.num-retained": "many"})
    with pytest.raises(ConfigurationError) as info:
        conf.get(options.CHECKPOINTS_NUM_RETAINED)
    assert str(info.value).startswith(
        "Invalid value 'many' for 'state.checkpoints.num-retained' (deprecated key of "
        "'execution.checkpointing.num-retained'): expected an integer"
    )


# ---------------------------------------------------------------------------------------------------------- lists and maps


def test_list_option_from_string_and_yaml_list() -> None:
    assert Configuration({"high-availability.etcd.endpoints": "127.0.0.1:2379,127.0.0.1:2380"}).get(
        options.HA_ETCD_ENDPOINTS
    ) == ["127.0.0.1:2379", "127.0.0.1:2380"]
    assert Configuration({"high-availability.etcd.endpoints": ["127.0.0.1:2379"]}).get(
        options.HA_ETCD_ENDPOINTS
    ) == ["127.0.0.1:2379"]
    assert Configuration({"test.names": "x;y"}).get(NAMES) == ["x", "y"]


def test_map_option_from_string_nested_map_and_prefixed_keys() -> None:
    auth = options.HA_ZOOKEEPER_CLIENT_AUTHORIZATION
    assert Configuration({auth.key: "digest:user:pw"}).get(auth) == {"digest": "user:pw"}
    # A YAML map under the key is flattened to prefixed keys, which Flink reads back as the map.
    conf = Configuration({auth.key: {"digest": "user:pw", "ip": "1.2.3.4"}})
    assert conf.keys() == [f"{auth.key}.digest", f"{auth.key}.ip"]
    assert conf.get(auth) == {"digest": "user:pw", "ip": "1.2.3.4"}
    assert conf.contains(auth)
    assert conf.unknown_keys() == []
    # The exact key wins over prefixed entries; set() replaces them.
    conf.set_string(auth.key, "sasl:x")
    assert conf.get(auth) == {"sasl": "x"}
    conf.set(auth, {"digest": "a:b"})
    assert conf.keys() == [auth.key]
    assert conf.get(auth) == {"digest": "a:b"}
    assert conf.to_dict() == {auth.key: "digest:'a:b'"}


def test_map_option_deprecated_key_prefixed_form() -> None:
    conf = Configuration({"test.old-labels": {"a": 1}})
    assert conf.get(LABELS) == {"a": "1"}


# ---------------------------------------------------------------------------------------------------------- loading


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_load_yaml_flat_nested_and_mixed(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "config.yaml",
        """\
high-availability:
  type: zookeeper
  zookeeper:
    quorum: "127.0.0.1:2181"
    client:
      session-timeout: 30000
high-availability.cluster-id: /cluster-a
heartbeat.interval: 2 s
jobmanager:
  rpc.port: 6124
zookeeper.sasl.disable: true
restart-strategy.type: off
unset.key:
high-availability.etcd.endpoints:
  - 127.0.0.1:2379
  - 127.0.0.1:22379
""",
    )
    conf = Configuration.load(path)
    assert conf.get(options.HA_TYPE) == "zookeeper"
    assert conf.get(options.HA_ZOOKEEPER_QUORUM) == "127.0.0.1:2181"
    assert conf.get(options.HA_ZOOKEEPER_SESSION_TIMEOUT) == timedelta(seconds=30)  # YAML int = ms
    assert conf.get(options.HA_CLUSTER_ID) == "/cluster-a"
    assert conf.get(options.HEARTBEAT_INTERVAL) == timedelta(seconds=2)
    assert conf.get(options.JOB_MANAGER_RPC_PORT) == 6124
    assert conf.get(options.ZOOKEEPER_SASL_DISABLE) is True
    assert conf.get(options.RESTART_STRATEGY_TYPE) == "off"  # YAML 1.2: 'off' is a string
    assert conf.get(options.HA_ETCD_ENDPOINTS) == ["127.0.0.1:2379", "127.0.0.1:22379"]
    assert "unset.key" not in conf
    assert conf.unknown_keys() == []


def test_load_directory_uses_config_yaml(tmp_path: Path) -> None:
    _write(tmp_path / "config.yaml", "rest.port: 9000\n")
    assert Configuration.load(tmp_path).get(options.REST_PORT) == 9000
    assert Configuration.load(str(tmp_path)).get(options.REST_PORT) == 9000


def test_load_empty_file(tmp_path: Path) -> None:
    assert Configuration.load(_write(tmp_path / "c.yaml", "# nothing\n")).keys() == []


def test_dynamic_properties_override_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.yaml", "high-availability.type: zookeeper\nrest.port: 9000\n")
    conf = Configuration.load(
        path,
        dynamic=[
            "-Dhigh-availability.type=etcd",
            "heartbeat.timeout=5 s",
            "-D rest.address=a=b",
            "-Dempty.value=",
        ],
    )
    assert conf.get(options.HA_TYPE) == "etcd"
    assert conf.get(options.REST_PORT) == 9000
    assert conf.get(options.HEARTBEAT_TIMEOUT) == timedelta(seconds=5)
    assert conf.get(options.REST_ADDRESS) == "a=b"
    assert conf.get_raw("empty.value") == ""


@pytest.mark.parametrize("argument", ["-Dno-equals-sign", "=value", "-D=value", "", "-D"])
def test_malformed_dynamic_property_is_named(argument: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Configuration.load(dynamic=[argument], env={})
    assert f"Malformed dynamic property '{argument}': expected key=value" in str(info.value)
    assert info.value.source == argument


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "config.yaml", "rest.port: 9000\nheartbeat:\n  interval: [1, 2\nrest.address: x\n"
    )
    with pytest.raises(ConfigurationError) as info:
        Configuration.load(path)
    message = str(info.value)
    assert f"Invalid YAML in configuration file '{path}' at line 4" in message
    assert info.value.source == str(path)


def test_yaml_with_tab_indentation_names_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "config.yaml", "a: 1\nb:\n\tc: 2\n")
    with pytest.raises(ConfigurationError, match=r"at line 3"):
        Configuration.load(path)


def test_yaml_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = _write(tmp_path / "config.yaml", "- a\n- b\n")
    with pytest.raises(
        ConfigurationError, match="must contain a YAML mapping of keys to values, found a list"
    ):
        Configuration.load(path)


def test_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigurationError, match=f"Configuration file '{path}' does not exist"):
        Configuration.load(path)


def test_env_variable_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.yaml", "high-availability.type: kubernetes\n")
    conf = Configuration.load(env={"STANDBY_CONFIG": str(path)}, dynamic=["rest.port=1"])
    assert conf.get(options.HA_TYPE) == "kubernetes"
    assert conf.get(options.REST_PORT) == 1
    # An explicit path wins over the environment.
    other = _write(tmp_path / "other.yaml", "high-availability.type: etcd\n")
    assert Configuration.load(other, env={"STANDBY_CONFIG": str(path)}).get(options.HA_TYPE) == "etcd"
    assert Configuration.load(env={}).keys() == []
    with pytest.raises(ConfigurationError, match=r"\(from STANDBY_CONFIG=.*missing.yaml\) does not exist"):
        Configuration.load(env={"STANDBY_CONFIG": str(tmp_path / "missing.yaml")})


def test_env_defaults_to_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path / "c.yaml", "rest.port: 1234\n")
    monkeypatch.setenv("STANDBY_CONFIG", str(path))
    assert Configuration.load().get(options.REST_PORT) == 1234


# ---------------------------------------------------------------------------------------------------------- round trips


def _typed_configuration() -> Configuration:
    return (
        Configuration({"custom.unknown": "kept"})
        .set(options.HA_TYPE, "zookeeper")
        .set(options.HEARTBEAT_TIMEOUT, timedelta(milliseconds=1500))
        .set(options.HA_ETCD_ENDPOINTS, ["127.0.0.1:2379", "weird;host,name"])
        .set(options.HA_ZOOKEEPER_CLIENT_AUTHORIZATION, {"digest": "u:p,w", "ip": "1.2.3.4"})
        .set(options.ZOOKEEPER_SASL_DISABLE, True)
        .set(options.JOB_MANAGER_RPC_PORT, 7001)
        .set(options.HA_ZOOKEEPER_CLIENT_ACL, "Creator")
        .set(COLOR, Color.DARK_BLUE)
        .set(SIZE, MemorySize(1536))
        .set(RATIO, 0.1)
        .set(NAMES, [])
    )


_ROUND_TRIP_OPTIONS: list[ConfigOption[Any]] = [
    options.HA_TYPE,
    options.HEARTBEAT_TIMEOUT,
    options.HA_ETCD_ENDPOINTS,
    options.HA_ZOOKEEPER_CLIENT_AUTHORIZATION,
    options.ZOOKEEPER_SASL_DISABLE,
    options.JOB_MANAGER_RPC_PORT,
    options.HA_ZOOKEEPER_CLIENT_ACL,
    COLOR,
    SIZE,
    RATIO,
    NAMES,
]


def test_to_dict_round_trip_preserves_typed_values() -> None:
    conf = _typed_configuration()
    shipped = conf.to_dict()
    assert all(isinstance(v, str) for v in shipped.values())
    assert shipped["heartbeat.timeout"] == "1500 ms"
    assert shipped["zookeeper.sasl.disable"] == "true"
    assert shipped["test.color"] == "DARK_BLUE"
    received = Configuration(shipped)
    for option in _ROUND_TRIP_OPTIONS:
        assert received.get(option) == conf.get(option), option.key
    assert received.get_raw("custom.unknown") == "kept"
    assert received == conf


def test_dynamic_properties_round_trip() -> None:
    conf = _typed_configuration()
    received = Configuration.load(dynamic=conf.to_dynamic_properties(), env={})
    for option in _ROUND_TRIP_OPTIONS:
        assert received.get(option) == conf.get(option), option.key


def test_copy_is_independent_and_from_dict_flattens() -> None:
    conf = Configuration.from_dict({"rest": {"port": 1}})
    assert conf.keys() == ["rest.port"]
    copied = conf.copy()
    copied.set(options.REST_PORT, 2)
    assert conf.get(options.REST_PORT) == 1
    assert copied.get(options.REST_PORT) == 2
    assert conf != copied


def test_update_overrides() -> None:
    conf = Configuration({"rest.port": 1, "rest.address": "a"})
    conf.update({"rest": {"port": 2}}).update(Configuration({"jobmanager.rpc.port": 3}))
    assert conf.to_dict() == {"rest.port": "2", "rest.address": "a", "jobmanager.rpc.port": "3"}


# ---------------------------------------------------------------------------------------------------------- checks


def test_unknown_keys_lists_only_unregistered_keys() -> None:
    conf = Configuration(
        {
            "high-availability.type": "zookeeper",
            "recovery.mode": "zookeeper",
            "high-availability.zookeeper.client.authorization.digest": "a:b",
            "high-availabilty.cluster-id": "typo",
            "my.own.key": 1,
        }
    )
    assert conf.unknown_keys() == ["high-availabilty.cluster-id", "my.own.key"]
    assert conf.unknown_keys([COLOR]) == list(conf) == conf.keys()


def test_validate_reports_every_bad_value() -> None:
    good = Configuration({"heartbeat.timeout": "5 s", "high-availability.type": "zookeeper", "x": "y"})
    assert validate(good) == []
    assert good.validate() == []
    bad = Configuration(
        {
            "heartbeat.timeout": "abc",
            "rest.port": "http",
            "high-availability.zookeeper.client.acl": "world",
            "state.checkpoints.num-retained": "many",
        }
    )
    errors = bad.validate()
    assert sorted(e.key or "" for e in errors) == [
        "heartbeat.timeout",
        "high-availability.zookeeper.client.acl",
        "rest.port",
        "state.checkpoints.num-retained",
    ]
    assert all(isinstance(e, ConfigurationError) for e in errors)
    assert validate(bad, [options.REST_PORT])[0].key == "rest.port"
