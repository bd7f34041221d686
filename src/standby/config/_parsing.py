"""Parsing and formatting of configuration values: durations, memory sizes, booleans, enums, lists and maps.

The textual forms follow Flink's ``ConfigurationUtils`` / ``TimeUtils`` / ``MemorySize`` /
``StructuredOptionsSplitter`` so a Flink ``config.yaml`` means the same thing here.
"""

from __future__ import annotations

import enum
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

import yaml

from ._errors import ConfigurationError

__all__ = [
    "MemorySize",
    "ValueKind",
    "ValueParseError",
    "convert_value",
    "describe_expected",
    "format_duration",
    "format_list",
    "format_map",
    "parse_bool",
    "parse_duration",
    "parse_list",
    "parse_map",
    "parse_memory",
    "parse_port_range",
    "stringify_value",
    "type_display_name",
    "value_kind",
    "yaml_safe_load",
]

# Java's Long.MAX_VALUE: Flink rejects numbers that do not fit a long ("numeric overflow").
_LONG_MAX: Final = 2**63 - 1


class ValueParseError(Exception):
    """Internal: a raw value could not be converted; ``detail`` says why (or is None for 'not of that form')."""

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or "")
        self.detail = detail


# --------------------------------------------------------------------------------------------------------------
# Value kinds


class ValueKind(enum.Enum):
    """The supported option types."""

    STRING = "String"
    INTEGER = "Integer"
    FLOAT = "Double"
    BOOLEAN = "Boolean"
    DURATION = "Duration"
    MEMORY = "MemorySize"
    LIST = "List<String>"
    MAP = "Map"
    ENUM = "Enum"


def value_kind(value_type: object) -> ValueKind:
    """Classify an option's ``type`` (``str``, ``int``, ``list[str]``, an Enum subclass ...); TypeError if unsupported."""
    # Order matters: bool is a subclass of int.
    simple: dict[object, ValueKind] = {
        str: ValueKind.STRING,
        bool: ValueKind.BOOLEAN,
        int: ValueKind.INTEGER,
        float: ValueKind.FLOAT,
        timedelta: ValueKind.DURATION,
        MemorySize: ValueKind.MEMORY,
    }
    # isinstance(list[str], type) is False on 3.11+, so generic aliases fall through to get_origin below.
    if isinstance(value_type, type):
        if value_type in simple:
            return simple[value_type]
        if issubclass(value_type, enum.Enum):
            return ValueKind.ENUM
    origin = typing.get_origin(value_type)
    args = typing.get_args(value_type)
    if origin is list and args == (str,):
        return ValueKind.LIST
    if origin is dict and args == (str, str):
        return ValueKind.MAP
    raise TypeError(
        f"Unsupported option type {value_type!r}: use str, int, float, bool, timedelta, MemorySize, "
        "list[str], dict[str, str] or an enum.Enum subclass"
    )


def type_display_name(value_type: object) -> str:
    """Name of the type as shown in the documentation table (Flink's names: String, Duration, Map ...)."""
    kind = value_kind(value_type)
    if kind is ValueKind.ENUM:
        assert isinstance(value_type, type)
        assert issubclass(value_type, enum.Enum)
        return "Enum (" + ", ".join(m.name for m in value_type) + ")"
    return str(kind.value)


_EXPECTED: Final[dict[ValueKind, str]] = {
    ValueKind.STRING: "expected a string",
    ValueKind.INTEGER: "expected an integer such as '3' or '-1'",
    ValueKind.FLOAT: "expected a number such as '0.5' or '3'",
    ValueKind.BOOLEAN: "expected 'true' or 'false' (case-insensitive)",
    ValueKind.DURATION: "expected a duration such as '50 s', '500 ms', '1 min' or a number of milliseconds",
    ValueKind.MEMORY: "expected a memory size such as '64 mb', '512 kb', '1 gb' or a number of bytes",
    ValueKind.LIST: "expected a list of strings such as 'a;b', 'a,b', '[a, b]' or a YAML list",
    ValueKind.MAP: "expected a map such as 'k1:v1,k2:v2', '{k1: v1}' or a YAML map",
}


