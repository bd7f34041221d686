"""TaskExecutor: only the JobMaster that leader retrieval confirms may deploy or steer tasks; a lost
JobManager leadership releases the job's slots."""

from __future__ import annotations

import uuid

import pytest

from standby.ha import JobID
from standby.runtime.rpc import RpcRejectedError

from ._support import Cluster, TestHaServices, wait_until


async def test_deployment_by_a_deposed_jobmaster_is_refused(
    cluster: Cluster, services: TestHaServices
) -> None:
    await cluster.add_jobmanager()
    tm = await cluster.add_taskmanager()
    await cluster.ready()
    job_id = await cluster.submit(args=["100000", "2"], parallelism=1)
    executor = tm.executor
    assert executor is not None
    slot = await wait_until(
        "the subtask to run",
        lambda: next((s for s in executor.slots if s.task is not None and s.task.state == "RUNNING"), None),
    )
    assert slot.task is not None
    forged = dict(
        slot.task.deployment.to_json(), job_master_id=str(uuid.uuid4()), attempt_id=uuid.uuid4().hex
    )

    with pytest.raises(RpcRejectedError, match="belongs to JobManager"):
        await executor.rpc_submit_task(forged)
    with pytest.raises(RpcRejectedError, match="No task"):
        await executor.rpc_trigger_checkpoint(
            job_id, str(uuid.uuid4()), slot.task.deployment.attempt_id, 99, "/x"
        )
    await executor.rpc_release_job(job_id, str(uuid.uuid4()), "stale")
    assert slot.task is not None and slot.task.state == "RUNNING"  # a stale JobMaster changes nothing

    await cluster.rest("PATCH", f"/jobs/{job_id}", params={"mode": "cancel"})
    await cluster.result(job_id)


async def test_jobmaster_leadership_loss_releases_the_slots(
    cluster: Cluster, services: TestHaServices
) -> None:
    await cluster.add_jobmanager()
    tm = await cluster.add_taskmanager()
    await cluster.ready()
    job_id = await cluster.submit(args=["100000", "2"], parallelism=2)
    executor = tm.executor
    assert executor is not None
    await wait_until("the subtasks to run", lambda: sum(1 for s in executor.slots if s.job_id == job_id) == 2)

    await services.revoke_job_master_leadership(JobID(job_id))

    await wait_until("the slots to be released", lambda: all(s.job_id is None for s in executor.slots))
    await services.grant_job_master_leadership(JobID(job_id))
    await wait_until(
        "the job to run again", lambda: sum(1 for s in executor.slots if s.job_id == job_id) == 2
    )
    await cluster.rest("PATCH", f"/jobs/{job_id}", params={"mode": "cancel"})
    result = await cluster.result(job_id)
    assert result["application-status"] == "CANCELED"
