"""Tests of value parsing: Flink durations, memory sizes, booleans, lists, maps, port ranges and the YAML loader."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from standby.config import (
    ConfigurationError,
    MemorySize,
    format_duration,
    format_list,
    format_map,
    parse_bool,
    parse_duration,
    parse_list,
    parse_map,
    parse_memory,
    parse_port_range,
)
from standby.config._parsing import yaml_safe_load

# ---------------------------------------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("50 s", timedelta(seconds=50)),
        ("50s", timedelta(seconds=50)),
        ("500 ms", timedelta(milliseconds=500)),
        ("500ms", timedelta(milliseconds=500)),
        ("1 min", timedelta(minutes=1)),
        ("1m", timedelta(minutes=1)),
        ("3 minutes", timedelta(minutes=3)),
        ("2 h", timedelta(hours=2)),
        ("1 hour", timedelta(hours=1)),
        ("2 hours", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1 day", timedelta(days=1)),
        ("3 days", timedelta(days=3)),
        ("10 seconds", timedelta(seconds=10)),
        ("7 secs", timedelta(seconds=7)),
        ("7 sec", timedelta(seconds=7)),
        ("4 millis", timedelta(milliseconds=4)),
        ("4 milliseconds", timedelta(milliseconds=4)),
        ("100", timedelta(milliseconds=100)),
        ("0", timedelta(0)),
        ("  15 s  ", timedelta(seconds=15)),
        ("1 MIN", timedelta(minutes=1)),
        ("5 S", timedelta(seconds=5)),
        ("5 us", timedelta(microseconds=5)),
        ("5 \u00b5s", timedelta(microseconds=5)),
        ("5 micros", timedelta(microseconds=5)),
        ("2000 ns", timedelta(microseconds=2)),
        ("1500 nanos", timedelta(microseconds=2)),  # rounded to timedelta's microsecond resolution
    ],
)
def test_parse_duration_accepts_flink_forms(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "message_parts"),
    [
        ("abc", ["Invalid duration 'abc': expected a duration such as '50 s', '500 ms', '1 min'"]),
        ("", ["Invalid duration '': the value is empty"]),
        ("   ", ["the value is empty"]),
        ("5 fortnights", ["unknown time unit 'fortnights'", "expected a duration"]),
        ("1.5 s", ["unknown time unit '.5 s'"]),
        ("-5 s", ["Invalid duration '-5 s'", "or a number of milliseconds"]),
        ("s", ["Invalid duration 's'"]),
        ("99999999999999999999 d", ["too large"]),
        ("9223372036854775807 d", ["the duration is too large"]),
    ],
)
def test_parse_duration_rejects_bad_forms(text: str, message_parts: list[str]) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_duration(text)
    for part in message_parts:
        assert part in str(info.value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(seconds=10), "10 s"),
        (timedelta(milliseconds=1500), "1500 ms"),
        (timedelta(minutes=1), "1 min"),
        (timedelta(hours=1), "1 h"),
        (timedelta(days=2), "2 d"),
        (timedelta(microseconds=7), "7 us"),
        (timedelta(0), "0 ms"),
        (timedelta(seconds=90), "90 s"),
    ],
)
def test_format_duration_uses_the_largest_exact_unit(value: timedelta, text: str) -> None:
    assert format_duration(value) == text
    assert parse_duration(text) == value


@given(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=10**6)))
def test_format_duration_round_trips(value: timedelta) -> None:
    assert parse_duration(format_duration(value)) == value


# ---------------------------------------------------------------------------------------------------------- memory


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("64 mb", 64 * 1024**2),
        ("64m", 64 * 1024**2),
        ("2 mebibytes", 2 * 1024**2),
        ("1 gb", 1024**3),
        ("1g", 1024**3),
        ("512 kb", 512 * 1024),
        ("512k", 512 * 1024),
        ("1 KB", 1024),
        ("1 tb", 1024**4),
        ("100", 100),
        ("100 b", 100),
        ("100 bytes", 100),
        ("0", 0),
    ],
)
def test_parse_memory_accepts_flink_forms(text: str, expected: int) -> None:
    assert parse_memory(text) == MemorySize(expected)
    assert parse_memory(text).bytes == expected


@pytest.mark.parametrize(
    ("text", "message_parts"),
    [
        ("1 xb", ["Invalid memory size '1 xb'", "unknown memory unit 'xb'"]),
        ("mb", ["Invalid memory size 'mb': expected a memory size such as '64 mb'"]),
        ("", ["the value is empty"]),
        ("1.5 gb", ["unknown memory unit '.5 gb'"]),
        ("9999999 tb", ["too large"]),
    ],
)
def test_parse_memory_rejects_bad_forms(text: str, message_parts: list[str]) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_memory(text)
    for part in message_parts:
        assert part in str(info.value)


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (MemorySize.of_mebibytes(10), "10 mb"),
        (MemorySize(1536), "1536 bytes"),
        (MemorySize(2048), "2 kb"),
        (MemorySize(0), "0 bytes"),
        (MemorySize.of_gibibytes(1), "1 gb"),
        (MemorySize(1024**4), "1 tb"),
    ],
)
def test_memory_size_str_round_trips(size: MemorySize, text: str) -> None:
    assert str(size) == text
    assert MemorySize.parse(text) == size


def test_memory_size_units_and_order() -> None:
    size = MemorySize.of_mebibytes(3)
    assert (size.kibibytes, size.mebibytes, size.gibibytes, int(size)) == (3072, 3, 0, 3 * 1024**2)
    assert MemorySize(1) < MemorySize(2)
    with pytest.raises(ValueError, match="negative"):
        MemorySize(-1)


# ---------------------------------------------------------------------------------------------------------- booleans


@pytest.mark.parametrize(("text", "expected"), [("true", True), ("TRUE", True), (" False ", False)])
def test_parse_bool(text: str, expected: bool) -> None:
    assert parse_bool(text) is expected


@pytest.mark.parametrize("text", ["yes", "1", "on", ""])
def test_parse_bool_rejects_everything_else(text: str) -> None:
    with pytest.raises(ConfigurationError, match=r"expected 'true' or 'false' \(case-insensitive\)"):
        parse_bool(text)


# ---------------------------------------------------------------------------------------------------------- lists


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a;b;c", ["a", "b", "c"]),
        ("a,b,c", ["a", "b", "c"]),
        ("127.0.0.1:2379, 127.0.0.1:2380", ["127.0.0.1:2379", "127.0.0.1:2380"]),
        ("a, b ; c", ["a", "b", "c"]),
        ("'a,b';c", ["a,b", "c"]),
        ("\"a;b\";'c'", ["a;b", "c"]),
        ("'it''s'", ["it's"]),
        ("[a, b]", ["a", "b"]),
        ("[1, true]", ["1", "true"]),
        ("", []),
        ("a;;b;", ["a", "b"]),
        ("''", [""]),
        ("single", ["single"]),
    ],
)
def test_parse_list(text: str, expected: list[str]) -> None:
    assert parse_list(text) == expected


@pytest.mark.parametrize(
    ("text", "message_part"),
    [
        ("'a;b", "a quote (') is not closed"),
        ("'a'b;c", "unexpected text after a closing quote"),
        ("[a, [b]]", "list items must be plain strings"),
        ("[a, b", "not a valid YAML list"),
    ],
)
def test_parse_list_rejects_bad_forms(text: str, message_part: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_list(text)
    assert message_part in str(info.value)
    assert "expected a list of strings" in str(info.value)


@given(st.lists(st.text()))
def test_list_format_round_trips(items: list[str]) -> None:
    assert parse_list(format_list(items)) == items


# ---------------------------------------------------------------------------------------------------------- maps


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("k1:v1,k2:v2", {"k1": "v1", "k2": "v2"}),
        (" k1 : v1 , k2:v2 ", {"k1": "v1", "k2": "v2"}),
        ("digest:user:pass", {"digest": "user:pass"}),
        ("'a,b':'c:d'", {"a,b": "c:d"}),
        ("'a:''x,y'''", {"a": "x,y"}),
        ("{k1: v1, k2: 2}", {"k1": "v1", "k2": "2"}),
        ("", {}),
        ("k:", {"k": ""}),
    ],
)
def test_parse_map(text: str, expected: dict[str, str]) -> None:
    assert parse_map(text) == expected


@pytest.mark.parametrize(
    ("text", "message_part"),
    [
        ("novalue", "the entry 'novalue' is not a key:value pair (missing ':'?)"),
        ("a:1,b", "the entry 'b' is not a key:value pair"),
        ("{a: [1]}", "the value of 'a' must be a plain string or number"),
        ("{a: 1", "not a valid YAML map"),
    ],
)
def test_parse_map_rejects_bad_forms(text: str, message_part: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_map(text)
    assert message_part in str(info.value)
    assert "expected a map such as 'k1:v1,k2:v2'" in str(info.value)


@given(st.dictionaries(st.text(), st.text()))
def test_map_format_round_trips(mapping: dict[str, str]) -> None:
    assert parse_map(format_map(mapping)) == mapping


def test_format_map_quotes_like_flink() -> None:
    assert format_map({"digest": "user:pass"}) == "digest:'user:pass'"
    assert format_map({"a": "x,y"}) == "'a:x,y'"
    assert format_map({"k1": "v1", "k2": "v2"}) == "k1:v1,k2:v2"


# ---------------------------------------------------------------------------------------------------------- ports


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", (0,)),
        ("6123", (6123,)),
        ("50100-50102", (50100, 50101, 50102)),
        ("1, 3-4", (1, 3, 4)),
    ],
)
def test_parse_port_range(text: str, expected: tuple[int, ...]) -> None:
    assert parse_port_range(text) == expected


@pytest.mark.parametrize("text", ["x", "70000", "5-3", "", "1,,2", "-1"])
def test_parse_port_range_rejects_bad_forms(text: str) -> None:
    with pytest.raises(ConfigurationError, match=f"Invalid port range '{text}'"):
        parse_port_range(text)


# ---------------------------------------------------------------------------------------------------------- YAML


def test_yaml_loader_uses_yaml_1_2_scalars() -> None:
    loaded = yaml_safe_load(
        "a: off\nb: yes\nc: 010\nd: 1:30\ne: true\nf: 0x10\ng: 1.5\nh: ~\ni: 2024-01-01\nj: False\n"
        "k: 0o17\nl: -3\nm: .inf\nn: 1_000\no: =\n"
    )
    assert loaded == {
        "a": "off",
        "b": "yes",
        "c": 10,
        "d": "1:30",
        "e": True,
        "f": 16,
        "g": 1.5,
        "h": None,
        "i": "2024-01-01",
        "j": False,
        "k": 15,
        "l": -3,
        "m": float("inf"),
        "n": "1_000",
        "o": "=",
    }
