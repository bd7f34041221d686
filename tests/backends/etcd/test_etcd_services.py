"""EtcdHaServices on a real etcd: key layout of the stores, locks on the process lease, plan watcher, recovery
by the next leader, cleanup."""

from __future__ import annotations

import json

import pytest

from standby.backends.etcd import EtcdExecutionPlanStoreWatcher, EtcdHaServices, EtcdStateHandleStore
from standby.ha import (
    CorruptHaDataError,
    DefaultCheckpointsCleaner,
    DefaultExecutionPlanStore,
    ExecutionPlan,
    ExecutionPlanListener,
    FencingError,
    JobID,
    LeaderElection,
    create_high_availability_services,
)
from standby.testing.recording import RecordingContender
from standby.testing.store_contract import make_checkpoint

from .conftest import EtcdBackend, eventually

pytestmark = pytest.mark.etcd


class _PlanListener(ExecutionPlanListener):
    def __init__(self) -> None:
        self.added: list[JobID] = []
        self.removed: list[JobID] = []

    def on_added_execution_plan(self, job_id: JobID) -> None:
        self.added.append(job_id)

    def on_removed_execution_plan(self, job_id: JobID) -> None:
        self.removed.append(job_id)


def _plans(services: EtcdHaServices) -> DefaultExecutionPlanStore:
    store = services.get_execution_plan_store()
    assert isinstance(store, DefaultExecutionPlanStore)
    return store


async def _lead(services: EtcdHaServices, name: str = "jm") -> tuple[LeaderElection, RecordingContender]:
    election = services.get_dispatcher_leader_election()
    contender = RecordingContender(name)
    await election.start_leader_election(contender)
    await contender.wait_for_leadership()
    return election, contender


async def test_factory_is_selected_by_type(etcd_backend: EtcdBackend) -> None:
    services = await create_high_availability_services(etcd_backend.configuration())
    try:
        assert isinstance(services, EtcdHaServices)
        assert services.paths.cluster == f"/standby/{etcd_backend.cluster_id}"
    finally:
        await services.close()


async def test_execution_plans_are_pointer_keys_with_locks_on_the_process_lease(
    etcd_backend: EtcdBackend,
) -> None:
    services = await etcd_backend.new_services()
    client = await etcd_backend.new_client()
    election, _ = await _lead(services)
    store = services.get_execution_plan_store()
    await store.start(_PlanListener())
    job_id = JobID.generate()
    plan = ExecutionPlan(job_id=job_id, name="wordcount")
    await store.put_execution_plan(plan)

    prefix = f"/standby/{etcd_backend.cluster_id}/execution-plans/{job_id}"
    entry, _ = await client.get(prefix.encode())
    assert entry is not None and entry.lease == 0
    envelope = json.loads(entry.value)
    assert envelope["version"] == 1 and envelope["markedForDeletion"] is False
    pointer = json.loads(envelope["handle"])
    assert pointer["path"].startswith("file://" + str(etcd_backend.storage_dir / etcd_backend.cluster_id))
    locks = (await client.get_prefix(f"{prefix}/locks/".encode())).kvs
    lock_lease = services.lock_lease.current
    assert len(locks) == 1 and lock_lease is not None and locks[0].lease == lock_lease.lease_id

    assert await store.recover_execution_plan(job_id) == plan
    await store.global_cleanup(job_id)
    assert (await client.get_prefix(prefix.encode())).kvs == []
    await store.stop()
    await election.close()


async def test_locks_of_a_dead_process_vanish_with_its_lease(etcd_backend: EtcdBackend) -> None:
    leader, standby = await etcd_backend.new_services(), await etcd_backend.new_services()
    election, _ = await _lead(leader)
    leader_store = _plans(leader)
    standby_store = _plans(standby)
    await leader_store.start(_PlanListener())
    await standby_store.start(_PlanListener())
    job_id = JobID.generate()
    await leader_store.put_execution_plan(ExecutionPlan(job_id=job_id, name="job"))
    assert await standby_store.recover_execution_plan(job_id) is not None  # the standby holds a lock now
    handles = leader_store.state_handle_store
    standby_handles = standby_store.state_handle_store
    assert isinstance(handles, EtcdStateHandleStore) and isinstance(standby_handles, EtcdStateHandleStore)
    assert sorted(await handles.lock_holders(str(job_id))) == sorted(
        [handles.lock_id, standby_handles.lock_id]
    )

    # the standby "dies": its lease is no longer kept alive, etcd expires it after the TTL
    lease = standby.lock_lease.current
    assert lease is not None
    await lease.stop()

    async def standby_lock_gone() -> bool:
        return await handles.lock_holders(str(job_id)) == [handles.lock_id]

    await eventually(standby_lock_gone, "the dead standby's lock to expire")
    assert await handles.release_and_try_remove(str(job_id))
    await standby_store.stop()
    await leader_store.stop()
    await election.close()


