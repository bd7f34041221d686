"""Flink's DefaultLeaderElectionServiceTest (FLIP-285 version), ported to asyncio.

Events from the testing driver go through a ``ManualEventExecutor`` where a test needs to control when they are
processed, and through the default serial executor elsewhere.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from standby.ha import (
    DefaultLeaderElectionService,
    LeaderElectionError,
    LeaderInformation,
    LeaderInformationRegister,
    ManualEventExecutor,
)
from standby.testing.drivers import TestingLeaderElectionDriverFactory
from standby.testing.recording import RecordingContender

C0, C1 = "component_id_0", "component_id_1"


class RecordingFatalErrorHandler:
    def __init__(self) -> None:
        self.errors: list[BaseException] = []

    def on_fatal_error(self, error: BaseException) -> None:
        self.errors.append(error)


@pytest.fixture
def factory() -> TestingLeaderElectionDriverFactory:
    return TestingLeaderElectionDriverFactory()


@pytest.fixture
def executor() -> ManualEventExecutor:
    return ManualEventExecutor()


@pytest.fixture
def fatal() -> RecordingFatalErrorHandler:
    return RecordingFatalErrorHandler()


@pytest.fixture
def service(
    factory: TestingLeaderElectionDriverFactory,
    executor: ManualEventExecutor,
    fatal: RecordingFatalErrorHandler,
) -> DefaultLeaderElectionService:
    return DefaultLeaderElectionService(factory, fatal, executor)


async def _run(
    coro_future: asyncio.Future[object] | asyncio.Task[object], executor: ManualEventExecutor
) -> object:
    """Complete an operation that was queued on the manual executor."""
    await asyncio.sleep(0)  # let the task submit its action
    await executor.run_pending()
    return await coro_future


async def confirm(
    service_election: object, executor: ManualEventExecutor, session_id: uuid.UUID, address: str
) -> None:
    from standby.ha import LeaderElection

    assert isinstance(service_election, LeaderElection)
    task = asyncio.ensure_future(service_election.confirm_leadership(session_id, address))
    await _run(task, executor)


async def has_leadership(election: object, executor: ManualEventExecutor, session_id: uuid.UUID) -> bool:
    from standby.ha import LeaderElection

    assert isinstance(election, LeaderElection)
    task = asyncio.ensure_future(election.has_leadership(session_id))
    result = await _run(task, executor)
    assert isinstance(result, bool)
    return result


async def test_on_grant_and_revoke_leadership(
    service: DefaultLeaderElectionService,
    factory: TestingLeaderElectionDriverFactory,
    executor: ManualEventExecutor,
) -> None:
    e0, e1 = service.create_leader_election(C0), service.create_leader_election(C1)
    c0, c1 = RecordingContender("c0"), RecordingContender("c1")
    await e0.start_leader_election(c0)
    await e1.start_leader_election(c1)
    session_id = factory.driver.grant()
    await executor.run_pending()
    assert c0.session_id == session_id
    assert c1.session_id == session_id
    await confirm(e0, executor, session_id, "address0")
    await confirm(e1, executor, session_id, "address1")
    assert service.get_leader_session_id(C0) == session_id
    assert factory.storage.register.for_component_id(C0) == LeaderInformation.known(session_id, "address0")
    assert factory.storage.register.for_component_id(C1) == LeaderInformation.known(session_id, "address1")

    factory.driver.revoke()
    await executor.run_pending()
    assert c0.session_id is None
    assert c1.session_id is None
    assert service.get_leader_session_id(C0) is None
    # the backend is untouched by a revoke: stale information stays until the next leader overwrites it
    assert factory.storage.register.for_component_id(C0) == LeaderInformation.known(session_id, "address0")
    await e0.close()
    await e1.close()


async def test_error_on_component_id_reuse(service: DefaultLeaderElectionService) -> None:
    service.create_leader_election(C0)
    with pytest.raises(RuntimeError, match="already"):
        service.create_leader_election(C0)


async def test_lazy_driver_instantiation(
    service: DefaultLeaderElectionService, factory: TestingLeaderElectionDriverFactory
) -> None:
    election = service.create_leader_election(C0)
    assert factory.created_count == 0
    await election.start_leader_election(RecordingContender())
    assert factory.created_count == 1
    await election.close()


async def test_reuse_of_service_is_restricted(service: DefaultLeaderElectionService) -> None:
    await service.close()
    with pytest.raises(RuntimeError, match="cannot be reused"):
        service.create_leader_election(C0)


async def test_multiple_driver_creations(
    service: DefaultLeaderElectionService, factory: TestingLeaderElectionDriverFactory
) -> None:
    for _ in range(2):
        election = service.create_leader_election(C0)
        await election.start_leader_election(RecordingContender())
        await election.close()
    assert factory.created_count == 2
    assert factory.closed_count == 2


async def test_grant_call_while_instantiating_driver(executor: ManualEventExecutor) -> None:
    factory = TestingLeaderElectionDriverFactory(grant_on_create=True)
    service = DefaultLeaderElectionService(factory, None, executor)
    election = service.create_leader_election(C0)
    contender = RecordingContender()
    await election.start_leader_election(contender)
    await executor.run_pending()
    assert contender.session_id is not None
    await election.close()


async def test_delayed_grant_call_after_contender_registration(
    service: DefaultLeaderElectionService,
    factory: TestingLeaderElectionDriverFactory,
    executor: ManualEventExecutor,
) -> None:
    e0 = service.create_leader_election(C0)
    c0 = RecordingContender()
    await e0.start_leader_election(c0)
    session_id = factory.driver.grant()  # queued
    e1 = service.create_leader_election(C1)
    c1 = RecordingContender()
    await e1.start_leader_election(c1)
    await executor.run_pending()
    assert c0.grants == [session_id]
    assert c1.grants == [session_id]
    await e0.close()
    await e1.close()


async def test_delayed_grant_call_after_contender_being_deregistered_again(
    service: DefaultLeaderElectionService,
    factory: TestingLeaderElectionDriverFactory,
    executor: ManualEventExecutor,
) -> None:
    e0, e1 = service.create_leader_election(C0), service.create_leader_election(C1)
    c0, c1 = RecordingContender(), RecordingContender()
    await e0.start_leader_election(c0)
    await e1.start_leader_election(c1)
    factory.driver.grant()
    await e0.close()
    await executor.run_pending()
    assert c0.events == []
    assert c1.is_leader
    await e1.close()


async def test_delayed_revoke_call_after_contender_being_deregistered_again(
    service: DefaultLeaderElectionService,
    factory: TestingLeaderElectionDriverFactory,
    executor: ManualEventExecutor,
) -> None:
    e0, e1 = service.create_leader_election(C0), service.create_leader_election(C1)
    c0, c1 = RecordingContender(), RecordingContender()
    await e0.start_leader_election(c0)
    await e1.start_leader_election(c1)
    factory.driver.grant()
    await executor.run_pending()
    factory.driver.revoke()  # queued
    await e0.close()  # revokes c0 synchronously, once
    assert [e.kind for e in c0.events] == ["grant", "revoke"]
    await executor.run_pending()
    assert [e.kind for e in c0.events] == ["grant", "revoke"]
    assert [e.kind for e in c1.events] == ["grant", "revoke"]
    await e1.close()


async def test_driver_shutdown_fails_with_contender_still_registered(
    service: DefaultLeaderElectionService,
) -> None:
    election = service.create_leader_election(C0)
    await election.start_leader_election(RecordingContender())
    with pytest.raises(RuntimeError, match="contenders are registered"):
        await service.close()
    await election.close()
    await service.close()


async def test_proper_cleanup_on_close_when_holding_leadership(
    service: DefaultLeaderElectionService,
    factory: TestingLeaderElectionDriverFactory,
    executor: ManualEventExecutor,
) -> None:
    election = service.create_leader_election(C0)
    contender = RecordingContender()
    await election.start_leader_election(contender)
    session_id = factory.driver.grant()
    await executor.run_pending()
    await confirm(election, executor, session_id, "address")
    driver = factory.driver
    await election.close()
    assert contender.events[-1].kind == "revoke"
    assert service.get_leader_session_id(C0) is None
    assert not factory.storage.register.has_leader_information(C0)
    assert driver.closed
    assert not service.has_driver


async def test_single_leader_information_changed_and_corrected(
    service: DefaultLeaderElectionService,
    factory: TestingLeaderElectionDriverFactory,
    executor: ManualEventExecutor,
) -> None:
    election = service.create_leader_election(C0)
    await election.start_leader_election(RecordingContender())
    session_id = factory.driver.grant()
    await executor.run_pending()
    await confirm(election, executor, session_id, "address")
    expected = LeaderInformation.known(session_id, "address")
    # external deletion
    factory.driver.change_externally(C0, LeaderInformation.empty())
    await executor.run_pending()
    assert factory.storage.register.for_component_id(C0) == expected
    # external overwrite
    factory.driver.change_externally(C0, LeaderInformation.known(uuid.uuid4(), "other"))
    await executor.run_pending()
    assert factory.storage.register.for_component_id(C0) == expected
    await election.close()


async def test_all_leader_information_change_with_partial_correction_and_unknown_component(
    service: DefaultLeaderElectionService,
    factory: TestingLeaderElectionDriverFactory,
    executor: ManualEventExecutor,
) -> None:
    e0, e1 = service.create_leader_election(C0), service.create_leader_election(C1)
    await e0.start_leader_election(RecordingContender())
    await e1.start_leader_election(RecordingContender())
    session_id = factory.driver.grant()
    await executor.run_pending()
    await confirm(e0, executor, session_id, "address0")
    await confirm(e1, executor, session_id, "address1")
    unknown = LeaderInformation.known(uuid.uuid4(), "unknown")
    changed = LeaderInformationRegister(
        {C0: LeaderInformation.known(session_id, "address0"), "unknown_component": unknown}
    )  # C1 missing
    publishes = factory.storage.publish_count
    factory.driver.change_all_externally(changed)
    await executor.run_pending()
    assert factory.storage.publish_count == publishes + 1  # only C1 re-published
    assert factory.storage.register.for_component_id(C1) == LeaderInformation.known(session_id, "address1")
    assert factory.storage.register.for_component_id("unknown_component") == unknown
    await e0.close()
    await e1.close()


async def test_has_leadership_lifecycle(
    service: DefaultLeaderElectionService,
    factory: TestingLeaderElectionDriverFactory,
    executor: ManualEventExecutor,
) -> None:
    election = service.create_leader_election(C0)
    await election.start_leader_election(RecordingContender())
    session_id = uuid.uuid4()
    # with leadership but no grant event processed
    factory.driver.leadership = True
    assert not await has_leadership(election, executor, session_id)
    # grant processed (queued grant runs before the query)
    factory.driver.listener.on_grant_leadership(session_id)
    assert await has_leadership(election, executor, session_id)
    assert not await has_leadership(election, executor, uuid.uuid4())
    # leadership lost but revoke not processed: false at once (rule 7)
    factory.driver.lose_leadership_silently()
    assert not await has_leadership(election, executor, session_id)
    factory.driver.listener.on_revoke_leadership()
    assert not await has_leadership(election, executor, session_id)
    await election.close()
    assert not await has_leadership(election, executor, session_id)


async def test_leader_information_not_corrected_when_not_leader(
    service: DefaultLeaderElectionService,
    factory: TestingLeaderElectionDriverFactory,
    executor: ManualEventExecutor,
) -> None:
    election = service.create_leader_election(C0)
    await election.start_leader_election(RecordingContender())
    factory.driver.change_externally(C0, LeaderInformation.known(uuid.uuid4(), "someone-else"))
    await executor.run_pending()
    assert factory.storage.publish_count == 0
    await election.close()


async def test_grant_ignored_after_close_and_changes_ignored(
    service: DefaultLeaderElectionService,
    factory: TestingLeaderElectionDriverFactory,
    executor: ManualEventExecutor,
) -> None:
    election = service.create_leader_election(C0)
    contender = RecordingContender()
    await election.start_leader_election(contender)
    driver = factory.driver
    await election.close()
    driver.leadership = True
    driver.listener.on_grant_leadership(uuid.uuid4())
    driver.listener.on_leader_information_change(C0, LeaderInformation.empty())
    driver.listener.on_all_leader_information_change(LeaderInformationRegister.empty())
    await executor.run_pending()
    assert contender.events == []
    assert driver.storage.publish_count == 0


async def test_revoke_is_triggered_on_close(
    service: DefaultLeaderElectionService,
    factory: TestingLeaderElectionDriverFactory,
    executor: ManualEventExecutor,
) -> None:
    election = service.create_leader_election(C0)
    contender = RecordingContender()
    await election.start_leader_election(contender)
    factory.driver.grant()
    await executor.run_pending()
    await election.close()
    assert [e.kind for e in contender.events] == ["grant", "revoke"]


async def test_old_confirmation_while_having_new_leadership(
    service: DefaultLeaderElectionService,
    factory: TestingLeaderElectionDriverFactory,
    executor: ManualEventExecutor,
) -> None:
    election = service.create_leader_election(C0)
    await election.start_leader_election(RecordingContender())
    old = factory.driver.grant()
    await executor.run_pending()
    factory.driver.revoke()
    new = factory.driver.grant()
    await executor.run_pending()
    await confirm(election, executor, old, "old-address")
    assert factory.storage.register.for_component_id(C0) is None
    assert service.get_leader_session_id(C0) is None
    await confirm(election, executor, new, "new-address")
    assert factory.storage.register.for_component_id(C0) == LeaderInformation.known(new, "new-address")
    await election.close()


async def test_old_confirmation_while_leadership_lost(
    service: DefaultLeaderElectionService,
    factory: TestingLeaderElectionDriverFactory,
    executor: ManualEventExecutor,
) -> None:
    election = service.create_leader_election(C0)
    await election.start_leader_election(RecordingContender())
    session_id = factory.driver.grant()
    await executor.run_pending()
    factory.driver.revoke()
    await executor.run_pending()
    await confirm(election, executor, session_id, "address")
    assert factory.storage.register.has_no_leader_information()
    await election.close()


async def test_error_forwarding(
    service: DefaultLeaderElectionService,
    factory: TestingLeaderElectionDriverFactory,
    fatal: RecordingFatalErrorHandler,
) -> None:
    election = service.create_leader_election(C0)
    contender = RecordingContender()
    await election.start_leader_election(contender)
    cause = OSError("backend down")
    factory.driver.fail(cause)
    [error] = contender.errors
    assert isinstance(error, LeaderElectionError)
    assert error.__cause__ is cause
    assert fatal.errors == []
    await election.close()


async def test_error_is_sent_to_fallback_after_close(
    service: DefaultLeaderElectionService,
    factory: TestingLeaderElectionDriverFactory,
    fatal: RecordingFatalErrorHandler,
) -> None:
    election = service.create_leader_election(C0)
    contender = RecordingContender()
    await election.start_leader_election(contender)
    driver = factory.driver
    await election.close()
    cause = OSError("late")
    driver.fail(cause)
    assert contender.errors == []
    assert fatal.errors == [cause]


async def test_grant_and_revoke_do_not_block_the_driver(
    service: DefaultLeaderElectionService,
    factory: TestingLeaderElectionDriverFactory,
    executor: ManualEventExecutor,
) -> None:
    """Driver callbacks only queue work: they return without running contender code."""
    election = service.create_leader_election(C0)
    contender = RecordingContender()
    await election.start_leader_election(contender)
    factory.driver.grant()
    factory.driver.change_externally(C0, LeaderInformation.empty())
    factory.driver.revoke()
    assert contender.events == []
    assert executor.pending == 3
    await executor.run_pending()
    assert [e.kind for e in contender.events] == ["grant", "revoke"]
    await election.close()


async def test_close_and_grant_do_not_deadlock_with_default_executor() -> None:
    """FLINK-20008: close of an election concurrent with a driver-side grant."""
    factory = TestingLeaderElectionDriverFactory()
    service = DefaultLeaderElectionService(factory)
    election = service.create_leader_election(C0)
    contender = RecordingContender()
    await election.start_leader_election(contender)
    factory.driver.grant()
    await asyncio.wait_for(election.close(), 5)
    await asyncio.wait_for(service.close(), 5)
