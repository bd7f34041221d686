"""Typed access to the runtime's configuration keys (Flink's names and defaults) in one place.

Reads raw values by key so that the runtime works with any ``standby.config.Configuration``; values are parsed
here with errors that name the key and the accepted form.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from standby.config import Configuration, ConfigurationError

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_UNITS = {
    "": 0.001,  # Flink: a bare number is milliseconds
    "ms": 0.001,
    "milli": 0.001,
    "millis": 0.001,
    "millisecond": 0.001,
    "milliseconds": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "min": 60.0,
    "m": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
}
_INT_MAX = 2**31 - 1


def raw(conf: Configuration, key: str, *deprecated: str) -> Any:
    """The raw value under ``key`` (or the first deprecated key that is set), or None."""
    getter = getattr(conf, "get_raw", None)
    for k in (key, *deprecated):
        value = getter(k) if getter is not None else getattr(conf, "_values", {}).get(k)
        if value is not None:
            return value
    return None


def to_str(conf: Configuration, key: str, default: str | None, *deprecated: str) -> str | None:
    value = raw(conf, key, *deprecated)
    if value is None:
        return default
    text = str(value).strip()
    return text if text else default


def to_int(conf: Configuration, key: str, default: int, *deprecated: str) -> int:
    value = raw(conf, key, *deprecated)
    if value is None:
        return default
    try:
        return int(str(value).strip())
    except ValueError:
        raise ConfigurationError(f"Invalid value {value!r} for '{key}': expected an integer") from None


def to_float(conf: Configuration, key: str, default: float, *deprecated: str) -> float:
    value = raw(conf, key, *deprecated)
    if value is None:
        return default
    try:
        return float(str(value).strip())
    except ValueError:
        raise ConfigurationError(f"Invalid value {value!r} for '{key}': expected a number") from None


def to_bool(conf: Configuration, key: str, default: bool, *deprecated: str) -> bool:
    value = raw(conf, key, *deprecated)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off"):
        return False
    raise ConfigurationError(f"Invalid value {value!r} for '{key}': expected true or false")


def parse_duration(value: object, key: str) -> float:
    """Seconds from a Flink duration (``10 s``, ``500 ms``, ``1 min``; a bare number is milliseconds)."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bool):
        raise ConfigurationError(f"Invalid duration {value!r} for '{key}'")
    if isinstance(value, int | float):
        return float(value) / 1000.0
    match = _DURATION_RE.match(str(value))
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise ConfigurationError(
            f"Invalid duration {value!r} for '{key}': expected a number with a unit such as '500 ms', '10 s', "
            "'1 min' (a bare number means milliseconds)"
        )
    return float(match.group(1)) * _UNITS[unit]


def to_duration(conf: Configuration, key: str, default: float | None, *deprecated: str) -> float | None:
    value = raw(conf, key, *deprecated)
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    return parse_duration(value, key)


def to_seconds(conf: Configuration, key: str, default: float, *deprecated: str) -> float:
    value = to_duration(conf, key, default, *deprecated)
    assert value is not None
    return value


def parse_port(value: str, key: str) -> int:
    """The first port of a Flink port spec (``8081``, ``50100-50200``, ``0`` = any free port)."""
    text = str(value).strip().split(",")[0].split("-")[0].strip()
    try:
        port = int(text)
    except ValueError:
        raise ConfigurationError(
            f"Invalid port {value!r} for '{key}': expected a port number, a range such as 50100-50200, or 0"
        ) from None
    if not 0 <= port < 65536:
        raise ConfigurationError(f"Invalid port {value!r} for '{key}': expected a port between 0 and 65535")
    return port


@dataclass(frozen=True)
class RestartStrategySettings:
    kind: str  # "fixed-delay" | "exponential-delay" | "failure-rate" | "none"
    attempts: int
    delay_s: float
    max_delay_s: float
    multiplier: float
    jitter: float
    reset_threshold_s: float
    failure_rate_interval_s: float


@dataclass(frozen=True)
class CleanupStrategySettings:
    kind: str  # "exponential-delay" | "fixed-delay" | "none"
    attempts: int
    delay_s: float
    max_delay_s: float


