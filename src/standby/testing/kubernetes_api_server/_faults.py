"""Fault injection for the Kubernetes API test server: latency, failing requests, pause, watch drops.

The state lives on the server's event loop. :class:`FaultInjector` is the public, thread-safe handle:
each method runs its change on that loop (directly when called from it, otherwise by hand-off with a
timeout), so a test may drive faults from the loop or from any other thread.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from ._errors import reason_for_code, status_object
from ._store import ObjectStore
from ._types import JsonObject

T = TypeVar("T")

WatchDrop = Literal["reset", "end", "expire"]
"""How :meth:`FaultInjector.drop_watches` ends open watches.

* ``"reset"``: the connection is closed mid-stream (the client sees an incomplete chunked body, as when an
  apiserver or load balancer dies);
* ``"end"``: the stream ends cleanly (as at ``timeoutSeconds``; clients re-watch from their last version);
* ``"expire"``: a ``410 Expired`` ERROR event, then a clean end (as a watch cache that fell behind).
"""


@dataclass
class FailureRule:
    """Answer the next ``remaining`` matching requests with ``code`` and a Status body."""

    code: int
    remaining: int
    method: str | None = None
    path: str | None = None
    watch: bool | None = None
    reason: str | None = None
    message: str | None = None
    retry_after_seconds: int | None = None
    _path_re: re.Pattern[str] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.code < 400 or self.code > 599:
            raise ValueError(f"an injected failure needs an HTTP error code (400-599), got {self.code}")
        if self.remaining < 1:
            raise ValueError(f"count must be >= 1, got {self.remaining}")
        self._path_re = re.compile(self.path) if self.path is not None else None

    def matches(self, method: str, path: str, watch: bool) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if self._path_re is not None and not self._path_re.search(path):
            return False
        return self.watch is None or self.watch == watch

    def status(self, method: str, path: str) -> JsonObject:
        message = self.message or f"injected fault: {self.code} for {method} {path}"
        details: JsonObject = {}
        if self.retry_after_seconds is not None:
            details["retryAfterSeconds"] = self.retry_after_seconds
        return status_object(self.code, message, self.reason or reason_for_code(self.code), details or None)

    def to_json(self) -> JsonObject:
        return {
            "code": self.code,
            "remaining": self.remaining,
            "method": self.method,
            "path": self.path,
            "watch": self.watch,
            "reason": self.reason,
            "message": self.message,
            "retry_after_seconds": self.retry_after_seconds,
        }


class FaultState:
    """The fault knobs as the request handler reads them (event-loop only; not thread-safe)."""

    def __init__(self, store: ObjectStore, *, max_pause: float) -> None:
        self.store = store
        self.latency = 0.0
        self.rules: list[FailureRule] = []
        self.max_pause = max_pause
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._auto_resume: asyncio.TimerHandle | None = None
        self.injected_failures = 0
        #: requests (and watch streams) held by a pause right now
        self.paused_requests = 0

    @property
    def paused(self) -> bool:
        return not self._resumed.is_set()

    def take_failure(self, method: str, path: str, watch: bool) -> FailureRule | None:
        """The first rule matching this request, with one use consumed (rules run out and vanish)."""
        for rule in self.rules:
            if rule.matches(method, path, watch):
                rule.remaining -= 1
                if rule.remaining == 0:
                    self.rules.remove(rule)
                self.injected_failures += 1
                return rule
        return None

    def pause(self, timeout: float) -> None:
        if timeout <= 0:
            raise ValueError(f"pause timeout must be > 0 seconds, got {timeout}")
        timeout = min(timeout, self.max_pause)
        self._resumed.clear()
        if self._auto_resume is not None:
            self._auto_resume.cancel()
        # bounded: a forgotten resume() must not hang a test run (waiters are also capped by max_pause)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not serving yet: wait_unpaused's own bound applies
        self._auto_resume = loop.call_later(timeout, self.resume)

    def resume(self) -> None:
        if self._auto_resume is not None:
            self._auto_resume.cancel()
            self._auto_resume = None
        self._resumed.set()

    async def wait_unpaused(self) -> None:
        if self._resumed.is_set():
            return
        self.paused_requests += 1
        try:
            await asyncio.wait_for(self._resumed.wait(), timeout=self.max_pause)
        except TimeoutError:
            pass
        finally:
            self.paused_requests -= 1

    def reset(self) -> None:
        self.latency = 0.0
        self.rules.clear()
        self.resume()

    def snapshot(self) -> JsonObject:
        return {
            "latency": self.latency,
            "paused": self.paused,
            "paused_requests": self.paused_requests,
            "failures": [rule.to_json() for rule in self.rules],
            "injected_failures": self.injected_failures,
            "history_limit": self.store.history_limit,
            "resource_version": self.store.resource_version,
            "oldest_resumable_version": self.store.oldest_resumable_version,
            "open_watches": self.store.open_watches,
        }


class LoopDispatcher:
    """Runs a synchronous function on the server's event loop, from that loop or any other thread."""

    def __init__(self, timeout: float = 10.0) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timeout = timeout

    def bind(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self._loop = loop

    def call(self, function: Callable[[], T]) -> T:
        loop = self._loop
        if loop is None or loop.is_closed():
            return function()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            return function()

        async def run() -> T:
            return function()

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout=self._timeout)


