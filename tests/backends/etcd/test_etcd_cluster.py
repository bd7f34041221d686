"""The etcd backend on a real three-member etcd cluster: the leader keeps its leadership through a member crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from standby.ha import JobID
from standby.testing.recording import RecordingContender, RecordingRetrievalListener
from standby.testing.servers import EtcdCluster

from .conftest import EtcdBackend, eventually

pytestmark = [pytest.mark.etcd, pytest.mark.slow]


@pytest.mark.parametrize("victim", ["raft-leader", "first-endpoint"])
async def test_leader_survives_a_member_kill(etcd_cluster: EtcdCluster, tmp_path: Path, victim: str) -> None:
    # 3 s leases: a raft re-election (election timeout 500 ms here) must not cost the leadership
    backend = EtcdBackend([m.endpoint for m in etcd_cluster], tmp_path / "ha", lease_ttl="3 s")
    index = etcd_cluster.leader_index() if victim == "raft-leader" else 0
    assert index is not None
    try:
        a, b, reader = [await backend.new_services() for _ in range(3)]
        election_a = a.get_dispatcher_leader_election()
        contender_a = RecordingContender("a")
        await election_a.start_leader_election(contender_a)
        session_id = await contender_a.wait_for_leadership()
        await election_a.confirm_leadership(session_id, "http://a")
        election_b = b.get_dispatcher_leader_election()
        contender_b = RecordingContender("b")
        await election_b.start_leader_election(contender_b)
        driver_a, driver_b = a.election_driver, b.election_driver
        assert driver_a is not None and driver_b is not None
        await eventually(lambda: driver_b.predecessor == driver_a.election_key, "b to wait behind a")
        listener = RecordingRetrievalListener()
        retriever = reader.get_dispatcher_leader_retriever()
        await retriever.start(listener)
        await listener.wait_for_leader("http://a", session_id)

        etcd_cluster.kill_member(index)
        try:
            lease = driver_a.lease
            assert lease is not None
            # keep-alives succeed again through the remaining members (a condition, not a sleep)
            await lease.wait_keep_alives(3, timeout=30)
            assert [e.kind for e in contender_a.events] == ["grant"], "leadership was never revoked"
            assert driver_a.has_leadership() and not contender_b.is_leader
            counter = await a.get_checkpoint_recovery_factory().create_checkpoint_id_counter(JobID.generate())
            assert await counter.get_and_increment() == 1  # fenced writes go through
            await listener.wait_for_leader("http://a", session_id)
        finally:
            etcd_cluster.start_member(index)
        await retriever.stop()
        await election_a.close()
        await contender_b.wait_for_leadership()
        await election_b.close()
    finally:
        await backend.close_all()
