"""Fencing of leadership sessions within one ZooKeeper session: every grant bumps the latch node's version.

A process revoked on SUSPENDED and granted again after the reconnect keeps its ZooKeeper session and its latch
node; only the version bumped at the grant tells its leadership sessions apart. These tests drive that cycle with a
TCP proxy that drops the connection, and check that a write of the earlier session can no longer commit once the
new session exists, that the current session writes normally, and that other contenders are not confused by the
data change of the node they watch.
"""

from __future__ import annotations

import asyncio

import pytest
from kazoo.exceptions import BadVersionError

from standby.backends.zookeeper import (
    ConnectionState,
    LatchFencing,
    Op,
    PinnedFencing,
    ZooKeeperClient,
    ZooKeeperLeaderElectionDriver,
    ZooKeeperLeaderElectionDriverFactory,
)
from standby.ha import FencingError
from standby.testing.servers import TcpProxy, ZooKeeperServer

from .zk_support import WAIT, ClientFactory, ProxyFactory, RecordingDriverListener, make_settings, wait_until

pytestmark = pytest.mark.zookeeper

#: Long enough that a dropped connection comes back within the same ZooKeeper session.
SESSION_TIMEOUT = 4.0


class FixedToken(LatchFencing):
    """A leader that has not noticed anything: it presents the token it captured, without any local check."""

    def __init__(self, token: tuple[str, int]) -> None:
        self.token = token

    def fencing_token(self) -> tuple[str, int]:
        return self.token


async def start_leader(
    client: ZooKeeperClient,
) -> tuple[ZooKeeperLeaderElectionDriverFactory, ZooKeeperLeaderElectionDriver, RecordingDriverListener]:
    listener = RecordingDriverListener()
    factory = ZooKeeperLeaderElectionDriverFactory(client)
    driver = await factory.create(listener)
    await listener.next("grant")
    return factory, driver, listener


async def regrant_after_reconnect(
    proxy: TcpProxy, client: ZooKeeperClient, listener: RecordingDriverListener
) -> None:
    """Drop the connection (SUSPENDED revokes), heal it (RECONNECTED, same session) and wait for the new grant."""
    session = client.session_id
    proxy.drop()
    await listener.next("revoke")
    assert client.connection_state is ConnectionState.SUSPENDED
    proxy.resume()
    await listener.next("grant")
    assert client.session_id == session, "the ZooKeeper session expired; the test needs it to survive"


async def test_every_grant_bumps_the_latch_node_version(
    zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory
) -> None:
    client = await zk_clients(make_settings(zookeeper_server.connect_string))
    factory, driver, _ = await start_leader(client)
    path, version = factory.fencing_token()
    assert path == driver.latch_node
    data, stat = await client.get(path)
    assert stat.version == version
    assert version >= 1  # created at version 0, bumped by the first grant too
    assert data == b""  # only the version changes: the latch node carries no leader information
    await driver.close()


async def test_token_of_an_earlier_session_is_refused_after_regrant(
    zookeeper_server: ZooKeeperServer, tcp_proxy: ProxyFactory, zk_clients: ClientFactory
) -> None:
    proxy = tcp_proxy(zookeeper_server.host, zookeeper_server.port)
    client = await zk_clients(make_settings(proxy.endpoint, session_timeout=SESSION_TIMEOUT))
    factory, driver, listener = await start_leader(client)
    first_session = driver.leader_session_id
    first_token = factory.fencing_token()
    pinned = PinnedFencing(factory)  # a write that started in the first session

    await regrant_after_reconnect(proxy, client, listener)
    second_token = factory.fencing_token()
    assert driver.leader_session_id not in (None, first_session)
    assert second_token[0] == first_token[0]  # same ZooKeeper session, same latch node ...
    assert second_token[1] > first_token[1]  # ... but a new version: the token of the new session

    # ZooKeeper refuses the old token (the process did not notice, or the request was already on its way)
    stale_path = client.path("stale-write")
    with pytest.raises(FencingError, match="no longer at version"):
        await client.fenced_commit(FixedToken(first_token), [Op.create(stale_path, b"old session")])
    assert await client.exists(stale_path) is None
    # a write pinned in the first session is refused before it is sent
    with pytest.raises(FencingError, match="has ended"):
        await client.fenced_commit(pinned, [Op.create(stale_path, b"old session")])
    assert await client.exists(stale_path) is None

    # the current session writes
    current_path = client.path("current-write")
    await client.fenced_commit(factory, [Op.create(current_path, b"new session")])
    assert (await client.get(current_path))[0] == b"new session"
    await client.fenced_commit(FixedToken(second_token), [Op.set(current_path, b"again")])
    assert (await client.get(current_path))[0] == b"again"
    await driver.close()


