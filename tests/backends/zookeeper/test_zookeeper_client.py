"""ZooKeeperClient: paths, connection states on the loop, simulated expiry, background errors, transactions."""

from __future__ import annotations

import asyncio
import threading

import pytest
from kazoo.exceptions import NodeExistsError, NoNodeError

from standby.backends.zookeeper import (
    ConnectionState,
    Op,
    TransactionError,
    ZooKeeperClient,
    generate_zookeeper_path,
)
from standby.testing.servers import ZooKeeperServer, expire_session

from .zk_support import ClientFactory, ProxyFactory, make_settings, wait_until

pytestmark = pytest.mark.zookeeper


def test_generate_zookeeper_path() -> None:
    # Flink's ZooKeeperUtils.generateZookeeperPath
    assert generate_zookeeper_path("/flink", "/default") == "/flink/default"
    assert generate_zookeeper_path("flink/", "", "/cluster/") == "/flink/cluster"
    assert generate_zookeeper_path("", "/") == "/"


async def test_connection_states_reach_listeners_on_the_loop(
    zookeeper_server: ZooKeeperServer, tcp_proxy: ProxyFactory, zk_clients: ClientFactory
) -> None:
    proxy = tcp_proxy(zookeeper_server.host, zookeeper_server.port)
    client = await zk_clients(make_settings(proxy.endpoint, session_timeout=4.0))
    assert client.connection_state is ConnectionState.CONNECTED
    loop_thread = threading.get_ident()
    seen: list[tuple[ConnectionState, bool]] = []
    client.add_connection_listener(lambda state: seen.append((state, threading.get_ident() == loop_thread)))

    proxy.drop()
    await wait_until(lambda: seen and seen[-1][0] is ConnectionState.SUSPENDED, what="SUSPENDED")
    proxy.resume()
    await wait_until(lambda: seen[-1][0] is ConnectionState.RECONNECTED, what="RECONNECTED")
    session = client.session_id
    await asyncio.to_thread(expire_session, client.kazoo)
    await wait_until(lambda: seen[-1][0] is ConnectionState.CONNECTED, what="a new session")
    assert client.session_id != session
    states = [state for state, _ in seen]
    assert states[:2] == [ConnectionState.SUSPENDED, ConnectionState.RECONNECTED]
    assert ConnectionState.LOST in states[2:]
    assert all(on_loop for _, on_loop in seen)


async def test_simulated_session_expiry_after_the_session_timeout(
    zookeeper_server: ZooKeeperServer, tcp_proxy: ProxyFactory, zk_clients: ClientFactory
) -> None:
    """No connection for the session timeout: LOST, although no server could say so (Curator's behaviour)."""
    proxy = tcp_proxy(zookeeper_server.host, zookeeper_server.port)
    client = await zk_clients(make_settings(proxy.endpoint, session_timeout=1.0))
    seen: list[ConnectionState] = []
    client.add_connection_listener(seen.append)
    proxy.drop()
    await wait_until(lambda: ConnectionState.LOST in seen, what="the simulated LOST")
    assert seen[0] is ConnectionState.SUSPENDED
    proxy.resume()
    await wait_until(lambda: client.is_connected, what="the reconnect")


async def test_listener_errors_go_to_the_fatal_error_handler(zookeeper_server: ZooKeeperServer) -> None:
    errors: list[BaseException] = []

    class Handler:
        def on_fatal_error(self, error: BaseException) -> None:
            errors.append(error)

    client = ZooKeeperClient(make_settings(zookeeper_server.connect_string), fatal_error_handler=Handler())
    await client.start()
    try:

        def broken(state: ConnectionState) -> None:
            raise RuntimeError(f"listener broke on {state.value}")

        client.add_connection_listener(broken)
        await asyncio.to_thread(expire_session, client.kazoo)
        await wait_until(lambda: errors, what="the fatal error")
        assert "listener broke" in str(errors[0])
    finally:
        await client.close()


async def test_transaction_reports_the_failing_operation(
    zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory
) -> None:
    client = await zk_clients(make_settings(zookeeper_server.connect_string))
    base = client.path("tx")
    await client.ensure_path(base)
    await client.create(f"{base}/b")
    with pytest.raises(TransactionError) as failure:
        await client.commit([Op.create(f"{base}/a"), Op.create(f"{base}/b"), Op.create(f"{base}/c")])
    assert failure.value.index == 1
    assert isinstance(failure.value.error, NodeExistsError)
    assert await client.get_children(base) == ["b"]  # all or nothing
    with pytest.raises(TransactionError) as failure:
        await client.commit([Op.check(f"{base}/missing", 0)])
    assert isinstance(failure.value.error, NoNodeError)


async def test_delete_tree(zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory) -> None:
    client = await zk_clients(make_settings(zookeeper_server.connect_string))
    base = client.path("tree")
    for i in range(300):  # more than one multi-op batch
        await client.create(f"{base}/n{i // 10}/leaf{i}", makepath=True)
    await client.delete_tree(base)
    assert await client.exists(base) is None
    await client.delete_tree(base)  # idempotent


async def test_close_is_idempotent_and_operations_fail_after(
    zookeeper_server: ZooKeeperServer,
) -> None:
    client = ZooKeeperClient(make_settings(zookeeper_server.connect_string))
    await client.start()
    await client.close()
    await client.close()
    with pytest.raises(Exception, match="closed"):
        await client.exists("/")
