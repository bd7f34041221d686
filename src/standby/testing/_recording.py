"""Recording contenders and listeners that tests wait on (events with timeouts, never sleeps)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from standby.ha import LeaderContender, LeaderRetrievalListener

DEFAULT_TIMEOUT = 20.0


class _Condition:
    """Wakes waiters whenever something was recorded; waiters re-check their predicate."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()

    def notify(self) -> None:
        self._changed.set()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        async def loop() -> None:
            while not predicate():
                self._changed.clear()
                if predicate():
                    return
                await self._changed.wait()

        try:
            await asyncio.wait_for(loop(), timeout)
        except TimeoutError:
            raise AssertionError(f"Timed out after {timeout} s waiting for {what}") from None


@dataclass(frozen=True)
class LeadershipEvent:
    kind: str  # "grant" | "revoke" | "error"
    session_id: UUID | None = None
    error: Exception | None = None


class RecordingContender(LeaderContender):
    """Records grants, revokes and errors; ``session_id`` is the current leadership, or None."""

    def __init__(self, name: str = "contender") -> None:
        self.name = name
        self.events: list[LeadershipEvent] = []
        self.session_id: UUID | None = None
        self._condition = _Condition()

    def grant_leadership(self, session_id: UUID) -> None:
        self.session_id = session_id
        self.events.append(LeadershipEvent("grant", session_id))
        self._condition.notify()

    def revoke_leadership(self) -> None:
        self.session_id = None
        self.events.append(LeadershipEvent("revoke"))
        self._condition.notify()

    def handle_error(self, error: Exception) -> None:
        self.events.append(LeadershipEvent("error", error=error))
        self._condition.notify()

    @property
    def is_leader(self) -> bool:
        return self.session_id is not None

    @property
    def grants(self) -> list[UUID]:
        return [e.session_id for e in self.events if e.kind == "grant" and e.session_id is not None]

    @property
    def errors(self) -> list[Exception]:
        return [e.error for e in self.events if e.kind == "error" and e.error is not None]

    async def wait_for_leadership(self, timeout: float = DEFAULT_TIMEOUT) -> UUID:
        await self._condition.wait_for(
            lambda: self.session_id is not None, timeout, f"{self.name} to be leader"
        )
        assert self.session_id is not None
        return self.session_id

    async def wait_for_revocation(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        await self._condition.wait_for(
            lambda: self.session_id is None, timeout, f"{self.name} to lose leadership"
        )

    async def wait_for_error(self, timeout: float = DEFAULT_TIMEOUT) -> Exception:
        await self._condition.wait_for(lambda: bool(self.errors), timeout, f"an error at {self.name}")
        return self.errors[0]

    async def wait_for_events(self, count: int, timeout: float = DEFAULT_TIMEOUT) -> None:
        await self._condition.wait_for(
            lambda: len(self.events) >= count, timeout, f"{count} events at {self.name}"
        )


class RecordingRetrievalListener(LeaderRetrievalListener):
    """Records every notified ``(address, session_id)`` pair and errors."""

    def __init__(self) -> None:
        self.notifications: list[tuple[str | None, UUID | None]] = []
        self.errors: list[Exception] = []
        self._condition = _Condition()

    def notify_leader_address(self, address: str | None, session_id: UUID | None) -> None:
        self.notifications.append((address, session_id))
        self._condition.notify()

    def handle_error(self, error: Exception) -> None:
        self.errors.append(error)
        self._condition.notify()

    @property
    def address(self) -> str | None:
        return self.notifications[-1][0] if self.notifications else None

    @property
    def session_id(self) -> UUID | None:
        return self.notifications[-1][1] if self.notifications else None

    async def wait_for_leader(
        self,
        address: str | None = None,
        session_id: UUID | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> tuple[str, UUID]:
        """Wait until the latest notification names a leader (matching ``address``/``session_id`` if given)."""

        def matches() -> bool:
            if not self.notifications:
                return False
            a, s = self.notifications[-1]
            return (
                a is not None
                and s is not None
                and (address is None or a == address)
                and (session_id is None or s == session_id)
            )

        await self._condition.wait_for(matches, timeout, f"leader {address or '*'} / {session_id or '*'}")
        a, s = self.notifications[-1]
        assert a is not None and s is not None
        return a, s

    async def wait_for_no_leader(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        await self._condition.wait_for(
            lambda: bool(self.notifications) and self.notifications[-1] == (None, None), timeout, "no leader"
        )

    async def wait_for_error(self, timeout: float = DEFAULT_TIMEOUT) -> Exception:
        await self._condition.wait_for(lambda: bool(self.errors), timeout, "a retrieval error")
        return self.errors[0]
