"""A job's life in an in-process cluster: exact results, cancellation, HA data cleanup, duplicate submissions,
and the order of the terminal steps (JobResultStore entry before any leadership-scoped resource is released)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from standby.ha import JobID, job_manager_component

from ._support import FAILING_TASK, Cluster, TestHaServices, cluster_config, counter_expectation, wait_until


async def _job_data_gone(
    services: TestHaServices, cluster: Cluster, job_id: str, checkpoint_root: Path
) -> bool:
    return (
        await services.jrs.has_clean_job_result_entry(JobID(job_id))
        and not await services.jrs.has_dirty_job_result_entry(JobID(job_id))
        and job_id not in services.stored_plans()
        and not services.blob_store.has_job(job_id)
        and JobID(job_id) in services.global_cleanups
        and not (checkpoint_root / job_id).exists()
    )


async def test_job_finishes_with_the_exact_result_and_its_ha_data_is_removed(
    cluster: Cluster, services: TestHaServices, tmp_path: Path
) -> None:
    await cluster.add_jobmanager()
    await cluster.add_taskmanager()
    await cluster.ready()
    job_id = await cluster.submit(args=["400", "1"], parallelism=2)

    result = await cluster.result(job_id)

    assert result["application-status"] == "SUCCEEDED"
    assert result["accumulator-results"] == counter_expectation(400)
    await wait_until(
        "the job's HA data to be removed",
        lambda: _job_data_gone(services, cluster, job_id, tmp_path / "checkpoints"),
    )
    # the job's election is closed once the job ended
    assert not services.has_contender(job_manager_component(JobID(job_id)))
    order = services.log.events
    assert order.index(f"jrs-dirty:{job_id}") < order.index(f"jrs-clean:{job_id}")


async def test_cancel_ends_the_job_canceled_and_removes_all_its_ha_data(
    cluster: Cluster, services: TestHaServices, tmp_path: Path
) -> None:
    await cluster.add_jobmanager()
    await cluster.add_taskmanager()
    await cluster.ready()
    job_id = await cluster.submit(args=["100000", "2"], parallelism=2)
    await wait_until(
        "a completed checkpoint",
        lambda: services.recovery.latest_checkpoint(JobID(job_id)) is not None,
    )
    assert job_id in services.stored_plans()

    response = await cluster.rest("PATCH", f"/jobs/{job_id}", params={"mode": "cancel"})

    assert response.status_code == 202, response.text
    result = await cluster.result(job_id)
    assert result["application-status"] == "CANCELED"
    await wait_until(
        "the job's HA data to be removed",
        lambda: _job_data_gone(services, cluster, job_id, tmp_path / "checkpoints"),
    )
    assert f"checkpoint-store-shutdown:CANCELED:{job_id}" in services.log.events


async def test_submission_with_the_id_of_a_finished_job_is_refused(cluster: Cluster) -> None:
    await cluster.add_jobmanager()
    await cluster.add_taskmanager()
    await cluster.ready()
    job_id = await cluster.submit(args=["20", "1"])
    await cluster.result(job_id)

    response = await cluster.rest(
        "POST", "/jobs", json={"jobFile": "cHJpbnQoKQ==", "jobFileName": "x.py", "jobId": job_id}
    )

    assert response.status_code == 422
    assert "already been submitted" in response.json()["errors"][0]


async def test_a_failing_task_fails_the_job_after_the_restarts(
    cluster: Cluster, services: TestHaServices
) -> None:
    await cluster.add_jobmanager()
    await cluster.add_taskmanager()
    await cluster.ready()
    job_id = await cluster.submit(FAILING_TASK, parallelism=1)

    result = await cluster.result(job_id)

    assert result["application-status"] == "FAILED"
    assert "boom from the task" in result["failure-cause"]["stack-trace"]
    details = await cluster.details(job_id)
    assert details["state"] == "FAILED"
    assert await services.jrs.has_job_result_entry(JobID(job_id))


async def test_terminal_result_is_stored_before_leadership_scoped_resources_are_released(
    cluster: Cluster, services: TestHaServices
) -> None:
    """FLINK-39704 closed: the dirty JobResult precedes checkpoint store/counter shutdown and slot release."""
    await cluster.add_jobmanager()
    tm = await cluster.add_taskmanager()
    await cluster.ready()
    services.jrs.gate = asyncio.Event()
    job_id = await cluster.submit(args=["60", "1"])
    await asyncio.wait_for(services.jrs.gate_reached.wait(), 20)

    # held in the terminal step: nothing leadership-scoped is released yet
    assert not any(e.startswith("checkpoint-store-shutdown") for e in services.log.events)
    assert not any(e.startswith("counter-shutdown") for e in services.log.events)
    assert any(slot.job_id == job_id for slot in tm.executor.slots)  # type: ignore[union-attr]

    services.jrs.gate.set()
    await cluster.result(job_id)
    events = services.log.events
    assert events.index(f"jrs-dirty:{job_id}") < events.index(f"checkpoint-store-shutdown:FINISHED:{job_id}")
    assert events.index(f"jrs-dirty:{job_id}") < events.index(f"counter-shutdown:FINISHED:{job_id}")


async def test_revocation_during_the_terminal_step_does_not_mask_the_result(
    cluster: Cluster, services: TestHaServices
) -> None:
    """FLINK-39704: a job finishing while its leadership is revoked is recorded FINISHED, never run again."""
    await cluster.add_jobmanager()
    tm = await cluster.add_taskmanager()
    await cluster.ready()
    services.jrs.gate = asyncio.Event()
    job_id = await cluster.submit(args=["60", "1"])
    await asyncio.wait_for(services.jrs.gate_reached.wait(), 20)

    await services.revoke_job_master_leadership(JobID(job_id))
    services.jrs.gate.set()

    result = await cluster.result(job_id)
    assert result["application-status"] == "SUCCEEDED"
    assert result["accumulator-results"] == counter_expectation(60)
    await services.grant_job_master_leadership(JobID(job_id))
    await wait_until("the cleanup", lambda: services.jrs.has_clean_job_result_entry(JobID(job_id)))
    assert tm.executor is not None
    assert tm.executor.tasks_submitted == 2  # deployed once, never re-run
    assert f"checkpoint-store-shutdown:SUSPENDED:{job_id}" not in services.log.events


async def test_cleanup_is_retried_until_it_succeeds_and_only_then_marked_clean(
    cluster: Cluster, services: TestHaServices
) -> None:
    await cluster.add_jobmanager()
    await cluster.add_taskmanager()
    await cluster.ready()
    services.blob_store.fail_deletes = 3
    job_id = await cluster.submit(args=["20", "1"])
    await cluster.result(job_id)

    await wait_until("the cleanup", lambda: services.jrs.has_clean_job_result_entry(JobID(job_id)))

    assert services.blob_store.delete_all_calls >= 4
    events = services.log.events
    assert events.index(f"blobs-deleted:{job_id}") < events.index(f"jrs-clean:{job_id}")


async def test_a_finished_job_is_not_rerun_and_its_cleanup_is_finished_by_the_next_leader(
    services: TestHaServices, tmp_path: Path
) -> None:
    cluster = Cluster(services, cluster_config(tmp_path))
    try:
        first = await cluster.add_jobmanager()
        tm = await cluster.add_taskmanager()
        await cluster.ready()
        services.fail_cleanup = True
        job_id = await cluster.submit(args=["30", "1"])
        result = await cluster.result(job_id)
        assert await services.jrs.has_dirty_job_result_entry(JobID(job_id))
        assert job_id in services.stored_plans()

        # the leader goes away with the cleanup unfinished; a standby takes over
        second = await cluster.add_jobmanager()
        await first.close()
        cluster.jobmanagers.remove(first)
        await wait_until("the new leader", lambda: second.local_dispatcher_token() is not None)
        assert (await cluster.result(job_id)) == result
        services.fail_cleanup = False

        await wait_until(
            "the cleanup by the new leader", lambda: services.jrs.has_clean_job_result_entry(JobID(job_id))
        )
        assert job_id not in services.stored_plans()
        assert tm.executor is not None
        assert tm.executor.tasks_submitted == 2  # the finished job was not run again
    finally:
        await cluster.close()


async def test_a_job_is_recovered_by_the_next_leader_with_the_exact_result(
    services: TestHaServices, tmp_path: Path
) -> None:
    cluster = Cluster(services, cluster_config(tmp_path))
    try:
        first = await cluster.add_jobmanager()
        await cluster.add_taskmanager()
        await cluster.ready()
        job_id = await cluster.submit(args=["1500", "2"])
        await wait_until(
            "a completed checkpoint", lambda: services.recovery.latest_checkpoint(JobID(job_id)) is not None
        )
        second = await cluster.add_jobmanager()

        await first.close()
        cluster.jobmanagers.remove(first)

        await wait_until("the new leader", lambda: second.local_dispatcher_token() is not None)
        result = await cluster.result(job_id, timeout_s=40)
        assert result["accumulator-results"] == counter_expectation(1500)
        details = await cluster.details(job_id)
        assert details["state"] == "FINISHED"
        assert f"checkpoint-store-shutdown:SUSPENDED:{job_id}" in services.log.events
    finally:
        await cluster.close()