@dataclass(frozen=True)
class RuntimeSettings:
    """Every runtime option, parsed once (a bad value fails at start-up naming its key)."""

    # addresses
    jobmanager_host: str
    jobmanager_bind_host: str
    jobmanager_rpc_port: int
    rest_address: str
    rest_bind_address: str
    rest_port: int
    taskmanager_host: str
    taskmanager_bind_host: str
    taskmanager_rpc_port: int
    num_task_slots: int
    # limits and security
    max_content_length: int
    auth_token: str | None
    rpc_timeout_s: float
    # failure detection and recovery
    heartbeat_interval_s: float
    heartbeat_timeout_s: float
    heartbeat_rpc_failure_threshold: int
    slot_request_timeout_s: float
    restart: RestartStrategySettings
    cleanup: CleanupStrategySettings
    # checkpointing
    checkpoint_interval_s: float | None
    checkpoint_timeout_s: float
    checkpoints_retained: int
    checkpoint_dir: str
    default_parallelism: int
    ha_type: str

    @staticmethod
    def from_configuration(conf: Configuration) -> RuntimeSettings:
        ha_type = (
            to_str(conf, "high-availability.type", "none", "high-availability", "recovery.mode") or "none"
        )
        ha_type = ha_type.lower()
        is_ha = ha_type not in ("none", "standalone")
        if is_ha:
            rpc_port_spec = (
                to_str(conf, "high-availability.jobmanager.port", "0", "recovery.jobmanager.port") or "0"
            )
            rpc_port = parse_port(rpc_port_spec, "high-availability.jobmanager.port")
        else:
            rpc_port = to_int(conf, "jobmanager.rpc.port", 6123)
            if not 0 <= rpc_port < 65536:
                raise ConfigurationError(
                    f"Invalid value {rpc_port!r} for 'jobmanager.rpc.port': expected a port between 0 and 65535"
                )
        rest_port = to_int(conf, "rest.port", 8081)
        bind_port_spec = to_str(conf, "rest.bind-port", None)
        rest_bind_port = parse_port(bind_port_spec, "rest.bind-port") if bind_port_spec else rest_port
        heartbeat_interval = to_seconds(conf, "heartbeat.interval", 10.0)
        heartbeat_timeout = to_seconds(conf, "heartbeat.timeout", 50.0)
        if heartbeat_interval <= 0 or heartbeat_timeout <= heartbeat_interval:
            raise ConfigurationError(
                f"Invalid heartbeat settings: 'heartbeat.timeout' ({heartbeat_timeout} s) must be larger than "
                f"'heartbeat.interval' ({heartbeat_interval} s), and the interval positive"
            )
        checkpoint_interval = to_duration(
            conf, "execution.checkpointing.interval", None, "execution.checkpointing.interval"
        )
        if checkpoint_interval is not None and checkpoint_interval <= 0:
            checkpoint_interval = None
        slots = to_int(conf, "taskmanager.numberOfTaskSlots", 1)
        if slots < 1:
            raise ConfigurationError(
                f"Invalid value {slots!r} for 'taskmanager.numberOfTaskSlots': expected at least 1"
            )
        return RuntimeSettings(
            jobmanager_host=to_str(conf, "jobmanager.rpc.address", "localhost") or "localhost",
            jobmanager_bind_host=to_str(conf, "jobmanager.bind-host", "127.0.0.1") or "127.0.0.1",
            jobmanager_rpc_port=rpc_port,
            rest_address=to_str(conf, "rest.address", "localhost") or "localhost",
            rest_bind_address=to_str(conf, "rest.bind-address", "127.0.0.1") or "127.0.0.1",
            rest_port=rest_bind_port,
            taskmanager_host=to_str(conf, "taskmanager.host", "127.0.0.1") or "127.0.0.1",
            taskmanager_bind_host=to_str(conf, "taskmanager.bind-host", "127.0.0.1") or "127.0.0.1",
            taskmanager_rpc_port=parse_port(
                to_str(conf, "taskmanager.rpc.port", "0") or "0", "taskmanager.rpc.port"
            ),
            num_task_slots=slots,
            max_content_length=to_int(conf, "rest.server.max-content-length", 104_857_600),
            auth_token=_auth_token(conf),
            rpc_timeout_s=to_seconds(conf, "pekko.ask.timeout", 10.0, "akka.ask.timeout"),
            heartbeat_interval_s=heartbeat_interval,
            heartbeat_timeout_s=heartbeat_timeout,
            heartbeat_rpc_failure_threshold=max(1, to_int(conf, "heartbeat.rpc-failure-threshold", 2)),
            slot_request_timeout_s=to_seconds(conf, "slot.request.timeout", 300.0),
            restart=_restart_strategy(conf, checkpoint_interval is not None),
            cleanup=_cleanup_strategy(conf),
            checkpoint_interval_s=checkpoint_interval,
            checkpoint_timeout_s=to_seconds(conf, "execution.checkpointing.timeout", 600.0),
            checkpoints_retained=max(
                1, to_int(conf, "execution.checkpointing.num-retained", 1, "state.checkpoints.num-retained")
            ),
            checkpoint_dir=_checkpoint_dir(conf),
            default_parallelism=max(1, to_int(conf, "parallelism.default", 1)),
            ha_type=ha_type,
        )


