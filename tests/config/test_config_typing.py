"""Static typing of the API: mypy must infer ``conf.get(option)`` as T, or T | None for options without default."""

from __future__ import annotations

import textwrap
from pathlib import Path

import mypy.api

_SNIPPET = """\
from datetime import timedelta
from typing import assert_type

from standby.config import ConfigOption, Configuration, MemorySize, options

conf = Configuration({})
assert_type(conf.get(options.HA_TYPE), str)
assert_type(conf.get(options.HA_STORAGE_DIR), str | None)
assert_type(conf.get(options.HEARTBEAT_TIMEOUT), timedelta)
assert_type(conf.get(options.CHECKPOINTING_INTERVAL), timedelta | None)
assert_type(conf.get(options.HA_ETCD_ENDPOINTS), list[str] | None)
assert_type(conf.get(options.HA_ZOOKEEPER_CLIENT_AUTHORIZATION), dict[str, str] | None)
assert_type(conf.get(options.JOB_MANAGER_RPC_PORT), int)
assert_type(conf.get(options.ZOOKEEPER_SASL_DISABLE), bool)
assert_type(conf.get_optional(options.HA_TYPE), str | None)
size = ConfigOption(key="x", type=MemorySize, default=MemorySize(1))
assert_type(conf.get(size), MemorySize)
assert_type(conf.set(options.REST_PORT, 1), Configuration)
"""

_BAD_SNIPPET = """\
from standby.config import Configuration, options

Configuration({}).set(options.REST_PORT, "not an int")
"""


def _mypy(tmp_path: Path, source: str) -> tuple[str, int]:
    path = tmp_path / "snippet.py"
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    stdout, stderr, status = mypy.api.run(
        [
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--config-file",
            "",
            str(path),
        ]
    )
    return stdout + stderr, status


def test_get_is_typed_by_the_option(tmp_path: Path) -> None:
    output, status = _mypy(tmp_path, _SNIPPET)
    assert status == 0, output


def test_set_rejects_a_value_of_the_wrong_type(tmp_path: Path) -> None:
    output, status = _mypy(tmp_path, _BAD_SNIPPET)
    assert status == 1, output
    assert 'snippet.py:3: error: Cannot infer value of type parameter "T" of "set"' in output
