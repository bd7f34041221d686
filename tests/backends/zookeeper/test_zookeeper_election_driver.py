"""ZooKeeperLeaderElectionDriver on a real ZooKeeper: Flink's ZooKeeperLeaderElectionDriverTest and the latch recipe."""

from __future__ import annotations

import uuid

import pytest
from kazoo.client import KazooClient
from kazoo.protocol.states import ZnodeStat

from standby.backends.zookeeper import (
    LeaderInformationClearancePolicy,
    Op,
    ZooKeeperClient,
    ZooKeeperLeaderElectionDriver,
    ZooKeeperLeaderElectionDriverFactory,
    ZooKeeperLeaderRetrievalDriverFactory,
    decode_leader_information,
    encode_leader_information,
)
from standby.ha import FencingError, LeaderInformation
from standby.testing.servers import ZooKeeperServer

from .zk_support import (
    ClientFactory,
    RecordingDriverListener,
    RecordingRetrievalHandler,
    make_settings,
    wait_until,
)

pytestmark = pytest.mark.zookeeper


async def start_driver(
    client: ZooKeeperClient,
) -> tuple[ZooKeeperLeaderElectionDriverFactory, ZooKeeperLeaderElectionDriver, RecordingDriverListener]:
    listener = RecordingDriverListener()
    factory = ZooKeeperLeaderElectionDriverFactory(client)
    driver = await factory.create(listener)
    return factory, driver, listener


def connection_info(client: ZooKeeperClient, component_id: str) -> str:
    return client.path("leader", component_id, "connection_info")


async def read_info(client: ZooKeeperClient, component_id: str) -> tuple[LeaderInformation, ZnodeStat] | None:
    stat = await client.exists(connection_info(client, component_id))
    if stat is None:
        return None
    data, stat = await client.get(connection_info(client, component_id))
    return decode_leader_information(data), stat


async def test_gains_leadership_at_startup(
    zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory
) -> None:
    client = await zk_clients(make_settings(zookeeper_server.connect_string))
    _, driver, listener = await start_driver(client)
    session_id = await listener.next("grant")
    assert driver.has_leadership()
    assert driver.leader_session_id == session_id
    await driver.close()


async def test_latch_node_is_ephemeral_sequential_and_protected(
    zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory
) -> None:
    client = await zk_clients(make_settings(zookeeper_server.connect_string))
    _, driver, listener = await start_driver(client)
    await listener.next("grant")
    node = driver.latch_node
    assert node is not None
    parent, name = node.rsplit("/", 1)
    assert parent == client.path("leader", "latch")
    prefix, _, sequence = name.partition("-latch-")
    assert prefix.startswith("_c_")
    uuid.UUID(prefix[3:])  # _c_<uuid>
    assert len(sequence) == 10
    assert sequence.isdigit()
    stat = await client.exists(node)
    assert stat is not None
    assert stat.ephemeralOwner == client.session_id
    await driver.close()


async def test_to_string_contains_leader_latch_path(
    zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory
) -> None:
    client = await zk_clients(make_settings(zookeeper_server.connect_string))
    _, driver, _ = await start_driver(client)
    assert (
        repr(driver) == f"ZooKeeperLeaderElectionDriver{{leaderLatchPath='{client.namespace}/leader/latch'}}"
    )
    await driver.close()


async def test_publish_leader_information(
    zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory
) -> None:
    settings = make_settings(zookeeper_server.connect_string)
    client = await zk_clients(settings)
    _, driver, listener = await start_driver(client)
    session_id = await listener.next("grant")
    handler = RecordingRetrievalHandler()
    retriever_client = await zk_clients(settings)
    retrieval = await ZooKeeperLeaderRetrievalDriverFactory(
        retriever_client,
        retriever_client.path("leader", "resource_manager"),
        LeaderInformationClearancePolicy.ON_LOST_CONNECTION,
    ).create(handler, handler)
    info = LeaderInformation.known(session_id, "http://localhost:6123/rpc/resourcemanager")
    await driver.publish_leader_information("resource_manager", info)
    await handler.wait_for(info)
    stored = await read_info(client, "resource_manager")
    assert stored is not None
    assert stored[0] == info
    assert stored[1].ephemeralOwner == client.session_id  # EPHEMERAL, owned by the leader's session
    await retrieval.close()
    await driver.close()