def describe_expected(value_type: object) -> str:
    """What a value of this type must look like, for error messages ("expected a duration such as ...")."""
    kind = value_kind(value_type)
    if kind is ValueKind.ENUM:
        assert isinstance(value_type, type)
        assert issubclass(value_type, enum.Enum)
        names = ", ".join(f"'{m.name.lower()}'" for m in value_type)
        return f"expected one of {names} (case-insensitive)"
    return _EXPECTED[kind]


# --------------------------------------------------------------------------------------------------------------
# Durations (Flink TimeUtils)

_MICROS_PER: Final[dict[str, int]] = {
    "d": 86_400_000_000,
    "h": 3_600_000_000,
    "min": 60_000_000,
    "s": 1_000_000,
    "ms": 1_000,
    "us": 1,
}

# Labels of Flink's TimeUtils.TimeUnit (incl. 'm' for minutes, added in later 1.x) plus 'us' as an ASCII spelling of
# 'µs'. Values are nanoseconds per unit so that 'ns' can be expressed exactly before rounding to microseconds.
_DURATION_UNITS_NANOS: Final[dict[str, int]] = {
    **dict.fromkeys(("d", "day", "days"), 86_400 * 10**9),
    **dict.fromkeys(("h", "hour", "hours"), 3_600 * 10**9),
    **dict.fromkeys(("min", "m", "minute", "minutes"), 60 * 10**9),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 10**9),
    **dict.fromkeys(("ms", "milli", "millis", "millisecond", "milliseconds"), 10**6),
    **dict.fromkeys(
        # U+00B5 MICRO SIGN and U+03BC GREEK SMALL LETTER MU look alike; accept both.
        ("\u00b5s", "\u03bcs", "us", "micro", "micros", "microsecond", "microseconds"),
        10**3,
    ),
    **dict.fromkeys(("ns", "nano", "nanos", "nanosecond", "nanoseconds"), 1),
}

_DURATION_UNIT_HELP: Final = "d, h, min (or m), s, ms, us (or µs), ns, or their long forms such as 'seconds'"


def _split_number(text: str) -> tuple[int, str]:
    """Split '<digits><optional space><unit>' like Flink's parsers; ValueParseError if it does not fit."""
    trimmed = text.strip()
    if not trimmed:
        raise ValueParseError("the value is empty")
    pos = 0
    while pos < len(trimmed) and "0" <= trimmed[pos] <= "9":
        pos += 1
    if pos == 0:
        raise ValueParseError(None)
    number = int(trimmed[:pos])
    if number > _LONG_MAX:
        raise ValueParseError(f"the number '{trimmed[:pos]}' is too large (numeric overflow)")
    return number, trimmed[pos:].strip().lower()


def _parse_duration(text: str) -> timedelta:
    number, unit = _split_number(text)
    if not unit:
        nanos_per_unit = 10**6  # a bare number is milliseconds (Flink)
    else:
        try:
            nanos_per_unit = _DURATION_UNITS_NANOS[unit]
        except KeyError:
            raise ValueParseError(f"unknown time unit '{unit}' (known: {_DURATION_UNIT_HELP})") from None
    nanos = number * nanos_per_unit
    # timedelta has microsecond resolution: sub-microsecond values are rounded to the nearest microsecond.
    micros = (nanos + 500) // 1000
    try:
        return timedelta(microseconds=micros)
    except OverflowError:
        raise ValueParseError("the duration is too large") from None


def parse_duration(text: str) -> timedelta:
    """Parse a Flink duration: a number with an optional unit and optional space, e.g. ``'50 s'``, ``'500ms'``.

    Units (case-insensitive): d/day/days, h/hour/hours, min/m/minute/minutes, s/sec/secs/second/seconds,
    ms/milli/millis/millisecond/milliseconds, us/µs/micro/micros/microsecond/microseconds,
    ns/nano/nanos/nanosecond/nanoseconds. A bare number means milliseconds. Raises ConfigurationError.
    """
    try:
        return _parse_duration(text)
    except ValueParseError as e:
        raise ConfigurationError(
            _invalid_message(f"duration '{text}'", e.detail, _EXPECTED[ValueKind.DURATION]), value=text
        ) from None


