"""Heartbeats (Flink's ``HeartbeatManager``): detect a silent or unreachable peer and report it once.

A target is lost when nothing was heard from it for ``heartbeat.timeout``, or when ``heartbeat.rpc-failure-threshold``
heartbeat RPCs in a row failed (Flink's fast detection of a dead peer instead of waiting for the timeout).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from .._util import cancel_and_wait

_log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)


@dataclass
class _Target:
    last_heard: float
    failures: int = 0
    send: Callable[[], Awaitable[None]] | None = None


class HeartbeatManager(Generic[K]):
    """Monitors targets; for targets with a ``send`` coroutine it also sends the heartbeat every interval."""

    def __init__(
        self,
        name: str,
        interval_s: float,
        timeout_s: float,
        on_lost: Callable[[K, str], None],
        rpc_failure_threshold: int = 2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._name = name
        self._interval = interval_s
        self._timeout = timeout_s
        self._on_lost = on_lost
        self._threshold = max(1, rpc_failure_threshold)
        self._clock = clock
        self._targets: dict[K, _Target] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"heartbeat-{self._name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task, 5)
        self._targets.clear()

    def monitor(self, key: K, send: Callable[[], Awaitable[None]] | None = None) -> None:
        """Start monitoring ``key`` (counts as heard from now)."""
        self._targets[key] = _Target(self._clock(), 0, send)

    def unmonitor(self, key: K) -> None:
        self._targets.pop(key, None)

    def is_monitored(self, key: K) -> bool:
        return key in self._targets

    def received(self, key: K) -> bool:
        """A heartbeat (or any sign of life) from ``key``; False if ``key`` is not monitored."""
        target = self._targets.get(key)
        if target is None:
            return False
        target.last_heard = self._clock()
        target.failures = 0
        return True

    def failed(self, key: K, error: BaseException) -> None:
        """A heartbeat RPC to ``key`` failed."""
        target = self._targets.get(key)
        if target is None:
            return
        target.failures += 1
        if target.failures >= self._threshold:
            self._lose(key, f"{target.failures} heartbeat RPCs in a row failed, last: {error}")

    def check(self) -> None:
        now = self._clock()
        for key, target in list(self._targets.items()):
            if now - target.last_heard > self._timeout:
                self._lose(
                    key,
                    f"no heartbeat for {now - target.last_heard:.1f} s (heartbeat.timeout {self._timeout} s)",
                )

    def _lose(self, key: K, reason: str) -> None:
        if self._targets.pop(key, None) is None:
            return
        _log.info("%s: heartbeat target %s lost: %s", self._name, key, reason)
        try:
            self._on_lost(key, reason)
        except Exception:
            _log.exception("%s: handling the loss of %s failed", self._name, key)

    async def _send(self, key: K, target: _Target) -> None:
        assert target.send is not None
        try:
            await asyncio.wait_for(target.send(), timeout=max(self._interval, 1.0) * 2)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            if self._targets.get(key) is target:
                self.failed(key, e)
        else:
            if self._targets.get(key) is target:
                self.received(key)

    async def _run(self) -> None:
        while True:
            senders = [self._send(k, t) for k, t in list(self._targets.items()) if t.send is not None]
            if senders:
                await asyncio.gather(*senders)
            self.check()
            await asyncio.sleep(self._interval)
