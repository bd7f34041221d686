"""Leader election + retrieval contract suite, run against every backend (Patroni-style acceptance tests).

A backend's test module subclasses :class:`LeaderElectionContract` and provides an ``ha_backend`` fixture::

    class TestZooKeeperLeaderElection(LeaderElectionContract):
        @pytest.fixture
        async def ha_backend(self, zookeeper_server, tmp_path):
            backend = MyBackend(...)      # implements HaBackend
            yield backend
            await backend.close_all()

Each ``new_services()`` call stands for one JobManager process (its own client and driver). The suite closes the
services it creates. Scenarios follow Flink's ``LeaderElectionTest`` (ZooKeeper/Embedded/Standalone parameterised),
``ZooKeeperLeaderElectionTest.testZooKeeperReelection`` and ``testZooKeeperLeaderElectionRetrieval``.
"""

from __future__ import annotations

import uuid
from typing import Protocol

import pytest

from standby.ha import HighAvailabilityServices, HighAvailabilityServicesShutDownError, JobID

from ._recording import RecordingContender, RecordingRetrievalListener


class HaBackend(Protocol):
    """A backend under test."""

    #: several processes contend and a standby takes over (False for standalone)
    supports_failover: bool
    #: retrievers see the address the leader confirmed (False for standalone: fixed addresses)
    publishes_confirmed_address: bool
    # Optional attribute ``shares_session_across_components`` (default True): one leader session per process for
    # all components (FLIP-285). Flink's embedded services elect each component separately (False).

    async def new_services(self) -> HighAvailabilityServices: ...


