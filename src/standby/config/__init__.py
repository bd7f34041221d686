"""Typed configuration (temporary minimal stub; replaced by the full options registry)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class ConfigurationError(ValueError):
    pass


@dataclass(frozen=True)
class ConfigOption(Generic[T]):
    key: str
    type: type
    default: T | None = None


class Configuration:
    def __init__(self, values: dict[str, Any] | None = None) -> None:
        self._values = dict(values or {})

    def get(self, option: ConfigOption[T]) -> T:
        raw = self._values.get(option.key)
        if raw is None:
            return option.default  # type: ignore[return-value]
        return option.type(raw)  # type: ignore[no-any-return]


class options:
    HA_TYPE = ConfigOption("high-availability.type", str, "NONE")
    JOB_MANAGER_RPC_ADDRESS = ConfigOption("jobmanager.rpc.address", str, "localhost")
    JOB_MANAGER_RPC_PORT = ConfigOption("jobmanager.rpc.port", int, 6123)
    REST_ADDRESS = ConfigOption("rest.address", str, "localhost")
    REST_PORT = ConfigOption("rest.port", int, 8081)
