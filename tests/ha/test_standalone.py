"""Flink's StandaloneHaServicesTest / StandaloneLeaderElectionTest and the HA services factory."""

from __future__ import annotations

import uuid

import pytest

from standby.config import Configuration
from standby.ha import (
    DEFAULT_LEADER_ID,
    EmbeddedHaServices,
    HighAvailabilityServicesFactory,
    HighAvailabilityServicesShutDownError,
    JobID,
    StandaloneHaServices,
    StandaloneLeaderElection,
    StandaloneLeaderRetrievalService,
    UnknownHighAvailabilityTypeError,
    create_high_availability_services,
    high_availability_type,
)
from standby.testing.recording import RecordingContender, RecordingRetrievalListener


async def test_standalone_election_grants_at_once_and_revokes_on_close() -> None:
    election = StandaloneLeaderElection(DEFAULT_LEADER_ID)
    contender = RecordingContender()
    await election.start_leader_election(contender)
    assert contender.grants == [DEFAULT_LEADER_ID]
    assert await election.has_leadership(DEFAULT_LEADER_ID)
    assert not await election.has_leadership(uuid.uuid4())
    with pytest.raises(RuntimeError, match="No LeaderContender"):
        await election.start_leader_election(RecordingContender())
    await election.close()
    assert contender.events[-1].kind == "revoke"
    assert not await election.has_leadership(DEFAULT_LEADER_ID)


async def test_standalone_retrieval_notifies_once() -> None:
    service = StandaloneLeaderRetrievalService("http://host:1/rpc/dispatcher")
    listener = RecordingRetrievalListener()
    await service.start(listener)
    assert listener.notifications == [("http://host:1/rpc/dispatcher", DEFAULT_LEADER_ID)]
    with pytest.raises(RuntimeError, match="only be started once"):
        await service.start(listener)


async def test_standalone_services_from_configuration() -> None:
    config = Configuration(
        {"jobmanager.rpc.address": "jm-host", "jobmanager.rpc.port": "7000", "rest.port": "9000"}
    )
    services = await create_high_availability_services(config)
    assert isinstance(services, StandaloneHaServices)
    listener = RecordingRetrievalListener()
    await services.get_dispatcher_leader_retriever().start(listener)
    assert listener.address == "http://jm-host:7000/rpc/dispatcher"
    rm = RecordingRetrievalListener()
    await services.get_resource_manager_leader_retriever().start(rm)
    assert rm.address == "http://jm-host:7000/rpc/resourcemanager"
    rest = RecordingRetrievalListener()
    await services.get_cluster_rest_endpoint_leader_retriever().start(rest)
    assert rest.address == "http://localhost:9000"
    job = RecordingRetrievalListener()
    await services.get_job_manager_leader_retriever(JobID.generate()).start(job)
    assert job.address == "UNKNOWN"
    job2 = RecordingRetrievalListener()
    await services.get_job_manager_leader_retriever(JobID.generate(), "http://given").start(job2)
    assert job2.address == "http://given"
    assert await services.get_execution_plan_store().get_job_ids() == []
    await services.close()
    for getter in (
        services.get_dispatcher_leader_retriever,
        services.get_dispatcher_leader_election,
        services.get_resource_manager_leader_election,
        services.get_checkpoint_recovery_factory,
        services.get_execution_plan_store,
        services.get_job_result_store,
        services.create_blob_store,
    ):
        with pytest.raises(
            HighAvailabilityServicesShutDownError, match="high availability services are shut down"
        ):
            getter()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "none"),
        ("NONE", "none"),
        ("standalone", "none"),
        ("Standalone", "none"),
        ("ZOOKEEPER", "zookeeper"),
        ("filesystem", "filesystem"),
        ("my.mod:Factory", "my.mod:Factory"),
    ],
)
def test_high_availability_type(value: str | None, expected: str) -> None:
    config = Configuration({} if value is None else {"high-availability.type": value})
    assert high_availability_type(config) == expected


async def test_unknown_type_lists_valid_types() -> None:
    config = Configuration({"high-availability.type": "zookeper"})
    with pytest.raises(UnknownHighAvailabilityTypeError) as info:
        await create_high_availability_services(config)
    message = str(info.value)
    assert "'zookeper'" in message
    assert "high-availability.type" in message
    for name in ("none", "zookeeper", "kubernetes", "etcd", "filesystem"):
        assert name in message


async def test_bad_rpc_port_names_the_key() -> None:
    with pytest.raises(ValueError, match=r"jobmanager\.rpc\.port"):
        await create_high_availability_services(Configuration({"jobmanager.rpc.port": "0"}))


class CustomFactory(HighAvailabilityServicesFactory):
    async def create_ha_services(
        self, config: Configuration, fatal_error_handler: object = None
    ) -> EmbeddedHaServices:
        return EmbeddedHaServices()


class NotAFactory:
    pass


@pytest.mark.parametrize("spec", [f"{__name__}:CustomFactory", f"{__name__}.CustomFactory"])
async def test_custom_factory(spec: str) -> None:
    services = await create_high_availability_services(Configuration({"high-availability.type": spec}))
    assert isinstance(services, EmbeddedHaServices)


async def test_custom_factory_of_wrong_class() -> None:
    with pytest.raises(UnknownHighAvailabilityTypeError, match="not a subclass"):
        await create_high_availability_services(
            Configuration({"high-availability.type": f"{__name__}:NotAFactory"})
        )
