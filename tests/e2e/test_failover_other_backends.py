"""The same runtime, unchanged, on the ZooKeeper and etcd backends: the leading JobManager is SIGKILLed during a job
and the job finishes with the exact result (Flink's JobManagerHAProcessFailureRecoveryITCase)."""

from __future__ import annotations

from pathlib import Path

import pytest

from standby.testing.servers import EtcdServer, ZooKeeperServer

from ._processes import ProcessCluster, counter_expectation


async def _leader_killed_during_a_job(processes: ProcessCluster) -> None:
    try:
        await processes.start("jobmanager")
        await processes.start("jobmanager")
        await processes.start("taskmanager")
        await processes.ready()
        job_id = await processes.submit(["1500", "3"], parallelism=2)
        await processes.checkpoints_completed(job_id, at_least=2)
        leader = await processes.leader()
        assert leader is not None

        await processes.kill(leader)

        result = await processes.result(job_id)
        assert result["accumulator-results"] == counter_expectation(1500)
        new_leader = await processes.leader()
        assert new_leader is not None and new_leader is not leader
    except BaseException:
        print(processes.logs())
        raise
    finally:
        await processes.close()


@pytest.mark.slow
@pytest.mark.zookeeper
async def test_zookeeper_leader_killed_during_a_job(
    zookeeper_server: ZooKeeperServer, tmp_path: Path
) -> None:
    processes = ProcessCluster(
        tmp_path,
        {
            "high-availability.type": "zookeeper",
            "high-availability.zookeeper.quorum": zookeeper_server.connect_string,
            # a SIGKILLed leader's ephemeral nodes go when its session expires
            "high-availability.zookeeper.client.session-timeout": "3000",
            "high-availability.zookeeper.client.connection-timeout": "2000",
        },
    )
    await _leader_killed_during_a_job(processes)


@pytest.mark.slow
@pytest.mark.etcd
async def test_etcd_leader_killed_during_a_job(etcd_server: EtcdServer, tmp_path: Path) -> None:
    processes = ProcessCluster(
        tmp_path,
        {
            "high-availability.type": "etcd",
            "high-availability.etcd.endpoints": etcd_server.endpoint,
            # a SIGKILLed leader's lease expires after its TTL
            "high-availability.etcd.lease-ttl": "2 s",
        },
    )
    await _leader_killed_during_a_job(processes)
