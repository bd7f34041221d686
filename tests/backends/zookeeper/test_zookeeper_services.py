"""ZooKeeperHaServices: configuration, close/cleanup (Flink's ZooKeeperHaServicesTest), stores across processes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError

from standby.backends.zookeeper import (
    ZooKeeperClientSettings,
    ZooKeeperConnectionError,
    ZooKeeperHaServices,
    ZooKeeperHaServicesFactory,
    default_kazoo_client_factory,
)
from standby.config import Configuration, ConfigurationError
from standby.ha import (
    DefaultCheckpointsCleaner,
    ExecutionPlan,
    FencingError,
    JobID,
    JobStatus,
    LeaderElection,
    create_high_availability_services,
)
from standby.testing.servers import ZooKeeperServer, expire_session
from standby.testing.store_contract import RecordingExecutionPlanListener, make_checkpoint

from .zk_support import RecordingContender, make_configuration, wait_until

pytestmark = pytest.mark.zookeeper

ServicesFactory = Callable[..., Awaitable[ZooKeeperHaServices]]


@pytest.fixture
async def new_services(zookeeper_server: ZooKeeperServer, tmp_path: Path) -> AsyncIterator[ServicesFactory]:
    """``await new_services(config=None)``: one JobManager process; all are closed at the end."""
    created: list[ZooKeeperHaServices] = []
    default = make_configuration(zookeeper_server.connect_string, str(tmp_path / "ha"))

    async def create(config: Configuration | None = None) -> ZooKeeperHaServices:
        services = await ZooKeeperHaServicesFactory().create_ha_services(config or default)
        created.append(services)
        return services

    yield create
    for services in created:
        await services.client.close()


async def lead(services: ZooKeeperHaServices) -> tuple[LeaderElection, RecordingContender]:
    election = services.get_dispatcher_leader_election()
    contender = RecordingContender(election, "http://dispatcher")
    await election.start_leader_election(contender)
    await wait_until(lambda: contender.session_id is not None, what="the grant")
    await contender.settle()
    return election, contender


async def tree(services: ZooKeeperHaServices, path: str) -> list[str]:
    return [p for p in await services.client.list_tree(path)]


# ------------------------------------------------------------------------------------------------ configuration


async def test_created_from_configuration(zookeeper_server: ZooKeeperServer, tmp_path: Path) -> None:
    config = make_configuration(
        zookeeper_server.connect_string,
        str(tmp_path),
        **{"high-availability.zookeeper.client.tolerate-suspended-connections": "true"},
    )
    services = await create_high_availability_services(config)
    try:
        assert isinstance(services, ZooKeeperHaServices)
        settings = services.client.settings
        assert settings.session_timeout == 2.0
        assert settings.tolerate_suspended_connections
        cluster_id = str(config.get_raw("high-availability.cluster-id")).strip("/")
        assert services.namespace == f"/standby-tests/{cluster_id}"
        assert services.storage_path == f"{tmp_path}/{cluster_id}"
    finally:
        await services.close()


def test_settings_defaults_and_validation() -> None:
    settings = ZooKeeperClientSettings.from_configuration(
        Configuration({"high-availability.zookeeper.quorum": "zk1:2181,zk2:2181"})
    )
    assert settings.namespace == "/flink/default"
    assert (settings.session_timeout, settings.connection_timeout) == (60.0, 15.0)
    assert (settings.retry_wait, settings.max_retry_wait, settings.max_retry_attempts) == (5.0, 60.0, 3)
    assert settings.acl == "open"
    assert not settings.tolerate_suspended_connections
    retry = settings.command_retry()
    assert (retry.max_tries, retry.delay, retry.max_delay) == (4, 5.0, 60.0)

    with pytest.raises(ConfigurationError, match=r"high-availability\.zookeeper\.quorum"):
        ZooKeeperClientSettings.from_configuration(Configuration({}))
    with pytest.raises(ConfigurationError, match=r"client\.authorization"):
        ZooKeeperClientSettings.from_configuration(
            Configuration(
                {
                    "high-availability.zookeeper.quorum": "zk:2181",
                    "high-availability.zookeeper.client.acl": "creator",
                }
            )
        )
    creator = ZooKeeperClientSettings.from_configuration(
        Configuration(
            {
                "high-availability.zookeeper.quorum": "zk:2181",
                "high-availability.zookeeper.client.acl": "creator",
                "high-availability.zookeeper.client.authorization": "digest:user:secret",
            }
        )
    )
    assert dict(creator.authorization) == {"digest": "user:secret"}


async def test_unreachable_quorum_names_it(tmp_path: Path) -> None:
    from standby.testing.servers import free_port

    quorum = f"127.0.0.1:{free_port()}"
    config = make_configuration(
        quorum, str(tmp_path), **{"high-availability.zookeeper.client.connection-timeout": "300 ms"}
    )
    with pytest.raises(ZooKeeperConnectionError, match=quorum):
        await ZooKeeperHaServicesFactory().create_ha_services(config)


async def test_client_factory_seam(zookeeper_server: ZooKeeperServer, tmp_path: Path) -> None:
    built: list[ZooKeeperClientSettings] = []

    def factory(settings: ZooKeeperClientSettings) -> KazooClient:
        built.append(settings)
        return default_kazoo_client_factory(settings)

    config = make_configuration(zookeeper_server.connect_string, str(tmp_path))
    services = await ZooKeeperHaServicesFactory(client_factory=factory).create_ha_services(config)
    try:
        assert [s.quorum for s in built] == [zookeeper_server.connect_string]
        assert services.client.kazoo.connected
    finally:
        await services.close()


async def test_creator_acl_with_digest_authorization(
    zookeeper_server: ZooKeeperServer, new_services: ServicesFactory, tmp_path: Path
) -> None:
    # its own root: with 'creator' every node it creates, parents included, is closed to others (as in Flink)
    config = make_configuration(
        zookeeper_server.connect_string,
        str(tmp_path),
        root=f"/standby-acl-{uuid.uuid4().hex[:8]}",
        **{
            "high-availability.zookeeper.client.acl": "creator",
            "high-availability.zookeeper.client.authorization": "digest:standby:s3cret",
        },
    )
    services = await new_services(config)
    election, _ = await lead(services)
    latch = f"{services.namespace}/leader/latch"
    stranger = KazooClient(hosts=zookeeper_server.connect_string)
    friend = KazooClient(hosts=zookeeper_server.connect_string, auth_data=[("digest", "standby:s3cret")])
    stranger.start(timeout=10)
    friend.start(timeout=10)
    try:
        with pytest.raises(NoAuthError):
            await asyncio.to_thread(stranger.get_children, latch)
        assert len(await asyncio.to_thread(friend.get_children, latch)) == 1
    finally:
        for client in (stranger, friend):
            client.stop()
            client.close()
    await election.close()


# ------------------------------------------------------------------------------------------------ close / cleanup


async def write_job_data(services: ZooKeeperHaServices, job_id: JobID) -> None:
    store = services.get_execution_plan_store()
    await store.start(RecordingExecutionPlanListener())
    await store.put_execution_plan(ExecutionPlan(job_id, "job"))
    checkpoints = (
        await services.get_checkpoint_recovery_factory().create_recovered_completed_checkpoint_store(
            job_id, 1
        )
    )
    await checkpoints.add_checkpoint_and_subsume_oldest_one(
        make_checkpoint(1, job_id), DefaultCheckpointsCleaner()
    )
    counter = await services.get_checkpoint_recovery_factory().create_checkpoint_id_counter(job_id)
    await counter.start()
    await counter.get_and_increment()
    await store.stop()


async def test_close_keeps_the_data(new_services: ServicesFactory) -> None:
    services = await new_services()
    election, _ = await lead(services)
    job_id = JobID.generate()
    await write_job_data(services, job_id)
    await election.close()
    await services.close()

    reader = await new_services()
    assert await reader.client.exists(f"{reader.execution_plans_path}/{job_id}") is not None
    assert await reader.client.exists(f"{reader.namespace}/jobs/{job_id}/checkpoints/{1:019d}") is not None
    assert await reader.client.exists(f"{reader.namespace}/jobs/{job_id}/checkpoint_id_counter") is not None
    assert await reader.client.get_children(f"{reader.namespace}/leader/latch") == []  # ephemeral: gone


async def test_cleanup_all_data_removes_the_namespace_and_empty_parents(
    zookeeper_server: ZooKeeperServer, new_services: ServicesFactory, tmp_path: Path
) -> None:
    root = f"/standby-cleanup-{uuid.uuid4().hex[:8]}/nested"
    config = make_configuration(zookeeper_server.connect_string, str(tmp_path), root=root)
    services = await new_services(config)
    election, _ = await lead(services)
    await write_job_data(services, JobID.generate())
    await election.close()
    await services.close_with_optional_clean(True)

    observer = await new_services()
    assert await observer.client.exists(services.namespace) is None
    assert await observer.client.exists(root) is None
    assert await observer.client.exists(root.rsplit("/", 1)[0]) is None  # pruned up to the first non-empty


async def test_cleanup_all_data_keeps_a_parent_with_an_uncle(
    zookeeper_server: ZooKeeperServer, new_services: ServicesFactory, tmp_path: Path
) -> None:
    root = f"/standby-uncle-{uuid.uuid4().hex[:8]}"
    config = make_configuration(zookeeper_server.connect_string, str(tmp_path), root=root)
    other = make_configuration(zookeeper_server.connect_string, str(tmp_path), root=root)
    services = await new_services(config)
    uncle = await new_services(other)
    election, _ = await lead(uncle)
    await election.close()
    services_election, _ = await lead(services)
    await services_election.close()
    await services.close_with_optional_clean(True)

    assert await uncle.client.exists(services.namespace) is None
    assert await uncle.client.exists(root) is not None  # still holds the other cluster
    assert await uncle.client.exists(uncle.namespace) is not None


async def test_global_cleanup_removes_only_the_job(new_services: ServicesFactory) -> None:
    services = await new_services()
    election, _ = await lead(services)
    job, other_job = JobID.generate(), JobID.generate()
    await write_job_data(services, job)
    await write_job_data(services, other_job)
    await services.global_cleanup(job)
    assert await services.client.exists(f"{services.namespace}/jobs/{job}") is None
    assert await services.client.exists(f"{services.namespace}/jobs/{other_job}/checkpoints") is not None
    await election.close()


# ------------------------------------------------------------------------------------------------ stores across processes


async def test_execution_plans_across_two_processes(new_services: ServicesFactory) -> None:
    leader = await new_services()
    election, _ = await lead(leader)
    standby = await new_services()
    leader_store = leader.get_execution_plan_store()
    standby_store = standby.get_execution_plan_store()
    leader_events = RecordingExecutionPlanListener()
    standby_events = RecordingExecutionPlanListener()
    await leader_store.start(leader_events)
    await standby_store.start(standby_events)

    job_id = JobID.generate()
    await leader_store.put_execution_plan(ExecutionPlan(job_id, "wordcount"))
    await wait_until(lambda: job_id in standby_events.added, what="the standby to see the new plan")
    assert job_id not in leader_events.added  # its own plan is not reported back
    assert await standby_store.get_job_ids() == [job_id]

    recovered = await standby_store.recover_execution_plan(job_id)
    assert recovered == ExecutionPlan(job_id, "wordcount")
    with pytest.raises(Exception, match=str(job_id)):
        await leader_store.global_cleanup(job_id)  # the standby holds a lock (FLINK-6612)
    await standby_store.local_cleanup(job_id)
    await leader_store.global_cleanup(job_id)
    assert await leader_store.get_job_ids() == []
    await wait_until(lambda: job_id in standby_events.removed, what="the standby to see the removal")
    # only the leader writes plans
    with pytest.raises(FencingError):
        await standby_store.put_execution_plan(ExecutionPlan(JobID.generate(), "not mine"))
    await standby_store.stop()
    await leader_store.stop()
    await election.close()


async def test_checkpoints_survive_a_hand_over(new_services: ServicesFactory) -> None:
    job_id = JobID.generate()
    first = await new_services()
    election, _ = await lead(first)
    second = await new_services()
    second_election = second.get_dispatcher_leader_election()
    second_contender = RecordingContender(second_election, "http://second")
    await second_election.start_leader_election(second_contender)

    store = await first.get_checkpoint_recovery_factory().create_recovered_completed_checkpoint_store(
        job_id, 2
    )
    counter = await first.get_checkpoint_recovery_factory().create_checkpoint_id_counter(job_id)
    await counter.start()
    cleaner = DefaultCheckpointsCleaner()
    for _ in range(3):
        checkpoint_id = await counter.get_and_increment()
        await store.add_checkpoint_and_subsume_oldest_one(make_checkpoint(checkpoint_id, job_id), cleaner)
    await store.shutdown(JobStatus.SUSPENDED, cleaner)
    await counter.shutdown(JobStatus.SUSPENDED)
    await election.close()  # graceful hand-over

    await wait_until(lambda: second_contender.session_id is not None, what="the second process to lead")
    recovered = await second.get_checkpoint_recovery_factory().create_recovered_completed_checkpoint_store(
        job_id, 2
    )
    assert [c.checkpoint_id for c in recovered.get_all_checkpoints()] == [2, 3]
    next_counter = await second.get_checkpoint_recovery_factory().create_checkpoint_id_counter(job_id)
    await next_counter.start()
    assert await next_counter.get_and_increment() == 4
    await second_election.close()


async def test_expired_leader_cannot_write(new_services: ServicesFactory) -> None:
    """The leader's session expires; the standby takes over; the old leader's writes are refused."""
    job_id = JobID.generate()
    old = await new_services()
    old_election, old_contender = await lead(old)
    new = await new_services()
    new_election = new.get_dispatcher_leader_election()
    new_contender = RecordingContender(new_election, "http://new")
    await new_election.start_leader_election(new_contender)
    old_store = old.get_execution_plan_store()
    await old_store.start(RecordingExecutionPlanListener())
    old_checkpoints = await old.get_checkpoint_recovery_factory().create_recovered_completed_checkpoint_store(
        job_id, 5
    )

    await asyncio.to_thread(expire_session, old.client.kazoo)
    await wait_until(lambda: new_contender.session_id is not None, what="the standby to take over")
    await wait_until(lambda: old_contender.session_id is None, what="the old leader's revoke")
    new_store = new.get_execution_plan_store()
    await new_store.start(RecordingExecutionPlanListener())
    await new_store.put_execution_plan(ExecutionPlan(job_id, "new leader's plan"))

    with pytest.raises(FencingError):
        await old_store.put_execution_plan(ExecutionPlan(JobID.generate(), "old leader's plan"))
    with pytest.raises(FencingError):
        await old_checkpoints.add_checkpoint_and_subsume_oldest_one(
            make_checkpoint(7, job_id), DefaultCheckpointsCleaner()
        )
    assert await new_store.get_job_ids() == [job_id]
    assert await new.client.exists(f"{new.namespace}/jobs/{job_id}/checkpoints/{7:019d}") is None
    await old_store.stop()
    await new_store.stop()
    await new_election.close()
    await old_election.close()