def format_duration(value: timedelta) -> str:
    """Format with the largest unit that represents the duration exactly (Flink's formatWithHighestUnit): '10 s'."""
    micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    if micros < 0:
        return "-" + format_duration(-value)
    if micros == 0:
        return "0 ms"
    for unit, per in _MICROS_PER.items():
        if micros % per == 0:
            return f"{micros // per} {unit}"
    raise AssertionError("unreachable: 'us' divides every duration")


# --------------------------------------------------------------------------------------------------------------
# Memory sizes (Flink MemorySize)

_MEMORY_UNITS: Final[dict[str, int]] = {
    **dict.fromkeys(("b", "bytes"), 1),
    **dict.fromkeys(("k", "kb", "kibibytes"), 1024),
    **dict.fromkeys(("m", "mb", "mebibytes"), 1024**2),
    **dict.fromkeys(("g", "gb", "gibibytes"), 1024**3),
    **dict.fromkeys(("t", "tb", "tebibytes"), 1024**4),
}
_MEMORY_FORMAT_UNITS: Final = (("tb", 1024**4), ("gb", 1024**3), ("mb", 1024**2), ("kb", 1024))


@dataclass(frozen=True, order=True)
class MemorySize:
    """An amount of memory in bytes, as Flink's ``MemorySize`` (units are powers of 1024).

    ``str()`` gives the largest exact unit, e.g. ``'10 mb'``, which ``MemorySize.parse`` reads back.
    """

    bytes: int

    def __post_init__(self) -> None:
        if isinstance(self.bytes, bool) or not isinstance(self.bytes, int):
            raise TypeError(f"MemorySize needs an int number of bytes, got {self.bytes!r}")
        if self.bytes < 0:
            raise ValueError(f"MemorySize cannot be negative, got {self.bytes}")

    @classmethod
    def parse(cls, text: str) -> MemorySize:
        """Parse '64 mb', '512k', '1 gb' or a bare number of bytes. Raises ConfigurationError."""
        return parse_memory(text)

    @classmethod
    def of_kibibytes(cls, n: int) -> MemorySize:
        return cls(n * 1024)

    @classmethod
    def of_mebibytes(cls, n: int) -> MemorySize:
        return cls(n * 1024**2)

    @classmethod
    def of_gibibytes(cls, n: int) -> MemorySize:
        return cls(n * 1024**3)

    @property
    def kibibytes(self) -> int:
        """Whole kibibytes (rounded down)."""
        return self.bytes // 1024

    @property
    def mebibytes(self) -> int:
        """Whole mebibytes (rounded down)."""
        return self.bytes // 1024**2

    @property
    def gibibytes(self) -> int:
        """Whole gibibytes (rounded down)."""
        return self.bytes // 1024**3

    def __int__(self) -> int:
        return self.bytes

    def __str__(self) -> str:
        for unit, per in _MEMORY_FORMAT_UNITS:
            if self.bytes and self.bytes % per == 0:
                return f"{self.bytes // per} {unit}"
        return f"{self.bytes} bytes"


def _parse_memory(text: str) -> MemorySize:
    number, unit = _split_number(text)
    if not unit:
        multiplier = 1
    else:
        try:
            multiplier = _MEMORY_UNITS[unit]
        except KeyError:
            raise ValueParseError(
                f"unknown memory unit '{unit}' (known: b, k/kb, m/mb, g/gb, t/tb and "
                "bytes/kibibytes/mebibytes/gibibytes/tebibytes)"
            ) from None
    total = number * multiplier
    if total > _LONG_MAX:
        raise ValueParseError("the memory size is too large (numeric overflow)")
    return MemorySize(total)


