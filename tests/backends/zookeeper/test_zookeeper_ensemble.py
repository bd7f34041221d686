"""Leader election on a 3-server ZooKeeper ensemble that loses its leading server."""

from __future__ import annotations

import asyncio

import pytest

from standby.backends.zookeeper import (
    LeaderInformationClearancePolicy,
    Op,
    ZooKeeperLeaderElectionDriverFactory,
    ZooKeeperLeaderRetrievalDriverFactory,
)
from standby.ha import LeaderInformation
from standby.testing.servers import ZooKeeperEnsemble

from .zk_support import (
    ClientFactory,
    RecordingDriverListener,
    RecordingRetrievalHandler,
    make_settings,
    wait_until,
)

pytestmark = [pytest.mark.zookeeper, pytest.mark.slow]


@pytest.mark.parametrize("tolerate", [False, True])
async def test_election_survives_the_loss_of_the_zookeeper_leader(
    zookeeper_ensemble: ZooKeeperEnsemble, zk_clients: ClientFactory, tolerate: bool
) -> None:
    settings = make_settings(
        zookeeper_ensemble.connect_string, session_timeout=6.0, tolerate_suspended_connections=tolerate
    )
    factories = []
    clients = {}
    for _ in range(2):
        client = await zk_clients(settings)
        factory = ZooKeeperLeaderElectionDriverFactory(client)
        await factory.create(RecordingDriverListener())
        factories.append(factory)
        clients[id(factory)] = client
    observer = await zk_clients(settings)
    handler = RecordingRetrievalHandler()
    retrieval = await ZooKeeperLeaderRetrievalDriverFactory(
        observer, observer.path("leader", "dispatcher"), LeaderInformationClearancePolicy.ON_LOST_CONNECTION
    ).create(handler, handler)

    def leaders() -> list[ZooKeeperLeaderElectionDriverFactory]:
        return [f for f in factories if f.driver is not None and f.driver.has_leadership()]

    await wait_until(leaders, what="a leader")
    index = zookeeper_ensemble.leader_index()
    assert index is not None
    await asyncio.to_thread(zookeeper_ensemble.kill_member, index)
    try:
        # the ensemble elects a new leader, the clients move to the surviving servers
        await wait_until(
            lambda: len(leaders()) == 1 and all(f.driver and f.driver.latch_node for f in factories),
            what="exactly one leader on the surviving ensemble",
        )

        async def published_by_the_current_leader() -> ZooKeeperLeaderElectionDriverFactory | None:
            # Each client notices the lost server at its own pace: a leader seen before its SUSPENDED is revoked
            # and granted again (new session, new fencing token), and a publish of the old session is refused.
            # So publish with whatever session is current until retrieval shows it.
            current = leaders()
            driver = current[0].driver if len(current) == 1 else None
            session_id = driver.leader_session_id if driver is not None else None
            if driver is None or session_id is None:
                return None
            info = LeaderInformation.known(session_id, "http://leader-after-failure")
            if handler.last == info:
                return current[0]
            await driver.publish_leader_information("dispatcher", info)
            return None

        leader = await wait_until(
            published_by_the_current_leader, what="the current leader's information seen by retrieval"
        )
        # a fenced write goes through on the surviving quorum
        client = clients[id(leader)]
        await client.fenced_commit(leader, [Op.create(client.path("after-failure"), b"ok")])
        assert (await observer.get(observer.path("after-failure")))[0] == b"ok"
    finally:
        await asyncio.to_thread(zookeeper_ensemble.start_member, index)
        await retrieval.close()
        for factory in factories:
            if factory.driver is not None:
                await factory.driver.close()
