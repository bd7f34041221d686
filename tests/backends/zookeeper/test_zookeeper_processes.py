"""Real JobManager processes on ZooKeeper: SIGKILL hand-over, graceful hand-over, and a paused leader fenced off.

The leader is a child process (``leader_process.py``); the standby is this test process. Sessions time out after
2 s, so a killed leader's latch node vanishes 2 s after its death.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from standby.backends.zookeeper import ZooKeeperHaServices, ZooKeeperHaServicesFactory
from standby.config import Configuration
from standby.ha import DefaultCheckpointsCleaner, ExecutionPlan, JobID, LeaderElection
from standby.testing.recording import RecordingRetrievalListener
from standby.testing.servers import ZooKeeperServer
from standby.testing.store_contract import RecordingExecutionPlanListener, make_checkpoint

from .zk_support import LeaderProcess, RecordingContender, make_configuration, wait_until

pytestmark = [pytest.mark.zookeeper, pytest.mark.slow]


class Cluster:
    """One configuration shared by a leader child process and a standby in this process."""

    def __init__(self, config: Configuration, tmp_path: Path) -> None:
        self.config = config
        self.tmp_path = tmp_path
        self.processes: list[LeaderProcess] = []
        self.services: list[ZooKeeperHaServices] = []

    async def leader_process(self) -> LeaderProcess:
        process = LeaderProcess(self.config, self.tmp_path / f"leader-{len(self.processes)}.log")
        self.processes.append(process)
        await process.start()
        await process.expect("GRANTED")
        return process

    async def standby(self) -> tuple[ZooKeeperHaServices, LeaderElection, RecordingContender]:
        services = await ZooKeeperHaServicesFactory().create_ha_services(self.config)
        self.services.append(services)
        election = services.get_dispatcher_leader_election()
        contender = RecordingContender(election, "http://standby")
        await election.start_leader_election(contender)
        driver = services.election_driver_factory.driver
        assert driver is not None
        await wait_until(lambda: driver.latch_node is not None, what="the standby's latch node")
        return services, election, contender


@pytest.fixture
async def cluster(zookeeper_server: ZooKeeperServer, tmp_path: Path) -> AsyncIterator[Cluster]:
    cluster = Cluster(make_configuration(zookeeper_server.connect_string, str(tmp_path / "ha")), tmp_path)
    yield cluster
    for process in cluster.processes:
        await process.kill()
    for services in cluster.services:
        await services.client.close()


async def test_sigkill_of_the_leader_hands_over_within_the_session_timeout(cluster: Cluster) -> None:
    leader = await cluster.leader_process()
    services, election, contender = await cluster.standby()
    retriever = services.get_dispatcher_leader_retriever()
    listener = RecordingRetrievalListener()
    await retriever.start(listener)
    address, _ = await listener.wait_for_leader()
    assert address is not None
    assert address.startswith("http://127.0.0.1/dispatcher/")
    assert contender.session_id is None

    leader.send_signal(signal.SIGKILL)
    await wait_until(lambda: contender.session_id is not None, what="the standby to take over")
    await contender.settle()
    session_id = contender.session_id
    assert session_id is not None
    assert await election.has_leadership(session_id)
    await listener.wait_for_leader("http://standby", contender.session_id)
    await retriever.stop()
    await election.close()


async def test_graceful_stop_hands_over(cluster: Cluster) -> None:
    leader = await cluster.leader_process()
    _, election, contender = await cluster.standby()
    leader.send_signal(signal.SIGTERM)
    await leader.expect("CLOSED")
    assert await leader.wait() == 0
    await wait_until(lambda: contender.session_id is not None, what="the standby to take over")
    await election.close()


async def test_paused_leader_is_fenced_after_it_resumes(cluster: Cluster) -> None:
    """SIGSTOP the leader until its session expired and the standby took over; after SIGCONT, its writes fail."""
    job_id = JobID.generate()
    leader = await cluster.leader_process()
    services, election, contender = await cluster.standby()
    assert await leader.command(f"put-plan {job_id}") == f"OK put-plan {job_id}"
    assert await leader.command(f"add-checkpoint {job_id} 1") == f"OK add-checkpoint {job_id} 1"

    leader.send_signal(signal.SIGSTOP)
    await wait_until(lambda: contender.session_id is not None, what="the standby to take over")
    # the new leader recovers and writes
    plans = services.get_execution_plan_store()
    await plans.start(RecordingExecutionPlanListener())
    assert await plans.recover_execution_plan(job_id) == ExecutionPlan(job_id, "process test")
    await plans.put_execution_plan(ExecutionPlan(job_id, "new leader"))
    checkpoints = (
        await services.get_checkpoint_recovery_factory().create_recovered_completed_checkpoint_store(
            job_id, 10
        )
    )
    assert [c.checkpoint_id for c in checkpoints.get_all_checkpoints()] == [1]
    await checkpoints.add_checkpoint_and_subsume_oldest_one(
        make_checkpoint(2, job_id), DefaultCheckpointsCleaner()
    )

    leader.send_signal(signal.SIGCONT)
    result = await leader.command(f"add-checkpoint {job_id} 3")
    assert result.startswith(f"FENCED add-checkpoint {job_id} 3"), result
    result = await leader.command(f"put-plan {job_id}")
    assert result.startswith(f"FENCED put-plan {job_id}"), result

    # the new leader's data is intact
    recovered = await services.get_checkpoint_recovery_factory().create_recovered_completed_checkpoint_store(
        job_id, 10
    )
    assert [c.checkpoint_id for c in recovered.get_all_checkpoints()] == [1, 2]
    assert await plans.recover_execution_plan(job_id) == ExecutionPlan(job_id, "new leader")
    session_id = contender.session_id
    assert session_id is not None
    assert await election.has_leadership(session_id)
    await plans.stop()
    await election.close()
