"""``ConfigOption``: a typed configuration key with default, deprecated keys and description (Flink's ConfigOption)."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar, overload

from ._errors import ConfigurationError
from ._parsing import (
    ValueKind,
    ValueParseError,
    convert_value,
    describe_expected,
    stringify_value,
    type_display_name,
    value_kind,
)

__all__ = ["ConfigOption", "is_sensitive_key", "mask_value"]

T = TypeVar("T")
V = TypeVar("V")

#: Shown instead of the value of a secret option in messages, reprs and logs.
MASK: Final = "******"

# Substrings that mark a key as holding a secret, after Flink's GlobalConfiguration.isSensitive.
_SENSITIVE_KEY_PARTS: Final = (
    "password",
    "secret",
    "token",
    "apikey",
    "api-key",
    "auth-params",
    "authorization",
    "jaas.config",
    "basic-auth",
)


def is_sensitive_key(key: str) -> bool:
    """Whether values under ``key`` must not be shown (passwords, tokens, ZooKeeper authorization ...)."""
    lowered = key.lower()
    return any(part in lowered for part in _SENSITIVE_KEY_PARTS)


def mask_value(key: str, value: object) -> object:
    """``value``, or the mask if ``key`` is sensitive."""
    return MASK if is_sensitive_key(key) else value


@dataclass(frozen=True, init=False)
class ConfigOption(Generic[T]):
    """A typed configuration option, after Flink's ``ConfigOption``.

    ``ConfigOption(key="heartbeat.timeout", type=timedelta, default=timedelta(seconds=50))`` is a
    ``ConfigOption[timedelta]``; without a default (``default=None``) it is a ``ConfigOption[timedelta | None]``,
    so ``Configuration.get`` is typed ``timedelta`` or ``timedelta | None`` accordingly.

    Supported ``type``: ``str``, ``int``, ``float``, ``bool``, ``timedelta``, ``MemorySize``, ``list[str]``,
    ``dict[str, str]`` and ``enum.Enum`` subclasses (matched by name, case-insensitively).
    ``choices`` restricts a ``str`` option to the given values (case-insensitive; ``get`` returns the spelling
    in ``choices``). ``validator`` gets the converted value and returns None if fine, else what is expected
    (e.g. ``"expected a port between 0 and 65535"``). ``secret`` masks the value in messages and reprs.
    ``default_description`` documents a default that is computed elsewhere (when ``default`` is None).
    """

    key: str
    type: Any
    default: T
    deprecated_keys: tuple[str, ...]
    description: str
    choices: tuple[str, ...] | None
    secret: bool
    default_description: str | None
    validator: Callable[[Any], str | None] | None = field(compare=False, repr=False)

    @overload
    def __init__(
        self: ConfigOption[V],
        key: str,
        type: builtins.type[V],
        default: V,
        *,
        deprecated_keys: Sequence[str] = (),
        description: str = "",
        choices: Sequence[str] | None = None,
        secret: bool = False,
        default_description: str | None = None,
        validator: Callable[[V], str | None] | None = None,
    ) -> None: ...

    @overload
    def __init__(
        self: ConfigOption[V | None],
        key: str,
        type: builtins.type[V],
        default: None = None,
        *,
        deprecated_keys: Sequence[str] = (),
        description: str = "",
        choices: Sequence[str] | None = None,
        secret: bool = False,
        default_description: str | None = None,
        validator: Callable[[V], str | None] | None = None,
    ) -> None: ...

    def __init__(
        self,
        key: str,
        type: Any,
        default: Any = None,
        *,
        deprecated_keys: Sequence[str] = (),
        description: str = "",
        choices: Sequence[str] | None = None,
        secret: bool = False,
        default_description: str | None = None,
        validator: Callable[[Any], str | None] | None = None,
    ) -> None:
        if not key or key != key.strip():
            raise ValueError(
                f"Invalid option key {key!r}: it must be non-empty without surrounding whitespace"
            )
        kind = value_kind(type)  # TypeError for unsupported types
        if isinstance(deprecated_keys, str):
            raise TypeError(
                f"deprecated_keys of '{key}' must be a sequence of keys, not the string {deprecated_keys!r}"
            )
        if choices is not None:
            if kind is not ValueKind.STRING:
                raise TypeError(f"choices are only supported for str options, not for '{key}'")
            if isinstance(choices, str) or not choices:
                raise TypeError(f"choices of '{key}' must be a non-empty sequence of strings")
        set_ = object.__setattr__
        set_(self, "key", key)
        set_(self, "type", type)
        set_(self, "default", default)
        set_(self, "deprecated_keys", tuple(deprecated_keys))
        set_(self, "description", description)
        set_(self, "choices", None if choices is None else tuple(choices))
        set_(self, "secret", secret)
        set_(self, "default_description", default_description)
        set_(self, "validator", validator)
        if default is not None:
            # Catch a wrong default at import time rather than at the first get().
            try:
                self.convert(default)
            except ConfigurationError as e:
                raise ValueError(f"Invalid default of option '{key}': {e}") from None

    def __hash__(self) -> int:
        # Defaults may be lists or dicts (unhashable); the key identifies an option.
        return hash((ConfigOption, self.key))

    # ----------------------------------------------------------------------------------------------------------

    @property
    def has_default(self) -> bool:
        """Whether the option has a default value (``default is not None``)."""
        return self.default is not None

    @property
    def all_keys(self) -> tuple[str, ...]:
        """The key followed by the deprecated keys, in lookup order."""
        return (self.key, *self.deprecated_keys)

    @property
    def kind(self) -> ValueKind:
        """The kind of value (String, Duration, Map ...)."""
        return value_kind(self.type)

    @property
    def is_map(self) -> bool:
        """Whether this is a ``dict[str, str]`` option (which may also be given as prefixed keys ``key.k: v``)."""
        return self.kind is ValueKind.MAP

    @property
    def is_sensitive(self) -> bool:
        """Whether the value must be masked when shown."""
        return self.secret or is_sensitive_key(self.key)

    @property
    def type_name(self) -> str:
        """The type as shown in the docs: String, Integer, Boolean, Duration, MemorySize, List<String>, Map, Enum."""
        return type_display_name(self.type)

    def describe_expected(self) -> str:
        """What a valid value looks like, as used in error messages."""
        if self.choices is not None:
            return "expected one of " + ", ".join(f"'{c}'" for c in self.choices) + " (case-insensitive)"
        return describe_expected(self.type)

    def convert(self, raw: object, *, found_under: str | None = None) -> T:
        """Convert a raw value (string, YAML scalar/list/map or typed value) into this option's type.

        Raises ConfigurationError naming ``found_under`` (the key the value was read from; default: ``key``),
        the value and what is accepted.
        """
        try:
            value = convert_value(raw, self.type)
        except ValueParseError as e:
            raise self._invalid(raw, found_under, e.detail, self.describe_expected()) from None
        if self.choices is not None:
            lowered = str(value).strip().lower()
            for choice in self.choices:
                if choice.lower() == lowered:
                    value = choice
                    break
            else:
                raise self._invalid(raw, found_under, None, self.describe_expected())
        if self.validator is not None:
            problem = self.validator(value)
            if problem is not None:
                raise self._invalid(raw, found_under, None, problem)
        result: T = value
        return result

    def format_value(self, value: object) -> str:
        """The string form of a value of this option (Flink forms: '10 s', '64 mb', 'a;b', 'k:v')."""
        return stringify_value(value)

    def _invalid(
        self, raw: object, found_under: str | None, detail: str | None, expected: str
    ) -> ConfigurationError:
        where_key = found_under or self.key
        where = f"'{where_key}'"
        if where_key != self.key:
            where += f" (deprecated key of '{self.key}')"
        if self.is_sensitive or is_sensitive_key(where_key):
            shown: str = MASK
            detail = None  # details quote parts of the value
        else:
            shown = stringify_value(raw)
            if len(shown) > 200:
                shown = shown[:200] + "..."
        message = f"Invalid value '{shown}' for {where}: " + (f"{detail}; " if detail else "") + expected
        return ConfigurationError(message, key=where_key, value=shown)
