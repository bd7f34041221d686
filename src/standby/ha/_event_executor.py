"""Serial executors for leader events: Flink's single "leadershipOperationExecutor" thread, on asyncio."""

from __future__ import annotations

import abc
import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable

_log = logging.getLogger(__name__)

EventAction = Callable[[], Awaitable[None]]


class EventExecutor(abc.ABC):
    """Runs submitted actions one after the other, in submission order, never concurrently."""

    @abc.abstractmethod
    def submit(self, action: EventAction) -> None:
        """Queue ``action``; returns at once (never blocks the caller, e.g. a backend driver)."""

    @abc.abstractmethod
    def is_shut_down(self) -> bool: ...

    @abc.abstractmethod
    async def shutdown(self) -> None:
        """Drop queued actions and stop (Flink's ``shutdownNow``)."""


class SerialEventExecutor(EventExecutor):
    """The default: one asyncio task draining a FIFO queue. Failures of an action are logged, not fatal."""

    def __init__(self, name: str = "leader-event-executor") -> None:
        self._name = name
        self._queue: collections.deque[EventAction] = collections.deque()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._shut_down = False

    def submit(self, action: EventAction) -> None:
        if self._shut_down:
            _log.debug("%s is shut down; dropping an event", self._name)
            return
        self._queue.append(action)
        if self._task is None:
            self._wakeup = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self._name)
        assert self._wakeup is not None
        self._wakeup.set()

    async def _run(self) -> None:
        assert self._wakeup is not None
        while not self._shut_down:
            while self._queue and not self._shut_down:
                action = self._queue.popleft()
                try:
                    await action()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    _log.exception("Leader event failed in %s", self._name)
            self._wakeup.clear()
            if not self._queue:
                await self._wakeup.wait()

    def is_shut_down(self) -> bool:
        return self._shut_down

    async def shutdown(self) -> None:
        self._shut_down = True
        self._queue.clear()
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass


class ManualEventExecutor(EventExecutor):
    """For tests: actions run only when ``run_pending()`` / ``run_next()`` is awaited."""

    def __init__(self) -> None:
        self._queue: collections.deque[EventAction] = collections.deque()
        self._shut_down = False

    def submit(self, action: EventAction) -> None:
        if not self._shut_down:
            self._queue.append(action)

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def run_next(self) -> None:
        action = self._queue.popleft()
        await action()

    async def run_pending(self) -> None:
        while self._queue:
            await self.run_next()

    def is_shut_down(self) -> bool:
        return self._shut_down

    async def shutdown(self) -> None:
        self._shut_down = True
        self._queue.clear()
