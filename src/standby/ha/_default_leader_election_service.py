"""DefaultLeaderElectionService: one driver and one leader session per process for all components (FLIP-285).

Port of Flink's ``DefaultLeaderElectionService`` (rules 1-10 of the reference, §1.6):

* one driver per process, created lazily on the first registration and closed when the last contender leaves;
* one session id per leadership period, shared by every component of the process;
* driver events are queued on one serial event executor, so a driver callback never blocks on contender code;
* ``has_leadership`` reads the driver's live state, so it is false as soon as the backend reports the loss;
* confirmations for an old session are ignored;
* leader information changed or deleted externally is re-published (self-healing);
* backend errors go to the contenders, or to a fallback fatal handler when none is registered.
"""

from __future__ import annotations

import asyncio
import logging
from uuid import UUID

from ._errors import LeaderElectionError
from ._event_executor import EventExecutor, SerialEventExecutor
from ._leader_election import (
    FatalErrorHandler,
    LeaderContender,
    LeaderElection,
    LeaderElectionDriver,
    LeaderElectionDriverFactory,
    LeaderElectionDriverListener,
    LeaderElectionService,
    LoggingFatalErrorHandler,
)
from ._leader_information import LeaderInformation, LeaderInformationRegister

_log = logging.getLogger(__name__)


class DefaultLeaderElection(LeaderElection):
    """Flink's ``DefaultLeaderElection``: forwards every call to its parent service with its component id."""

    def __init__(self, parent: DefaultLeaderElectionService, component_id: str) -> None:
        self._parent = parent
        self._component_id = component_id
        self._started = False

    @property
    def component_id(self) -> str:
        return self._component_id

    async def start_leader_election(self, contender: LeaderContender) -> None:
        if self._started:
            raise RuntimeError(f"The leader election of '{self._component_id}' was already started")
        self._started = True
        await self._parent.register(self._component_id, contender)

    async def confirm_leadership(self, session_id: UUID, address: str) -> None:
        await self._parent.confirm_leadership(self._component_id, session_id, address)

    async def has_leadership(self, session_id: UUID) -> bool:
        return await self._parent.has_leadership(self._component_id, session_id)

    async def close(self) -> None:
        await self._parent.remove(self._component_id)

    def __repr__(self) -> str:
        return f"DefaultLeaderElection(component_id={self._component_id!r})"


