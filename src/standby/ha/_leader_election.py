"""Leader election interfaces (FLIP-285): contender, election, service, driver and its listener."""

from __future__ import annotations

import abc
import logging
from typing import Protocol, runtime_checkable
from uuid import UUID

from ._leader_information import LeaderInformation, LeaderInformationRegister

_log = logging.getLogger(__name__)


class LeaderContender(abc.ABC):
    """A component that wants to lead (Dispatcher, ResourceManager, JobMaster, REST endpoint).

    Callbacks run serially on the election service's event queue and must not block: start work in a task
    and return.
    """

    @abc.abstractmethod
    def grant_leadership(self, session_id: UUID) -> None:
        """Leadership was granted for the leadership period identified by ``session_id``."""

    @abc.abstractmethod
    def revoke_leadership(self) -> None:
        """Leadership was lost; stop acting as leader."""

    @abc.abstractmethod
    def handle_error(self, error: Exception) -> None:
        """The election backend failed."""


class LeaderElection(abc.ABC):
    """One component's handle on leader election (proxy between a contender and the service)."""

    @abc.abstractmethod
    async def start_leader_election(self, contender: LeaderContender) -> None:
        """Register ``contender``; it is granted leadership when this process leads."""

    @abc.abstractmethod
    async def confirm_leadership(self, session_id: UUID, address: str) -> None:
        """Publish ``address`` for the leadership period ``session_id``; ignored if that period is over."""

    @abc.abstractmethod
    async def has_leadership(self, session_id: UUID) -> bool:
        """True only while the backend reports leadership and ``session_id`` is the current period."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Deregister the contender (revoking its leadership if held)."""


class LeaderElectionService(abc.ABC):
    """Creates the ``LeaderElection`` of each component of one process."""

    @abc.abstractmethod
    def create_leader_election(self, component_id: str) -> LeaderElection:
        """A new election for ``component_id``; one per component id at a time."""


class LeaderElectionDriverListener(abc.ABC):
    """What a driver reports to its service. Called on the event loop thread; implementations never block."""

    @abc.abstractmethod
    def on_grant_leadership(self, session_id: UUID) -> None: ...

    @abc.abstractmethod
    def on_revoke_leadership(self) -> None: ...

    @abc.abstractmethod
    def on_leader_information_change(self, component_id: str, info: LeaderInformation) -> None:
        """The stored leader information of one component changed (possibly externally)."""

    @abc.abstractmethod
    def on_all_leader_information_change(self, register: LeaderInformationRegister) -> None:
        """The stored leader information of all components, as now seen in the backend."""

    @abc.abstractmethod
    def on_error(self, error: BaseException) -> None: ...


class LeaderElectionDriver(abc.ABC):
    """The backend of leader election: one per process, shared by all components.

    ``has_leadership`` is answered locally (no round trip) so that it turns false as soon as the backend
    reports the loss, before the revoke event is processed.
    """

    @abc.abstractmethod
    def has_leadership(self) -> bool: ...

    @abc.abstractmethod
    async def publish_leader_information(self, component_id: str, info: LeaderInformation) -> None:
        """Write ``info`` for ``component_id``; a no-op when not leader. Errors go to ``listener.on_error``."""

    @abc.abstractmethod
    async def delete_leader_information(self, component_id: str) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None:
        """Leave the election; a graceful close hands leadership over at once where the backend allows."""


class LeaderElectionDriverFactory(abc.ABC):
    @abc.abstractmethod
    async def create(self, listener: LeaderElectionDriverListener) -> LeaderElectionDriver: ...


@runtime_checkable
class FatalErrorHandler(Protocol):
    """Receives errors nobody else can handle (Flink's ``FatalErrorHandler``)."""

    def on_fatal_error(self, error: BaseException) -> None: ...


class LoggingFatalErrorHandler:
    """Default fallback handler: logs (as Flink's default fallback of DefaultLeaderElectionService does)."""

    def on_fatal_error(self, error: BaseException) -> None:
        _log.error("Fatal error in the leader election service: %s", error, exc_info=error)
