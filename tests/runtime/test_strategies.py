"""Restart and cleanup retry strategies, and the user-code checks of the JobManager."""

from __future__ import annotations

import pytest

from standby.config import Configuration, ConfigurationError
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


def test_runtime_settings_read_the_registered_options() -> None:
    defaults = RuntimeSettings.from_configuration(
        Configuration({"restart-strategy.type": "exponential-delay"})
    )
    assert defaults.restart == RestartStrategySettings(
        "exponential-delay", 2**31 - 1, 1.0, 60.0, 1.5, 0.1, 3600.0
    )
    assert (defaults.rpc_timeout_s, defaults.slot_timeout_s) == (10.0, 10.0)
    assert (defaults.slot_request_timeout_s, defaults.checkpoint_timeout_s) == (300.0, 600.0)
    assert (defaults.taskmanager_bind_host, defaults.taskmanager_rpc_port) == ("127.0.0.1", 0)

    configured = RuntimeSettings.from_configuration(
        Configuration(
            {
                "restart-strategy.type": "exponential-delay",
                "restart-strategy.exponential-delay.initial-backoff": "200 ms",
                "restart-strategy.exponential-delay.max-backoff": "5 s",
                "restart-strategy.exponential-delay.backoff-multiplier": "2",
                "restart-strategy.exponential-delay.jitter-factor": "0",
                "restart-strategy.exponential-delay.reset-backoff-threshold": "1 min",
                "restart-strategy.exponential-delay.attempts-before-reset-backoff": "4",
                "akka.ask.timeout": "3 s",
                "slot.request.timeout": "1000",
                "execution.checkpointing.timeout": "30 s",
                "taskmanager.bind-host": "0.0.0.0",
                "taskmanager.rpc.port": "50100-50200",
            }
        )
    )
    assert configured.restart == RestartStrategySettings("exponential-delay", 4, 0.2, 5.0, 2.0, 0.0, 60.0)
    # Flink: taskmanager.slot.timeout falls back to the ask timeout when only that one is set
    assert (configured.rpc_timeout_s, configured.slot_timeout_s) == (3.0, 3.0)
    assert (configured.slot_request_timeout_s, configured.checkpoint_timeout_s) == (1.0, 30.0)
    assert (configured.taskmanager_bind_host, configured.taskmanager_rpc_port) == ("0.0.0.0", 50100)

    both = RuntimeSettings.from_configuration(
        Configuration({"pekko.ask.timeout": "3 s", "taskmanager.slot.timeout": "20 s"})
    )
    assert (both.rpc_timeout_s, both.slot_timeout_s) == (3.0, 20.0)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("restart-strategy.exponential-delay.backoff-multiplier", "0.5"),
        ("restart-strategy.exponential-delay.jitter-factor", "2"),
        ("restart-strategy.exponential-delay.attempts-before-reset-backoff", "0"),
        ("taskmanager.slot.timeout", "0 s"),
        ("taskmanager.rpc.port", "http"),
        ("pekko.ask.timeout", "soon"),
    ],
)
def test_invalid_runtime_options_fail_naming_the_key(key: str, value: str) -> None:
    conf = Configuration({"restart-strategy.type": "exponential-delay", key: value})
    with pytest.raises(ConfigurationError, match=key.replace(".", r"\.")):
        RuntimeSettings.from_configuration(conf)


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
