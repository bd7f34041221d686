"""Leader election and retrieval on a real etcd: key layout, order, lease loss, self-healing and fencing."""

from __future__ import annotations

import json
import uuid
from typing import Literal

import pytest

from standby.backends.etcd import (
    EtcdCheckpointIDCounter,
    EtcdClient,
    EtcdClientFactory,
    EtcdCompactedError,
    EtcdHaServices,
    EtcdLeaderElectionDriver,
    EtcdLease,
    EtcdSettings,
    EtcdWatch,
    FencingToken,
    LeadershipFence,
    Put,
)
from standby.ha import FencingError, JobID, LeaderElection
from standby.testing.recording import RecordingContender, RecordingRetrievalListener

from .conftest import EtcdBackend, eventually

pytestmark = pytest.mark.etcd


async def _contend(services: EtcdHaServices, name: str) -> tuple[LeaderElection, RecordingContender]:
    election = services.get_dispatcher_leader_election()
    contender = RecordingContender(name)
    await election.start_leader_election(contender)
    return election, contender


def _driver(services: EtcdHaServices) -> EtcdLeaderElectionDriver:
    driver = services.election_driver
    assert driver is not None
    return driver


async def test_lowest_create_revision_leads_and_each_waits_for_its_predecessor(
    etcd_backend: EtcdBackend,
) -> None:
    processes = [await etcd_backend.new_services() for _ in range(3)]
    client = await etcd_backend.new_client()
    first_election, first = await _contend(processes[0], "jm0")
    await first.wait_for_leadership()
    elections = [first_election]
    contenders = [first]
    for i in (1, 2):
        election, contender = await _contend(processes[i], f"jm{i}")
        elections.append(election)
        contenders.append(contender)
        driver = _driver(processes[i])
        # one after the other, so that the create revisions are ordered jm0 < jm1 < jm2
        await eventually(lambda d=driver: d.predecessor is not None, f"jm{i} to wait for a predecessor")
    drivers = [_driver(p) for p in processes]

    # keys: <root>/<cluster-id>/leader/latch/<lease id hex>, on the process's lease
    for driver in drivers:
        assert driver.lease is not None and driver.election_key is not None
        expected = f"/standby/{etcd_backend.cluster_id}/leader/latch/{driver.lease.lease_id:x}".encode()
        assert driver.election_key == expected
        kv, _ = await client.get(expected)
        assert kv is not None and kv.lease == driver.lease.lease_id
        assert kv.create_revision == driver.create_revision
    assert drivers[1].predecessor == drivers[0].election_key
    assert drivers[2].predecessor == drivers[1].election_key
    assert [c.is_leader for c in contenders] == [True, False, False]

    await elections[0].close()
    await contenders[1].wait_for_leadership()
    assert not contenders[2].is_leader
    assert drivers[2].predecessor == drivers[1].election_key
    for election in elections[1:]:
        await election.close()


async def test_leader_information_is_json_on_the_leaders_lease(etcd_backend: EtcdBackend) -> None:
    services = await etcd_backend.new_services()
    client = await etcd_backend.new_client()
    election, contender = await _contend(services, "jm")
    session_id = await contender.wait_for_leadership()
    await election.confirm_leadership(session_id, "http://127.0.0.1:8081")
    key = f"/standby/{etcd_backend.cluster_id}/leader/dispatcher/connection_info".encode()
    kv, _ = await client.get(key)
    assert kv is not None
    assert json.loads(kv.value) == {
        "version": 1,
        "sessionId": str(session_id),
        "address": "http://127.0.0.1:8081",
    }
    lease = _driver(services).lease
    assert lease is not None and kv.lease == lease.lease_id

    # graceful close revokes the lease: election key and leader information are gone at once
    election_key = _driver(services).election_key
    assert election_key is not None
    await election.close()
    assert (await client.get(key))[0] is None
    assert (await client.get(election_key))[0] is None


