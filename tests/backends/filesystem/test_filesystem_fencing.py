"""Fencing: only the process holding the leader lock (with the current epoch) writes HA data."""

from __future__ import annotations

import fcntl
import json
import os

import pytest

from standby.ha import CheckpointsCleaner, CompletedCheckpoint, ExecutionPlan, FencingError, JobID, JobStatus
from standby.testing.store_contract import RecordingExecutionPlanListener, make_checkpoint

from .fs_ha_testing import Cluster, wait_until


async def test_a_standby_cannot_write(cluster: Cluster) -> None:
    leader_services, standby_services = await cluster.new_services(), await cluster.new_services()
    leader = await cluster.contend(leader_services, "http://leader")
    await wait_until(lambda: leader.is_leader)
    standby = await cluster.contend(standby_services, "http://standby")
    plans = standby_services.get_execution_plan_store()
    await plans.start(RecordingExecutionPlanListener())
    with pytest.raises(FencingError, match="not the leader"):
        await plans.put_execution_plan(ExecutionPlan(JobID.generate(), "job"))
    counter = await standby_services.get_checkpoint_recovery_factory().create_checkpoint_id_counter(
        JobID.generate()
    )
    with pytest.raises(FencingError):
        await counter.get_and_increment()
    assert not standby.is_leader
    await plans.stop()


async def test_a_process_without_election_cannot_write(cluster: Cluster) -> None:
    services = await cluster.new_services()
    factory = services.get_checkpoint_recovery_factory()
    store = await factory.create_recovered_completed_checkpoint_store(JobID.generate(), 1)
    with pytest.raises(FencingError):
        await store.add_checkpoint_and_subsume_oldest_one(make_checkpoint(1), _NoCleaner())


async def test_the_leader_writes_and_loses_the_right_when_closed(cluster: Cluster) -> None:
    services = await cluster.new_services()
    leader = await cluster.contend(services, "http://leader")
    await wait_until(lambda: leader.is_leader)
    job_id = JobID.generate()
    counter = await services.get_checkpoint_recovery_factory().create_checkpoint_id_counter(job_id)
    assert await counter.get_and_increment() == 1
    await leader.election.close()
    with pytest.raises(FencingError):
        await counter.get_and_increment()
    assert await counter.get() == 2


async def test_a_stale_epoch_is_fenced_and_leadership_revoked(cluster: Cluster) -> None:
    services = await cluster.new_services()
    leader = await cluster.contend(services, "http://leader")
    await wait_until(lambda: leader.is_leader)
    counter = await services.get_checkpoint_recovery_factory().create_checkpoint_id_counter(JobID.generate())
    await counter.get_and_increment()
    epoch_file = services.leader_dir / "epoch"
    epoch = json.loads(epoch_file.read_text())["epoch"]
    # a newer leader was elected meanwhile (possible only if the lock file was replaced)
    epoch_file.write_text(json.dumps({"version": 1, "epoch": epoch + 5}))
    with pytest.raises(FencingError, match="epoch"):
        services.fence("write")  # the check every store write makes, before the driver reacted
    await wait_until(lambda: leader.revokes == 1, what="the revoke of the deposed leader")
    # alone, the process wins again, in a newer epoch
    await wait_until(lambda: len(leader.grants) == 2, what="the re-election")
    assert json.loads(epoch_file.read_text())["epoch"] == epoch + 6
    assert await counter.get_and_increment() == 2


async def test_a_replaced_lock_file_is_fenced_and_leadership_revoked(cluster: Cluster) -> None:
    services = await cluster.new_services()
    leader = await cluster.contend(services, "http://leader")
    await wait_until(lambda: leader.is_leader)
    plans = services.get_execution_plan_store()
    await plans.start(RecordingExecutionPlanListener())
    await plans.put_execution_plan(ExecutionPlan(JobID.generate(), "ok"))
    # someone deletes the lock file and another process locks a new one: two "leaders" unless fenced
    lock_path = services.leader_dir / "latch.lock"
    os.unlink(lock_path)
    intruder = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(intruder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(FencingError, match=r"replaced|not the leader"):
            await plans.put_execution_plan(ExecutionPlan(JobID.generate(), "refused"))
        await wait_until(lambda: leader.revokes == 1, what="the revoke after losing the lock file")
        assert not leader.is_leader
    finally:
        os.close(intruder)
    # the intruder is gone: the process contends again on the new lock file and wins a new leadership period
    await wait_until(lambda: leader.is_leader and len(leader.grants) == 2, what="the re-election")
    await plans.stop()


class _NoCleaner(CheckpointsCleaner):
    async def clean_checkpoint(self, checkpoint: CompletedCheckpoint, discard: bool) -> None:
        raise AssertionError("nothing is cleaned here")


async def test_releasing_locks_is_not_fenced(cluster: Cluster) -> None:
    services = await cluster.new_services()
    leader = await cluster.contend(services, "http://leader")
    await wait_until(lambda: leader.is_leader)
    job_id = JobID.generate()
    factory = services.get_checkpoint_recovery_factory()
    store = await factory.create_recovered_completed_checkpoint_store(job_id, 1)
    await store.add_checkpoint_and_subsume_oldest_one(make_checkpoint(1, job_id), _NoCleaner())
    await leader.election.close()
    await store.shutdown(JobStatus.SUSPENDED, _NoCleaner())
    locks = list((services.cluster_dir / "jobs" / job_id / "checkpoints").glob("*.locks/*"))
    assert locks == []
