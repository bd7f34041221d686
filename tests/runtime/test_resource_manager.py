"""ResourceManager: slot requests that find too few free slots stay pending until TaskManagers offer them."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from standby.runtime.resourcemanager import ResourceManager
from standby.runtime.rpc import RpcRejectedError

from ._support import Cluster, TestHaServices, cluster_config, wait_until


async def _leading_resource_manager(cluster: Cluster) -> ResourceManager:
    jm = await cluster.add_jobmanager()

    def current() -> ResourceManager | None:
        service = jm.resource_manager_service
        return service.current if service is not None else None

    rm: ResourceManager = await wait_until("a leading ResourceManager", current)
    return rm


async def test_a_slot_request_waits_for_a_taskmanager_to_register(cluster: Cluster) -> None:
    rm = await _leading_resource_manager(cluster)
    job_id = uuid.uuid4().hex
    request = asyncio.ensure_future(
        rm.rpc_request_slots(job_id, 2, "http://127.0.0.1:1/rpc/x", str(uuid.uuid4()), max_wait_s=30.0)
    )
    await asyncio.sleep(0)  # the request is pending: no TaskManager yet
    assert not request.done()

    await cluster.add_taskmanager()

    allocations = await asyncio.wait_for(request, 30)
    assert len(allocations) == 2
    assert {a["slotIndex"] for a in allocations} == {0, 1}


async def test_a_slot_request_without_waiting_is_refused_at_once(cluster: Cluster) -> None:
    rm = await _leading_resource_manager(cluster)
    with pytest.raises(RpcRejectedError, match="Could not allocate 2 slots"):
        await rm.rpc_request_slots(uuid.uuid4().hex, 2, "http://127.0.0.1:1/rpc/x", str(uuid.uuid4()))


async def test_a_pending_slot_request_ends_when_the_resource_manager_stops(cluster: Cluster) -> None:
    rm = await _leading_resource_manager(cluster)
    request = asyncio.ensure_future(
        rm.rpc_request_slots(
            uuid.uuid4().hex, 1, "http://127.0.0.1:1/rpc/x", str(uuid.uuid4()), max_wait_s=60.0
        )
    )
    await asyncio.sleep(0)
    await rm.stop()
    with pytest.raises(RpcRejectedError):
        await asyncio.wait_for(request, 10)


async def test_freed_slots_reach_the_resource_manager_before_the_next_heartbeat(
    services: TestHaServices, tmp_path: Path
) -> None:
    # heartbeats far apart: only the TaskManager's immediate report can tell the ResourceManager in time
    config = cluster_config(tmp_path, **{"heartbeat.interval": "60 s", "heartbeat.timeout": "120 s"})
    cluster = Cluster(services, config)
    try:
        rm = await _leading_resource_manager(cluster)
        tm = await cluster.add_taskmanager()
        await cluster.ready()
        executor = tm.executor
        assert executor is not None

        def free_slots() -> int:
            return sum(len(t.free_slots()) for t in rm.task_managers.values())

        allocations = await rm.rpc_request_slots(
            uuid.uuid4().hex, 2, "http://127.0.0.1:1/rpc/x", str(uuid.uuid4()), max_wait_s=10.0
        )
        assert free_slots() == 0
        # the TaskManager lets go of one slot on its own (as when a JobMaster is lost): nobody else tells the RM
        await executor.rpc_free_slot(allocations[0]["allocationId"])

        await wait_until("the ResourceManager to see the slot free", lambda: free_slots() == 1, timeout_s=20)
    finally:
        await cluster.close()