def parse_memory(text: str) -> MemorySize:
    """Parse a Flink memory size: number + optional unit (b, k/kb, m/mb, g/gb, t/tb; 1024 multiples), bare = bytes."""
    try:
        return _parse_memory(text)
    except ValueParseError as e:
        raise ConfigurationError(
            _invalid_message(f"memory size '{text}'", e.detail, _EXPECTED[ValueKind.MEMORY]), value=text
        ) from None


# --------------------------------------------------------------------------------------------------------------
# Booleans


def parse_bool(text: str) -> bool:
    """'true'/'false', case-insensitive (Flink accepts nothing else). Raises ConfigurationError."""
    try:
        return _convert_bool(text)
    except ValueParseError:
        raise ConfigurationError(
            _invalid_message(f"boolean '{text}'", None, _EXPECTED[ValueKind.BOOLEAN]), value=text
        ) from None


def _convert_bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        lowered = raw.strip().lower()
        if lowered == "true":
            return True
        if lowered == "false":
            return False
    raise ValueParseError(None)


# --------------------------------------------------------------------------------------------------------------
# Lists and maps (Flink StructuredOptionsSplitter, with ',' accepted besides ';' for lists)


@dataclass(frozen=True)
class _Token:
    text: str
    quoted: bool


def _split_escaped(text: str, delimiters: str, maxsplit: int = -1) -> list[_Token]:
    """Split on any of ``delimiters``; a token may be quoted with ' or " (a doubled quote is a literal quote).

    Like Flink's StructuredOptionsSplitter, but whitespace around tokens is ignored and a quote inside an unquoted
    token is taken literally. After ``maxsplit`` splits the rest is one token (whose quoting is still honoured).
    """
    tokens: list[_Token] = []
    pos = 0
    n = len(text)
    while True:
        while pos < n and text[pos].isspace():
            pos += 1
        last = maxsplit >= 0 and len(tokens) >= maxsplit
        active = "" if last else delimiters
        if pos < n and text[pos] in "'\"":
            quote = text[pos]
            pos += 1
            chars: list[str] = []
            while True:
                if pos >= n:
                    raise ValueParseError(f"a quote ({quote}) is not closed")
                c = text[pos]
                if c == quote:
                    if pos + 1 < n and text[pos + 1] == quote:
                        chars.append(quote)
                        pos += 2
                        continue
                    pos += 1
                    break
                chars.append(c)
                pos += 1
            while pos < n and text[pos].isspace():
                pos += 1
            if pos < n and text[pos] not in active:
                raise ValueParseError(f"unexpected text after a closing quote at position {pos}")
            tokens.append(_Token("".join(chars), quoted=True))
        else:
            start = pos
            while pos < n and text[pos] not in active:
                pos += 1
            tokens.append(_Token(text[start:pos].strip(), quoted=False))
        if pos >= n:
            return tokens
        pos += 1  # skip the delimiter


def _needs_quoting(item: str, delimiters: str) -> bool:
    return item == "" or item != item.strip() or any(c in item for c in delimiters) or item[0] in "'\"[{"


def _quote(item: str, delimiters: str) -> str:
    if _needs_quoting(item, delimiters):
        return "'" + item.replace("'", "''") + "'"
    return item


