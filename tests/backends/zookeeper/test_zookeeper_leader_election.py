"""Leader election through DefaultLeaderElectionService on ZooKeeper (Flink's ZooKeeperLeaderElectionTest)."""

from __future__ import annotations

import uuid

import pytest

from standby.backends.zookeeper import (
    LeaderInformationClearancePolicy,
    ZooKeeperClient,
    ZooKeeperLeaderRetrievalDriverFactory,
    decode_leader_information,
    encode_leader_information,
)
from standby.ha import DefaultLeaderRetrievalService, LeaderElectionError, LeaderInformation
from standby.testing.servers import ZooKeeperServer

from .zk_support import (
    ClientFactory,
    ElectionProcess,
    RecordingContender,
    RecordingRetrievalListener,
    make_settings,
    wait_until,
)

pytestmark = pytest.mark.zookeeper

COMPONENT = "dispatcher"


async def retriever(
    client: ZooKeeperClient, component: str = COMPONENT
) -> tuple[DefaultLeaderRetrievalService, RecordingRetrievalListener]:
    service = DefaultLeaderRetrievalService(
        ZooKeeperLeaderRetrievalDriverFactory(
            client, client.path("leader", component), LeaderInformationClearancePolicy.ON_SUSPENDED_CONNECTION
        )
    )
    listener = RecordingRetrievalListener()
    await service.start(listener)
    return service, listener


async def stored_info(client: ZooKeeperClient, component: str = COMPONENT) -> LeaderInformation | None:
    path = client.path("leader", component, "connection_info")
    if await client.exists(path) is None:
        return None
    data, _ = await client.get(path)
    return decode_leader_information(data)


async def has_info(
    client: ZooKeeperClient, expected: LeaderInformation | None, component: str = COMPONENT
) -> bool:
    return await stored_info(client, component) == expected


async def test_leader_election_retrieval(
    zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory
) -> None:
    settings = make_settings(zookeeper_server.connect_string)
    process = ElectionProcess(await zk_clients(settings))
    contender = await process.contend(COMPONENT, "http://127.0.0.1:8081")
    await wait_until(lambda: contender.session_id is not None, what="the grant")
    service, listener = await retriever(await zk_clients(settings))
    confirmed = contender.confirmed
    assert confirmed is not None
    await listener.wait_for(confirmed)
    await service.stop()
    await process.close()


async def test_reelection_with_ten_contenders(
    zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory
) -> None:
    """Stop the leader again and again: every contender leads once, the retriever always sees the leader."""
    settings = make_settings(zookeeper_server.connect_string)
    processes: list[ElectionProcess] = []
    for index in range(10):
        process = ElectionProcess(await zk_clients(settings))
        await process.contend(COMPONENT, f"http://127.0.0.1:{7000 + index}")
        processes.append(process)
    service, listener = await retriever(await zk_clients(settings))
    led: set[int] = set()
    remaining = list(processes)
    while remaining:
        leaders = await wait_until(
            lambda: [p for p in remaining if p.contenders[COMPONENT].session_id is not None],
            what="the next leader",
        )
        assert len(leaders) == 1, "two contenders lead at once"
        leader = leaders[0]
        contender = leader.contenders[COMPONENT]
        confirmed = contender.confirmed
        assert confirmed is not None
        await listener.wait_for(confirmed)  # the retriever matches the contender's session and address
        index = processes.index(leader)
        assert index not in led
        led.add(index)
        remaining.remove(leader)
        await leader.close()  # graceful: the latch node goes at once
    assert led == set(range(10))
    await service.stop()


async def test_leader_is_corrected_when_overwritten(
    zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory
) -> None:
    settings = make_settings(zookeeper_server.connect_string)
    client = await zk_clients(settings)
    process = ElectionProcess(client)
    contender = await process.contend(COMPONENT, "http://the-leader")
    await wait_until(lambda: contender.session_id is not None, what="the grant")
    confirmed = contender.confirmed
    assert confirmed is not None
    await wait_until(lambda: has_info(client, confirmed), what="the published leader information")

    other = await zk_clients(settings)
    path = other.path("leader", COMPONENT, "connection_info")
    await other.set(path, encode_leader_information(LeaderInformation.known(uuid.uuid4(), "http://faker")))
    # the leader notices the external change and writes its own information again
    await wait_until(lambda: has_info(client, confirmed), what="the corrected leader information")
    stat = await client.exists(path)
    assert stat is not None
    assert stat.ephemeralOwner == client.session_id
    await process.close()