class LeaderElectionContract:
    """Backend-neutral scenarios of leader election and retrieval."""

    async def _services(
        self, backend: HaBackend, created: list[HighAvailabilityServices]
    ) -> HighAvailabilityServices:
        services = await backend.new_services()
        created.append(services)
        return services

    @pytest.fixture
    async def created_services(self) -> object:
        created: list[HighAvailabilityServices] = []
        yield created
        for services in reversed(created):
            try:
                await services.close()
            except Exception:  # pragma: no cover - best effort teardown
                pass

    # -- Flink LeaderElectionTest.testHasLeadership
    async def test_has_leadership(
        self, ha_backend: HaBackend, created_services: list[HighAvailabilityServices]
    ) -> None:
        services = await self._services(ha_backend, created_services)
        election = services.get_dispatcher_leader_election()
        contender = RecordingContender()
        assert not await election.has_leadership(uuid.uuid4())
        await election.start_leader_election(contender)
        session_id = await contender.wait_for_leadership()
        assert await election.has_leadership(session_id)
        assert not await election.has_leadership(uuid.uuid4())
        await election.confirm_leadership(session_id, "http://127.0.0.1:1/dispatcher")
        assert await election.has_leadership(session_id)
        await election.close()
        assert not await election.has_leadership(session_id)
        assert contender.events[-1].kind == "revoke"

    async def test_confirmed_leader_is_retrieved(
        self, ha_backend: HaBackend, created_services: list[HighAvailabilityServices]
    ) -> None:
        services = await self._services(ha_backend, created_services)
        election = services.get_resource_manager_leader_election()
        contender = RecordingContender()
        await election.start_leader_election(contender)
        session_id = await contender.wait_for_leadership()
        address = "http://127.0.0.1:6123/rpc/resourcemanager"
        await election.confirm_leadership(session_id, address)

        reader = await self._services(ha_backend, created_services)
        retriever = reader.get_resource_manager_leader_retriever()
        listener = RecordingRetrievalListener()
        await retriever.start(listener)
        try:
            found_address, found_session = await listener.wait_for_leader()
            if ha_backend.publishes_confirmed_address:
                assert (found_address, found_session) == (address, session_id)
            with pytest.raises(RuntimeError):
                await retriever.start(RecordingRetrievalListener())
        finally:
            await retriever.stop()
            await election.close()

    async def test_components_of_one_process_share_one_session(
        self, ha_backend: HaBackend, created_services: list[HighAvailabilityServices]
    ) -> None:
        services = await self._services(ha_backend, created_services)
        job_id = JobID.generate()
        elections = [
            services.get_dispatcher_leader_election(),
            services.get_resource_manager_leader_election(),
            services.get_cluster_rest_endpoint_leader_election(),
            services.get_job_manager_leader_election(job_id),
        ]
        contenders = [RecordingContender(f"c{i}") for i in range(len(elections))]
        for election, contender in zip(elections, contenders, strict=True):
            await election.start_leader_election(contender)
        sessions = {await c.wait_for_leadership() for c in contenders}
        if ha_backend.supports_failover and getattr(ha_backend, "shares_session_across_components", True):
            assert len(sessions) == 1, "all components of one process share one leader session id (FLIP-285)"
        for election in elections:
            await election.close()

    async def test_stale_confirmation_is_not_published(
        self, ha_backend: HaBackend, created_services: list[HighAvailabilityServices]
    ) -> None:
        if not ha_backend.publishes_confirmed_address:
            pytest.skip("this backend publishes fixed addresses")
        services = await self._services(ha_backend, created_services)
        election = services.get_dispatcher_leader_election()
        contender = RecordingContender()
        await election.start_leader_election(contender)
        session_id = await contender.wait_for_leadership()
        await election.confirm_leadership(uuid.uuid4(), "http://stale")
        await election.confirm_leadership(session_id, "http://current")
        retriever = (await self._services(ha_backend, created_services)).get_dispatcher_leader_retriever()
        listener = RecordingRetrievalListener()
        await retriever.start(listener)
        try:
            await listener.wait_for_leader("http://current", session_id)
            assert all(a != "http://stale" for a, _ in listener.notifications)
        finally:
            await retriever.stop()
            await election.close()

    async def test_one_leader_and_hand_over_on_close(
        self, ha_backend: HaBackend, created_services: list[HighAvailabilityServices]
    ) -> None:
        if not ha_backend.supports_failover:
            pytest.skip("no failover in this backend")
        processes = [await self._services(ha_backend, created_services) for _ in range(3)]
        elections = [p.get_dispatcher_leader_election() for p in processes]
        contenders = [RecordingContender(f"jm{i}") for i in range(3)]
        for election, contender in zip(elections, contenders, strict=True):
            await election.start_leader_election(contender)
        first = await _wait_for_single_leader(contenders)
        first_session = contenders[first].session_id
        assert first_session is not None
        await elections[first].confirm_leadership(first_session, f"http://jm{first}")

        watcher = (await self._services(ha_backend, created_services)).get_dispatcher_leader_retriever()
        listener = RecordingRetrievalListener()
        await watcher.start(listener)
        try:
            await listener.wait_for_leader(f"http://jm{first}", first_session)
            await elections[first].close()
            remaining = [c for i, c in enumerate(contenders) if i != first]
            second_index = await _wait_for_single_leader(remaining)
            second = remaining[second_index]
            assert second.session_id is not None and second.session_id != first_session
            second_election = elections[contenders.index(second)]
            await second_election.confirm_leadership(second.session_id, f"http://{second.name}")
            await listener.wait_for_leader(f"http://{second.name}", second.session_id)
            assert sum(1 for c in contenders if c.is_leader) == 1
        finally:
            await watcher.stop()
            for i, election in enumerate(elections):
                if i != first:
                    await election.close()

    async def test_reelection_every_contender_leads_once(
        self, ha_backend: HaBackend, created_services: list[HighAvailabilityServices]
    ) -> None:
        """Flink's testZooKeeperReelection: close the leader repeatedly; each contender becomes leader once and
        the retriever always names the current leader's session."""
        if not ha_backend.supports_failover:
            pytest.skip("no failover in this backend")
        count = 4
        processes = [await self._services(ha_backend, created_services) for _ in range(count)]
        elections = [p.get_dispatcher_leader_election() for p in processes]
        contenders = [RecordingContender(f"jm{i}") for i in range(count)]
        for election, contender in zip(elections, contenders, strict=True):
            await election.start_leader_election(contender)
        watcher = (await self._services(ha_backend, created_services)).get_dispatcher_leader_retriever()
        listener = RecordingRetrievalListener()
        await watcher.start(listener)
        active = list(range(count))
        leaders: list[int] = []
        try:
            while active:
                index = active[await _wait_for_single_leader([contenders[i] for i in active])]
                session_id = contenders[index].session_id
                assert session_id is not None
                await elections[index].confirm_leadership(session_id, f"http://jm{index}")
                await listener.wait_for_leader(f"http://jm{index}", session_id)
                leaders.append(index)
                await elections[index].close()
                active.remove(index)
            assert sorted(leaders) == list(range(count))
            for contender in contenders:
                assert len(contender.grants) == 1
        finally:
            await watcher.stop()
            for i in active:
                await elections[i].close()

    async def test_getters_fail_after_close(
        self, ha_backend: HaBackend, created_services: list[HighAvailabilityServices]
    ) -> None:
        services = await ha_backend.new_services()
        await services.close()
        with pytest.raises(HighAvailabilityServicesShutDownError):
            services.get_dispatcher_leader_election()
        with pytest.raises(HighAvailabilityServicesShutDownError):
            services.get_dispatcher_leader_retriever()
        with pytest.raises(HighAvailabilityServicesShutDownError):
            services.get_job_result_store()


async def _wait_for_single_leader(contenders: list[RecordingContender], timeout: float = 30.0) -> int:
    """Index of the one contender holding leadership; fails if two lead at once."""
    import asyncio

    async def poll() -> int:
        while True:
            leaders = [i for i, c in enumerate(contenders) if c.is_leader]
            assert len(leaders) <= 1, f"more than one leader at once: {[contenders[i].name for i in leaders]}"
            if leaders:
                return leaders[0]
            await asyncio.sleep(0.01)  # polling with a deadline (bounded by wait_for below)

    try:
        return await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"no leader among {[c.name for c in contenders]} within {timeout} s") from None
