"""Reading the HA options from a ``Configuration`` (storage dir, cluster id, job result store, retention).

The options registry of ``standby.config`` is looked up by key, so this module works with the registered option
(typed, with its deprecated keys) when there is one, and falls back to reading the raw key otherwise.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from standby.config import ConfigOption, Configuration, ConfigurationError, options

HA_STORAGE_DIR_KEY = "high-availability.storageDir"
HA_CLUSTER_ID_KEY = "high-availability.cluster-id"
JOB_RESULT_STORE_STORAGE_PATH_KEY = "job-result-store.storage-path"
JOB_RESULT_STORE_DELETE_ON_COMMIT_KEY = "job-result-store.delete-on-commit"
CHECKPOINTS_NUM_RETAINED_KEY = "execution.checkpointing.num-retained"
#: Flink's default of ``high-availability.cluster-id``.
DEFAULT_CLUSTER_ID = "/default"

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|milli|millis|s|sec|secs|min|m|h)?\s*$", re.IGNORECASE)
_DURATION_UNITS_MS = {
    None: 1.0,
    "ms": 1.0,
    "milli": 1.0,
    "millis": 1.0,
    "s": 1000.0,
    "sec": 1000.0,
    "secs": 1000.0,
    "min": 60_000.0,
    "m": 60_000.0,
    "h": 3_600_000.0,
}


def _registered_option(key: str) -> ConfigOption[Any] | None:
    for value in vars(options).values():
        if isinstance(value, ConfigOption) and value.key == key:
            return value
    return None


def config_value(config: Configuration, key: str) -> Any:
    """The value under ``key``: typed if the option is registered, else the raw value (None when unset)."""
    option = _registered_option(key)
    if option is None:
        option = ConfigOption(key, str)
    return config.get(option)


def config_str(config: Configuration, key: str, default: str | None = None) -> str | None:
    value = config_value(config, key)
    if value is None:
        return default
    text = str(value).strip()
    return text if text else default


def config_bool(config: Configuration, key: str, default: bool) -> bool:
    value = config_value(config, key)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0"):
        return False
    raise ConfigurationError(f"Invalid value {value!r} of '{key}': expected true or false")


def config_int(config: Configuration, key: str, default: int) -> int:
    value = config_value(config, key)
    if value is None:
        return default
    try:
        return int(str(value).strip())
    except ValueError:
        raise ConfigurationError(f"Invalid value {value!r} of '{key}': expected an integer") from None


def config_duration_seconds(config: Configuration, key: str, default_seconds: float) -> float:
    """A duration option in seconds; accepts a ``timedelta``, a number of milliseconds or ``"100 ms"``/``"1 s"``."""
    value = config_value(config, key)
    if value is None:
        return default_seconds
    if isinstance(value, timedelta):
        return value.total_seconds()
    match = _DURATION_RE.match(str(value))
    if match is None:
        raise ConfigurationError(
            f"Invalid value {value!r} of '{key}': expected a duration such as '100 ms' or '1 s'"
        )
    unit = match.group(2).lower() if match.group(2) else None
    return float(match.group(1)) * _DURATION_UNITS_MS[unit] / 1000.0


def cluster_id(config: Configuration) -> str:
    """``high-availability.cluster-id`` with leading and trailing slashes trimmed (``/default`` -> ``default``)."""
    raw = config_str(config, HA_CLUSTER_ID_KEY, DEFAULT_CLUSTER_ID) or DEFAULT_CLUSTER_ID
    trimmed = raw.strip("/")
    if not trimmed:
        raise ConfigurationError(
            f"Invalid value {raw!r} of '{HA_CLUSTER_ID_KEY}': the cluster id must not be empty"
        )
    return trimmed


def storage_dir(config: Configuration) -> str:
    """``high-availability.storageDir`` without trailing slashes; a clear error when it is not set."""
    raw = config_str(config, HA_STORAGE_DIR_KEY)
    if raw is None:
        raise ConfigurationError(
            f"'{HA_STORAGE_DIR_KEY}' is not set: high availability needs a storage directory for its payloads "
            "(execution plans, checkpoint metadata, blobs, job results). Set it to a path or URL, "
            "e.g. file:///var/lib/standby/ha."
        )
    stripped = raw.rstrip("/")
    if not stripped or stripped.endswith(":"):
        # "/" or "s3://" alone: keep the scheme's separator
        stripped = raw if raw.endswith("//") else raw.rstrip("/") + "/"
    return stripped


def ha_storage_path(config: Configuration) -> str:
    """Flink's ``getClusterHighAvailableStoragePath``: ``<high-availability.storageDir>/<cluster-id>``."""
    base = storage_dir(config)
    separator = "" if base.endswith("/") else "/"
    return f"{base}{separator}{cluster_id(config)}"


def max_retained_checkpoints(config: Configuration) -> int:
    """Flink's ``getMaximumNumberOfRetainedCheckpoints``: ``execution.checkpointing.num-retained``, <= 0 -> 1."""
    value = config_int(config, CHECKPOINTS_NUM_RETAINED_KEY, 1)
    return value if value > 0 else 1