async def test_lost_lease_revokes_leadership_and_rejoins_with_a_new_lease(etcd_backend: EtcdBackend) -> None:
    a, b = await etcd_backend.new_services(), await etcd_backend.new_services()
    client = await etcd_backend.new_client()
    election_a, contender_a = await _contend(a, "a")
    first_session = await contender_a.wait_for_leadership()
    election_b, contender_b = await _contend(b, "b")
    driver_a = _driver(a)
    old_lease = driver_a.lease
    assert old_lease is not None

    await client.revoke_lease(old_lease.lease_id)  # etcd expires it, as after a long pause

    await contender_a.wait_for_revocation()
    await contender_b.wait_for_leadership()
    assert not driver_a.has_leadership()
    # a re-joined with a new lease, behind b
    await eventually(
        lambda: (
            driver_a.lease is not None
            and driver_a.lease.lease_id != old_lease.lease_id
            and driver_a.predecessor == _driver(b).election_key
        ),
        "a to re-join behind b",
    )
    await election_b.close()
    second_session = await contender_a.wait_for_leadership()
    assert second_session != first_session, "a fresh session id per leadership period"
    await election_a.close()


async def test_deleted_election_key_revokes_leadership(etcd_backend: EtcdBackend) -> None:
    a, b = await etcd_backend.new_services(), await etcd_backend.new_services()
    client = await etcd_backend.new_client()
    election_a, contender_a = await _contend(a, "a")
    await contender_a.wait_for_leadership()
    election_b, contender_b = await _contend(b, "b")
    key = _driver(a).election_key
    assert key is not None

    assert await client.delete(key)

    await contender_a.wait_for_revocation()
    await contender_b.wait_for_leadership()
    await election_a.close()
    await election_b.close()


async def test_leader_information_changed_externally_is_rewritten(etcd_backend: EtcdBackend) -> None:
    services = await etcd_backend.new_services()
    client = await etcd_backend.new_client()
    election, contender = await _contend(services, "jm")
    session_id = await contender.wait_for_leadership()
    await election.confirm_leadership(session_id, "http://leader")
    key = f"/standby/{etcd_backend.cluster_id}/leader/dispatcher/connection_info".encode()
    original, _ = await client.get(key)
    assert original is not None

    async def restored() -> bool:
        kv, _ = await client.get(key)
        return kv is not None and kv.value == original.value

    await client.delete(key)
    await eventually(restored, "deleted leader information to be re-published")
    await client.put(key, b"not json")
    await eventually(restored, "overwritten leader information to be re-published")
    await client.put(key, json.dumps({"version": 1, "sessionId": str(uuid.uuid4()), "address": "x"}).encode())
    await eventually(restored, "foreign leader information to be re-published")
    await election.close()


async def test_follower_writes_are_refused(etcd_backend: EtcdBackend) -> None:
    a, b = await etcd_backend.new_services(), await etcd_backend.new_services()
    election_a, contender_a = await _contend(a, "a")
    await contender_a.wait_for_leadership()
    election_b, _ = await _contend(b, "b")
    job_id = JobID.generate()
    leader_counter = await a.get_checkpoint_recovery_factory().create_checkpoint_id_counter(job_id)
    follower_counter = await b.get_checkpoint_recovery_factory().create_checkpoint_id_counter(job_id)
    assert await leader_counter.get_and_increment() == 1
    with pytest.raises(FencingError, match="does not hold leadership"):
        await follower_counter.get_and_increment()
    with pytest.raises(FencingError):
        await follower_counter.set_count(100)
    assert await follower_counter.get() == 2
    await election_b.close()
    await election_a.close()


async def test_etcd_refuses_a_write_whose_election_key_is_gone(etcd_backend: EtcdBackend) -> None:
    """Server-side fencing, without the local checks: the writer's lease is valid locally, but its election key
    was deleted (as when etcd expired its lease during a pause and another process took over)."""
    client = await etcd_backend.new_client()
    other = await etcd_backend.new_client()
    settings = etcd_backend.settings(**{"high-availability.etcd.lease-ttl": "30 s"})
    lease = await EtcdLease.grant(client, settings)
    try:
        key = f"/standby/{etcd_backend.cluster_id}/leader/latch/{lease.lease_id:x}".encode()
        await client.put(key, b"{}", lease.lease_id)
        kv, _ = await client.get(key)
        assert kv is not None
        fenced_out: list[str] = []
        fence = LeadershipFence()
        fence.grant(
            FencingToken(key, kv.create_revision, lease), lambda _token, what: fenced_out.append(what)
        )
        counter_key = (
            f"/standby/{etcd_backend.cluster_id}/jobs/{JobID.generate()}/checkpoint_id_counter".encode()
        )
        counter = EtcdCheckpointIDCounter(client, counter_key, fence)
        assert await counter.get_and_increment() == 1

        await other.delete(key)
        await other.put(counter_key, b"41")  # the new leader's data

        assert fence.current() is not None, "locally the writer still believes it leads"
        with pytest.raises(FencingError, match="etcd refused"):
            await counter.get_and_increment()
        with pytest.raises(FencingError, match="etcd refused"):
            await counter.set_count(7)
        assert fenced_out, "the driver is told at once"
        assert await counter.get() == 41
        # a re-created key with another create revision does not revive the old leadership
        await other.txn([], [Put(key, b"{}", lease.lease_id)])
        with pytest.raises(FencingError, match="etcd refused"):
            await counter.set_count(8)
        assert await counter.get() == 41
    finally:
        await lease.revoke()


