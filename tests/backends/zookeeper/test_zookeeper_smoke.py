"""Smoke test: one driver wins, publishes, a retriever sees it."""

from __future__ import annotations

import uuid

import pytest
from zk_support import ClientFactory, RecordingDriverListener, RecordingRetrievalHandler, make_settings

from standby.backends.zookeeper import (
    LeaderInformationClearancePolicy,
    ZooKeeperLeaderElectionDriverFactory,
    ZooKeeperLeaderRetrievalDriverFactory,
)
from standby.ha import LeaderInformation
from standby.testing.servers import ZooKeeperServer

pytestmark = pytest.mark.zookeeper


async def test_grant_publish_retrieve(zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory) -> None:
    settings = make_settings(zookeeper_server.connect_string)
    client = await zk_clients(settings)
    listener = RecordingDriverListener()
    factory = ZooKeeperLeaderElectionDriverFactory(client)
    driver = await factory.create(listener)
    session_id = await listener.next("grant")
    assert driver.has_leadership()
    info = LeaderInformation.known(session_id, "http://leader:1234")
    handler = RecordingRetrievalHandler()
    retrieval = await ZooKeeperLeaderRetrievalDriverFactory(
        client, client.path("leader", "dispatcher"), LeaderInformationClearancePolicy.ON_LOST_CONNECTION
    ).create(handler, handler)
    await driver.publish_leader_information("dispatcher", info)
    await handler.wait_for(info)
    await driver.close()
    await retrieval.close()
    assert not listener.errors
    _ = uuid
