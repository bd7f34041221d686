"""KubernetesHaServices: factory and configuration, component ids, Flink's ``KubernetesHaServicesTest`` (cleanup),
and the recovery stores end to end (plans, checkpoints, counter) across a leader change, fenced."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from standby.backends.kubernetes import KubernetesHaServices, KubernetesHaServicesFactory
from standby.config import ConfigurationError
from standby.ha import (
    CompletedCheckpoint,
    DefaultCheckpointsCleaner,
    ExecutionPlan,
    FencingError,
    JobID,
    JobStatus,
    LeaderElection,
    create_high_availability_services,
)
from standby.testing.kubernetes_api_server import KubernetesApiTestServer
from standby.testing.recording import RecordingContender
from standby.testing.store_contract import RecordingExecutionPlanListener

from .conftest import CLUSTER_ID, NAMESPACE, ConfigFactory, ServicesFactory

CLUSTER_CONFIG_MAP = f"{CLUSTER_ID}-cluster-config-map"


def _checkpoint(job_id: JobID, checkpoint_id: int) -> CompletedCheckpoint:
    return CompletedCheckpoint(job_id, checkpoint_id, 1000 + checkpoint_id, 2000 + checkpoint_id)


async def _lead(services: KubernetesHaServices) -> tuple[RecordingContender, LeaderElection]:
    election = services.get_dispatcher_leader_election()
    contender = RecordingContender()
    await election.start_leader_election(contender)
    await contender.wait_for_leadership()
    return contender, election


# ---------------------------------------------------------------------------------------------- factory


async def test_high_availability_type_kubernetes_creates_the_services(make_config: ConfigFactory) -> None:
    services = await create_high_availability_services(make_config())
    try:
        assert isinstance(services, KubernetesHaServices)
    finally:
        await services.close()


async def test_missing_cluster_id_is_a_clear_error(make_config: ConfigFactory) -> None:
    config = make_config()
    config.remove_key("kubernetes.cluster-id")
    with pytest.raises(ConfigurationError, match=r"'kubernetes\.cluster-id' is not set"):
        await KubernetesHaServicesFactory().create_ha_services(config)


async def test_retry_period_must_be_shorter_than_the_renew_deadline(make_config: ConfigFactory) -> None:
    config = make_config(**{"high-availability.kubernetes.leader-election.retry-period": "5 s"})
    with pytest.raises(ConfigurationError, match="retry-period"):
        await KubernetesHaServicesFactory().create_ha_services(config)


async def test_renew_deadline_not_below_the_lease_is_warned_about(
    new_services: ServicesFactory, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        await new_services(
            **{
                "high-availability.kubernetes.leader-election.lease-duration": "15 s",
                "high-availability.kubernetes.leader-election.renew-deadline": "15 s",
                "high-availability.kubernetes.leader-election.retry-period": "5 s",
            }
        )
    assert "renew-deadline" in caplog.text
    assert "not shorter than" in caplog.text


async def test_components_have_kubernetes_ids_and_one_lock_identity_per_process(
    new_services: ServicesFactory,
) -> None:
    first, second = await new_services(), await new_services()
    assert (first.resource_manager_component, first.dispatcher_component, first.rest_server_component) == (
        "resourcemanager",
        "dispatcher",
        "restserver",
    )
    job_id = JobID.generate()
    assert first.job_manager_component(job_id) == f"job-{job_id}"
    assert first.lock_identity != second.lock_identity


async def test_payloads_go_under_the_kubernetes_cluster_id(
    new_services: ServicesFactory, tmp_path: Path
) -> None:
    services = await new_services()
    assert services.storage_path == f"{tmp_path / 'ha'}/{CLUSTER_ID}"


# ---------------------------------------------------------------------------------------------- cleanup


async def test_cleanup_all_data_deletes_the_cluster_config_map(
    k8s_server: KubernetesApiTestServer, new_services: ServicesFactory
) -> None:
    services = await new_services()
    contender, election = await _lead(services)
    assert k8s_server.get_configmap(NAMESPACE, CLUSTER_CONFIG_MAP) is not None
    await election.close()
    await services.close_with_optional_clean(True)
    assert k8s_server.get_configmap(NAMESPACE, CLUSTER_CONFIG_MAP) is None
    assert contender.errors == []


async def test_global_cleanup_deletes_the_job_config_map(
    k8s_server: KubernetesApiTestServer, new_services: ServicesFactory
) -> None:
    services = await new_services()
    _, election = await _lead(services)
    job_id = JobID.generate()
    counter = await services.get_checkpoint_recovery_factory().create_checkpoint_id_counter(job_id)
    await counter.start()
    await counter.get_and_increment()
    job_config_map = f"{CLUSTER_ID}-{job_id}-config-map"
    created = k8s_server.get_configmap(NAMESPACE, job_config_map)
    assert created is not None
    assert created["metadata"]["labels"] == {"type": "flink-native-kubernetes", "app": CLUSTER_ID}
    await services.global_cleanup(job_id)
    assert k8s_server.get_configmap(NAMESPACE, job_config_map) is None
    assert k8s_server.get_configmap(NAMESPACE, CLUSTER_CONFIG_MAP) is not None
    await election.close()


# ---------------------------------------------------------------------------------------------- stores end to end


async def test_recovery_stores_across_a_leader_change_are_fenced(
    k8s_server: KubernetesApiTestServer, new_services: ServicesFactory
) -> None:
    job_id = JobID.generate()
    cleaner = DefaultCheckpointsCleaner()
    first = await new_services()
    _, first_election = await _lead(first)
    plans = first.get_execution_plan_store()
    await plans.start(RecordingExecutionPlanListener())
    await plans.put_execution_plan(ExecutionPlan(job_id, "job"))
    recovery = first.get_checkpoint_recovery_factory()
    checkpoints = await recovery.create_recovered_completed_checkpoint_store(job_id, 2)
    counter = await recovery.create_checkpoint_id_counter(job_id)
    await counter.start()
    checkpoint_id = await counter.get_and_increment()
    await checkpoints.add_checkpoint_and_subsume_oldest_one(_checkpoint(job_id, checkpoint_id), cleaner)

    # hand over: the first leader leaves, a second process leads and recovers
    second = await new_services()
    _, second_election = await _lead_after(second, first_election)
    second_plans = second.get_execution_plan_store()
    await second_plans.start(RecordingExecutionPlanListener())
    assert await second_plans.get_job_ids() == [job_id]
    recovered_plan = await second_plans.recover_execution_plan(job_id)
    assert recovered_plan is not None and recovered_plan.name == "job"
    second_recovery = second.get_checkpoint_recovery_factory()
    recovered = await second_recovery.create_recovered_completed_checkpoint_store(job_id, 2)
    assert [c.checkpoint_id for c in recovered.get_all_checkpoints()] == [1]
    second_counter = await second_recovery.create_checkpoint_id_counter(job_id)
    await second_counter.start()
    assert await second_counter.get() == 2

    # the deposed leader's stores can no longer write anything
    with pytest.raises(FencingError):
        await checkpoints.add_checkpoint_and_subsume_oldest_one(_checkpoint(job_id, 2), cleaner)
    with pytest.raises(FencingError):
        await counter.get_and_increment()
    with pytest.raises(FencingError):
        await plans.put_execution_plan(ExecutionPlan(job_id, "job v2"))

    # the new leader can
    assert await second_counter.get_and_increment() == 2
    await recovered.add_checkpoint_and_subsume_oldest_one(_checkpoint(job_id, 2), cleaner)
    await recovered.shutdown(JobStatus.FINISHED, cleaner)
    await second_counter.shutdown(JobStatus.FINISHED)
    await second_plans.global_cleanup(job_id)
    assert await second_plans.get_job_ids() == []
    await second_election.close()


async def _lead_after(
    services: KubernetesHaServices, previous_election: LeaderElection
) -> tuple[RecordingContender, LeaderElection]:
    election = services.get_dispatcher_leader_election()
    contender = RecordingContender("successor")
    await election.start_leader_election(contender)
    await previous_election.close()
    await contender.wait_for_leadership()
    return contender, election
