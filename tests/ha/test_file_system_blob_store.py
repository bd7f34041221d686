"""FileSystemBlobStore layout and create_blob_store_from_config (Flink's FileSystemBlobStore, BlobUtils)."""

from __future__ import annotations

from pathlib import Path

import pytest

from standby.config import Configuration
from standby.ha import FileSystemBlobStore, JobID, VoidBlobStore, create_blob_store_from_config


async def test_layout_and_round_trip(tmp_path: Path) -> None:
    store = FileSystemBlobStore(str(tmp_path / "blob"))
    job_id = JobID.generate()
    assert await store.put(b"jar", job_id, "p-abc") is True
    assert await store.put(b"shared", None, "p-def") is True
    assert (tmp_path / "blob" / f"job_{job_id}" / "blob_p-abc").read_bytes() == b"jar"
    assert (tmp_path / "blob" / "no_job" / "blob_p-def").read_bytes() == b"shared"
    assert await store.get(job_id, "p-abc") == b"jar"
    assert await store.get(job_id, "missing") is None
    await store.put(b"jar2", job_id, "p-abc")  # overwrite, as Flink
    assert await store.get(job_id, "p-abc") == b"jar2"


async def test_delete_removes_empty_parents(tmp_path: Path) -> None:
    store = FileSystemBlobStore(str(tmp_path / "blob"))
    job_id = JobID.generate()
    await store.put(b"a", job_id, "k1")
    await store.put(b"b", job_id, "k2")
    assert await store.delete(job_id, "k1") is True
    assert (tmp_path / "blob" / f"job_{job_id}").is_dir()
    assert await store.delete(job_id, "k2") is True
    assert not (tmp_path / "blob").exists()
    assert await store.delete(job_id, "k2") is True  # missing: nothing to do


async def test_delete_all_and_cleanup_all_data(memory_url: str) -> None:
    store = FileSystemBlobStore(f"{memory_url}/blob")
    first, second = JobID.generate(), JobID.generate()
    await store.put(b"a", first, "k")
    await store.put(b"b", second, "k")
    assert await store.delete_all(first) is True
    assert await store.get(first, "k") is None
    assert await store.get(second, "k") == b"b"
    await store.cleanup_all_data()
    assert await store.get(second, "k") is None
    await store.cleanup_all_data()


def test_invalid_blob_key_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="blob key"):
        FileSystemBlobStore(str(tmp_path)).blob_path(None, "../escape")


@pytest.mark.parametrize(
    ("ha_type", "expected"),
    [
        ("NONE", VoidBlobStore),
        ("embedded", VoidBlobStore),
        ("zookeeper", FileSystemBlobStore),
        ("filesystem", FileSystemBlobStore),
    ],
)
def test_create_blob_store_from_config(tmp_path: Path, ha_type: str, expected: type) -> None:
    config = Configuration(
        {
            "high-availability.type": ha_type,
            "high-availability.storageDir": str(tmp_path),
            "high-availability.cluster-id": "c",
        }
    )
    store = create_blob_store_from_config(config)
    assert isinstance(store, expected)
    if isinstance(store, FileSystemBlobStore):
        assert store.base_path == f"file://{tmp_path}/c/blob"
