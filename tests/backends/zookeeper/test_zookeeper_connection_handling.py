"""SUSPENDED versus LOST under both settings of tolerate-suspended-connections (reference §2.5, FLINK-10052).

Ports of Flink's ZooKeeperLeaderElectionConnectionHandlingTest and ZooKeeperLeaderRetrievalConnectionHandlingTest,
with real faults: a TCP proxy that drops or stalls the connection, a restarted server, and a session expired on
the server.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from standby.backends.zookeeper import (
    ConnectionState,
    LeaderInformationClearancePolicy,
    ZooKeeperClient,
    ZooKeeperLeaderElectionDriverFactory,
    ZooKeeperLeaderRetrievalDriver,
    ZooKeeperLeaderRetrievalDriverFactory,
    encode_leader_information,
)
from standby.ha import LeaderInformation
from standby.testing.servers import ZooKeeperServer, expire_session

from .zk_support import (
    ClientFactory,
    ProxyFactory,
    RecordingDriverListener,
    RecordingRetrievalHandler,
    make_settings,
    wait_until,
)

pytestmark = pytest.mark.zookeeper


def state_of(client: ZooKeeperClient) -> ConnectionState | None:
    return client.connection_state


async def wait_state(client: ZooKeeperClient, *states: ConnectionState) -> None:
    await wait_until(lambda: client.connection_state in states, what=f"connection state {states}")


def events_of(listener: RecordingDriverListener) -> list[str]:
    return [kind for kind, _ in listener.drain()]


# ------------------------------------------------------------------------------------------------ election


async def test_lose_leadership_on_connection_suspended(
    zookeeper_server: ZooKeeperServer, tcp_proxy: ProxyFactory, zk_clients: ClientFactory
) -> None:
    proxy = tcp_proxy(zookeeper_server.host, zookeeper_server.port)
    client = await zk_clients(make_settings(proxy.endpoint, session_timeout=4.0))
    listener = RecordingDriverListener()
    driver = await ZooKeeperLeaderElectionDriverFactory(client).create(listener)
    first = await listener.next("grant")
    node = driver.latch_node

    proxy.drop()
    await listener.next("revoke")
    assert not driver.has_leadership()
    assert state_of(client) is ConnectionState.SUSPENDED

    proxy.resume()
    second = await listener.next("grant")  # still the lowest node: leads again, with a NEW session id
    assert second != first
    assert driver.latch_node == node  # same session, same latch node
    assert state_of(client) is ConnectionState.RECONNECTED
    await driver.close()


async def test_lose_leadership_when_the_server_restarts(
    own_zookeeper: ZooKeeperServer, zk_clients: ClientFactory
) -> None:
    # A session timeout longer than a JVM restart: the session survives, the connection does not.
    client = await zk_clients(make_settings(own_zookeeper.connect_string, session_timeout=20.0))
    listener = RecordingDriverListener()
    driver = await ZooKeeperLeaderElectionDriverFactory(client).create(listener)
    first = await listener.next("grant")
    node = driver.latch_node
    await asyncio.to_thread(own_zookeeper.stop)
    await listener.next("revoke")
    await asyncio.to_thread(own_zookeeper.start)
    second = await listener.next("grant")
    assert second != first
    assert driver.latch_node == node
    await driver.close()


async def test_keep_leadership_on_suspended_connection_if_tolerated(
    zookeeper_server: ZooKeeperServer, tcp_proxy: ProxyFactory, zk_clients: ClientFactory
) -> None:
    proxy = tcp_proxy(zookeeper_server.host, zookeeper_server.port)
    client = await zk_clients(
        make_settings(proxy.endpoint, session_timeout=4.0, tolerate_suspended_connections=True)
    )
    listener = RecordingDriverListener()
    factory = ZooKeeperLeaderElectionDriverFactory(client)
    driver = await factory.create(listener)
    session_id = await listener.next("grant")
    token = factory.fencing_token()

    proxy.drop()
    await wait_state(client, ConnectionState.SUSPENDED)
    assert driver.has_leadership()
    proxy.resume()
    await wait_state(client, ConnectionState.RECONNECTED)
    await wait_until(lambda: client.is_connected, what="the reconnect")
    assert driver.has_leadership()
    assert driver.leader_session_id == session_id
    assert factory.fencing_token() == token
    assert "revoke" not in events_of(listener)
    await driver.close()


async def test_lose_leadership_on_lost_connection_if_tolerated(
    zookeeper_server: ZooKeeperServer, tcp_proxy: ProxyFactory, zk_clients: ClientFactory
) -> None:
    """A stalled link: SUSPENDED keeps leadership, but after the session timeout the session counts as LOST."""
    proxy = tcp_proxy(zookeeper_server.host, zookeeper_server.port)
    client = await zk_clients(make_settings(proxy.endpoint, tolerate_suspended_connections=True))
    listener = RecordingDriverListener()
    driver = await ZooKeeperLeaderElectionDriverFactory(client).create(listener)
    first = await listener.next("grant")
    old_node = driver.latch_node

    proxy.stall()
    await wait_state(client, ConnectionState.SUSPENDED)
    assert driver.has_leadership()
    await listener.next("revoke")  # simulated expiry (Curator's), the server expires the session too
    assert state_of(client) is ConnectionState.LOST

    proxy.resume()
    second = await listener.next("grant")  # new session, new latch node
    assert second != first
    assert driver.latch_node != old_node
    await driver.close()


@pytest.mark.parametrize("tolerate", [False, True])
async def test_session_expiry_revokes_and_rejoins(
    zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory, tolerate: bool
) -> None:
    client = await zk_clients(
        make_settings(zookeeper_server.connect_string, tolerate_suspended_connections=tolerate)
    )
    listener = RecordingDriverListener()
    driver = await ZooKeeperLeaderElectionDriverFactory(client).create(listener)
    first = await listener.next("grant")
    old_node = driver.latch_node
    old_session = client.session_id
    await asyncio.to_thread(expire_session, client.kazoo)
    await listener.next("revoke")
    second = await listener.next("grant")
    assert second != first
    assert client.session_id != old_session
    assert driver.latch_node != old_node
    assert old_node is not None
    assert await client.exists(old_node) is None  # ephemeral: gone with the old session
    await driver.close()


async def test_partitioned_leader_is_replaced(
    zookeeper_server: ZooKeeperServer, tcp_proxy: ProxyFactory, zk_clients: ClientFactory
) -> None:
    """The leader's link stalls: it steps down, the other contender takes over after the session timeout."""
    proxy = tcp_proxy(zookeeper_server.host, zookeeper_server.port)
    settings = make_settings(proxy.endpoint)
    leader_client = await zk_clients(settings)
    leader_listener = RecordingDriverListener()
    leader = await ZooKeeperLeaderElectionDriverFactory(leader_client).create(leader_listener)
    await leader_listener.next("grant")
    follower_client = await zk_clients(
        make_settings(zookeeper_server.connect_string, cluster_id=settings.cluster_id)
    )
    follower_listener = RecordingDriverListener()
    follower = await ZooKeeperLeaderElectionDriverFactory(follower_client).create(follower_listener)
    await wait_until(lambda: follower.latch_node is not None, what="the follower's latch node")
    assert not follower.has_leadership()

    proxy.stall()
    await leader_listener.next("revoke")
    await follower_listener.next("grant")
    assert not leader.has_leadership()

    proxy.resume()
    # the old leader comes back with a new session and queues up behind the new leader
    await wait_until(
        lambda: leader_client.is_connected and leader.latch_node is not None, what="the old leader to rejoin"
    )
    assert follower.has_leadership()
    assert not leader.has_leadership()
    await leader.close()
    await follower.close()


