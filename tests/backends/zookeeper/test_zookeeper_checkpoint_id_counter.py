"""ZooKeeperCheckpointIDCounter: Curator SharedCount bytes, CAS under concurrency, fencing, connection state."""

from __future__ import annotations

import asyncio
import struct

import pytest

from standby.backends.zookeeper import (
    ConnectionState,
    ZooKeeperCheckpointIDCounter,
    ZooKeeperClient,
    ZooKeeperLeaderElectionDriverFactory,
)
from standby.ha import CorruptHaDataError, FencingError, HighAvailabilityError, JobStatus
from standby.testing.servers import ZooKeeperServer

from .zk_support import ClientFactory, ProxyFactory, RecordingDriverListener, make_settings, wait_until

pytestmark = pytest.mark.zookeeper


async def leader_fencing(client: ZooKeeperClient) -> ZooKeeperLeaderElectionDriverFactory:
    fencing = ZooKeeperLeaderElectionDriverFactory(client)
    listener = RecordingDriverListener()
    await fencing.create(listener)
    await listener.next("grant")
    return fencing


async def test_counter_node_is_a_four_byte_big_endian_int(
    zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory
) -> None:
    client = await zk_clients(make_settings(zookeeper_server.connect_string))
    path = client.path("jobs", "0" * 32, "checkpoint_id_counter")
    counter = ZooKeeperCheckpointIDCounter(client, path)
    await counter.start()
    assert (await client.get(path))[0] == b"\x00\x00\x00\x01"
    assert await counter.get_and_increment() == 1
    await counter.set_count(258)
    assert (await client.get(path))[0] == struct.pack(">i", 258)


async def test_concurrent_increments_from_many_sessions_are_unique(
    zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory
) -> None:
    settings = make_settings(zookeeper_server.connect_string)
    leader = await zk_clients(settings)
    fencing = await leader_fencing(leader)
    path = leader.path("jobs", "1" * 32, "checkpoint_id_counter")
    counters = [ZooKeeperCheckpointIDCounter(await zk_clients(settings), path, fencing) for _ in range(4)]
    for counter in counters:
        await counter.start()

    async def take(counter: ZooKeeperCheckpointIDCounter) -> list[int]:
        return [await counter.get_and_increment() for _ in range(25)]

    results = await asyncio.gather(*(take(c) for c in counters))
    ids = [i for result in results for i in result]
    assert sorted(ids) == list(range(1, 101))
    for result in results:
        assert result == sorted(result)  # increasing within each taker
    assert await counters[0].get() == 101


async def test_overflow(zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory) -> None:
    client = await zk_clients(make_settings(zookeeper_server.connect_string))
    counter = ZooKeeperCheckpointIDCounter(client, client.path("counter"))
    await counter.start()
    with pytest.raises(ValueError, match="2147483647"):
        await counter.set_count(2**31)
    await counter.set_count(2**31 - 1)
    with pytest.raises(HighAvailabilityError, match="Checkpoint counter overflow"):
        await counter.get_and_increment()
    assert await counter.get() == 2**31 - 1


async def test_corrupt_counter(zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory) -> None:
    client = await zk_clients(make_settings(zookeeper_server.connect_string))
    path = client.path("counter")
    await client.create(path, b"\x01\x02", makepath=True)
    counter = ZooKeeperCheckpointIDCounter(client, path)
    with pytest.raises(CorruptHaDataError, match="counter"):
        await counter.get_and_increment()


async def test_only_the_leader_increments(
    zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory
) -> None:
    client = await zk_clients(make_settings(zookeeper_server.connect_string))
    fencing = await leader_fencing(client)
    path = client.path("counter")
    counter = ZooKeeperCheckpointIDCounter(client, path, fencing)
    await counter.start()
    assert await counter.get_and_increment() == 1
    driver = fencing.driver
    assert driver is not None
    await driver.close()
    with pytest.raises(FencingError):
        await counter.get_and_increment()
    with pytest.raises(FencingError):
        await counter.set_count(100)
    with pytest.raises(FencingError):
        await counter.shutdown(JobStatus.FINISHED)
    assert await counter.get() == 2
    assert await client.exists(path) is not None


async def test_refuses_ids_while_the_connection_is_suspended(
    zookeeper_server: ZooKeeperServer, tcp_proxy: ProxyFactory, zk_clients: ClientFactory
) -> None:
    proxy = tcp_proxy(zookeeper_server.host, zookeeper_server.port)
    client = await zk_clients(make_settings(proxy.endpoint, session_timeout=4.0))
    counter = ZooKeeperCheckpointIDCounter(client, client.path("counter"))
    await counter.start()
    proxy.drop()
    await wait_until(lambda: client.connection_state is ConnectionState.SUSPENDED, what="SUSPENDED")
    with pytest.raises(HighAvailabilityError, match="Connection state: SUSPENDED"):
        await counter.get_and_increment()
    proxy.resume()
    await wait_until(lambda: client.is_connected, what="the reconnect")
    assert await counter.get_and_increment() == 1
