"""FileSystemHaServices: layout, lifecycle (close, cleanup_all_data, global_cleanup) and configuration."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from standby.backends.filesystem import FileSystemHaServices, FileSystemStateHandleStore
from standby.config import Configuration, ConfigurationError
from standby.ha import (
    CheckpointsCleaner,
    CompletedCheckpoint,
    ExecutionPlan,
    FileSystemStateStorageHelper,
    JobID,
    create_high_availability_services,
)
from standby.testing.store_contract import RecordingExecutionPlanListener, make_checkpoint

from .fs_ha_testing import Cluster, exited_process, tree, wait_until


class _Cleaner(CheckpointsCleaner):
    async def clean_checkpoint(self, checkpoint: CompletedCheckpoint, discard: bool) -> None:
        return None


async def _leader_with_data(cluster: Cluster) -> tuple[FileSystemHaServices, JobID]:
    services = await cluster.new_services()
    leader = await cluster.contend(services, "http://leader")
    await wait_until(lambda: leader.is_leader)
    job_id = JobID.generate()
    plans = services.get_execution_plan_store()
    await plans.start(RecordingExecutionPlanListener())
    await plans.put_execution_plan(ExecutionPlan(job_id, "job"))
    await plans.stop()
    factory = services.get_checkpoint_recovery_factory()
    checkpoints = await factory.create_recovered_completed_checkpoint_store(job_id, 2)
    await checkpoints.add_checkpoint_and_subsume_oldest_one(make_checkpoint(7, job_id), _Cleaner())
    counter = await factory.create_checkpoint_id_counter(job_id)
    await counter.get_and_increment()
    await services.create_blob_store().put(b"jar", job_id, "p-1")
    return services, job_id


async def test_layout_on_disk(cluster: Cluster, storage_dir: Path) -> None:
    services, job_id = await _leader_with_data(cluster)
    root = storage_dir / "test-cluster"
    assert services.cluster_dir == root
    assert (root / "leader" / "latch.lock").is_file()
    assert json.loads((root / "leader" / "epoch").read_text())["epoch"] == 1
    assert (root / "leader" / "dispatcher" / "connection_info").is_file()
    assert (root / "execution-plans" / job_id).is_file()
    assert (root / "jobs" / job_id / "checkpoints" / "0000000000000000007").is_file()
    assert json.loads((root / "jobs" / job_id / "checkpoint_id_counter").read_text())["count"] == 2
    assert (root / "blob" / f"job_{job_id}" / "blob_p-1").read_bytes() == b"jar"
    payloads = sorted(p.name[:-12] for p in root.iterdir() if p.is_file())
    assert payloads == ["completedCheckpoint", "submittedExecutionPlan"]


async def test_close_keeps_all_data(cluster: Cluster, storage_dir: Path) -> None:
    await _leader_with_data(cluster)
    before = tree(storage_dir, skip="leader")
    await cluster.close()
    assert tree(storage_dir, skip="leader") == before


async def test_cleanup_all_data_removes_the_cluster(cluster: Cluster, storage_dir: Path) -> None:
    services, _ = await _leader_with_data(cluster)
    os.mkdir(storage_dir / "other-cluster")
    await cluster.close()
    await services.cleanup_all_data()
    assert tree(storage_dir) == [str(storage_dir / "other-cluster")]


async def test_global_cleanup_removes_the_job_data(cluster: Cluster, storage_dir: Path) -> None:
    services, job_id = await _leader_with_data(cluster)
    await services.global_cleanup(job_id)
    assert not (storage_dir / "test-cluster" / "jobs" / job_id).exists()
    assert (storage_dir / "test-cluster" / "execution-plans" / job_id).exists()


async def test_created_by_name(fs_config: Configuration) -> None:
    services = await create_high_availability_services(fs_config)
    assert isinstance(services, FileSystemHaServices)
    await services.close()


@pytest.mark.parametrize("url", ["s3://bucket/ha", "memory://ha"])
async def test_non_local_storage_dir_is_rejected(url: str) -> None:
    config = Configuration({"high-availability.type": "filesystem", "high-availability.storageDir": url})
    with pytest.raises(ConfigurationError, match="local"):
        await create_high_availability_services(config)


async def test_file_url_storage_dir(tmp_path: Path) -> None:
    config = Configuration(
        {"high-availability.type": "filesystem", "high-availability.storageDir": f"file://{tmp_path}"}
    )
    services = await create_high_availability_services(config)
    assert isinstance(services, FileSystemHaServices)
    assert services.cluster_dir == tmp_path / "default"
    await services.close()


# ------------------------------------------------------------------ state handle store files


def _store(root: Path, payloads: str) -> FileSystemStateHandleStore[str]:
    helper = FileSystemStateStorageHelper(
        payloads, "completedCheckpoint", str.encode, lambda b, _: b.decode()
    )
    return FileSystemStateHandleStore(root, helper)


async def test_pointer_and_lock_files(tmp_path: Path, memory_url: str) -> None:
    store = _store(tmp_path / "plans", memory_url)
    handle = await store.add_and_lock("entry", "state")
    header, _, pointer = (tmp_path / "plans" / "entry").read_bytes().partition(b"\n")
    assert json.loads(header) == {"format": 1, "version": 0}
    assert json.loads(pointer)["path"] == handle.location
    lock = tmp_path / "plans" / "entry.locks" / store.instance_id
    assert json.loads(lock.read_text())["owner"]["pid"] == os.getpid()
    assert await store.release_and_try_remove("entry") is True
    assert not (tmp_path / "plans" / "entry").exists()
    assert not (tmp_path / "plans" / "entry.locks").exists()
    with pytest.raises(Exception, match="does not exist"):
        await handle.retrieve_state()  # the memory:// payload was discarded


async def test_locks_of_dead_processes_are_stale(tmp_path: Path, memory_url: str) -> None:
    store = _store(tmp_path / "plans", memory_url)
    await store.add_and_lock("entry", "state")
    pid, create_time = exited_process()
    me = json.loads((tmp_path / "plans" / "entry.locks" / store.instance_id).read_text())["owner"]
    dead_owner = {**me, "pid": pid, "createTime": create_time}
    (tmp_path / "plans" / "entry.locks" / "dead-instance").write_text(json.dumps({"owner": dead_owner}))
    live_owner = {**me}
    (tmp_path / "plans" / "entry.locks" / "live-instance").write_text(json.dumps({"owner": live_owner}))
    assert await store.release_and_try_remove("entry") is False  # the live one blocks
    (tmp_path / "plans" / "entry.locks" / "live-instance").unlink()
    assert await store.release_and_try_remove("entry") is True  # the dead one does not


async def test_unreadable_pointer_header_is_skipped(tmp_path: Path, memory_url: str) -> None:
    store = _store(tmp_path / "plans", memory_url)
    await store.add_and_lock("good", "state")
    await store.add_and_lock("bad", "state")
    (tmp_path / "plans" / "bad").write_bytes(b"garbage")
    assert [name for _, name in await store.get_all_and_lock()] == ["good"]


@pytest.mark.parametrize("name", ["", "a/b", ".hidden", "x.locks"])
async def test_invalid_entry_names(tmp_path: Path, memory_url: str, name: str) -> None:
    with pytest.raises(ValueError, match="Invalid entry name"):
        await _store(tmp_path, memory_url).add_and_lock(name, "state")