async def test_write_queued_during_the_disconnect_commits_before_the_new_session_or_not_at_all(
    zookeeper_server: ZooKeeperServer, tcp_proxy: ProxyFactory, zk_clients: ClientFactory
) -> None:
    """kazoo queues a request made while disconnected and sends it after the reconnect (the chaos finding)."""
    proxy = tcp_proxy(zookeeper_server.host, zookeeper_server.port)
    client = await zk_clients(make_settings(proxy.endpoint, session_timeout=SESSION_TIMEOUT))
    factory, driver, listener = await start_leader(client)
    latch_node, version = factory.fencing_token()
    path = client.path("queued-write")
    await client.ensure_path(client.path())

    proxy.drop()
    await listener.next("revoke")
    # A write of the first session, submitted straight to kazoo while it reconnects: queued, sent after it.
    transaction = client.kazoo.transaction()
    transaction.check(latch_node, version)
    transaction.create(path, b"first session")
    queued = transaction.commit_async()
    proxy.resume()
    await listener.next("grant")

    results = await asyncio.to_thread(queued.get, True, WAIT)
    latch_stat = await client.exists(latch_node)
    assert latch_stat is not None
    if isinstance(results[0], Exception):
        assert isinstance(results[0], BadVersionError)  # refused by the version check
        assert await client.exists(path) is None
    else:
        # committed, but before the bump of the new session (ZooKeeper orders all writes by zxid), so before
        # the new session was granted
        stat = await client.exists(path)
        assert stat is not None
        assert stat.czxid < latch_stat.mzxid
    assert latch_stat.version == factory.fencing_token()[1]
    await driver.close()


async def test_latch_node_changed_by_someone_else_starts_a_new_session(
    zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory
) -> None:
    settings = make_settings(zookeeper_server.connect_string)
    client = await zk_clients(settings)
    factory, driver, listener = await start_leader(client)
    first_session = driver.leader_session_id
    node, _ = factory.fencing_token()
    external = await zk_clients(settings)
    await external.set(node, b"touched by an operator")
    await listener.next("revoke")  # the token of the running session would no longer match
    second_session = await listener.next("grant")
    assert second_session != first_session
    new_node, new_version = factory.fencing_token()
    assert new_node == node
    assert (await client.exists(node)).version == new_version  # type: ignore[union-attr]
    await client.fenced_commit(factory, [Op.create(client.path("after-touch"), b"ok")])
    await driver.close()


async def test_follower_keeps_following_a_leader_whose_latch_node_was_bumped(
    zookeeper_server: ZooKeeperServer, tcp_proxy: ProxyFactory, zk_clients: ClientFactory
) -> None:
    """The follower's exists-watch on its predecessor fires on the bump; it must re-arm and still see the delete."""
    proxy = tcp_proxy(zookeeper_server.host, zookeeper_server.port)
    settings = make_settings(proxy.endpoint, session_timeout=SESSION_TIMEOUT)
    leader_client = await zk_clients(settings)
    leader_factory, leader, leader_listener = await start_leader(leader_client)
    leader_node = leader.latch_node
    assert leader_node is not None
    follower_client = await zk_clients(
        make_settings(zookeeper_server.connect_string, cluster_id=settings.cluster_id)
    )
    follower_listener = RecordingDriverListener()
    follower = await ZooKeeperLeaderElectionDriverFactory(follower_client).create(follower_listener)
    # kazoo registers the follower's watch on its predecessor (the leader's node) once the exists call is answered
    await wait_until(
        lambda: leader_node in follower_client.kazoo._data_watchers, what="the follower's predecessor watch"
    )
    version_before = leader_factory.fencing_token()[1]

    await regrant_after_reconnect(proxy, leader_client, leader_listener)
    assert leader_factory.fencing_token()[1] > version_before
    # the bump fired the follower's watch; it looked again and watches the predecessor anew
    await wait_until(
        lambda: leader_node in follower_client.kazoo._data_watchers, what="the re-armed predecessor watch"
    )
    assert not follower.has_leadership()
    assert leader.has_leadership()

    await leader.close()  # deletes the latch node: the follower must be told
    await follower_listener.next("grant")
    assert follower.has_leadership()
    assert [kind for kind, _ in follower_listener.drain() if kind in ("grant", "revoke")] == []
    await follower.close()