# ------------------------------------------------------------------------------------------------ retrieval


async def start_retrieval(
    client: ZooKeeperClient, component: str, policy: LeaderInformationClearancePolicy
) -> tuple[ZooKeeperLeaderRetrievalDriver, RecordingRetrievalHandler]:
    handler = RecordingRetrievalHandler()
    driver = await ZooKeeperLeaderRetrievalDriverFactory(
        client, client.path("leader", component), policy
    ).create(handler, handler)
    return driver, handler


async def write_leader(writer: ZooKeeperClient, component: str, info: LeaderInformation) -> None:
    path = writer.path("leader", component, "connection_info")
    if await writer.exists(path) is None:
        await writer.create(path, encode_leader_information(info), makepath=True)
    else:
        await writer.set(path, encode_leader_information(info))


@pytest.mark.parametrize("policy", list(LeaderInformationClearancePolicy))
async def test_suspension_without_leader_notifies_nothing(
    zookeeper_server: ZooKeeperServer,
    tcp_proxy: ProxyFactory,
    zk_clients: ClientFactory,
    policy: LeaderInformationClearancePolicy,
) -> None:
    proxy = tcp_proxy(zookeeper_server.host, zookeeper_server.port)
    client = await zk_clients(make_settings(proxy.endpoint, session_timeout=4.0))
    driver, handler = await start_retrieval(client, "dispatcher", policy)
    proxy.drop()
    await wait_state(client, ConnectionState.SUSPENDED)
    proxy.resume()
    await wait_state(client, ConnectionState.RECONNECTED)
    assert handler.notifications == []
    await driver.close()