def _scalar_to_str(raw: object) -> str:
    """Stringify one scalar (bool as 'true'/'false', durations and sizes in Flink form); ValueParseError if not one."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int | float):
        return repr(raw) if isinstance(raw, float) else str(raw)
    if isinstance(raw, timedelta):
        return format_duration(raw)
    if isinstance(raw, MemorySize):
        return str(raw)
    if isinstance(raw, enum.Enum):
        return raw.name
    raise ValueParseError(f"{type(raw).__name__} values are not accepted here")


def _parse_yaml_flow(text: str, what: type[list[Any]] | type[dict[Any, Any]]) -> object:
    try:
        loaded = yaml_safe_load(text)
    except yaml.YAMLError:
        raise ValueParseError(f"it is not a valid YAML {'list' if what is list else 'map'}") from None
    if not isinstance(loaded, what):
        raise ValueParseError(f"it is not a YAML {'list' if what is list else 'map'}")
    return loaded


def _convert_list(raw: object) -> list[str]:
    if isinstance(raw, str):
        stripped = raw.strip()
        if stripped.startswith("["):
            # Flink 2.x parses list values as standard YAML first ('[a, b]').
            raw = _parse_yaml_flow(stripped, list)
        else:
            return [t.text for t in _split_escaped(stripped, ";,") if t.quoted or t.text]
    if isinstance(raw, list | tuple):
        out: list[str] = []
        for item in raw:
            if item is None or isinstance(item, list | tuple | Mapping):
                raise ValueParseError("list items must be plain strings or numbers")
            out.append(_scalar_to_str(item))
        return out
    raise ValueParseError(None)


def parse_list(text: str) -> list[str]:
    """Parse 'a;b;c', 'a,b,c' or a YAML flow list '[a, b]'; items may be quoted ('a,b';c). Raises ConfigurationError."""
    try:
        return _convert_list(text)
    except ValueParseError as e:
        raise ConfigurationError(
            _invalid_message(f"list '{text}'", e.detail, _EXPECTED[ValueKind.LIST]), value=text
        ) from None


def format_list(items: typing.Iterable[object]) -> str:
    """Format a list in Flink's ';'-separated form, quoting items that need it; ``parse_list`` reads it back."""
    return ";".join(_quote(_scalar_to_str(i), ";,") for i in items)


def _read_token(text: str, pos: int, stops: str) -> tuple[_Token, int]:
    """Read one token at ``pos``: quoted (up to its closing quote) or unquoted (up to a stop character)."""
    n = len(text)
    while pos < n and text[pos].isspace():
        pos += 1
    if pos < n and text[pos] in "'\"":
        quote = text[pos]
        pos += 1
        chars: list[str] = []
        while True:
            if pos >= n:
                raise ValueParseError(f"a quote ({quote}) is not closed")
            if text[pos] == quote:
                if pos + 1 < n and text[pos + 1] == quote:
                    chars.append(quote)
                    pos += 2
                    continue
                return _Token("".join(chars), quoted=True), pos + 1
            chars.append(text[pos])
            pos += 1
    start = pos
    while pos < n and text[pos] not in stops:
        pos += 1
    return _Token(text[start:pos].strip(), quoted=False), pos


def _parse_map_text(text: str) -> dict[str, str]:
    """Parse Flink's 'k1:v1,k2:v2' form.

    Keys and values may be quoted (``'a,b':'c:d'``); an unquoted value runs to the next ',' so
    ``digest:user:pass`` is ``{'digest': 'user:pass'}``. Flink's own writer quotes a whole entry that contains a
    ',' (``'a:''x,y'''``); that form is read too.
    """
    result: dict[str, str] = {}
    n = len(text)
    pos = 0
    while pos < n:
        key, pos = _read_token(text, pos, ":,")
        while pos < n and text[pos].isspace():
            pos += 1
        if pos < n and text[pos] == ":":
            value, pos = _read_token(text, pos + 1, ",")
            result[key.text] = value.text
        elif key.quoted:
            # A whole entry quoted by Flink's writer: split it at its first unquoted ':'.
            parts = _split_escaped(key.text, ":", maxsplit=1)
            if len(parts) != 2:
                raise ValueParseError(f"the entry '{key.text}' is not a key:value pair (missing ':'?)")
            result[parts[0].text] = parts[1].text
        elif key.text:
            raise ValueParseError(f"the entry '{key.text}' is not a key:value pair (missing ':'?)")
        while pos < n and text[pos].isspace():
            pos += 1
        if pos < n:
            if text[pos] != ",":
                raise ValueParseError(f"unexpected text after a closing quote at position {pos}")
            pos += 1
    return result