async def test_deleted_leader_information_is_rewritten(
    zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory
) -> None:
    settings = make_settings(zookeeper_server.connect_string)
    client = await zk_clients(settings)
    process = ElectionProcess(client)
    contender = await process.contend(COMPONENT, "http://the-leader")
    await wait_until(lambda: contender.session_id is not None, what="the grant")
    confirmed = contender.confirmed
    await wait_until(lambda: has_info(client, confirmed), what="the published leader information")
    other = await zk_clients(settings)
    await other.delete(other.path("leader", COMPONENT, "connection_info"))
    await wait_until(lambda: has_info(client, confirmed), what="the rewritten leader information")
    await process.close()


async def test_ephemeral_leader_information(
    zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory
) -> None:
    """Closing the leader's session removes its leader information; retrievers see no leader."""
    settings = make_settings(zookeeper_server.connect_string)
    leader_client = await zk_clients(settings)
    process = ElectionProcess(leader_client)
    contender = await process.contend(COMPONENT, "http://the-leader")
    await wait_until(lambda: contender.session_id is not None, what="the grant")
    observer = await zk_clients(settings)
    service, listener = await retriever(observer)
    confirmed = contender.confirmed
    assert confirmed is not None
    await listener.wait_for(confirmed)
    await leader_client.close()  # the process dies without cleaning up: only the session ends
    await listener.wait_for(LeaderInformation.empty())
    assert await stored_info(observer) is None
    await service.stop()


async def test_not_leader_does_not_clean_up_leader_information(
    zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory
) -> None:
    """A revoke (here: SUSPENDED → revoke) keeps the leader information in ZooKeeper."""
    settings = make_settings(zookeeper_server.connect_string)
    client = await zk_clients(settings)
    process = ElectionProcess(client)
    contender = await process.contend(COMPONENT, "http://the-leader")
    await wait_until(lambda: contender.session_id is not None, what="the grant")
    confirmed = contender.confirmed
    await wait_until(lambda: has_info(client, confirmed), what="the published leader information")
    driver = process.driver_factory.driver
    assert driver is not None
    # a second process with a lower node cannot exist; revoke through the service's listener instead
    process.service.on_revoke_leadership()
    await wait_until(lambda: contender.revokes == 1, what="the revoke")
    assert await stored_info(client) == confirmed
    await process.close()


async def test_error_reaches_the_contender(
    zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory
) -> None:
    """Writing the leader information fails (its parent is an ephemeral node): the contender gets the error."""
    settings = make_settings(zookeeper_server.connect_string)
    blocker = await zk_clients(settings)
    await blocker.create(blocker.path("leader", COMPONENT), ephemeral=True, makepath=True)
    process = ElectionProcess(await zk_clients(settings))
    contender: RecordingContender = await process.contend(COMPONENT, "http://the-leader")
    await wait_until(lambda: contender.errors, what="the error")
    assert isinstance(contender.errors[0], LeaderElectionError)
    await process.close()


async def test_components_of_one_process_publish_under_one_session(
    zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory
) -> None:
    client = await zk_clients(make_settings(zookeeper_server.connect_string))
    process = ElectionProcess(client)
    job = f"job-{uuid.uuid4().hex}"
    contenders = [
        await process.contend(component, f"http://{component}")
        for component in ("resource_manager", "dispatcher", "rest_server", job)
    ]
    await wait_until(lambda: all(c.session_id for c in contenders), what="all grants")
    assert len({c.session_id for c in contenders}) == 1
    for contender, component in zip(
        contenders, ("resource_manager", "dispatcher", "rest_server", job), strict=True
    ):
        expected = contender.confirmed
        await wait_until(
            lambda: has_info(client, expected, component),  # noqa: B023
            what=f"the leader information of {component}",
        )
    assert sorted(await client.get_children(client.path("leader"))) == sorted(
        ["latch", "resource_manager", "dispatcher", "rest_server", job]
    )
    await process.close()
