"""TaskExecutor: only the JobMaster that leader retrieval confirms may deploy or steer tasks; a lost
JobManager leadership releases the job's slots."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from standby import Task
from standby.ha import JobID
from standby.runtime.rpc import RpcEndpoint, RpcRejectedError
from standby.runtime.taskexecutor._task_runner import RunningTask, TaskDeployment, TaskEvent

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


async def test_a_late_older_state_update_does_not_move_a_running_subtask_back(
    cluster: Cluster, services: TestHaServices
) -> None:
    """Updates can arrive out of order (retries, heartbeats): INITIALIZING after RUNNING is ignored."""
    await cluster.add_jobmanager()
    await cluster.add_taskmanager()
    leader = await cluster.ready()
    job_id = await cluster.submit(args=["100000", "2"], parallelism=2)
    dispatcher = leader.dispatcher_runner.dispatcher if leader.dispatcher_runner else None
    assert dispatcher is not None
    runner = dispatcher.runners[JobID(job_id)]
    job_master = await wait_until(
        "the job to run",
        lambda: (
            runner.job_master
            if runner.job_master is not None and runner.job_master.running_since_ms is not None
            else None
        ),
    )
    execution = job_master.executions[0]
    assert execution.state == "RUNNING"

    # the JobMaster's own update path (private: the RPC only queues the update)
    job_master._apply_update({"attempt_id": execution.attempt_id, "state": "INITIALIZING"})

    assert execution.state == "RUNNING"
    assert all(v["tasks"].get("RUNNING") == 2 for v in job_master.details()["vertices"])
    await cluster.rest("PATCH", f"/jobs/{job_id}", params={"mode": "cancel"})
    await cluster.result(job_id)


class _Idle(Task):
    def step(self) -> bool:
        return False


class _GatedRecorder(RpcEndpoint):
    """A stand-in JobMaster endpoint whose first update blocks until released."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.received: list[str] = []
        self.first_arrived = asyncio.Event()
        self.release_first = asyncio.Event()

    async def rpc_update_task_execution_state(
        self, attempt_id: str, subtask_index: int, state: str, **_: Any
    ) -> None:
        if not self.first_arrived.is_set():
            self.first_arrived.set()
            await asyncio.wait_for(self.release_first.wait(), 10)
        self.received.append(state)

    async def rpc_acknowledge_checkpoint(
        self, attempt_id: str, subtask_index: int, checkpoint_id: int, state_path: str
    ) -> None:
        self.received.append(f"ack-{checkpoint_id}")


async def test_an_attempts_messages_reach_the_jobmaster_in_order_and_stale_states_are_skipped(
    cluster: Cluster, services: TestHaServices
) -> None:
    await cluster.add_jobmanager()
    tm = await cluster.add_taskmanager()
    await cluster.ready()
    executor = tm.executor
    assert executor is not None
    recorder = _GatedRecorder(f"jobmaster-{uuid.uuid4().hex}")
    tm.rpc_service.register(recorder)
    deployment = TaskDeployment(
        job_id=uuid.uuid4().hex,
        job_name="ordering",
        attempt_id=uuid.uuid4().hex,
        attempt_number=1,
        subtask_index=0,
        parallelism=1,
        allocation_id=uuid.uuid4().hex,
        entry="",
        user_code_key="",
        args=(),
        job_master_address=tm.rpc_service.address_of(recorder.endpoint_id),
        job_master_id=str(uuid.uuid4()),
        state_dir="",
    )
    task = RunningTask(deployment, _Idle, asyncio.get_running_loop(), lambda *_: None)

    executor._on_task_event(task, TaskEvent("state", state="INITIALIZING"))
    await asyncio.wait_for(recorder.first_arrived.wait(), 10)
    # posted while INITIALIZING is in flight: RUNNING and FINISHED supersede each other, the ack keeps its place
    executor._on_task_event(task, TaskEvent("state", state="RUNNING"))
    executor._on_task_event(task, TaskEvent("checkpoint-ack", checkpoint_id=7, state_path="/s"))
    executor._on_task_event(task, TaskEvent("state", state="FINISHED", result={}))
    recorder.release_first.set()

    await wait_until("every message to arrive", lambda: len(recorder.received) == 3)
    assert recorder.received == ["INITIALIZING", "ack-7", "FINISHED"]