def _convert_map(raw: object) -> dict[str, str]:
    if isinstance(raw, str):
        stripped = raw.strip()
        if stripped.startswith("{"):
            # Flink 2.x parses map values as standard YAML first ('{k1: v1}').
            raw = _parse_yaml_flow(stripped, dict)
        else:
            return _parse_map_text(stripped)
    if isinstance(raw, Mapping):
        out: dict[str, str] = {}
        for k, v in raw.items():
            if v is None or isinstance(v, list | tuple | Mapping):
                raise ValueParseError(f"the value of '{k}' must be a plain string or number")
            out[_scalar_to_str(k)] = _scalar_to_str(v)
        return out
    raise ValueParseError(None)


def parse_map(text: str) -> dict[str, str]:
    """Parse 'k1:v1,k2:v2' (Flink's map form; quote parts containing ',' or ':') or '{k1: v1}'."""
    try:
        return _convert_map(text)
    except ValueParseError as e:
        raise ConfigurationError(
            _invalid_message(f"map '{text}'", e.detail, _EXPECTED[ValueKind.MAP]), value=text
        ) from None


def format_map(mapping: Mapping[Any, object]) -> str:
    """Format in Flink's 'k1:v1,k2:v2' form with Flink's nested quoting; ``parse_map`` reads it back."""
    entries = []
    for k, v in mapping.items():
        # Flink's nesting: key and value are quoted for ':', then the whole entry for ','.
        entry = _quote(_scalar_to_str(k), ":") + ":" + _quote(_scalar_to_str(v), ":")
        entries.append(_quote(entry, ",") if "," in entry else entry)
    return ",".join(entries)


# --------------------------------------------------------------------------------------------------------------
# Ports (Flink NetUtils.getPortRangeFromString)

_PORT_PART = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def parse_port_range(text: str) -> tuple[int, ...]:
    """Parse '0', '6123', '50100-50200' or a comma-separated mix into the ports, in order. Raises ConfigurationError."""
    ports: list[int] = []
    problem: str | None = None
    for part in str(text).split(","):
        m = _PORT_PART.match(part)
        if m is None:
            problem = f"'{part.strip()}' is not a port or a range 'from-to'"
            break
        low = int(m.group(1))
        high = int(m.group(2)) if m.group(2) is not None else low
        if high > 65535 or low > high:
            problem = f"'{part.strip()}' is not within 0-65535 or is reversed"
            break
        ports.extend(range(low, high + 1))
    if problem is not None:
        raise ConfigurationError(
            f"Invalid port range '{text}': {problem}; expected a port such as '6123', a range such as "
            "'50100-50200' or a comma-separated list of both",
            value=text,
        )
    return tuple(ports)


# --------------------------------------------------------------------------------------------------------------
# Generic conversion


def _convert_string(raw: object) -> str:
    if raw is None or isinstance(raw, list | tuple | Mapping):
        raise ValueParseError(None)
    return _scalar_to_str(raw)


_INT_RE: Final = re.compile(r"^[+-]?[0-9]+$")


def _convert_int(raw: object) -> int:
    if isinstance(raw, bool):
        raise ValueParseError(None)
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and _INT_RE.match(raw.strip()):
        return int(raw.strip())
    raise ValueParseError(None)


def _convert_float(raw: object) -> float:
    if isinstance(raw, bool):
        raise ValueParseError(None)
    if isinstance(raw, int | float):
        return float(raw)
    if isinstance(raw, str):
        try:
            return float(raw.strip())
        except ValueError:
            raise ValueParseError(None) from None
    raise ValueParseError(None)


def _convert_duration(raw: object) -> timedelta:
    if isinstance(raw, timedelta):
        return raw
    if isinstance(raw, bool):
        raise ValueParseError(None)
    if isinstance(raw, int):
        # Flink: an integer in YAML is a number of milliseconds (it is parsed via its string form).
        return _parse_duration(str(raw))
    if isinstance(raw, str):
        return _parse_duration(raw)
    raise ValueParseError(None)


def _convert_memory(raw: object) -> MemorySize:
    if isinstance(raw, MemorySize):
        return raw
    if isinstance(raw, bool):
        raise ValueParseError(None)
    if isinstance(raw, int):
        return _parse_memory(str(raw))
    if isinstance(raw, str):
        return _parse_memory(raw)
    raise ValueParseError(None)


