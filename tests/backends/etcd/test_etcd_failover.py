"""Failover with real processes and real faults on a real etcd: SIGKILL of the leader process, a paused
(SIGSTOP) leader that resumes after it was replaced, a leader cut off by a proxy, an etcd restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from standby.backends.etcd import EtcdError, EtcdHaServices
from standby.ha import FencingError, JobID, LeaderElection
from standby.testing.pytest_fixtures import TcpProxyFactory
from standby.testing.recording import RecordingContender, RecordingRetrievalListener
from standby.testing.servers import EtcdInstallation, EtcdServer

from .conftest import EtcdBackend, eventually
from .etcd_processes import JobManagerProcess

pytestmark = [pytest.mark.etcd, pytest.mark.slow]


@pytest.fixture
async def processes() -> AsyncIterator[list[JobManagerProcess]]:
    started: list[JobManagerProcess] = []
    yield started
    for process in started:
        await process.close()


async def _start(processes: list[JobManagerProcess], config: dict[str, Any], name: str) -> JobManagerProcess:
    process = await JobManagerProcess.start(config, name)
    processes.append(process)
    await process.wait_for("started")
    return process


async def _start_pair(
    processes: list[JobManagerProcess], config: dict[str, Any], backend: EtcdBackend
) -> tuple[JobManagerProcess, JobManagerProcess]:
    """Two contenders started at once (child start-up dominates these tests); returns (leader, standby)."""
    first, second = await asyncio.gather(_start(processes, config, "a"), _start(processes, config, "b"))

    async def both_joined() -> bool:
        return await _latch_size(backend) == 2

    await eventually(both_joined, "both processes to join the election")
    await eventually(lambda: first.count("granted") + second.count("granted") == 1, "one leader")
    return (first, second) if first.count("granted") else (second, first)


async def _latch_size(backend: EtcdBackend) -> int:
    client = await backend.new_client()
    prefix = f"/standby/{backend.cluster_id}/leader/latch/".encode()
    return len((await client.get_prefix(prefix, keys_only=True)).kvs)


async def test_sigkill_of_the_leader_process_hands_over_after_the_lease_ttl(
    etcd_backend: EtcdBackend, processes: list[JobManagerProcess]
) -> None:
    config = etcd_backend.configuration().to_dict()
    a, b = await _start_pair(processes, config, etcd_backend)
    job_id = JobID.generate()
    assert (await a.command("put-plan", job=str(job_id)))["ok"]  # a holds a lock on the plan
    reader = await etcd_backend.new_services()
    listener = RecordingRetrievalListener()
    retriever = reader.get_dispatcher_leader_retriever()
    await retriever.start(listener)
    await listener.wait_for_leader(f"http://{a.name}")

    a.kill()

    await b.wait_for("granted")
    await listener.wait_for_leader(f"http://{b.name}")
    assert a.count("revoked") == 0

    # a's lock vanished with its lease: b, the new leader, can remove the plan
    async def cleaned() -> bool:
        result = await b.command("cleanup-plan", job=str(job_id))
        return bool(result["ok"])

    await eventually(cleaned, "the dead leader's lock to expire")
    await retriever.stop()


async def test_paused_leader_cannot_write_after_another_took_over(
    etcd_backend: EtcdBackend, processes: list[JobManagerProcess]
) -> None:
    config = etcd_backend.configuration().to_dict()
    job = str(JobID.generate())
    a, b = await _start_pair(processes, config, etcd_backend)
    assert (await a.command("increment", job=job))["value"] == 1

    a.pause()  # SIGSTOP: no keep-alives, etcd expires a's lease, b takes over
    await b.wait_for("granted")
    assert (await b.command("set", job=job, value=1000))["ok"]
    a.resume()  # SIGCONT: a still has the old leadership in memory until it notices

    result = await a.command("increment", job=job)
    assert result["ok"] is False and result["error"] == FencingError.__name__, result
    assert (await a.command("set", job=job, value=5))["error"] == FencingError.__name__
    await a.wait_for("revoked")
    # the new leader's data is intact and it keeps writing
    assert (await b.command("increment", job=job))["value"] == 1000
    assert (await b.command("get", job=job))["value"] == 1001


async def test_graceful_exit_hands_over_without_waiting_for_the_ttl(
    etcd_backend: EtcdBackend, processes: list[JobManagerProcess]
) -> None:
    # a long TTL: only the revoked lease can explain a quick hand-over
    config = etcd_backend.configuration(**{"high-availability.etcd.lease-ttl": "60 s"}).to_dict()
    a, b = await _start_pair(processes, config, etcd_backend)
    await a.exit_gracefully()
    await a.wait_for("closed")
    await b.wait_for("granted", timeout=20.0)


async def _lead(services: EtcdHaServices, name: str) -> tuple[LeaderElection, RecordingContender]:
    election = services.get_dispatcher_leader_election()
    contender = RecordingContender(name)
    await election.start_leader_election(contender)
    return election, contender


async def test_leader_cut_off_by_the_network_loses_leadership_and_is_fenced(
    etcd_server: EtcdServer, tcp_proxy: TcpProxyFactory, tmp_path: Path
) -> None:
    proxy = tcp_proxy(etcd_server.host, etcd_server.port)
    direct = EtcdBackend([etcd_server.endpoint], tmp_path / "ha")
    via_proxy = EtcdBackend([proxy.endpoint], tmp_path / "ha", cluster_id=direct.cluster_id)
    try:
        a = await via_proxy.new_services()
        b = await direct.new_services()
        election_a, contender_a = await _lead(a, "a")
        session_a = await contender_a.wait_for_leadership()
        await election_a.confirm_leadership(session_a, "http://a")
        election_b, contender_b = await _lead(b, "b")
        job_id = JobID.generate()
        counter_a = await a.get_checkpoint_recovery_factory().create_checkpoint_id_counter(job_id)
        counter_b = await b.get_checkpoint_recovery_factory().create_checkpoint_id_counter(job_id)
        assert await counter_a.get_and_increment() == 1

        proxy.stall()  # a partition: a's keep-alives hang, etcd expires its lease
        await contender_a.wait_for_revocation()
        await contender_b.wait_for_leadership()
        await counter_b.set_count(100)
        with pytest.raises(FencingError):
            await counter_a.get_and_increment()

        proxy.resume()
        # a re-joins as a follower and still cannot write; b's data is intact
        driver_a = a.election_driver
        driver_b = b.election_driver
        assert driver_a is not None and driver_b is not None
        await eventually(lambda: driver_a.predecessor == driver_b.election_key, "a to re-join behind b")
        with pytest.raises(FencingError):
            await counter_a.set_count(1)
        assert await counter_a.get() == 100
        assert not contender_a.is_leader
        await election_a.close()
        await election_b.close()
    finally:
        await via_proxy.close_all()
        await direct.close_all()


async def test_retriever_reconnects_and_reads_again(
    etcd_server: EtcdServer, tcp_proxy: TcpProxyFactory, tmp_path: Path
) -> None:
    proxy = tcp_proxy(etcd_server.host, etcd_server.port)
    direct = EtcdBackend([etcd_server.endpoint], tmp_path / "ha")
    via_proxy = EtcdBackend([proxy.endpoint], tmp_path / "ha", cluster_id=direct.cluster_id)
    try:
        leader = await direct.new_services()
        reader = await via_proxy.new_services()
        election, contender = await _lead(leader, "leader")
        session_id = await contender.wait_for_leadership()
        await election.confirm_leadership(session_id, "http://first")
        listener = RecordingRetrievalListener()
        retriever = reader.get_dispatcher_leader_retriever()
        await retriever.start(listener)
        await listener.wait_for_leader("http://first", session_id)

        proxy.drop()  # every connection reset: the retriever no longer knows the leader
        await listener.wait_for_no_leader()
        await election.confirm_leadership(session_id, "http://second")  # missed while cut off
        proxy.resume()
        await listener.wait_for_leader("http://second", session_id)
        await retriever.stop()
        await election.close()
    finally:
        await via_proxy.close_all()
        await direct.close_all()


async def test_leadership_recovers_after_an_etcd_restart(
    etcd_installation: EtcdInstallation, tmp_path: Path
) -> None:
    with EtcdServer(installation=etcd_installation, base_dir=tmp_path / "etcd") as server:
        backend = EtcdBackend([server.endpoint], tmp_path / "ha")
        try:
            a, b, reader = [await backend.new_services() for _ in range(3)]
            contenders: list[RecordingContender] = []
            elections: list[LeaderElection] = []
            for services, name in ((a, "a"), (b, "b")):
                election, contender = await _lead(services, name)
                elections.append(election)
                contenders.append(contender)
            listener = RecordingRetrievalListener()
            retriever = reader.get_dispatcher_leader_retriever()
            await retriever.start(listener)

            async def confirm_current() -> None:
                for election, contender in zip(elections, contenders, strict=True):
                    if contender.session_id is not None:
                        await election.confirm_leadership(contender.session_id, f"http://{contender.name}")

            await eventually(lambda: any(c.is_leader for c in contenders), "a leader")
            await confirm_current()
            await listener.wait_for_leader()

            server.kill()  # crash etcd, then bring it back with its data
            server.start()

            job_id = JobID.generate()
            written: list[int] = []

            async def one_working_leader() -> bool:
                # right after the restart leadership may still change once (a lease that ran out meanwhile)
                leaders = [i for i, c in enumerate(contenders) if c.is_leader]
                assert len(leaders) <= 1, "never two leaders at once"
                if not leaders:
                    return False
                await confirm_current()
                leader = contenders[leaders[0]]
                if listener.address != f"http://{leader.name}" or listener.session_id != leader.session_id:
                    return False
                counter = (
                    await (a, b)[leaders[0]]
                    .get_checkpoint_recovery_factory()
                    .create_checkpoint_id_counter(job_id)
                )
                try:
                    written.append(await counter.get_and_increment())
                except (FencingError, EtcdError):
                    return False  # not (or no longer) the leader, or etcd not reachable yet
                return True

            await eventually(
                one_working_leader, "one leader, known to the retriever and writing, after the restart"
            )
            assert len(written) == 1 and written[0] >= 1
            await retriever.stop()
            for election in elections:
                await election.close()
        finally:
            await backend.close_all()
