"""Test drivers that emit grant/revoke/change/error events on demand (Flink's TestingLeaderElectionDriver)."""

from __future__ import annotations

import uuid
from uuid import UUID

from standby.ha import (
    FatalErrorHandler,
    LeaderElectionDriver,
    LeaderElectionDriverFactory,
    LeaderElectionDriverListener,
    LeaderInformation,
    LeaderInformationRegister,
    LeaderRetrievalDriver,
    LeaderRetrievalDriverFactory,
    LeaderRetrievalEventHandler,
)


class TestingLeaderElectionDriver(LeaderElectionDriver):
    """A driver whose backend is a ``LeaderInformationRegister`` in memory; tests trigger every event."""

    __test__ = False  # not a pytest test class

    def __init__(self, listener: LeaderElectionDriverListener, storage: TestingLeaderStorage) -> None:
        self.listener = listener
        self.storage = storage
        self.leadership = False
        self.closed = False

    # -- driver interface
    def has_leadership(self) -> bool:
        return self.leadership

    async def publish_leader_information(self, component_id: str, info: LeaderInformation) -> None:
        if self.leadership:
            self.storage.register = LeaderInformationRegister.merge(self.storage.register, component_id, info)
            self.storage.publish_count += 1

    async def delete_leader_information(self, component_id: str) -> None:
        if self.leadership:
            self.storage.register = LeaderInformationRegister.clear(self.storage.register, component_id)

    async def close(self) -> None:
        self.closed = True

    # -- event triggers
    def grant(self, session_id: UUID | None = None) -> UUID:
        session_id = session_id or uuid.uuid4()
        self.leadership = True
        self.listener.on_grant_leadership(session_id)
        return session_id

    def revoke(self) -> None:
        self.leadership = False
        self.listener.on_revoke_leadership()

    def lose_leadership_silently(self) -> None:
        """The backend lost leadership but the revoke event has not been sent yet."""
        self.leadership = False

    def change_externally(self, component_id: str, info: LeaderInformation) -> None:
        self.storage.register = LeaderInformationRegister.merge(self.storage.register, component_id, info)
        self.listener.on_leader_information_change(component_id, info)

    def change_all_externally(self, register: LeaderInformationRegister) -> None:
        self.storage.register = register
        self.listener.on_all_leader_information_change(register)

    def fail(self, error: BaseException) -> None:
        self.listener.on_error(error)


class TestingLeaderStorage:
    """The "backend" shared by successive testing drivers."""

    __test__ = False

    def __init__(self) -> None:
        self.register = LeaderInformationRegister.empty()
        self.publish_count = 0


class TestingLeaderElectionDriverFactory(LeaderElectionDriverFactory):
    """Creates ``TestingLeaderElectionDriver``s and remembers them; can grant on creation."""

    __test__ = False

    def __init__(self, grant_on_create: bool = False) -> None:
        self.storage = TestingLeaderStorage()
        self.drivers: list[TestingLeaderElectionDriver] = []
        self.grant_on_create = grant_on_create

    async def create(self, listener: LeaderElectionDriverListener) -> LeaderElectionDriver:
        driver = TestingLeaderElectionDriver(listener, self.storage)
        self.drivers.append(driver)
        if self.grant_on_create:
            driver.grant()
        return driver

    @property
    def driver(self) -> TestingLeaderElectionDriver:
        assert self.drivers, "no driver was created yet"
        return self.drivers[-1]

    @property
    def created_count(self) -> int:
        return len(self.drivers)

    @property
    def closed_count(self) -> int:
        return sum(1 for d in self.drivers if d.closed)


class TestingLeaderRetrievalDriver(LeaderRetrievalDriver):
    __test__ = False

    def __init__(self, handler: LeaderRetrievalEventHandler, fatal_error_handler: FatalErrorHandler) -> None:
        self.handler = handler
        self.fatal_error_handler = fatal_error_handler
        self.closed = False

    async def close(self) -> None:
        self.closed = True

    def notify(self, info: LeaderInformation) -> None:
        self.handler.notify_leader_address(info)

    def fail(self, error: BaseException) -> None:
        self.fatal_error_handler.on_fatal_error(error)


class TestingLeaderRetrievalDriverFactory(LeaderRetrievalDriverFactory):
    __test__ = False

    def __init__(self) -> None:
        self.drivers: list[TestingLeaderRetrievalDriver] = []

    async def create(
        self, handler: LeaderRetrievalEventHandler, fatal_error_handler: FatalErrorHandler
    ) -> LeaderRetrievalDriver:
        driver = TestingLeaderRetrievalDriver(handler, fatal_error_handler)
        self.drivers.append(driver)
        return driver

    @property
    def driver(self) -> TestingLeaderRetrievalDriver:
        return self.drivers[-1]
