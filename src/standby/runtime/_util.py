"""Small asyncio helpers shared by the runtime: a serial operation chain, leader tracking, owned tasks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from uuid import UUID

from standby.ha import LeaderInformation, LeaderRetrievalListener, LeaderRetrievalService

_log = logging.getLogger(__name__)

T = TypeVar("T")


async def cancel_and_wait(task: asyncio.Task[Any], timeout_s: float) -> None:
    """Cancel ``task`` and wait for it to end (bounded); its own outcome is not our business.

    A cancellation of the CALLER is propagated: ``except BaseException: pass`` around the wait swallowed it, so a
    JobMaster being stopped on revocation could keep running (found by the chaos suite).
    """
    task.cancel()
    try:
        await asyncio.wait_for(task, timeout_s)
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
    except Exception as e:  # the task's own failure, or TimeoutError
        _log.debug("Task %s ended with %s: %s", task.get_name(), type(e).__name__, e)


def now_ms() -> int:
    return int(time.time() * 1000)


class SerialExecutor:
    """Runs submitted coroutine functions one after another (Flink's sequential operation chain of a runner).

    Leader contender callbacks must not block; they submit their work here so grant and revoke are handled in
    the order they arrived and never overlap.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._queue: asyncio.Queue[tuple[Callable[[], Awaitable[Any]], asyncio.Future[Any]] | None] = (
            asyncio.Queue()
        )
        self._worker: asyncio.Task[None] | None = None
        self._closed = False

    def submit(self, action: Callable[[], Awaitable[T]]) -> asyncio.Future[T]:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        if self._closed:
            future.set_exception(RuntimeError(f"{self._name} is closed"))
            future.exception()  # mark retrieved: nobody may be waiting
            return future
        if self._worker is None:
            self._worker = asyncio.create_task(self._run(), name=f"serial-{self._name}")
        self._queue.put_nowait((action, future))
        return future

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            action, future = item
            try:
                result = await action()
            except asyncio.CancelledError:
                if not future.done():
                    future.cancel()
                raise
            except Exception as e:
                _log.exception("%s: operation failed", self._name)
                if not future.done():
                    future.set_exception(e)
                    future.exception()
            else:
                if not future.done():
                    future.set_result(result)

    async def close(self, timeout_s: float = 30.0) -> None:
        """Run what is queued, then stop; cancels the worker after ``timeout_s``."""
        if self._closed:
            return
        self._closed = True
        worker = self._worker
        if worker is None:
            return
        self._queue.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(worker), timeout_s)
        except TimeoutError:
            _log.warning("%s: pending operations did not finish in %.0f s; cancelling", self._name, timeout_s)
            worker.cancel()
            with contextlib.suppress(BaseException):
                await worker


class LeaderTracker(LeaderRetrievalListener):
    """Keeps the latest leader (address, session id) of one component and lets callers wait for one."""

    def __init__(self, name: str, retrieval: LeaderRetrievalService) -> None:
        self.name = name
        self._retrieval = retrieval
        self._info = LeaderInformation.empty()
        self._changed = asyncio.Event()
        self._listeners: list[Callable[[LeaderInformation], None]] = []
        self._started = False
        self.changes = 0
        self.error: Exception | None = None

    async def start(self) -> None:
        if not self._started:
            self._started = True
            await self._retrieval.start(self)

    async def stop(self) -> None:
        if self._started:
            self._started = False
            await self._retrieval.stop()

    def add_listener(self, listener: Callable[[LeaderInformation], None]) -> None:
        self._listeners.append(listener)

    @property
    def leader(self) -> LeaderInformation:
        return self._info

    def notify_leader_address(self, address: str | None, session_id: UUID | None) -> None:
        info = LeaderInformation(session_id, address) if address and session_id else LeaderInformation.empty()
        if info == self._info:
            return
        self._info = info
        self.changes += 1
        self._changed.set()
        self._changed = asyncio.Event()
        for listener in list(self._listeners):
            try:
                listener(info)
            except Exception:
                _log.exception("Leader listener of %s failed", self.name)

    def handle_error(self, error: Exception) -> None:
        self.error = error
        _log.warning("Leader retrieval of %s failed: %s", self.name, error)

    async def wait_for_leader(self, timeout_s: float) -> LeaderInformation:
        """The current leader, waiting up to ``timeout_s`` for one; raises TimeoutError naming the component."""
        deadline = time.monotonic() + timeout_s
        while self._info.is_empty():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"No leader of {self.name} known after {timeout_s:.1f} s")
            event = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)
        return self._info

    async def wait_for(
        self, predicate: Callable[[LeaderInformation], bool], timeout_s: float
    ) -> LeaderInformation:
        """Wait until the leader satisfies ``predicate``; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout_s
        while not predicate(self._info):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"Leader of {self.name} did not reach the expected state in {timeout_s:.1f} s"
                )
            event = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)
        return self._info


class TaskGroup:
    """Owns background tasks: they are cancelled and awaited on ``close``; failures are logged."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Awaitable[T], name: str | None = None) -> asyncio.Task[T]:
        task: asyncio.Task[T] = asyncio.ensure_future(coro)
        if name:
            task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.error(
                "%s: background task %s failed", self._name, task.get_name(), exc_info=task.exception()
            )

    async def close(self, timeout_s: float = 10.0) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout_s)

    def __len__(self) -> int:
        return len(self._tasks)
