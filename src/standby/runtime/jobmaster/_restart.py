"""Restart strategies of a job after a failure (Flink's ``RestartBackoffTimeStrategy`` family)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from .._config import RestartStrategySettings


class RestartStrategy:
    """Decides whether a failed job restarts and after which delay (``restart-strategy.*``)."""

    def __init__(
        self, settings: RestartStrategySettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._s = settings
        self._clock = clock
        self._failures = 0
        self._backoff = settings.delay_s
        self._last_failure: float | None = None

    @property
    def description(self) -> str:
        s = self._s
        if s.kind == "fixed-delay":
            return f"fixed-delay (attempts {s.attempts}, delay {s.delay_s} s)"
        if s.kind == "exponential-delay":
            return f"exponential-delay (initial {s.delay_s} s, max {s.max_delay_s} s)"
        return "none"

    def next_delay(self) -> float | None:
        """Record a failure; the delay before the restart, or None if the job must fail."""
        now = self._clock()
        s = self._s
        if s.kind == "none":
            return None
        if s.kind == "fixed-delay":
            self._failures += 1
            return s.delay_s if self._failures <= s.attempts else None
        # exponential-delay: back off, reset after a quiet period
        if self._last_failure is not None and now - self._last_failure > s.reset_threshold_s:
            self._backoff = s.delay_s
            self._failures = 0
        self._last_failure = now
        self._failures += 1
        if self._failures > s.attempts:
            return None
        delay = self._backoff
        self._backoff = min(s.max_delay_s, max(self._backoff, 0.001) * s.multiplier)
        if s.jitter > 0:
            delay += delay * s.jitter * (random.random() * 2 - 1)
        return max(0.0, delay)
