"""Restart and cleanup retry strategies, and the user-code checks of the JobManager."""

from __future__ import annotations

import pytest

from standby.config import Configuration
from standby.runtime import JobFileError, find_task_class
from standby.runtime._config import RestartStrategySettings, RuntimeSettings
from standby.runtime.cleanup import CleanupRetriesExhaustedError, RetryStrategy, retry_with_delay
from standby.runtime.jobmaster import RestartStrategy, sum_results

from ._support import COUNTER


def test_fixed_delay_restarts_the_configured_number_of_times() -> None:
    strategy = RestartStrategy(RestartStrategySettings("fixed-delay", 2, 0.5, 0.0, 1.0, 0.0, 0.0))
    assert [strategy.next_delay() for _ in range(3)] == [0.5, 0.5, None]


def test_exponential_delay_backs_off_and_resets_after_a_quiet_period() -> None:
    now = [0.0]
    strategy = RestartStrategy(
        RestartStrategySettings("exponential-delay", 100, 1.0, 3.0, 2.0, 0.0, 60.0), clock=lambda: now[0]
    )
    assert [strategy.next_delay() for _ in range(4)] == [1.0, 2.0, 3.0, 3.0]
    now[0] = 1000.0
    assert strategy.next_delay() == 1.0


def test_no_restart_strategy_fails_at_once() -> None:
    assert RestartStrategy(RestartStrategySettings("none", 0, 0, 0, 1, 0, 0)).next_delay() is None


def test_checkpointing_implies_exponential_delay_restarts() -> None:
    with_checkpoints = RuntimeSettings.from_configuration(
        Configuration({"execution.checkpointing.interval": "1 s"})
    )
    without = RuntimeSettings.from_configuration(Configuration({}))
    assert with_checkpoints.restart.kind == "exponential-delay"
    assert without.restart.kind == "none"


async def test_retry_with_delay_gives_up_after_the_attempts() -> None:
    calls = 0

    async def failing() -> None:
        nonlocal calls
        calls += 1
        raise OSError("down")

    with pytest.raises(CleanupRetriesExhaustedError, match="failed 3 time"):
        await retry_with_delay("step", failing, RetryStrategy.fixed(3, 0.0))
    assert calls == 3


def test_exponential_cleanup_delays_double_up_to_the_maximum() -> None:
    strategy = RetryStrategy(5, 1.0, 3.0, True)
    assert list(strategy.delays()) == [1.0, 2.0, 3.0, 3.0]


def test_job_file_checks() -> None:
    assert find_task_class(COUNTER, "counter.py", None) == "Counter"
    with pytest.raises(JobFileError, match="no class 'Nope'"):
        find_task_class(COUNTER, "counter.py", "Nope")
    with pytest.raises(JobFileError, match="syntax error"):
        find_task_class(b"def (", "bad.py", None)
    with pytest.raises(JobFileError, match=r"no subclass of standby\.Task"):
        find_task_class(b"x = 1", "empty.py", None)


def test_results_are_summed_per_key() -> None:
    assert sum_results([{"count": 2, "sum": 3}, {"count": 1}]) == {"count": 3, "sum": 3}
