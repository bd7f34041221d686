"""Job cleanup after a globally terminal state (Flink's ``dispatcher/cleanup``): retried steps, checkpoint cleanup.

``DefaultResourceCleaner``: prioritized steps run one after another, then the others in parallel; every step is
retried on its own per ``cleanup-strategy.*`` until it succeeds (default: exponential delay, unlimited attempts).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from functools import partial

from standby.ha import CheckpointRecoveryFactory, CheckpointsCleaner, JobID, JobStatus

from .._config import CleanupStrategySettings

_log = logging.getLogger(__name__)

CleanupStep = Callable[[JobID], Awaitable[None]]


class CleanupRetriesExhaustedError(RuntimeError):
    """A cleanup step kept failing until the configured attempts ran out."""


@dataclass(frozen=True)
class RetryStrategy:
    """Delays between attempts: fixed or exponential (Flink's ``FixedRetryStrategy`` / ``ExponentialBackoffRetryStrategy``)."""

    attempts: int
    initial_delay_s: float
    max_delay_s: float
    exponential: bool

    @staticmethod
    def from_settings(settings: CleanupStrategySettings) -> RetryStrategy:
        if settings.kind == "none":
            return RetryStrategy(1, 0.0, 0.0, False)
        if settings.kind == "fixed-delay":
            return RetryStrategy(max(1, settings.attempts), settings.delay_s, settings.delay_s, False)
        return RetryStrategy(max(1, settings.attempts), settings.delay_s, settings.max_delay_s, True)

    @staticmethod
    def fixed(attempts: int, delay_s: float) -> RetryStrategy:
        return RetryStrategy(max(1, attempts), delay_s, delay_s, False)

    def delays(self) -> Iterator[float]:
        """The delay before each retry (``attempts - 1`` values)."""
        delay = self.initial_delay_s
        for _ in range(self.attempts - 1):
            yield delay
            if self.exponential:
                delay = min(self.max_delay_s, max(delay, 0.001) * 2)


async def retry_with_delay(
    name: str,
    operation: Callable[[], Awaitable[None]],
    strategy: RetryStrategy,
) -> None:
    """Run ``operation`` until it succeeds; wait per ``strategy`` between attempts (Flink's ``retryWithDelay``)."""
    delays = strategy.delays()
    attempt = 0
    while True:
        attempt += 1
        try:
            await operation()
            return
        except asyncio.CancelledError:
            raise
        except Exception as e:
            delay = next(delays, None)
            if delay is None:
                raise CleanupRetriesExhaustedError(
                    f"{name} failed {attempt} time(s); giving up (cleanup-strategy.*): {e}"
                ) from e
            _log.warning("%s failed (attempt %d), retrying in %.2f s: %s", name, attempt, delay, e)
            # jitter keeps many JobManagers from retrying in lock step against one store
            await asyncio.sleep(delay * (1.0 + random.random() * 0.1))


class DefaultResourceCleaner:
    """Runs the cleanup of one job: ``prioritized`` steps sequentially, then ``steps`` concurrently, each retried."""

    def __init__(
        self,
        strategy: RetryStrategy,
        steps: list[tuple[str, CleanupStep]],
        prioritized: list[tuple[str, CleanupStep]] | None = None,
    ) -> None:
        self._strategy = strategy
        self._steps = steps
        self._prioritized = prioritized or []

    async def cleanup(self, job_id: JobID) -> None:
        for name, step in self._prioritized:
            await retry_with_delay(f"Cleanup '{name}' of job {job_id}", partial(step, job_id), self._strategy)
        results = await asyncio.gather(
            *(
                retry_with_delay(f"Cleanup '{name}' of job {job_id}", partial(step, job_id), self._strategy)
                for name, step in self._steps
            ),
            return_exceptions=True,
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        for error in errors:
            if isinstance(error, asyncio.CancelledError):
                raise error
        if errors:
            raise errors[0]


async def cleanup_checkpoint_resources(
    job_id: JobID,
    status: JobStatus,
    recovery_factory: CheckpointRecoveryFactory,
    cleaner: CheckpointsCleaner,
    num_retained: int = 1,
) -> None:
    """Flink's ``CheckpointResourcesCleanupRunner``: recover the job's checkpoint store and counter, then shut them
    down with the job's globally terminal status (discards the checkpoints and deletes the counter)."""
    store = await recovery_factory.create_recovered_completed_checkpoint_store(job_id, max(1, num_retained))
    await store.shutdown(status, cleaner)
    counter = await recovery_factory.create_checkpoint_id_counter(job_id)
    # Started first: some counters (ZooKeeper's in Flink) ignore a shutdown when they were never started.
    await counter.start()
    await counter.shutdown(status)
