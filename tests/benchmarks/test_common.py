"""The benchmarks' pure helpers: statistics, pair-by-pair ratios, result containers, deadlines."""

from __future__ import annotations

import math
import time

import pytest
from benchmarks._common import (
    BenchmarkResult,
    BenchmarkTimeout,
    Case,
    Deadline,
    RunOptions,
    clean,
    paired_ratios,
    percentile,
    ratio_summary,
    summarize,
    wait_for,
    wait_for_async,
)


def test_percentile_interpolates_linearly_between_ranks() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 50) == 2.5
    # numpy.percentile([1, 2, 3, 4], 99) == 3.97
    assert percentile(values, 99) == pytest.approx(3.97)
    assert percentile([7.0], 99) == 7.0


def test_percentile_rejects_empty_series_and_bad_quantiles() -> None:
    with pytest.raises(ValueError, match="empty"):
        percentile([], 50)
    with pytest.raises(ValueError, match=r"0\.\.100"):
        percentile([1.0], 101)


def test_summarize_drops_missing_values() -> None:
    stats = summarize([3.0, None, 1.0, math.nan, 2.0])
    assert stats["n"] == 3
    assert stats["median"] == 2.0
    assert stats["min"] == 1.0
    assert stats["max"] == 3.0
    assert stats["mean"] == pytest.approx(2.0)
    assert stats["p50"] == 2.0
    assert stats["p99"] == pytest.approx(2.98)


def test_summarize_of_nothing_is_all_none() -> None:
    stats = summarize([None])
    assert stats["n"] == 0
    assert all(stats[k] is None for k in ("median", "min", "max", "mean", "p50", "p99"))
    assert clean([None, math.nan]) == []


def test_paired_ratios_pair_by_position_and_skip_incomplete_pairs() -> None:
    ours = [1.0, None, 3.0, 4.0, 5.0]
    theirs = [2.0, 2.0, 0.0, 8.0]  # a zero denominator and a missing partner for the 5th trial
    assert paired_ratios(ours, theirs) == [0.5, 0.5]


def test_ratio_summary_is_the_median_of_the_pair_ratios_not_the_ratio_of_medians() -> None:
    ours = [1.0, 10.0, 100.0]
    theirs = [10.0, 1.0, 50.0]
    # pair ratios 0.1, 10, 2 -> median 2; the ratio of the medians would be 10 / 10 = 1
    summary = ratio_summary(ours, theirs)
    assert summary == {"pairs": 3, "median": 2.0, "min": 0.1, "max": 10.0}


def test_ratio_summary_without_pairs() -> None:
    assert ratio_summary([1.0], []) == {"pairs": 0, "median": None, "min": None, "max": None}


def test_case_collects_series_with_units_and_round_trips_through_json() -> None:
    case = Case(metadata={"backend": "filesystem"})
    case.add("new_leader_s", 0.25)
    case.add("new_leader_s", None)  # not recorded
    case.extend("standby_rss_mib", [60.0, 61.5], "MiB")
    body = case.to_json()
    assert body["series"] == {"new_leader_s": [0.25], "standby_rss_mib": [60.0, 61.5]}
    assert body["units"] == {"new_leader_s": "s", "standby_rss_mib": "MiB"}
    assert body["summary"]["standby_rss_mib"]["median"] == 60.75
    assert "skipped" not in body
    again = Case.from_json(body)
    assert again.series == case.series
    assert again.units == case.units
    assert again.metadata == {"backend": "filesystem"}


def test_skipped_case_keeps_its_reason() -> None:
    case = Case.skip("no etcd here", backend="etcd")
    body = case.to_json()
    assert body["skipped"] == "no etcd here"
    assert Case.from_json(body).skipped == "no etcd here"
    assert Case.from_json(body).metadata == {"backend": "etcd"}


def test_benchmark_result_round_trips() -> None:
    result = BenchmarkResult("failover", "Failover", headline=["job_running_s"])
    result.cases["filesystem/SIGKILL"] = Case(series={"job_running_s": [0.5, 0.7]})
    again = BenchmarkResult.from_json(result.to_json())
    assert again.name == "failover"
    assert again.headline == ["job_running_s"]
    assert again.cases["filesystem/SIGKILL"].series == {"job_running_s": [0.5, 0.7]}


def test_quick_options_scale_everything_down_and_keep_overrides() -> None:
    quick = RunOptions.quick_defaults(trials=5)
    assert quick.quick
    assert quick.trials == 5
    assert quick.samples < RunOptions().samples
    assert max(quick.plan_counts) < max(RunOptions().plan_counts)


def test_backend_filter_matches_labels_and_backend_names() -> None:
    opts = RunOptions(backends=("zookeeper",))
    assert opts.wants_backend("zookeeper-4s")
    assert not opts.wants_backend("filesystem")
    assert RunOptions().wants_backend("anything")


def test_deadline_bounds_waits_and_fails_once_used_up() -> None:
    deadline = Deadline(0.0, "bench")
    assert deadline.expired()
    assert deadline.bound(30.0) == 0.01
    with pytest.raises(BenchmarkTimeout, match="bench: time budget"):
        deadline.check("the next step")
    roomy = Deadline(60.0, "bench")
    assert 0 < roomy.bound(5.0) <= 5.0
    roomy.check("a step")


def test_wait_for_returns_the_first_answer_and_times_out_otherwise() -> None:
    answers = iter([None, False, 0, 7])
    assert wait_for("an answer", lambda: next(answers), 5.0, 0.001) == 0
    started = time.monotonic()
    with pytest.raises(BenchmarkTimeout, match="waiting for nothing"):
        wait_for("nothing", lambda: None, 0.05, 0.01)
    assert time.monotonic() - started < 5.0


async def test_wait_for_async_returns_the_first_answer_and_times_out_otherwise() -> None:
    calls = 0

    async def third_time() -> str | None:
        nonlocal calls
        calls += 1
        return "yes" if calls >= 3 else None

    assert await wait_for_async("three calls", third_time, 5.0, 0.001) == "yes"

    async def never() -> None:
        return None

    with pytest.raises(BenchmarkTimeout, match="waiting for never"):
        await wait_for_async("never", never, 0.05, 0.01)


async def test_bounded_cancels_a_benchmark_that_overruns_its_budget() -> None:
    import asyncio

    from benchmarks._common import bounded

    cleaned = asyncio.Event()

    async def endless() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            cleaned.set()

    with pytest.raises(BenchmarkTimeout, match="over its time budget"):
        await bounded(endless(), Deadline(0.0, "endless"), grace=0.05)
    assert cleaned.is_set()

    async def quick() -> int:
        return 3

    assert await bounded(quick(), Deadline(10.0, "quick")) == 3