async def test_publish_empty_leader_information(
    zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory
) -> None:
    client = await zk_clients(make_settings(zookeeper_server.connect_string))
    _, driver, listener = await start_driver(client)
    session_id = await listener.next("grant")
    handler = RecordingRetrievalHandler()
    retrieval = await ZooKeeperLeaderRetrievalDriverFactory(
        client, client.path("leader", "dispatcher"), LeaderInformationClearancePolicy.ON_LOST_CONNECTION
    ).create(handler, handler)
    info = LeaderInformation.known(session_id, "http://localhost:1")
    await driver.publish_leader_information("dispatcher", info)
    await handler.wait_for(info)
    await driver.publish_leader_information("dispatcher", LeaderInformation.empty())
    await handler.wait_for(LeaderInformation.empty())
    await retrieval.close()
    await driver.close()


async def test_non_leader_cannot_publish_leader_information(
    zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory
) -> None:
    settings = make_settings(zookeeper_server.connect_string)
    leader_client = await zk_clients(settings)
    _, leader, leader_listener = await start_driver(leader_client)
    await leader_listener.next("grant")
    other_client = await zk_clients(settings)
    _, other, _ = await start_driver(other_client)
    await wait_until(lambda: other.latch_node is not None, what="the second latch node")
    assert not other.has_leadership()
    await other.publish_leader_information(
        "dispatcher", LeaderInformation.known(uuid.uuid4(), "http://imposter")
    )
    # publish is awaited: had it written anything, the node would exist now
    assert await read_info(other_client, "dispatcher") is None
    with pytest.raises(FencingError, match="not the leader"):
        other.fencing_token()
    await other.close()
    await leader.close()


async def test_leader_information_change_is_reported(
    zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory
) -> None:
    settings = make_settings(zookeeper_server.connect_string)
    client = await zk_clients(settings)
    _, driver, listener = await start_driver(client)
    await listener.next("grant")
    external = await zk_clients(settings)
    info = LeaderInformation.known(uuid.uuid4(), "http://somebody-else")
    await external.create(
        connection_info(external, "rest_server"), encode_leader_information(info), makepath=True
    )
    assert await listener.next("info") == ("rest_server", info)
    await driver.close()


async def test_node_removal_reports_empty_leader_information(
    zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory
) -> None:
    settings = make_settings(zookeeper_server.connect_string)
    client = await zk_clients(settings)
    _, driver, listener = await start_driver(client)
    session_id = await listener.next("grant")
    info = LeaderInformation.known(session_id, "http://leader")
    await driver.publish_leader_information("dispatcher", info)
    assert await listener.next("info") == ("dispatcher", info)
    external = await zk_clients(settings)
    await external.delete(connection_info(external, "dispatcher"))
    assert await listener.next("info") == ("dispatcher", LeaderInformation.empty())
    await driver.close()


async def test_unreadable_leader_information_is_reported_as_empty(
    zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory
) -> None:
    settings = make_settings(zookeeper_server.connect_string)
    client = await zk_clients(settings)
    _, driver, listener = await start_driver(client)
    await listener.next("grant")
    external = await zk_clients(settings)
    await external.create(connection_info(external, "dispatcher"), b"not java serialization", makepath=True)
    # empty, so that the election service rewrites it
    assert await listener.next("info") == ("dispatcher", LeaderInformation.empty())
    assert not listener.errors
    await driver.close()


async def test_publish_replaces_a_node_of_another_session(
    zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory
) -> None:
    settings = make_settings(zookeeper_server.connect_string)
    client = await zk_clients(settings)
    _, driver, listener = await start_driver(client)
    session_id = await listener.next("grant")
    external = await zk_clients(settings)
    stale = LeaderInformation.known(uuid.uuid4(), "http://old-leader")
    await external.create(
        connection_info(external, "dispatcher"),
        encode_leader_information(stale),
        ephemeral=True,
        makepath=True,
    )
    info = LeaderInformation.known(session_id, "http://new-leader")
    await driver.publish_leader_information("dispatcher", info)
    stored = await read_info(client, "dispatcher")
    assert stored is not None
    assert stored[0] == info
    assert stored[1].ephemeralOwner == client.session_id
    await driver.close()


async def test_delete_leader_information(
    zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory
) -> None:
    client = await zk_clients(make_settings(zookeeper_server.connect_string))
    _, driver, listener = await start_driver(client)
    session_id = await listener.next("grant")
    await driver.publish_leader_information("dispatcher", LeaderInformation.known(session_id, "http://x"))
    await driver.delete_leader_information("dispatcher")
    assert await client.exists(client.path("leader", "dispatcher")) is None
    await driver.close()