def _auth_token(conf: Configuration) -> str | None:
    token = to_str(conf, "security.auth.token", None)
    if token:
        return token
    token_file = to_str(conf, "security.auth.token-file", None)
    if not token_file:
        return None
    try:
        with open(os.path.expanduser(token_file), encoding="utf-8") as f:
            text = f.read().strip()
    except OSError as e:
        raise ConfigurationError(
            f"Cannot read the token file '{token_file}' named by 'security.auth.token-file': {e}"
        ) from None
    if not text:
        raise ConfigurationError(
            f"The token file '{token_file}' named by 'security.auth.token-file' is empty"
        )
    return text


def _restart_strategy(conf: Configuration, checkpointing: bool) -> RestartStrategySettings:
    # Flink: without an explicit strategy, checkpointing implies exponential-delay, otherwise no restarts.
    default_kind = "exponential-delay" if checkpointing else "none"
    kind = (to_str(conf, "restart-strategy.type", None, "restart-strategy") or default_kind).lower()
    aliases = {
        "fixeddelay": "fixed-delay",
        "fixed-delay": "fixed-delay",
        "exponentialdelay": "exponential-delay",
        "exponential-delay": "exponential-delay",
        "failurerate": "failure-rate",
        "failure-rate": "failure-rate",
        "none": "none",
        "off": "none",
        "disable": "none",
    }
    if kind not in aliases:
        raise ConfigurationError(
            f"Invalid value {kind!r} for 'restart-strategy.type': expected fixed-delay, exponential-delay, "
            "failure-rate or none"
        )
    kind = aliases[kind]
    if kind == "fixed-delay":
        return RestartStrategySettings(
            kind,
            attempts=to_int(conf, "restart-strategy.fixed-delay.attempts", 1),
            delay_s=to_seconds(conf, "restart-strategy.fixed-delay.delay", 1.0),
            max_delay_s=0.0,
            multiplier=1.0,
            jitter=0.0,
            reset_threshold_s=0.0,
            failure_rate_interval_s=0.0,
        )
    if kind == "exponential-delay":
        return RestartStrategySettings(
            kind,
            attempts=to_int(
                conf, "restart-strategy.exponential-delay.attempts-before-reset-backoff", _INT_MAX
            ),
            delay_s=to_seconds(conf, "restart-strategy.exponential-delay.initial-backoff", 1.0),
            max_delay_s=to_seconds(conf, "restart-strategy.exponential-delay.max-backoff", 60.0),
            multiplier=to_float(conf, "restart-strategy.exponential-delay.backoff-multiplier", 1.5),
            jitter=to_float(conf, "restart-strategy.exponential-delay.jitter-factor", 0.1),
            reset_threshold_s=to_seconds(
                conf, "restart-strategy.exponential-delay.reset-backoff-threshold", 3600.0
            ),
            failure_rate_interval_s=0.0,
        )
    if kind == "failure-rate":
        return RestartStrategySettings(
            kind,
            attempts=to_int(conf, "restart-strategy.failure-rate.max-failures-per-interval", 1),
            delay_s=to_seconds(conf, "restart-strategy.failure-rate.delay", 1.0),
            max_delay_s=0.0,
            multiplier=1.0,
            jitter=0.0,
            reset_threshold_s=0.0,
            failure_rate_interval_s=to_seconds(
                conf, "restart-strategy.failure-rate.failure-rate-interval", 60.0
            ),
        )
    return RestartStrategySettings("none", 0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0)


