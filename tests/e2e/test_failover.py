"""End to end with real processes on the filesystem backend: a SIGKILLed leader (Flink's
JobManagerHAProcessFailureRecoveryITCase), a killed TaskManager, cancellation cleanup, a crash during cleanup,
and fencing of a deposed leader's session."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import httpx
import pytest

from ._processes import ROOT, ProcessCluster, counter_expectation, wait_for

pytestmark = pytest.mark.slow


async def test_leader_jobmanager_killed_during_a_job_the_job_finishes_exactly(
    processes: ProcessCluster,
) -> None:
    first = await processes.start("jobmanager")
    await processes.start("jobmanager")
    await processes.start("taskmanager")
    assert await processes.ready() is first or True
    job_id = await processes.submit(["2000", "3"], parallelism=2)
    await processes.checkpoints_completed(job_id, at_least=2)
    leader = await processes.leader()
    assert leader is not None

    await processes.kill(leader)

    result = await processes.result(job_id)
    assert result["application-status"] == "SUCCEEDED"
    assert result["accumulator-results"] == counter_expectation(2000)
    new_leader = await processes.leader()
    assert new_leader is not None and new_leader is not leader
    stats = await processes.get(new_leader, f"/jobs/{job_id}/checkpoints")
    assert stats["latest"]["restored"] is not None  # recovered from a checkpoint, not from scratch


async def test_taskmanager_killed_mid_job_the_job_restarts_from_its_checkpoint(
    processes: ProcessCluster,
) -> None:
    await processes.start("jobmanager")
    first = await processes.start("taskmanager")
    await processes.start("taskmanager")
    await processes.ready(task_managers=2)
    job_id = await processes.submit(["2000", "3"], parallelism=2)  # spread: one subtask per TaskManager
    await processes.checkpoints_completed(job_id, at_least=2)

    await processes.kill(first)

    result = await processes.result(job_id)
    assert result["accumulator-results"] == counter_expectation(2000)
    details = await processes.leader_get(f"/jobs/{job_id}")
    assert details["restarts"] >= 1


async def test_cancel_removes_all_ha_data_of_the_job(processes: ProcessCluster) -> None:
    await processes.start("jobmanager")
    await processes.start("taskmanager")
    leader = await processes.ready()
    job_id = await processes.submit(["100000", "3"], parallelism=2)
    await processes.checkpoints_completed(job_id, at_least=1)
    ha = processes.ha_dir
    assert (ha / "execution-plans" / job_id).exists()
    assert (ha / "jobs" / job_id).exists()
    assert (ha / "blob" / f"job_{job_id}").exists()
    assert (processes.checkpoints / job_id).exists()

    response = await processes.http.patch(f"{leader.url}/jobs/{job_id}", params={"mode": "cancel"})
    assert response.status_code == 202

    result = await processes.result(job_id)
    assert result["application-status"] == "CANCELED"
    jrs = processes.storage / "job-result-store" / processes.cluster_id

    async def all_gone() -> bool:
        return not any(
            (
                (ha / "execution-plans" / job_id).exists(),
                (ha / "jobs" / job_id).exists(),
                (ha / "blob" / f"job_{job_id}").exists(),
                (processes.checkpoints / job_id).exists(),
                (ha / "leader" / f"job-{job_id}").exists(),
                any(jrs.glob(f"{job_id}*")),  # clean entries are deleted on commit (default)
            )
        )

    await wait_for("the job's HA data to be removed", all_gone)
    leftovers = [str(p.relative_to(processes.storage)) for p in processes.storage.rglob(f"*{job_id}*")]
    assert leftovers == []


async def test_a_crash_during_cleanup_is_finished_by_the_next_leader(tmp_path: Path) -> None:
    processes = ProcessCluster(
        tmp_path,
        {"high-availability.type": "tests.e2e._faulty:FaultyFileSystemHaServicesFactory"},
        pythonpath=[str(ROOT)],
    )
    try:
        processes.storage.mkdir(parents=True, exist_ok=True)
        marker = processes.storage / "fail-cleanup"
        marker.touch()
        first = await processes.start("jobmanager")
        await processes.ready(task_managers=0)
        await processes.start("jobmanager")
        tm = await processes.start("taskmanager")
        await processes.ready()
        job_id = await processes.submit(["200", "1"], parallelism=2)
        result = await processes.result(job_id)
        dirty = processes.storage / "job-result-store" / processes.cluster_id / f"{job_id}_DIRTY.json"
        assert dirty.exists()  # the cleanup keeps failing: the result stays dirty

        await processes.kill(first)
        os.unlink(marker)

        async def cleaned() -> bool:
            return not dirty.exists() and not (processes.ha_dir / "jobs" / job_id).exists()

        await wait_for("the next leader to finish the cleanup", cleaned)
        assert (await processes.result(job_id)) == result
        assert result["accumulator-results"] == counter_expectation(200)
        assert tm.log_text().count("Started subtask") == 2  # the finished job never ran again
    finally:
        await processes.close()


async def test_a_deposed_leaders_fencing_token_is_rejected(processes: ProcessCluster) -> None:
    await processes.start("jobmanager")
    await processes.start("jobmanager")
    leader = await processes.ready(task_managers=0)

    async def published_dispatcher() -> dict[str, str] | None:
        # the leader answers /overview through its own Dispatcher before its leader retrieval reports it
        info = (await processes.get(leader, "/cluster/leaders"))["leaders"]["dispatcher"]
        return dict(info) if info["sessionId"] is not None else None

    old = await wait_for("the leader to retrieve its own dispatcher", published_dispatcher)

    await processes.kill(leader)

    async def new_dispatcher() -> dict[str, str] | None:
        current = await processes.leader()
        if current is None:
            return None
        info = (await processes.get(current, "/cluster/leaders"))["leaders"]["dispatcher"]
        return dict(info) if info["sessionId"] not in (None, old["sessionId"]) else None

    new = await wait_for("a new dispatcher leader", new_dispatcher)
    async with httpx.AsyncClient() as http:
        stale = await http.post(
            f"{new['address']}/list_jobs", json={}, headers={"X-Standby-Fencing-Token": old["sessionId"]}
        )
        fresh = await http.post(
            f"{new['address']}/list_jobs", json={}, headers={"X-Standby-Fencing-Token": new["sessionId"]}
        )
    assert stale.status_code == 409
    assert stale.json()["errors"][0].startswith(
        f"Fencing token mismatch: Ignoring message RemoteFencedMessage(list_jobs()) because the fencing token "
        f"{old['sessionId']} did not match the expected fencing token {new['sessionId']}."
    )
    assert fresh.status_code == 200


async def test_sigterm_hands_leadership_over_at_once_and_keeps_the_job(processes: ProcessCluster) -> None:
    await processes.start("jobmanager")
    await processes.start("jobmanager")
    await processes.start("taskmanager")
    await processes.ready()
    # ~15 s of work: long enough that the new leader cannot have finished (and cleaned up) the job before the old
    # leader's exit is observed, even on a loaded machine.
    job_id = await processes.submit(["1500", "10"], parallelism=2)
    await processes.checkpoints_completed(job_id, at_least=1)
    leader = await processes.leader()
    assert leader is not None and leader.proc is not None

    leader.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(leader.proc.wait(), 20) == 0

    assert (processes.ha_dir / "execution-plans" / job_id).exists()  # a graceful stop keeps the HA data
    result = await processes.result(job_id)
    assert result["accumulator-results"] == counter_expectation(1500)
    assert "JobManager" in leader.log_text() and "stopped" in leader.log_text()


async def test_shutdown_cluster_stops_every_process_and_removes_the_ha_data(
    processes: ProcessCluster,
) -> None:
    await processes.start("jobmanager")
    await processes.start("jobmanager")
    await processes.start("taskmanager")
    leader = await processes.ready()
    job_id = await processes.submit(["100000", "3"], parallelism=1)
    await processes.checkpoints_completed(job_id, at_least=1)

    async def all_announced() -> bool:
        return len((await processes.get(leader, "/jobmanagers"))["jobmanagers"]) == 2

    await wait_for("both JobManagers to announce themselves", all_announced)
    response = await processes.http.delete(f"{leader.url}/cluster")
    assert response.status_code == 202

    for proc in processes.procs:
        assert proc.proc is not None
        assert await asyncio.wait_for(proc.proc.wait(), 30) == 0, proc.log_text()[-2000:]
    remaining = [
        p
        for p in ("execution-plans", "jobs", "blob")
        if (processes.ha_dir / p).exists() and any((processes.ha_dir / p).iterdir())
    ]
    assert remaining == []