class FaultInjector:
    """Public fault knobs of a :class:`KubernetesApiTestServer` (``server.faults``); thread-safe."""

    def __init__(self, state: FaultState, dispatcher: LoopDispatcher) -> None:
        self._state = state
        self._call = dispatcher.call

    def set_latency(self, seconds: float) -> None:
        """Delay every API request by ``seconds`` before it is handled (0 turns it off)."""
        if seconds < 0:
            raise ValueError(f"latency must be >= 0 seconds, got {seconds}")

        def apply() -> None:
            self._state.latency = seconds

        self._call(apply)

    def fail_next(
        self,
        count: int = 1,
        *,
        code: int = 500,
        method: str | None = None,
        path: str | None = None,
        watch: bool | None = None,
        reason: str | None = None,
        message: str | None = None,
        retry_after_seconds: int | None = None,
    ) -> None:
        """Answer the next ``count`` matching API requests with HTTP ``code`` and a Status body.

        ``method`` matches the HTTP method (``"PUT"``), ``path`` is a regular expression searched in the
        URL path (``r"/configmaps/my-cm$"``), ``watch`` restricts to watch (True) or non-watch (False)
        requests. ``reason`` defaults to the apiserver's reason for ``code`` (500 InternalError,
        503 ServiceUnavailable, 429 TooManyRequests, ...). Rules are checked in the order they were added.
        """
        rule = FailureRule(code, count, method, path, watch, reason, message, retry_after_seconds)

        def apply() -> None:
            self._state.rules.append(rule)

        self._call(apply)

    def clear_failures(self) -> None:
        """Forget every pending :meth:`fail_next` rule."""
        self._call(self._state.rules.clear)

    def pause(self, timeout: float = 30.0) -> None:
        """Hold every API request (and every watch event) until :meth:`resume`, or ``timeout`` seconds.

        The bound is also capped by the server's ``max_pause``; clients see a server that stopped answering.
        """
        self._call(lambda: self._state.pause(timeout))

    def resume(self) -> None:
        """Release paused requests and watch streams."""
        self._call(self._state.resume)

    def drop_watches(self, how: WatchDrop = "reset") -> int:
        """End every open watch stream now; returns how many were open. See :data:`WatchDrop`."""
        store = self._state.store
        if how == "reset":
            return self._call(lambda: store.finish_watches("reset"))
        if how == "end":
            return self._call(lambda: store.finish_watches("end"))
        if how == "expire":
            return self._call(store.expire_watches)
        raise ValueError(f"how must be 'reset', 'end' or 'expire', got {how!r}")

    def set_history_limit(self, limit: int) -> None:
        """Keep only the last ``limit`` events; resuming a watch from anything older gets 410 Gone."""
        self._call(lambda: self._state.store.set_history_limit(limit))

    def compact_history(self) -> None:
        """Forget all retained events now: only a resume from the current resourceVersion still works."""
        self._call(self._state.store.compact)

    def reset(self) -> None:
        """No latency, no pending failures, not paused (history settings are kept)."""
        self._call(self._state.reset)

    @property
    def injected_failures(self) -> int:
        """How many requests were answered by a :meth:`fail_next` rule so far."""
        return self._call(lambda: self._state.injected_failures)

    @property
    def paused_requests(self) -> int:
        """How many requests (and watch streams) a :meth:`pause` holds right now."""
        return self._call(lambda: self._state.paused_requests)

    def snapshot(self) -> dict[str, Any]:
        """The current fault settings (as ``GET /_test/faults`` answers them)."""
        return self._call(self._state.snapshot)