def _cleanup_strategy(conf: Configuration) -> CleanupStrategySettings:
    kind = (to_str(conf, "cleanup-strategy.type", None, "cleanup-strategy") or "exponential-delay").lower()
    if kind in ("none", "disable", "off"):
        return CleanupStrategySettings("none", 1, 0.0, 0.0)
    if kind in ("fixed-delay", "fixeddelay"):
        return CleanupStrategySettings(
            "fixed-delay",
            attempts=to_int(conf, "cleanup-strategy.fixed-delay.attempts", _INT_MAX),
            delay_s=to_seconds(conf, "cleanup-strategy.fixed-delay.delay", 60.0),
            max_delay_s=0.0,
        )
    if kind in ("exponential-delay", "exponentialdelay"):
        return CleanupStrategySettings(
            "exponential-delay",
            attempts=to_int(conf, "cleanup-strategy.exponential-delay.attempts", _INT_MAX),
            delay_s=to_seconds(conf, "cleanup-strategy.exponential-delay.initial-backoff", 1.0),
            max_delay_s=to_seconds(conf, "cleanup-strategy.exponential-delay.max-backoff", 3600.0),
        )
    raise ConfigurationError(
        f"Invalid value {kind!r} for 'cleanup-strategy.type': expected exponential-delay, fixed-delay or none"
    )


def _checkpoint_dir(conf: Configuration) -> str:
    configured = to_str(conf, "execution.checkpointing.dir", None, "state.checkpoints.dir")
    if configured:
        return configured.rstrip("/")
    storage_dir = to_str(conf, "high-availability.storageDir", None, "high-availability.zookeeper.storageDir")
    if storage_dir:
        return f"{storage_dir.rstrip('/')}/checkpoints"
    # Not shared between processes: only good for a single JobManager without HA.
    return os.path.join(tempfile.gettempdir(), "standby-checkpoints")


_SENSITIVE = (
    "password",
    "secret",
    "token",
    "apikey",
    "api-key",
    "auth-params",
    "authorization",
    "jaas.config",
)


def display_items(conf: Configuration) -> dict[str, str]:
    """All configured keys with secrets masked (for ``GET /jobmanager/config`` and logs)."""
    to_display = getattr(conf, "to_display_dict", None)
    if callable(to_display):
        return {str(k): str(v) for k, v in to_display().items()}
    values: dict[str, Any] = dict(getattr(conf, "_values", {}))
    return {
        str(k): ("******" if any(p in str(k).lower() for p in _SENSITIVE) else str(v))
        for k, v in values.items()
    }


def load_configuration(path: str | None, dynamic: list[str]) -> Configuration:
    """``Configuration.load(path, dynamic=...)`` (YAML file, then ``-D key=value`` overrides)."""
    loader = getattr(Configuration, "load", None)
    if callable(loader):
        loaded = loader(path, dynamic=dynamic)
        assert isinstance(loaded, Configuration)
        return loaded
    # fallback for the minimal configuration module: flat or nested YAML, then the overrides
    import yaml

    values: dict[str, Any] = {}
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                data = yaml.safe_load(f) or {}
        except OSError as e:
            raise ConfigurationError(f"Cannot read configuration file '{path}': {e}") from None
        except yaml.YAMLError as e:
            raise ConfigurationError(f"Invalid YAML in configuration file '{path}': {e}") from None
        if not isinstance(data, dict):
            raise ConfigurationError(f"Configuration file '{path}' must contain a YAML mapping")

        def flatten(d: dict[Any, Any], prefix: str) -> None:
            for k, v in d.items():
                key = f"{prefix}.{k}" if prefix else str(k)
                if isinstance(v, dict):
                    flatten(v, key)
                elif v is not None:
                    values[key] = v

        flatten(data, "")
    for item in dynamic:
        text = item[2:] if item.startswith("-D") else item
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise ConfigurationError(f"Invalid dynamic property {item!r}: expected key=value")
        values[key.strip()] = value.strip()
    return Configuration(values)


def dynamic_properties(conf: Configuration) -> list[str]:
    """The configuration as ``key=value`` strings (to start another process with the same settings)."""
    to_dynamic = getattr(conf, "to_dynamic_properties", None)
    if callable(to_dynamic):
        return [str(x) for x in to_dynamic()]
    return [f"{k}={v}" for k, v in dict(getattr(conf, "_values", {})).items()]
