"""Reading the HA options from a ``Configuration``: storage dir, cluster id, checkpoint retention."""

from __future__ import annotations

import logging

from standby.config import Configuration, ConfigurationError, options

_log = logging.getLogger(__name__)


def cluster_id(config: Configuration) -> str:
    """``high-availability.cluster-id`` with leading and trailing slashes trimmed (``/default`` -> ``default``)."""
    raw = config.get(options.HA_CLUSTER_ID)
    trimmed = raw.strip().strip("/")
    if not trimmed:
        raise ConfigurationError(
            f"Invalid value {raw!r} for '{options.HA_CLUSTER_ID.key}': the cluster id must not be empty"
        )
    return trimmed


def storage_dir(config: Configuration) -> str:
    """``high-availability.storageDir`` without trailing slashes; a clear error when it is not set."""
    raw = config.get(options.HA_STORAGE_DIR)
    if raw is None or not raw.strip():
        raise ConfigurationError(
            f"'{options.HA_STORAGE_DIR.key}' is not set: high availability needs a storage directory for its "
            "payloads (execution plans, checkpoint metadata, blobs, job results). Set it to a path or URL, "
            "e.g. file:///var/lib/standby/ha."
        )
    text = raw.strip()
    stripped = text.rstrip("/")
    if not stripped:
        return "/"
    if stripped.endswith(":"):  # a bare "s3://": keep the scheme separator
        return stripped + "//"
    return stripped


def ha_storage_path(config: Configuration) -> str:
    """Flink's ``getClusterHighAvailableStoragePath``: ``<high-availability.storageDir>/<cluster-id>``."""
    base = storage_dir(config)
    separator = "" if base.endswith("/") else "/"
    return f"{base}{separator}{cluster_id(config)}"


def max_retained_checkpoints(config: Configuration) -> int:
    """Flink's ``getMaximumNumberOfRetainedCheckpoints``: ``execution.checkpointing.num-retained``, <= 0 -> 1."""
    value = config.get(options.CHECKPOINTS_NUM_RETAINED)
    if value <= 0:
        _log.warning(
            "The configured '%s' is %d (not greater than 0); using the default of 1",
            options.CHECKPOINTS_NUM_RETAINED.key,
            value,
        )
        return 1
    return value
