"""Task helpers of the etcd backend: cancelling owned tasks without swallowing our own cancellation, and backoff."""

from __future__ import annotations

import asyncio
import logging

_log = logging.getLogger(__name__)


#: how often a task that survived cancellation is cancelled again, and how long each attempt waits
_CANCEL_ATTEMPTS = 40
_CANCEL_WAIT = 0.25


async def cancel_and_wait(*tasks: asyncio.Task[object] | None) -> None:
    """Cancel ``tasks`` and wait until they are done.

    Unlike ``suppress(CancelledError): await task`` this never swallows a cancellation of the *calling* task
    (``asyncio.wait`` does not raise the tasks' own outcomes). A task that swallowed its cancellation — Python
    3.11's ``asyncio.wait_for``, used inside aetcd, loses a cancellation that races with the awaited result — is
    cancelled again, a bounded number of times.
    """
    pending = {t for t in tasks if t is not None and not t.done()}
    for _ in range(_CANCEL_ATTEMPTS):
        if not pending:
            break
        for task in pending:
            task.cancel()
        _done, pending = await asyncio.wait(pending, timeout=_CANCEL_WAIT)
    for task in pending:
        _log.warning(
            "Task %s did not stop after %d cancellations; leaving it", task.get_name(), _CANCEL_ATTEMPTS
        )
    for maybe in tasks:
        if maybe is not None and maybe.done() and not maybe.cancelled() and maybe.exception() is not None:
            _log.debug("Task %s ended with %r", maybe.get_name(), maybe.exception())


class Backoff:
    """Exponential backoff for reconnect loops: ``initial`` doubling up to ``maximum`` seconds."""

    def __init__(self, initial: float = 0.05, maximum: float = 1.0) -> None:
        self._initial = initial
        self._maximum = maximum
        self._next = initial

    def reset(self) -> None:
        self._next = self._initial

    async def wait(self) -> None:
        delay, self._next = self._next, min(self._maximum, self._next * 2)
        await asyncio.sleep(delay)
