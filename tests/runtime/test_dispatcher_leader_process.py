"""SessionDispatcherLeaderProcess / DefaultDispatcherRunner after Flink's SessionDispatcherLeaderProcessTest:
the recovery matrix of execution plans x dirty job results, plan watcher events, close order, recovery failure."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from standby.ha import (
    ApplicationStatus,
    ExecutionPlan,
    ExecutionPlanListener,
    JobID,
    JobResult,
    JobResultEntry,
)
from standby.runtime._config import RuntimeSettings
from standby.runtime._util import LeaderTracker
from standby.runtime.dispatcher import (
    DispatcherLeaderProcessError,
    DispatcherServices,
    SessionDispatcherLeaderProcess,
)
from standby.runtime.jobmaster import JobMasterServices
from standby.runtime.rpc import RpcClient, RpcService

from ._support import COUNTER, TestHaServices, cluster_config, wait_until


class _FatalErrors:
    def __init__(self) -> None:
        self.errors: list[BaseException] = []

    def on_fatal_error(self, error: BaseException) -> None:
        self.errors.append(error)


@pytest.fixture
async def parts(
    services: TestHaServices, tmp_path: Path
) -> AsyncIterator[tuple[DispatcherServices, _FatalErrors]]:
    settings = RuntimeSettings.from_configuration(cluster_config(tmp_path))
    rpc_service = RpcService("127.0.0.1", 1)  # never served: the dispatcher is called in-process
    client = RpcClient(local=rpc_service)
    resource_manager = LeaderTracker("resource_manager", services.get_resource_manager_leader_retriever())
    fatal = _FatalErrors()

    async def user_code(plan: ExecutionPlan) -> bytes:
        return COUNTER

    dispatcher_services = DispatcherServices(
        settings=settings,
        configuration=cluster_config(tmp_path),
        ha_services=services,
        rpc_service=rpc_service,
        rpc_client=client,
        job_master_services=JobMasterServices(
            settings, client, resource_manager, services.get_checkpoint_recovery_factory(), user_code
        ),
        blob_store=services.blob_store,
        job_result_store=services.jrs,
        resource_manager=resource_manager,
        fatal_error_handler=fatal,
    )
    yield dispatcher_services, fatal
    await client.close()
    await services.close()


def _plan(job_id: JobID) -> ExecutionPlan:
    return ExecutionPlan(
        job_id=job_id, name=f"job-{job_id[:6]}", parallelism=1, user_code="k", entry="Counter"
    )


async def _store_plans(services: TestHaServices, *job_ids: JobID) -> None:
    store = services.get_execution_plan_store()
    await store.start(_NoListener())
    for job_id in job_ids:
        await store.put_execution_plan(_plan(job_id))
    await store.stop()  # releases its locks, the plans stay


async def _dirty(services: TestHaServices, job_id: JobID) -> None:
    await services.jrs.create_dirty_result(
        JobResultEntry(JobResult(job_id=job_id, name="done", application_status=ApplicationStatus.SUCCEEDED))
    )


class _NoListener(ExecutionPlanListener):
    def on_added_execution_plan(self, job_id: JobID) -> None: ...

    def on_removed_execution_plan(self, job_id: JobID) -> None: ...


async def _start(parts: tuple[DispatcherServices, _FatalErrors]) -> SessionDispatcherLeaderProcess:
    dispatcher_services, _ = parts
    services = dispatcher_services.ha_services
    assert isinstance(services, TestHaServices)
    process = SessionDispatcherLeaderProcess(
        uuid.uuid4(), dispatcher_services, services.get_execution_plan_store()
    )
    assert await process.start() is not None
    return process


async def test_recovery_with_execution_plan_but_no_dirty_job_result(
    services: TestHaServices, parts: tuple[DispatcherServices, _FatalErrors]
) -> None:
    job_id = JobID.generate()
    await _store_plans(services, job_id)

    process = await _start(parts)

    assert process.dispatcher is not None
    assert set(process.dispatcher.runners) == {job_id}
    await process.close()


async def test_recovery_with_execution_plan_and_matching_dirty_job_result(
    services: TestHaServices, parts: tuple[DispatcherServices, _FatalErrors]
) -> None:
    job_id = JobID.generate()
    await _store_plans(services, job_id)
    await _dirty(services, job_id)

    process = await _start(parts)

    assert process.dispatcher is not None
    assert process.dispatcher.runners == {}  # not recovered: it already reached a globally terminal state
    await wait_until("the cleanup of the dirty job", lambda: services.jrs.has_clean_job_result_entry(job_id))
    assert job_id not in services.stored_plans()
    assert f"checkpoint-store-shutdown:FINISHED:{job_id}" in services.log.events
    assert f"counter-shutdown:FINISHED:{job_id}" in services.log.events
    await process.close()


async def test_recovery_with_multiple_execution_plans_and_one_matching_dirty_job_result(
    services: TestHaServices, parts: tuple[DispatcherServices, _FatalErrors]
) -> None:
    done, running = JobID.generate(), JobID.generate()
    await _store_plans(services, done, running)
    await _dirty(services, done)

    process = await _start(parts)

    assert process.dispatcher is not None
    assert set(process.dispatcher.runners) == {running}
    await wait_until("the cleanup of the dirty job", lambda: services.jrs.has_clean_job_result_entry(done))
    await process.close()


async def test_recovery_without_execution_plan_but_dirty_job_result(
    services: TestHaServices, parts: tuple[DispatcherServices, _FatalErrors]
) -> None:
    job_id = JobID.generate()
    await _dirty(services, job_id)

    process = await _start(parts)

    assert process.dispatcher is not None
    assert process.dispatcher.runners == {}
    await wait_until("the cleanup of the dirty job", lambda: services.jrs.has_clean_job_result_entry(job_id))
    assert job_id in services.global_cleanups
    await process.close()


async def test_added_plan_of_a_dirty_job_is_not_recovered(
    services: TestHaServices, parts: tuple[DispatcherServices, _FatalErrors]
) -> None:
    job_id = JobID.generate()
    services.fail_cleanup = True  # keeps the dirty entry and the plan while the watcher fires
    await _dirty(services, job_id)
    process = await _start(parts)
    await _store_plans(services, job_id)

    services.watchers[-1].added(job_id)

    await wait_until("the added-plan event to be handled", lambda: len(process._tasks) == 0)
    assert process.dispatcher is not None
    assert process.dispatcher.runners == {}
    await process.close()


async def test_added_plan_of_another_jobmanager_is_recovered_and_removed_plan_stops_the_job(
    services: TestHaServices, parts: tuple[DispatcherServices, _FatalErrors]
) -> None:
    process = await _start(parts)
    job_id = JobID.generate()
    await _store_plans(services, job_id)

    services.watchers[0].added(job_id)
    assert process.dispatcher is not None
    dispatcher = process.dispatcher
    await wait_until("the added job to run", lambda: job_id in dispatcher.runners)

    services.watchers[0].removed(job_id)
    await wait_until("the removed job to stop", lambda: job_id not in dispatcher.runners)
    await process.close()


async def test_close_stops_the_execution_plan_store_after_the_dispatcher(
    services: TestHaServices, parts: tuple[DispatcherServices, _FatalErrors]
) -> None:
    job_id = JobID.generate()
    await _store_plans(services, job_id)
    process = await _start(parts)
    await wait_until("the JobMaster's checkpoint store", lambda: job_id in services.recovery.stores)
    services.log.events.clear()

    await process.close()

    events = services.log.events
    # the job was suspended locally (its checkpoint store released) before the plan store let go of its locks
    assert events.index(f"checkpoint-store-shutdown:SUSPENDED:{job_id}") < events.index("plan-store-stop")
    assert job_id in services.stored_plans()  # HA data kept for the next leader
    assert not await services.jrs.has_job_result_entry(job_id)


async def test_start_after_close_has_no_effect(
    services: TestHaServices, parts: tuple[DispatcherServices, _FatalErrors]
) -> None:
    dispatcher_services, _ = parts
    process = SessionDispatcherLeaderProcess(
        uuid.uuid4(), dispatcher_services, services.get_execution_plan_store()
    )
    await process.close()

    assert await process.start() is None
    assert process.dispatcher is None


async def test_recovery_failure_is_reported(
    services: TestHaServices, parts: tuple[DispatcherServices, _FatalErrors]
) -> None:
    services.fail_recovery = True
    dispatcher_services, _ = parts
    process = SessionDispatcherLeaderProcess(
        uuid.uuid4(), dispatcher_services, services.get_execution_plan_store()
    )

    with pytest.raises(DispatcherLeaderProcessError, match="cannot be listed"):
        await process.start()
    await process.close()