async def test_leader_election_with_multiple_drivers(
    zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory
) -> None:
    """Exactly one leader at a time; closing it hands over to the next (Flink's multiple-drivers test)."""
    settings = make_settings(zookeeper_server.connect_string)
    drivers = []
    for _ in range(3):
        client = await zk_clients(settings)
        drivers.append(await start_driver(client))
    remaining = list(drivers)
    while remaining:
        leader = await wait_until(
            lambda: [d for d in remaining if d[1].has_leadership()], what="a leader among the drivers"
        )
        assert len(leader) == 1, "more than one driver leads"
        _, driver, listener = leader[0]
        await listener.next("grant")
        remaining.remove(leader[0])
        await driver.close()  # graceful: deletes the latch node, the next one takes over


async def test_close_deletes_the_latch_node(
    zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory
) -> None:
    client = await zk_clients(make_settings(zookeeper_server.connect_string))
    _, driver, listener = await start_driver(client)
    await listener.next("grant")
    node = driver.latch_node
    assert node is not None
    await driver.close()
    assert await client.exists(node) is None
    assert not driver.has_leadership()


async def test_deleted_latch_node_revokes_and_rejoins(
    zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory
) -> None:
    settings = make_settings(zookeeper_server.connect_string)
    client = await zk_clients(settings)
    factory, driver, listener = await start_driver(client)
    first = await listener.next("grant")
    node = driver.latch_node
    assert node is not None
    path, _version = factory.fencing_token()
    assert path == node
    external = await zk_clients(settings)
    await external.delete(node)
    await listener.next("revoke")
    # the driver joins again with a new node and, being alone, leads again with a new session id
    second = await listener.next("grant")
    assert second != first
    assert driver.latch_node not in (None, node)
    await driver.close()


async def test_fenced_write_fails_once_the_latch_node_is_gone(
    zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory
) -> None:
    settings = make_settings(zookeeper_server.connect_string)
    client = await zk_clients(settings)
    factory, driver, listener = await start_driver(client)
    await listener.next("grant")
    token = factory.fencing_token()

    class StaleFencing(ZooKeeperLeaderElectionDriverFactory):
        """A deposed leader that has not noticed yet: it still presents its old token."""

        def fencing_token(self) -> tuple[str, int]:
            return token

    stale = StaleFencing(client)
    external = await zk_clients(settings)
    await external.delete(token[0])
    with pytest.raises(FencingError, match="no longer the leader"):
        await client.fenced_commit(stale, [Op.create(client.path("fenced-write"), b"x")])
    assert await client.exists(client.path("fenced-write")) is None
    await driver.close()


async def test_predecessor_watch_only(zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory) -> None:
    """A contender in the middle waits for its predecessor, not for the leader (no herd effect)."""
    settings = make_settings(zookeeper_server.connect_string)
    drivers = []
    for _ in range(3):
        client = await zk_clients(settings)
        triple = await start_driver(client)
        driver = triple[1]
        await wait_until(lambda: driver.latch_node is not None, what="a latch node")  # noqa: B023
        drivers.append(triple)
    (_, first, first_listener), (_, second, _), (_, third, third_listener) = drivers
    await first_listener.next("grant")
    # the middle contender leaves: the leader stays, the third one does not lead
    await second.close()
    assert first.has_leadership()
    assert not third.has_leadership()
    await first.close()
    await third_listener.next("grant")
    await third.close()


async def test_kazoo_client_sees_flink_layout(
    zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory
) -> None:
    """A plain kazoo client (as any other tool) finds the nodes where Flink keeps them."""
    settings = make_settings(zookeeper_server.connect_string)
    client = await zk_clients(settings)
    _, driver, listener = await start_driver(client)
    session_id = await listener.next("grant")
    await driver.publish_leader_information("dispatcher", LeaderInformation.known(session_id, "http://d"))
    plain = KazooClient(hosts=zookeeper_server.connect_string)
    plain.start(timeout=10)
    try:
        namespace = f"{settings.root}/{settings.cluster_id.strip('/')}"
        assert sorted(plain.get_children(f"{namespace}/leader")) == ["dispatcher", "latch"]
        data, _ = plain.get(f"{namespace}/leader/dispatcher/connection_info")
        assert decode_leader_information(data) == LeaderInformation.known(session_id, "http://d")
    finally:
        plain.stop()
        plain.close()
    await driver.close()
