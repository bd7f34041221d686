"""``Configuration``: flat key/value configuration with typed access, YAML loading and ``-D`` overrides."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar, cast

import yaml

from ._errors import ConfigurationError
from ._option import ConfigOption, mask_value
from ._parsing import stringify_value, yaml_safe_load

__all__ = ["CONFIG_ENV_VAR", "CONFIG_FILE_NAME", "Configuration", "validate"]

T = TypeVar("T")

_LOG = logging.getLogger("standby.config")

#: Environment variable naming the configuration file (or a directory holding ``config.yaml``), used by
#: ``Configuration.load`` when no path is given (our counterpart of Flink's FLINK_CONF_DIR).
CONFIG_ENV_VAR: Final = "STANDBY_CONFIG"
#: File looked for when a directory is given, as in Flink 2.x.
CONFIG_FILE_NAME: Final = "config.yaml"


def _flatten(data: Mapping[Any, Any], prefix: str, out: dict[str, object]) -> None:
    """Flatten nested maps into dotted keys, as Flink 2.x does for config.yaml; None values mean 'not set'."""
    for raw_key, value in data.items():
        key_part = stringify_value(raw_key).strip()
        key = f"{prefix}.{key_part}" if prefix else key_part
        if isinstance(value, Mapping):
            _flatten(value, key, out)
        elif value is not None:
            if isinstance(value, tuple):
                value = list(value)
            # A later duplicate (e.g. a flat key after the same key written nested) wins, as in a YAML mapping.
            out.pop(key, None)
            out[key] = value


class Configuration:
    """A flat map of Flink-style keys (``high-availability.type``) to raw values, read through ``ConfigOption``.

    Raw values are strings, YAML scalars or lists, or typed values stored by ``set``. ``get`` converts on every
    read, so a bad value surfaces as a ConfigurationError naming the key when it is used (and ``validate()``
    finds them all up front). Unknown keys are kept (Flink is lenient); ``unknown_keys()`` lists them.
    """

    __slots__ = ("_data", "_warned_deprecated")

    def __init__(self, data: Mapping[str, Any] | Configuration | None = None) -> None:
        self._data: dict[str, object] = {}
        self._warned_deprecated: set[str] = set()
        if isinstance(data, Configuration):
            self._data.update(data._data)
            # A copy has already warned about the same deprecated keys; do not repeat the warning.
            self._warned_deprecated.update(data._warned_deprecated)
        elif data is not None:
            _flatten(data, "", self._data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Configuration:
        """A configuration from a (possibly nested) mapping; nested maps are flattened with '.'."""
        return cls(data)

    # ---------------------------------------------------------------------------------------------------- loading

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str] | None = None,
        dynamic: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> Configuration:
        """Load a YAML configuration file, then apply ``-D key=value`` overrides.

        ``path`` may be a file or a directory containing ``config.yaml``. If it is None, the file named by the
        ``STANDBY_CONFIG`` variable in ``env`` (default: ``os.environ``) is loaded, else the configuration starts
        empty. Flat keys (``a.b.c: v``) and nested maps are both accepted, as in Flink 2.x's config.yaml.
        ``dynamic`` holds ``key=value`` strings (a leading ``-D`` is allowed) that override the file.
        """
        conf = cls()
        if path is None:
            environment = os.environ if env is None else env
            env_path = environment.get(CONFIG_ENV_VAR)
            if env_path:
                conf._load_file(Path(env_path), origin=f"{CONFIG_ENV_VAR}={env_path}")
        else:
            conf._load_file(Path(path), origin=None)
        for argument in dynamic:
            key, value = _parse_dynamic_property(argument)
            conf._data.pop(key, None)
            conf._data[key] = value
        return conf

    def _load_file(self, path: Path, origin: str | None) -> None:
        named = f" (from {origin})" if origin else ""
        if path.is_dir():
            path = path / CONFIG_FILE_NAME
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigurationError(
                f"Configuration file '{path}'{named} does not exist; pass an existing YAML file or directory "
                f"containing {CONFIG_FILE_NAME}",
                source=str(path),
            ) from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigurationError(
                f"Cannot read configuration file '{path}'{named}: {e}", source=str(path)
            ) from None
        try:
            loaded = yaml_safe_load(text)
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = " ".join(p for p in (e.context, e.problem) if p)
            raise ConfigurationError(
                f"Invalid YAML in configuration file '{path}'{where}: {problem}; fix the syntax (note: a value "
                "containing ': ' or starting with a special character such as '*', '&', '[' needs quotes)",
                source=str(path),
            ) from None
        except yaml.YAMLError as e:
            raise ConfigurationError(
                f"Invalid YAML in configuration file '{path}': {e}", source=str(path)
            ) from None
        if loaded is None:
            return
        if not isinstance(loaded, Mapping):
            raise ConfigurationError(
                f"Configuration file '{path}' must contain a YAML mapping of keys to values, "
                f"found a {type(loaded).__name__}",
                source=str(path),
            )
        _flatten(loaded, "", self._data)

    # ---------------------------------------------------------------------------------------------------- typed access

    def get(self, option: ConfigOption[T]) -> T:
        """The value of ``option``: from its key, else from a deprecated key (logged once), else its default.

        Raises ConfigurationError (naming the key, the value and what is accepted) if the value is invalid.
        """
        found = self._lookup(option)
        if found is None:
            return self._default(option)
        key, raw = found
        return option.convert(raw, found_under=key)

    def get_optional(self, option: ConfigOption[T]) -> T | None:
        """The configured value of ``option``, or None if neither its key nor a deprecated key is set."""
        found = self._lookup(option)
        if found is None:
            return None
        key, raw = found
        return option.convert(raw, found_under=key)

    def contains(self, option: ConfigOption[Any]) -> bool:
        """Whether the option's key or one of its deprecated keys is set (for maps: also as prefixed keys)."""
        return any(self._raw_for_key(option, key) is not None for key in option.all_keys)

    def set(self, option: ConfigOption[T], value: T) -> Configuration:
        """Set ``option`` (validated now; ConfigurationError if invalid). ``None`` removes it. Returns self."""
        if value is None:
            self.remove(option)
            return self
        converted = option.convert(value)
        if option.is_map:
            # As Flink: an explicit map replaces any prefixed form 'key.k: v'.
            self._remove_prefixed(option.key)
        self._data.pop(option.key, None)
        self._data[option.key] = converted
        return self

    def set_string(self, key: str, value: str) -> Configuration:
        """Set a raw string value under ``key`` (no validation; it is checked when read). Returns self."""
        self._data.pop(key, None)
        self._data[key] = value
        return self

    def remove(self, option: ConfigOption[Any]) -> bool:
        """Remove the option's key and deprecated keys (and prefixed map entries); whether anything was removed."""
        removed = False
        for key in option.all_keys:
            if self._data.pop(key, None) is not None:
                removed = True
            if option.is_map:
                removed = self._remove_prefixed(key) or removed
        return removed

    def remove_key(self, key: str) -> bool:
        """Remove one raw key; whether it was present."""
        return self._data.pop(key, None) is not None

    # ---------------------------------------------------------------------------------------------------- raw access

    def get_raw(self, key: str) -> object | None:
        """The raw stored value under exactly ``key`` (no deprecated keys, no conversion), or None."""
        return self._data.get(key)

    def get_string(self, key: str, default: str | None = None) -> str | None:
        """The raw value under ``key`` as a string (Flink form for typed values), or ``default``."""
        raw = self._data.get(key)
        return default if raw is None else stringify_value(raw)

    def keys(self) -> list[str]:
        """All set keys, in insertion order."""
        return list(self._data)

    def to_dict(self) -> dict[str, str]:
        """All entries as strings (Flink forms: '10 s', 'a;b', 'k:v'), e.g. to pass to a subprocess as -D.

        ``Configuration(conf.to_dict())`` reads back the same typed values. Secrets are included: do not log it;
        use ``repr`` or ``to_display_dict`` for that.
        """
        return {key: stringify_value(value) for key, value in self._data.items()}

    def to_display_dict(self) -> dict[str, str]:
        """Like ``to_dict`` but with the values of sensitive keys (passwords, tokens ...) masked."""
        return {key: str(mask_value(key, value)) for key, value in self.to_dict().items()}

    def to_dynamic_properties(self) -> list[str]:
        """The entries as ``-Dkey=value`` arguments, which ``Configuration.load(dynamic=...)`` reads back."""
        return [f"-D{key}={value}" for key, value in self.to_dict().items()]

    def copy(self) -> Configuration:
        """An independent copy (raw values are shared; typed values are immutable or copied on read)."""
        return Configuration(self)

    def update(self, other: Configuration | Mapping[str, Any]) -> Configuration:
        """Add all entries of ``other`` (a Configuration or a possibly nested mapping), overriding. Returns self."""
        entries = other._data if isinstance(other, Configuration) else Configuration(other)._data
        for key, value in entries.items():
            self._data.pop(key, None)
            self._data[key] = value
        return self

    # ---------------------------------------------------------------------------------------------------- checks

    def unknown_keys(self, options: Iterable[ConfigOption[Any]] | None = None) -> list[str]:
        """Keys that belong to no registered option (default: ``options.ALL_OPTIONS``), for a CLI warning."""
        if options is None:
            from ._options import ALL_OPTIONS

            options = ALL_OPTIONS
        exact: set[str] = set()
        map_prefixes: list[str] = []
        for option in options:
            exact.update(option.all_keys)
            if option.is_map:
                map_prefixes.extend(f"{key}." for key in option.all_keys)
        return [
            key for key in self._data if key not in exact and not any(key.startswith(p) for p in map_prefixes)
        ]

    def validate(self, options: Iterable[ConfigOption[Any]] | None = None) -> list[ConfigurationError]:
        """Read every set option (default: all registered) and return the errors, empty if all values parse."""
        return validate(self, options)

    # ---------------------------------------------------------------------------------------------------- dunder

    def __contains__(self, item: object) -> bool:
        if isinstance(item, ConfigOption):
            return self.contains(item)
        return item in self._data

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._data))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Configuration):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Configuration({self.to_display_dict()!r})"

    # ---------------------------------------------------------------------------------------------------- internals

    def _raw_for_key(self, option: ConfigOption[Any], key: str) -> object | None:
        raw = self._data.get(key)
        if raw is None and option.is_map:
            # Flink's prefix map form: 'key.k1: v1' entries make up the map option 'key'.
            prefix = f"{key}."
            prefixed = {k[len(prefix) :]: v for k, v in self._data.items() if k.startswith(prefix)}
            if prefixed:
                return prefixed
        return raw

    def _lookup(self, option: ConfigOption[Any]) -> tuple[str, object] | None:
        raw = self._raw_for_key(option, option.key)
        if raw is not None:
            return option.key, raw
        for deprecated in option.deprecated_keys:
            raw = self._raw_for_key(option, deprecated)
            if raw is not None:
                if deprecated not in self._warned_deprecated:
                    self._warned_deprecated.add(deprecated)
                    _LOG.warning(
                        "Configuration key '%s' is deprecated; use '%s' instead.", deprecated, option.key
                    )
                return deprecated, raw
        return None

    @staticmethod
    def _default(option: ConfigOption[T]) -> T:
        default = option.default
        if isinstance(default, list | dict):
            # Never hand out the shared default object: a caller mutating it would change the option.
            return cast(T, default.copy())
        return default

    def _remove_prefixed(self, key: str) -> bool:
        prefix = f"{key}."
        doomed = [k for k in self._data if k.startswith(prefix)]
        for k in doomed:
            del self._data[k]
        return bool(doomed)


def _parse_dynamic_property(argument: str) -> tuple[str, str]:
    text = argument.strip()
    if text.startswith("-D"):
        text = text[2:].lstrip()
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigurationError(
            f"Malformed dynamic property '{argument}': expected key=value, e.g. -Dheartbeat.timeout=60s",
            source=argument,
        )
    return key, value


def validate(
    conf: Configuration, options: Iterable[ConfigOption[Any]] | None = None
) -> list[ConfigurationError]:
    """Check that every set option (default: all registered) has a valid value; return the errors found.

    Options that are not set are skipped (their defaults are valid by construction). Unknown keys are not errors;
    see ``Configuration.unknown_keys``.
    """
    if options is None:
        from ._options import ALL_OPTIONS

        options = ALL_OPTIONS
    errors: list[ConfigurationError] = []
    for option in options:
        try:
            conf.get_optional(option)
        except ConfigurationError as e:
            errors.append(e)
    return errors