async def test_suspended_connection_clears_leader_under_on_suspended_policy(
    zookeeper_server: ZooKeeperServer, tcp_proxy: ProxyFactory, zk_clients: ClientFactory
) -> None:
    proxy = tcp_proxy(zookeeper_server.host, zookeeper_server.port)
    settings = make_settings(proxy.endpoint, session_timeout=4.0)
    writer = await zk_clients(make_settings(zookeeper_server.connect_string, cluster_id=settings.cluster_id))
    leader = LeaderInformation.known(uuid.uuid4(), "http://leader")
    await write_leader(writer, "dispatcher", leader)
    client = await zk_clients(settings)
    driver, handler = await start_retrieval(
        client, "dispatcher", LeaderInformationClearancePolicy.ON_SUSPENDED_CONNECTION
    )
    await handler.wait_for(leader)

    proxy.drop()
    await handler.wait_for(LeaderInformation.empty())
    proxy.resume()
    await handler.wait_for(leader)  # same leader after reconnect: notified again
    assert not handler.errors
    await driver.close()


async def test_suspended_connection_keeps_leader_under_on_lost_policy(
    zookeeper_server: ZooKeeperServer, tcp_proxy: ProxyFactory, zk_clients: ClientFactory
) -> None:
    proxy = tcp_proxy(zookeeper_server.host, zookeeper_server.port)
    settings = make_settings(proxy.endpoint, session_timeout=4.0)
    writer = await zk_clients(make_settings(zookeeper_server.connect_string, cluster_id=settings.cluster_id))
    leader = LeaderInformation.known(uuid.uuid4(), "http://leader")
    await write_leader(writer, "dispatcher", leader)
    client = await zk_clients(settings)
    driver, handler = await start_retrieval(
        client, "dispatcher", LeaderInformationClearancePolicy.ON_LOST_CONNECTION
    )
    await handler.wait_for(leader)

    proxy.drop()
    await wait_state(client, ConnectionState.SUSPENDED)
    assert handler.last == leader
    proxy.resume()
    await wait_state(client, ConnectionState.RECONNECTED)
    await wait_until(lambda: len(handler.notifications) >= 2, what="the re-read after the reconnect")
    assert LeaderInformation.empty() not in handler.notifications
    assert handler.last == leader
    await driver.close()


@pytest.mark.parametrize("policy", list(LeaderInformationClearancePolicy))
async def test_new_leader_written_during_outage_is_seen(
    zookeeper_server: ZooKeeperServer,
    tcp_proxy: ProxyFactory,
    zk_clients: ClientFactory,
    policy: LeaderInformationClearancePolicy,
) -> None:
    proxy = tcp_proxy(zookeeper_server.host, zookeeper_server.port)
    settings = make_settings(proxy.endpoint, session_timeout=4.0)
    writer = await zk_clients(make_settings(zookeeper_server.connect_string, cluster_id=settings.cluster_id))
    old = LeaderInformation.known(uuid.uuid4(), "http://old")
    await write_leader(writer, "resource_manager", old)
    client = await zk_clients(settings)
    driver, handler = await start_retrieval(client, "resource_manager", policy)
    await handler.wait_for(old)

    proxy.drop()
    await wait_state(client, ConnectionState.SUSPENDED)
    new = LeaderInformation.known(uuid.uuid4(), "http://new")
    await write_leader(writer, "resource_manager", new)
    proxy.resume()
    await handler.wait_for(new)
    await driver.close()


@pytest.mark.parametrize("policy", list(LeaderInformationClearancePolicy))
async def test_lost_session_clears_leader_under_both_policies(
    zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory, policy: LeaderInformationClearancePolicy
) -> None:
    settings = make_settings(zookeeper_server.connect_string)
    writer = await zk_clients(settings)
    leader = LeaderInformation.known(uuid.uuid4(), "http://leader")
    await write_leader(writer, "dispatcher", leader)
    client = await zk_clients(settings)
    driver, handler = await start_retrieval(client, "dispatcher", policy)
    await handler.wait_for(leader)
    await asyncio.to_thread(expire_session, client.kazoo)
    await wait_until(
        lambda: LeaderInformation.empty() in handler.notifications, what="the empty notification"
    )
    await handler.wait_for(leader)  # read again in the new session
    await driver.close()


async def test_corrupt_leader_information_is_a_fatal_retrieval_error(
    zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory
) -> None:
    settings = make_settings(zookeeper_server.connect_string)
    client = await zk_clients(settings)
    driver, handler = await start_retrieval(
        client, "dispatcher", LeaderInformationClearancePolicy.ON_LOST_CONNECTION
    )
    await client.create(client.path("leader", "dispatcher", "connection_info"), b"\x00garbage", makepath=True)
    await wait_until(lambda: handler.errors, what="the fatal error")
    assert "Could not handle node changed event" in str(handler.errors[0])
    await driver.close()
