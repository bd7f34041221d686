"""The runtime's settings, read once from the typed options of ``standby.config.options`` (Flink's keys and defaults).

Every key the runtime reads is a registered option, so it is validated, documented in docs/configuration.md and
its errors name the key and the accepted form.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

from standby.config import Configuration, ConfigurationError, options
from standby.ha import high_availability_type

_INT_MAX = 2**31 - 1


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
    slot_timeout_s: float
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
            taskmanager_bind_host=conf.get(options.TASK_MANAGER_BIND_HOST).strip() or "127.0.0.1",
            taskmanager_rpc_port=parse_port(
                conf.get(options.TASK_MANAGER_RPC_PORT), options.TASK_MANAGER_RPC_PORT.key
            ),
            slot_timeout_s=_slot_timeout(conf),
            num_task_slots=conf.get(options.TASK_MANAGER_NUM_TASK_SLOTS),
            max_content_length=conf.get(options.REST_SERVER_MAX_CONTENT_LENGTH),
            auth_token=_auth_token(conf),
            rpc_timeout_s=conf.get(options.RPC_ASK_TIMEOUT).total_seconds(),
            heartbeat_interval_s=heartbeat_interval,
            heartbeat_timeout_s=heartbeat_timeout,
            # -1 disables the fast detection: only the timeout counts
            heartbeat_rpc_failure_threshold=threshold if threshold > 0 else _INT_MAX,
            slot_request_timeout_s=conf.get(options.SLOT_REQUEST_TIMEOUT).total_seconds(),
            restart=_restart_strategy(conf, checkpoint_interval is not None),
            cleanup=_cleanup_strategy(conf),
            checkpoint_interval_s=checkpoint_interval,
            checkpoint_timeout_s=conf.get(options.CHECKPOINTING_TIMEOUT).total_seconds(),
            checkpoints_retained=conf.get(options.CHECKPOINTS_NUM_RETAINED),
            checkpoint_dir=_checkpoint_dir(conf),
            default_parallelism=conf.get(options.PARALLELISM_DEFAULT),
            ha_type=ha_type,
        )


def _slot_timeout(conf: Configuration) -> float:
    # Flink: 'taskmanager.slot.timeout' falls back to 'pekko.ask.timeout' when only that one is set.
    option = options.TASK_MANAGER_SLOT_TIMEOUT
    if not conf.contains(option) and conf.contains(options.RPC_ASK_TIMEOUT):
        option = options.RPC_ASK_TIMEOUT
    return conf.get(option).total_seconds()


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
            attempts=conf.get(options.RESTART_STRATEGY_EXPONENTIAL_DELAY_ATTEMPTS),
            delay_s=conf.get(options.RESTART_STRATEGY_EXPONENTIAL_DELAY_INITIAL_BACKOFF).total_seconds(),
            max_delay_s=conf.get(options.RESTART_STRATEGY_EXPONENTIAL_DELAY_MAX_BACKOFF).total_seconds(),
            multiplier=conf.get(options.RESTART_STRATEGY_EXPONENTIAL_DELAY_BACKOFF_MULTIPLIER),
            jitter=conf.get(options.RESTART_STRATEGY_EXPONENTIAL_DELAY_JITTER_FACTOR),
            reset_threshold_s=conf.get(
                options.RESTART_STRATEGY_EXPONENTIAL_DELAY_RESET_BACKOFF_THRESHOLD
            ).total_seconds(),
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
