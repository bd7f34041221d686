"""Flink's EmbeddedLeaderServiceTest / EmbeddedHaServicesTest scenarios."""

from __future__ import annotations

import uuid

import pytest

from standby.ha import (
    EmbeddedHaServicesWithLeadershipControl,
    EmbeddedLeaderService,
    HighAvailabilityServicesShutDownError,
    JobID,
    LeaderElectionError,
)
from standby.testing.recording import RecordingContender, RecordingRetrievalListener


async def test_first_contender_is_proposed_and_confirmation_reaches_listeners() -> None:
    service = EmbeddedLeaderService("dispatcher")
    e1, e2 = service.create_leader_election(), service.create_leader_election()
    c1, c2 = RecordingContender("c1"), RecordingContender("c2")
    await e1.start_leader_election(c1)
    await e2.start_leader_election(c2)
    sid = await c1.wait_for_leadership()
    assert not c2.is_leader
    listener = RecordingRetrievalListener()
    await service.create_leader_retrieval_service().start(listener)
    await e1.confirm_leadership(sid, "addr1")
    await listener.wait_for_leader("addr1", sid)
    # a listener added later gets the confirmed leader at once
    late = RecordingRetrievalListener()
    await service.create_leader_retrieval_service().start(late)
    await late.wait_for_leader("addr1", sid)


async def test_stale_confirmation_is_ignored() -> None:
    service = EmbeddedLeaderService()
    election = service.create_leader_election()
    contender = RecordingContender()
    await election.start_leader_election(contender)
    sid = await contender.wait_for_leadership()
    await election.confirm_leadership(uuid.uuid4(), "stale")
    assert service.current_leader_address is None
    assert await election.has_leadership(sid)
    assert not await election.has_leadership(uuid.uuid4())


async def test_removing_the_leader_elects_the_next_contender() -> None:
    service = EmbeddedLeaderService()
    e1, e2 = service.create_leader_election(), service.create_leader_election()
    c1, c2 = RecordingContender("c1"), RecordingContender("c2")
    await e1.start_leader_election(c1)
    await e2.start_leader_election(c2)
    sid1 = await c1.wait_for_leadership()
    await e1.confirm_leadership(sid1, "a1")
    listener = RecordingRetrievalListener()
    await service.create_leader_retrieval_service().start(listener)
    await e1.close()
    assert c1.events[-1].kind == "revoke"
    sid2 = await c2.wait_for_leadership()
    assert sid2 != sid1
    await e2.confirm_leadership(sid2, "a2")
    await listener.wait_for_leader("a2", sid2)
    assert (None, None) in listener.notifications


async def test_leadership_control_grant_and_revoke() -> None:
    services = EmbeddedHaServicesWithLeadershipControl()
    job_id = JobID.generate()
    election = services.get_job_manager_leader_election(job_id)
    contender = RecordingContender()
    await election.start_leader_election(contender)
    sid = await contender.wait_for_leadership()
    await election.confirm_leadership(sid, "jm")
    listener = RecordingRetrievalListener()
    await services.get_job_manager_leader_retriever(job_id).start(listener)
    await listener.wait_for_leader("jm", sid)
    await services.revoke_job_master_leadership(job_id)
    assert not contender.is_leader
    await listener.wait_for_no_leader()
    await services.grant_job_master_leadership(job_id)
    new_sid = await contender.wait_for_leadership()
    assert new_sid != sid
    for grant, revoke in (
        (services.grant_dispatcher_leadership, services.revoke_dispatcher_leadership),
        (services.grant_resource_manager_leadership, services.revoke_resource_manager_leadership),
    ):
        await revoke()
        await grant()
    await services.close()
    with pytest.raises(HighAvailabilityServicesShutDownError):
        services.get_dispatcher_leader_election()


async def test_fatal_error_revokes_and_forwards() -> None:
    service = EmbeddedLeaderService()
    election = service.create_leader_election()
    contender = RecordingContender()
    await election.start_leader_election(contender)
    await contender.wait_for_leadership()
    service.fatal_error(LeaderElectionError("boom"))
    assert not contender.is_leader
    assert contender.errors
    with pytest.raises(RuntimeError, match="shut down"):
        service.create_leader_election()


async def test_checkpoints_survive_simulated_failover() -> None:
    from standby.ha import CompletedCheckpoint, JobStatus

    services = EmbeddedHaServicesWithLeadershipControl()
    factory = services.get_checkpoint_recovery_factory()
    job_id = JobID.generate()

    class NoCleaner:
        async def clean_checkpoint(self, checkpoint: CompletedCheckpoint, discard: bool) -> None:
            return None

    store = await factory.create_recovered_completed_checkpoint_store(job_id, 1)
    checkpoint = CompletedCheckpoint(job_id, 1, 0, 0)
    await store.add_checkpoint_and_subsume_oldest_one(checkpoint, NoCleaner())  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="shut down"):
        await factory.create_recovered_completed_checkpoint_store(job_id, 1)
    await store.shutdown(JobStatus.SUSPENDED, NoCleaner())  # type: ignore[arg-type]
    recovered = await factory.create_recovered_completed_checkpoint_store(job_id, 1)
    assert recovered.get_latest_checkpoint() == checkpoint