async def test_plan_watcher_reports_plans_of_other_job_managers(etcd_backend: EtcdBackend) -> None:
    leader, standby = await etcd_backend.new_services(), await etcd_backend.new_services()
    election, _ = await _lead(leader)
    existing = JobID.generate()
    leader_store = leader.get_execution_plan_store()
    await leader_store.start(_PlanListener())
    await leader_store.put_execution_plan(ExecutionPlan(job_id=existing, name="before"))

    listener = _PlanListener()
    watcher = EtcdExecutionPlanStoreWatcher(standby.client, standby.paths.execution_plans)
    await watcher.start(listener)
    job_id = JobID.generate()
    await leader_store.put_execution_plan(ExecutionPlan(job_id=job_id, name="after"))
    await leader_store.put_execution_plan(ExecutionPlan(job_id=job_id, name="after, updated"))
    await eventually(lambda: listener.added == [job_id], "the watcher to see the added plan")
    await leader_store.global_cleanup(job_id)
    await eventually(lambda: listener.removed == [job_id], "the watcher to see the removed plan")
    assert listener.added == [job_id], "plans present at start are the baseline; updates are no additions"
    await watcher.stop()
    await leader_store.stop()
    await election.close()


async def test_next_leader_recovers_checkpoints_and_counter(etcd_backend: EtcdBackend) -> None:
    first, second = await etcd_backend.new_services(), await etcd_backend.new_services()
    client = await etcd_backend.new_client()
    job_id = JobID.generate()
    election, _ = await _lead(first, "first")
    factory = first.get_checkpoint_recovery_factory()
    counter = await factory.create_checkpoint_id_counter(job_id)
    await counter.start()
    store = await factory.create_recovered_completed_checkpoint_store(job_id, 2)
    cleaner = DefaultCheckpointsCleaner()
    for _ in range(3):
        checkpoint_id = await counter.get_and_increment()
        await store.add_checkpoint_and_subsume_oldest_one(make_checkpoint(checkpoint_id, job_id), cleaner)
    keys = [
        kv.key.decode()
        for kv in (await client.get_prefix(first.paths.job_prefix(job_id), keys_only=True)).kvs
    ]
    base = f"/standby/{etcd_backend.cluster_id}/jobs/{job_id}"
    assert f"{base}/checkpoint_id_counter" in keys
    assert f"{base}/checkpoints/{2:019d}" in keys and f"{base}/checkpoints/{3:019d}" in keys
    assert f"{base}/checkpoints/{1:019d}" not in keys  # subsumed
    await election.close()  # hand over

    election2, _ = await _lead(second, "second")
    factory2 = second.get_checkpoint_recovery_factory()
    recovered = await factory2.create_recovered_completed_checkpoint_store(job_id, 2)
    assert [c.checkpoint_id for c in recovered.get_all_checkpoints()] == [2, 3]
    counter2 = await factory2.create_checkpoint_id_counter(job_id)
    assert await counter2.get_and_increment() == 4
    # the deposed first process cannot write any more
    with pytest.raises(FencingError):
        await counter.get_and_increment()
    await election2.close()


async def test_corrupt_counter_names_the_key(etcd_backend: EtcdBackend) -> None:
    services = await etcd_backend.new_services()
    client = await etcd_backend.new_client()
    job_id = JobID.generate()
    counter = await services.get_checkpoint_recovery_factory().create_checkpoint_id_counter(job_id)
    await client.put(services.paths.checkpoint_id_counter(job_id), b"many")
    with pytest.raises(CorruptHaDataError, match="checkpoint_id_counter"):
        await counter.get()


async def test_global_cleanup_and_cleanup_all_data(etcd_backend: EtcdBackend) -> None:
    services = await etcd_backend.new_services()
    # a cluster whose id extends ours must survive our cleanup
    neighbour = await etcd_backend.new_services(
        **{"high-availability.cluster-id": etcd_backend.cluster_id + "x"}
    )
    client = await etcd_backend.new_client()
    election, _ = await _lead(services)
    neighbour_election, _ = await _lead(neighbour, "neighbour")
    kept, removed = JobID.generate(), JobID.generate()
    for target in (services, neighbour):
        for job_id in (kept, removed):
            counter = await target.get_checkpoint_recovery_factory().create_checkpoint_id_counter(job_id)
            await counter.set_count(5)

    await services.global_cleanup(removed)
    assert (await client.get_prefix(services.paths.job_prefix(removed))).kvs == []
    assert (await client.get_prefix(services.paths.job_prefix(kept))).kvs != []

    await election.close()
    await services.cleanup_all_data()
    assert (await client.get_prefix(services.paths.cluster_prefix)).kvs == []
    assert (await client.get_prefix(neighbour.paths.job_prefix(removed))).kvs != []
    await neighbour_election.close()


async def test_close_releases_locks_at_once(etcd_backend: EtcdBackend) -> None:
    leader, standby = await etcd_backend.new_services(), await etcd_backend.new_services()
    election, _ = await _lead(leader)
    leader_store = _plans(leader)
    await leader_store.start(_PlanListener())
    job_id = JobID.generate()
    await leader_store.put_execution_plan(ExecutionPlan(job_id=job_id, name="job"))
    standby_store = _plans(standby)
    await standby_store.start(_PlanListener())
    await standby_store.recover_execution_plan(job_id)
    await standby.close()  # revokes the lock lease: the lock is gone without waiting for the TTL
    handles = leader_store.state_handle_store
    assert isinstance(handles, EtcdStateHandleStore)
    assert await handles.lock_holders(str(job_id)) == [handles.lock_id]
    await leader_store.global_cleanup(job_id)
    await leader_store.stop()
    await election.close()
