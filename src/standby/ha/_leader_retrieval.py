"""Leader retrieval: interfaces, and DefaultLeaderRetrievalService (start once, dedup, errors forwarded)."""

from __future__ import annotations

import abc
import logging
from uuid import UUID

from ._errors import LeaderRetrievalError
from ._leader_election import FatalErrorHandler
from ._leader_information import LeaderInformation

_log = logging.getLogger(__name__)


class LeaderRetrievalListener(abc.ABC):
    """Told about the current leader of one component; ``(None, None)`` means no leader is known."""

    @abc.abstractmethod
    def notify_leader_address(self, address: str | None, session_id: UUID | None) -> None: ...

    @abc.abstractmethod
    def handle_error(self, error: Exception) -> None: ...


class LeaderRetrievalService(abc.ABC):
    """Finds the leader of one component and tells a listener about every change."""

    @abc.abstractmethod
    async def start(self, listener: LeaderRetrievalListener) -> None:
        """Start notifying ``listener``; may be called only once."""

    @abc.abstractmethod
    async def stop(self) -> None: ...


class LeaderRetrievalEventHandler(abc.ABC):
    """What a retrieval driver reports to its service."""

    @abc.abstractmethod
    def notify_leader_address(self, info: LeaderInformation) -> None: ...


class LeaderRetrievalDriver(abc.ABC):
    """The backend side of leader retrieval (a watch on the stored leader information)."""

    @abc.abstractmethod
    async def close(self) -> None: ...


class LeaderRetrievalDriverFactory(abc.ABC):
    @abc.abstractmethod
    async def create(
        self, handler: LeaderRetrievalEventHandler, fatal_error_handler: FatalErrorHandler
    ) -> LeaderRetrievalDriver: ...


class DefaultLeaderRetrievalService(LeaderRetrievalService, LeaderRetrievalEventHandler):
    """Flink's ``DefaultLeaderRetrievalService``: one driver, deduplicated notifications, wrapped errors."""

    def __init__(self, driver_factory: LeaderRetrievalDriverFactory) -> None:
        self._driver_factory = driver_factory
        self._listener: LeaderRetrievalListener | None = None
        self._driver: LeaderRetrievalDriver | None = None
        self._last: LeaderInformation | None = None
        self._running = False

    async def start(self, listener: LeaderRetrievalListener) -> None:
        if self._listener is not None:
            raise RuntimeError("DefaultLeaderRetrievalService can only be started once.")
        self._listener = listener
        self._running = True
        self._driver = await self._driver_factory.create(self, _ForwardingFatalErrorHandler(self))

    async def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        driver, self._driver = self._driver, None
        if driver is not None:
            await driver.close()

    def notify_leader_address(self, info: LeaderInformation) -> None:
        if not self._running or self._listener is None:
            _log.debug("Ignoring leader information %s: retrieval service not running", info)
            return
        if info == self._last:
            return
        self._last = info
        self._listener.notify_leader_address(info.address, info.session_id)

    def _on_fatal_error(self, error: BaseException) -> None:
        if not self._running or self._listener is None:
            _log.debug("Ignoring retrieval error after stop: %s", error)
            return
        wrapped = LeaderRetrievalError(f"Error in the leader retrieval backend: {error}")
        wrapped.__cause__ = error
        self._listener.handle_error(wrapped)


class _ForwardingFatalErrorHandler:
    def __init__(self, service: DefaultLeaderRetrievalService) -> None:
        self._service = service

    def on_fatal_error(self, error: BaseException) -> None:
        self._service._on_fatal_error(error)