class DefaultLeaderElectionService(LeaderElectionService, LeaderElectionDriverListener):
    """The heart of leader election: a registry of contenders keyed by component id over one driver."""

    def __init__(
        self,
        driver_factory: LeaderElectionDriverFactory,
        fallback_error_handler: FatalErrorHandler | None = None,
        event_executor: EventExecutor | None = None,
    ) -> None:
        self._driver_factory = driver_factory
        self._fallback_error_handler: FatalErrorHandler = fallback_error_handler or LoggingFatalErrorHandler()
        self._events: EventExecutor = event_executor or SerialEventExecutor(
            "DefaultLeaderElectionService-leadershipOperationExecutor"
        )
        # One lock guards all state; held across awaits on the driver so events see a consistent registry.
        self._lock = asyncio.Lock()
        self._contenders: dict[str, LeaderContender] = {}
        self._reserved_ids: set[str] = set()
        self._issued_session_id: UUID | None = None
        self._confirmed = LeaderInformationRegister.empty()
        self._running = True
        self._driver: LeaderElectionDriver | None = None

    # ------------------------------------------------------------------ LeaderElectionService

    def create_leader_election(self, component_id: str) -> LeaderElection:
        # rule 1
        if self._events.is_shut_down():
            raise RuntimeError("The DefaultLeaderElectionService was already closed and cannot be reused.")
        if component_id in self._reserved_ids:
            raise RuntimeError(f"A LeaderElection for component '{component_id}' was already created.")
        self._reserved_ids.add(component_id)
        return DefaultLeaderElection(self, component_id)

    async def close(self) -> None:
        # rule 4
        async with self._lock:
            if self._contenders:
                raise RuntimeError(
                    "The DefaultLeaderElectionService cannot be closed while contenders are registered: "
                    f"{sorted(self._contenders)}; close their LeaderElections first."
                )
            if self._driver is not None:
                raise RuntimeError(
                    "The DefaultLeaderElectionService still has a driver; close the elections first."
                )
            self._running = False
        await self._events.shutdown()

    # ------------------------------------------------------------------ ParentService

    async def register(self, component_id: str, contender: LeaderContender) -> None:
        # rule 2
        async with self._lock:
            if not self._running:
                raise RuntimeError("The DefaultLeaderElectionService is closed; cannot register a contender.")
            if component_id in self._contenders:
                raise RuntimeError(f"A contender is already registered for component '{component_id}'.")
            if self._driver is None:
                # Lazy driver creation; a grant emitted during creation is queued and sees the driver.
                self._driver = await self._driver_factory.create(self)
            self._contenders[component_id] = contender
            _log.debug("Registered contender for %s", component_id)
            if self._issued_session_id is not None:
                session_id = self._issued_session_id
                self._events.submit(lambda: self._notify_of_leadership_locked(component_id, session_id))

    async def remove(self, component_id: str) -> None:
        # rule 3
        driver_to_close: LeaderElectionDriver | None = None
        async with self._lock:
            self._reserved_ids.discard(component_id)
            contender = self._contenders.pop(component_id, None)
            if contender is None:
                return
            if self._issued_session_id is not None:
                self._confirmed = LeaderInformationRegister.clear(self._confirmed, component_id)
                contender.revoke_leadership()
                if self._driver is not None and self._driver.has_leadership():
                    await self._driver.delete_leader_information(component_id)
            if not self._contenders:
                driver_to_close, self._driver = self._driver, None
                self._issued_session_id = None
                self._confirmed = LeaderInformationRegister.empty()
        if driver_to_close is not None:
            # closed outside the lock (Flink: FLINK-20008 close/grant deadlock)
            await driver_to_close.close()

    async def confirm_leadership(self, component_id: str, session_id: UUID, address: str) -> None:
        # rule 6: run on the event executor, after every event queued before
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def action() -> None:
            try:
                async with self._lock:
                    await self._confirm_locked(component_id, session_id, address)
            finally:
                if not done.done():
                    done.set_result(None)

        self._events.submit(action)
        await done

    async def _confirm_locked(self, component_id: str, session_id: UUID, address: str) -> None:
        if self._has_leadership_locked(component_id, session_id):
            if not self._running:
                return
            info = LeaderInformation.known(session_id, address)
            self._confirmed = LeaderInformationRegister.merge(self._confirmed, component_id, info)
            assert self._driver is not None
            await self._driver.publish_leader_information(component_id, info)
        elif session_id != self._issued_session_id:
            _log.debug(
                "Ignoring the confirmation of %s for %s: session %s is not the current leader session %s",
                address,
                component_id,
                session_id,
                self._issued_session_id,
            )
        else:
            _log.warning(
                "Ignoring the confirmation of %s for %s: leadership of session %s is no longer held",
                address,
                component_id,
                session_id,
            )

    async def has_leadership(self, component_id: str, session_id: UUID) -> bool:
        # rule 7
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        async def action() -> None:
            if not done.done():
                done.set_result(self._has_leadership_locked(component_id, session_id))

        if self._events.is_shut_down():
            return False
        self._events.submit(action)
        return await done

    def _has_leadership_locked(self, component_id: str, session_id: UUID) -> bool:
        if self._driver is None or component_id not in self._contenders:
            return False
        return self._driver.has_leadership() and session_id == self._issued_session_id

    # ------------------------------------------------------------------ LeaderElectionDriverListener

    def on_grant_leadership(self, session_id: UUID) -> None:
        self._events.submit(lambda: self._on_grant(session_id))

    def on_revoke_leadership(self) -> None:
        self._events.submit(self._on_revoke)

    def on_leader_information_change(self, component_id: str, info: LeaderInformation) -> None:
        self._events.submit(lambda: self._on_information_change({component_id: info}))

    def on_all_leader_information_change(self, register: LeaderInformationRegister) -> None:
        self._events.submit(
            lambda: self._on_information_change(
                {cid: register.for_component_id_or_empty(cid) for cid in self._contenders}
            )
        )

    def on_error(self, error: BaseException) -> None:
        # rule 9
        if not self._running or not self._contenders:
            self._fallback_error_handler.on_fatal_error(error)
            return
        wrapped = (
            error
            if isinstance(error, LeaderElectionError)
            else LeaderElectionError(f"Error in the leader election backend: {error}")
        )
        if wrapped is not error:
            wrapped.__cause__ = error
        for contender in list(self._contenders.values()):
            contender.handle_error(wrapped)

    # ------------------------------------------------------------------ event handlers (on the executor)

    async def _on_grant(self, session_id: UUID) -> None:
        async with self._lock:
            if not self._running or self._driver is None:
                _log.debug("Ignoring the grant of %s: no driver", session_id)
                return
            if self._issued_session_id is not None:
                _log.warning(
                    "Grant of %s while session %s is still issued; revoking the old one first",
                    session_id,
                    self._issued_session_id,
                )
                self._revoke_all_locked()
            self._issued_session_id = session_id
            for component_id in list(self._contenders):
                self._grant_to_locked(component_id, session_id)

    async def _notify_of_leadership_locked(self, component_id: str, session_id: UUID) -> None:
        async with self._lock:
            if self._running and self._driver is not None:
                self._grant_to_locked(component_id, session_id)

    def _grant_to_locked(self, component_id: str, session_id: UUID) -> None:
        contender = self._contenders.get(component_id)
        if contender is None:
            _log.debug("Not granting %s to %s: it was deregistered", session_id, component_id)
            return
        if session_id != self._issued_session_id:
            _log.debug("Not granting %s to %s: the session changed", session_id, component_id)
            return
        self._confirmed = LeaderInformationRegister.clear(self._confirmed, component_id)
        contender.grant_leadership(session_id)

    async def _on_revoke(self) -> None:
        async with self._lock:
            if not self._running or self._driver is None:
                return
            if self._issued_session_id is None:
                _log.debug("Ignoring a revoke: no leadership was issued")
                return
            self._revoke_all_locked()

    def _revoke_all_locked(self) -> None:
        self._issued_session_id = None
        for component_id, contender in list(self._contenders.items()):
            self._confirmed = LeaderInformationRegister.clear(self._confirmed, component_id)
            contender.revoke_leadership()

    async def _on_information_change(self, changes: dict[str, LeaderInformation]) -> None:
        # rule 8: self-healing against external overwrites and deletions
        async with self._lock:
            if self._driver is None or not self._running:
                return
            for component_id, external in changes.items():
                if component_id not in self._contenders:
                    continue
                confirmed = self._confirmed.for_component_id_or_empty(component_id)
                if confirmed.is_empty() or confirmed == external:
                    continue
                _log.info(
                    "Leader information of %s changed externally to %s; re-publishing %s",
                    component_id,
                    external,
                    confirmed,
                )
                await self._driver.publish_leader_information(component_id, confirmed)

    # ------------------------------------------------------------------ visible for testing

    def get_leader_session_id(self, component_id: str) -> UUID | None:
        """Rule 10: the confirmed session id of ``component_id`` (or None)."""
        return self._confirmed.for_component_id_or_empty(component_id).session_id

    @property
    def issued_session_id(self) -> UUID | None:
        return self._issued_session_id

    @property
    def has_driver(self) -> bool:
        return self._driver is not None
