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

from standby.config import Configuration, ConfigurationError, options
from standby.ha import high_availability_type

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
    """The raw value under ``key`` (or the first deprecated key that is set), or None (keys not in the registry)."""
    for k in (key, *deprecated):
        value = conf.get_raw(k)
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
    kind: str  # "fixed-delay" | "exponential-delay" | "none"
    attempts: int
    delay_s: float
    max_delay_s: float
    multiplier: float
    jitter: float
    reset_threshold_s: float


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
        ha_type = high_availability_type(conf)
        if ha_type != "none":
            rpc_port = parse_port(
                conf.get(options.HA_JOB_MANAGER_PORT_RANGE), options.HA_JOB_MANAGER_PORT_RANGE.key
            )
        else:
            rpc_port = conf.get(options.JOB_MANAGER_RPC_PORT)
        bind_port_spec = conf.get(options.REST_BIND_PORT)
        rest_port = (
            parse_port(bind_port_spec, options.REST_BIND_PORT.key)
            if bind_port_spec
            else conf.get(options.REST_PORT)
        )
        heartbeat_interval = conf.get(options.HEARTBEAT_INTERVAL).total_seconds()
        heartbeat_timeout = conf.get(options.HEARTBEAT_TIMEOUT).total_seconds()
        if heartbeat_timeout <= heartbeat_interval:
            raise ConfigurationError(
                f"Invalid heartbeat settings: 'heartbeat.timeout' ({heartbeat_timeout} s) must be larger than "
                f"'heartbeat.interval' ({heartbeat_interval} s)"
            )
        interval = conf.get(options.CHECKPOINTING_INTERVAL)
        checkpoint_interval = interval.total_seconds() if interval is not None else None
        threshold = conf.get(options.HEARTBEAT_RPC_FAILURE_THRESHOLD)
        return RuntimeSettings(
            jobmanager_host=conf.get(options.JOB_MANAGER_RPC_ADDRESS),
            jobmanager_bind_host=conf.get(options.JOB_MANAGER_BIND_HOST),
            jobmanager_rpc_port=rpc_port,
            rest_address=conf.get(options.REST_ADDRESS),
            rest_bind_address=conf.get(options.REST_BIND_ADDRESS),
            rest_port=rest_port,
            taskmanager_host=conf.get(options.TASK_MANAGER_HOST) or "127.0.0.1",
            taskmanager_bind_host=to_str(conf, "taskmanager.bind-host", "127.0.0.1") or "127.0.0.1",
            taskmanager_rpc_port=parse_port(
                to_str(conf, "taskmanager.rpc.port", "0") or "0", "taskmanager.rpc.port"
            ),
            num_task_slots=conf.get(options.TASK_MANAGER_NUM_TASK_SLOTS),
            max_content_length=conf.get(options.REST_SERVER_MAX_CONTENT_LENGTH),
            auth_token=_auth_token(conf),
            rpc_timeout_s=to_seconds(conf, "pekko.ask.timeout", 10.0, "akka.ask.timeout"),
            heartbeat_interval_s=heartbeat_interval,
            heartbeat_timeout_s=heartbeat_timeout,
            # -1 disables the fast detection: only the timeout counts
            heartbeat_rpc_failure_threshold=threshold if threshold > 0 else _INT_MAX,
            slot_request_timeout_s=to_seconds(conf, "slot.request.timeout", 300.0),
            restart=_restart_strategy(conf, checkpoint_interval is not None),
            cleanup=_cleanup_strategy(conf),
            checkpoint_interval_s=checkpoint_interval,
            checkpoint_timeout_s=to_seconds(conf, "execution.checkpointing.timeout", 600.0),
            checkpoints_retained=conf.get(options.CHECKPOINTS_NUM_RETAINED),
            checkpoint_dir=_checkpoint_dir(conf),
            default_parallelism=conf.get(options.PARALLELISM_DEFAULT),
            ha_type=ha_type,
        )


def _auth_token(conf: Configuration) -> str | None:
    token = conf.get(options.SECURITY_AUTH_TOKEN)
    if token:
        return token
    token_file = conf.get(options.SECURITY_AUTH_TOKEN_FILE)
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
    # Flink 1.19+: without an explicit strategy, checkpointing implies exponential-delay, otherwise no restarts.
    configured = conf.get(options.RESTART_STRATEGY_TYPE)
    kind = (
        (configured or ("exponential-delay" if checkpointing else "none")).lower().replace("delay", "-delay")
    )
    kind = kind.replace("--", "-")
    if kind == "fixed-delay":
        return RestartStrategySettings(
            kind,
            attempts=conf.get(options.RESTART_STRATEGY_FIXED_DELAY_ATTEMPTS),
            delay_s=conf.get(options.RESTART_STRATEGY_FIXED_DELAY_DELAY).total_seconds(),
            max_delay_s=0.0,
            multiplier=1.0,
            jitter=0.0,
            reset_threshold_s=0.0,
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
        )
    return RestartStrategySettings("none", 0, 0.0, 0.0, 1.0, 0.0, 0.0)


def _cleanup_strategy(conf: Configuration) -> CleanupStrategySettings:
    kind = conf.get(options.CLEANUP_STRATEGY_TYPE).lower()
    if kind in ("none", "disable", "off"):
        return CleanupStrategySettings("none", 1, 0.0, 0.0)
    if kind in ("fixed-delay", "fixeddelay"):
        return CleanupStrategySettings(
            "fixed-delay",
            attempts=conf.get(options.CLEANUP_STRATEGY_FIXED_DELAY_ATTEMPTS),
            delay_s=conf.get(options.CLEANUP_STRATEGY_FIXED_DELAY_DELAY).total_seconds(),
            max_delay_s=0.0,
        )
    return CleanupStrategySettings(
        "exponential-delay",
        attempts=conf.get(options.CLEANUP_STRATEGY_EXPONENTIAL_DELAY_ATTEMPTS),
        delay_s=conf.get(options.CLEANUP_STRATEGY_EXPONENTIAL_DELAY_INITIAL_BACKOFF).total_seconds(),
        max_delay_s=conf.get(options.CLEANUP_STRATEGY_EXPONENTIAL_DELAY_MAX_BACKOFF).total_seconds(),
    )


def _checkpoint_dir(conf: Configuration) -> str:
    configured = conf.get(options.CHECKPOINTS_DIRECTORY)
    if configured:
        return configured.rstrip("/")
    storage_dir = conf.get(options.HA_STORAGE_DIR)
    if storage_dir:
        return f"{storage_dir.rstrip('/')}/checkpoints"
    # Not shared between processes: only good for a single JobManager without HA.
    return os.path.join(tempfile.gettempdir(), "standby-checkpoints")


def display_items(conf: Configuration) -> dict[str, str]:
    """All configured keys with secrets masked (for ``GET /jobmanager/config`` and logs)."""
    return {str(k): str(v) for k, v in conf.to_display_dict().items()}


def load_configuration(path: str | None, dynamic: list[str]) -> Configuration:
    """``Configuration.load(path, dynamic=...)``: the YAML file, then ``-D key=value`` overrides."""
    return Configuration.load(path, dynamic=dynamic)


def dynamic_properties(conf: Configuration) -> list[str]:
    """The configuration as ``-Dkey=value`` arguments (to start another process with the same settings)."""
    return conf.to_dynamic_properties()
