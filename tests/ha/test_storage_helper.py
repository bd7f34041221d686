"""FileSystemStateStorageHelper and ha_storage_path (Flink's FileSystemStateStorageHelper, §1.12)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import fsspec
import pytest

from standby.config import Configuration, ConfigurationError
from standby.ha import (
    COMPLETED_CHECKPOINT_PREFIX,
    EXECUTION_PLAN_PREFIX,
    CorruptHaDataError,
    FileSystemStateStorageHelper,
    StateHandleStoreError,
    ha_storage_path,
)
from standby.ha._storage_helper import MAX_STORE_ATTEMPTS, random_filename


def _helper(
    root: str, prefix: str = COMPLETED_CHECKPOINT_PREFIX, **kwargs: Callable[[str], str]
) -> FileSystemStateStorageHelper[str]:
    return FileSystemStateStorageHelper(
        root, prefix, str.encode, lambda data, _location: data.decode(), **kwargs
    )


def test_random_filename_has_flink_prefix_and_alphabet() -> None:
    for prefix in (EXECUTION_PLAN_PREFIX, COMPLETED_CHECKPOINT_PREFIX):
        name = random_filename(prefix)
        assert re.fullmatch(re.escape(prefix) + r"[0-9a-f]{12}", name), name


async def test_store_writes_payload_under_root_and_pointer_is_versioned_json(tmp_path: Path) -> None:
    helper = _helper(str(tmp_path / "ha"))
    handle = await helper.store("payload")
    files = list((tmp_path / "ha").iterdir())
    assert len(files) == 1
    assert files[0].name.startswith(COMPLETED_CHECKPOINT_PREFIX)
    assert files[0].read_bytes() == b"payload"
    pointer = json.loads(helper.serialize_handle(handle))
    assert pointer == {"version": 1, "path": f"file://{files[0]}", "size": 7}
    restored = helper.deserialize_handle(helper.serialize_handle(handle))
    assert await restored.retrieve_state() == "payload"
    assert restored.state_size == 7


async def test_file_url_and_memory_url(memory_url: str, tmp_path: Path) -> None:
    for root in (f"file://{tmp_path}/a", memory_url):
        helper = _helper(root)
        handle = await helper.store("x")
        assert handle.location.startswith(("file://", "memory://"))
        assert await helper.deserialize_handle(helper.serialize_handle(handle)).retrieve_state() == "x"


async def test_store_never_overwrites_an_existing_file(tmp_path: Path) -> None:
    names: Iterator[str] = iter(["completedCheckpointaaaaaaaaaaaa"] * 3 + ["completedCheckpointbbbbbbbbbbbb"])
    (tmp_path / "completedCheckpointaaaaaaaaaaaa").write_bytes(b"precious")
    helper = _helper(str(tmp_path), random_name=lambda prefix: next(names))
    handle = await helper.store("new")
    assert handle.location.endswith("completedCheckpointbbbbbbbbbbbb")
    assert (tmp_path / "completedCheckpointaaaaaaaaaaaa").read_bytes() == b"precious"


async def test_store_gives_up_after_ten_attempts(tmp_path: Path) -> None:
    (tmp_path / "completedCheckpointaaaaaaaaaaaa").write_bytes(b"precious")
    attempts: list[str] = []

    def same_name(prefix: str) -> str:
        attempts.append(prefix)
        return "completedCheckpointaaaaaaaaaaaa"

    helper = _helper(str(tmp_path), random_name=same_name)
    with pytest.raises(StateHandleStoreError, match="after 10 attempts"):
        await helper.store("new")
    assert len(attempts) == MAX_STORE_ATTEMPTS
    assert (tmp_path / "completedCheckpointaaaaaaaaaaaa").read_bytes() == b"precious"


async def test_discard_is_idempotent(memory_url: str) -> None:
    helper = _helper(memory_url)
    handle = await helper.store("x")
    await handle.discard_state()
    await handle.discard_state()
    assert fsspec.filesystem("memory").ls(memory_url.removeprefix("memory://")) == []


async def test_retrieve_of_missing_payload_names_the_file(tmp_path: Path) -> None:
    helper = _helper(str(tmp_path))
    handle = await helper.store("x")
    os.unlink(handle.location.removeprefix("file://"))
    with pytest.raises(CorruptHaDataError, match=re.escape(handle.location)):
        await handle.retrieve_state()


async def test_decode_failure_names_the_file(tmp_path: Path) -> None:
    def decode(data: bytes, location: str) -> str:
        raise ValueError("bad bytes")

    helper = FileSystemStateStorageHelper(str(tmp_path), EXECUTION_PLAN_PREFIX, str.encode, decode)
    handle = await helper.store("x")
    with pytest.raises(CorruptHaDataError, match=f"{re.escape(handle.location)}.*bad bytes"):
        await handle.retrieve_state()


@pytest.mark.parametrize(
    "pointer",
    [
        b"",
        b"not json",
        b"[1]",
        b'{"version":2,"path":"/x","size":1}',
        b'{"version":1,"size":1}',
        b'{"version":1,"path":"","size":1}',
    ],
)
def test_unreadable_pointer_raises_corrupt_ha_data(tmp_path: Path, pointer: bytes) -> None:
    with pytest.raises(CorruptHaDataError):
        _helper(str(tmp_path)).deserialize_handle(pointer)


@pytest.mark.parametrize(
    ("storage_dir", "cluster_id", "expected"),
    [
        ("file:///tmp/ha", None, "file:///tmp/ha/default"),
        ("file:///tmp/ha/", "/c1/", "file:///tmp/ha/c1"),
        ("/var/ha", "my-cluster", "/var/ha/my-cluster"),
        ("s3://bucket", "/a/b", "s3://bucket/a/b"),
    ],
)
def test_ha_storage_path(storage_dir: str, cluster_id: str | None, expected: str) -> None:
    values = {"high-availability.storageDir": storage_dir}
    if cluster_id is not None:
        values["high-availability.cluster-id"] = cluster_id
    assert ha_storage_path(Configuration(values)) == expected


def test_ha_storage_path_without_storage_dir_names_the_key() -> None:
    with pytest.raises(ConfigurationError, match=r"high-availability\.storageDir"):
        ha_storage_path(Configuration({}))