def _convert_enum(raw: object, enum_type: type[enum.Enum]) -> enum.Enum:
    if isinstance(raw, enum_type):
        return raw
    if isinstance(raw, str):
        wanted = raw.strip().upper()
        for member in enum_type:
            if member.name.upper() == wanted:
                return member
    raise ValueParseError(None)


def convert_value(raw: object, value_type: object) -> Any:
    """Convert a raw value (YAML scalar/list/map or string) to ``value_type``; ValueParseError when impossible."""
    kind = value_kind(value_type)
    if kind is ValueKind.STRING:
        return _convert_string(raw)
    if kind is ValueKind.INTEGER:
        return _convert_int(raw)
    if kind is ValueKind.FLOAT:
        return _convert_float(raw)
    if kind is ValueKind.BOOLEAN:
        return _convert_bool(raw)
    if kind is ValueKind.DURATION:
        return _convert_duration(raw)
    if kind is ValueKind.MEMORY:
        return _convert_memory(raw)
    if kind is ValueKind.LIST:
        return _convert_list(raw)
    if kind is ValueKind.MAP:
        return _convert_map(raw)
    assert isinstance(value_type, type)
    assert issubclass(value_type, enum.Enum)
    return _convert_enum(raw, value_type)


def stringify_value(raw: object) -> str:
    """The string form of any stored value, such that converting the string gives the same typed value back."""
    if isinstance(raw, list | tuple):
        return format_list(raw)
    if isinstance(raw, Mapping):
        return format_map(raw)
    try:
        return _scalar_to_str(raw)
    except ValueParseError:
        return str(raw)


def _invalid_message(what: str, detail: str | None, expected: str) -> str:
    return f"Invalid {what}: " + (f"{detail}; " if detail else "") + expected


# --------------------------------------------------------------------------------------------------------------
# YAML 1.2 core schema loader


class _Yaml12SafeLoader(yaml.SafeLoader):
    """SafeLoader resolving plain scalars like YAML 1.2's core schema, as Flink 2.x's config.yaml parser does.

    PyYAML implements YAML 1.1, where ``off``/``no``/``on``/``yes`` are booleans, ``1:30`` is a base-60 integer
    and ``010`` is octal; Flink (SnakeYAML engine, YAML 1.2) reads those as strings/decimal, and values like
    ``restart-strategy.type: off`` must stay the string 'off'.
    """


_BOOL_TAG = "tag:yaml.org,2002:bool"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_KEEP_TAGS = frozenset({"tag:yaml.org,2002:null", "tag:yaml.org,2002:merge"})

_Yaml12SafeLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag in _KEEP_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12SafeLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Yaml12SafeLoader.add_implicit_resolver(
    _INT_TAG, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
_Yaml12SafeLoader.add_implicit_resolver(
    _FLOAT_TAG,
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def _construct_yaml12_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    value = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    if value.startswith("0o"):
        return int(value[2:], 8)
    if value.startswith("0x"):
        return int(value[2:], 16)
    return int(value, 10)


def _construct_yaml12_float(loader: yaml.SafeLoader, node: yaml.Node) -> float:
    value = str(loader.construct_scalar(node)).lower()  # type: ignore[arg-type]
    if value.endswith(".inf"):
        return float("-inf") if value.startswith("-") else float("inf")
    if value == ".nan":
        return float("nan")
    return float(value)


_Yaml12SafeLoader.add_constructor(_INT_TAG, _construct_yaml12_int)
_Yaml12SafeLoader.add_constructor(_FLOAT_TAG, _construct_yaml12_float)


def yaml_safe_load(text: str) -> object:
    """Load YAML text with YAML 1.2 core-schema scalars (see ``_Yaml12SafeLoader``). Raises yaml.YAMLError."""
    return yaml.load(text, Loader=_Yaml12SafeLoader)  # a SafeLoader subclass: safe