async def test_retriever_follows_leader_changes(etcd_backend: EtcdBackend) -> None:
    a, b, reader = [await etcd_backend.new_services() for _ in range(3)]
    listener = RecordingRetrievalListener()
    retriever = reader.get_dispatcher_leader_retriever()
    await retriever.start(listener)
    await listener.wait_for_no_leader()
    election_a, contender_a = await _contend(a, "a")
    session_a = await contender_a.wait_for_leadership()
    await election_a.confirm_leadership(session_a, "http://a")
    await listener.wait_for_leader("http://a", session_a)
    election_b, contender_b = await _contend(b, "b")
    await election_a.close()
    session_b = await contender_b.wait_for_leadership()
    await election_b.confirm_leadership(session_b, "http://b")
    await listener.wait_for_leader("http://b", session_b)
    await election_b.close()
    await listener.wait_for_no_leader()
    await retriever.stop()


class _StaleWatchClient(EtcdClient):
    """Starts the first watch on a leader information key at revision 1, which the test compacted away."""

    stale_watches = 0

    async def watch(
        self,
        key: bytes,
        *,
        prefix: bool = False,
        start_revision: int | None = None,
        only: Literal["PUT", "DELETE"] | None = None,
    ) -> EtcdWatch:
        if key.endswith(b"/connection_info") and _StaleWatchClient.stale_watches == 0:
            _StaleWatchClient.stale_watches += 1
            start_revision = 1
        return await super().watch(key, prefix=prefix, start_revision=start_revision, only=only)


class _StaleWatchClientFactory(EtcdClientFactory):
    def create_client(self, settings: EtcdSettings) -> EtcdClient:
        return _StaleWatchClient(settings)


async def test_retriever_recovers_from_a_compacted_watch(etcd_backend: EtcdBackend) -> None:
    leader = await etcd_backend.new_services()
    client = await etcd_backend.new_client()
    election, contender = await _contend(leader, "leader")
    session_id = await contender.wait_for_leadership()
    await election.confirm_leadership(session_id, "http://first")
    _, revision = await client.get(b"/")
    await client.compact(revision)

    # the seam for tests: a client factory, no monkeypatching
    _StaleWatchClient.stale_watches = 0
    reader_backend = EtcdBackend(
        etcd_backend.endpoints,
        etcd_backend.storage_dir,
        cluster_id=etcd_backend.cluster_id,
        client_factory=_StaleWatchClientFactory(),
    )
    try:
        reader = await reader_backend.new_services()
        listener = RecordingRetrievalListener()
        retriever = reader.get_dispatcher_leader_retriever()
        await retriever.start(listener)
        await listener.wait_for_leader("http://first", session_id)
        await eventually(lambda: _StaleWatchClient.stale_watches == 1, "the stale watch")
        await election.confirm_leadership(session_id, "http://second")
        await listener.wait_for_leader("http://second", session_id)
        await retriever.stop()
    finally:
        await reader_backend.close_all()
    await election.close()


async def test_watch_from_a_compacted_revision_raises(etcd_backend: EtcdBackend) -> None:
    client = await etcd_backend.new_client()
    key = f"/standby/{etcd_backend.cluster_id}/compacted".encode()
    first = await client.put(key, b"1")
    latest = await client.put(key, b"2")
    await client.compact(latest)
    watch = await client.watch(key, start_revision=first)
    with pytest.raises(EtcdCompactedError) as caught:
        async for _event in watch.events():
            pass
    assert caught.value.compacted_revision == latest
