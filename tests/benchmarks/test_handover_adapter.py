"""The adapter that turns the backends' own hand-over benchmark JSON into cases (synthetic reports)."""

from __future__ import annotations

from benchmarks.ha_primitives import handover_cases, handover_modules


def test_top_level_modes_with_samples_in_milliseconds() -> None:
    report = {
        "benchmark": "filesystem_handover",
        "environment": {"cpus": 2},
        "sigkill": {
            "grant_ms": {"median": 20.0},
            "samples": [
                {"grant_ms": 20.0, "retriever_ms": 25.0, "leader_exit_ms": 1.0},
                {"grant_ms": 30.0, "retriever_ms": 31.0},
            ],
        },
        "graceful": {"samples": [{"grant_ms": 5.0, "retriever_ms": 6.0}]},
    }
    cases = handover_cases(report, "filesystem")
    assert sorted(cases) == ["filesystem/graceful", "filesystem/sigkill"]
    assert cases["filesystem/sigkill"].series["grant_s"] == [0.02, 0.03]
    assert cases["filesystem/sigkill"].series["retriever_s"] == [0.025, 0.031]
    assert cases["filesystem/sigkill"].series["leader_exit_s"] == [0.001]


def test_nested_results_keep_their_scalar_settings_as_metadata() -> None:
    report = {
        "results": {
            "sigkill_session_2s": {
                "session_timeout_ms": 2000,
                "how": "sigkill",
                "samples": [{"grant_ms": 2100.0}],
            }
        }
    }
    cases = handover_cases(report, "zookeeper")
    case = cases["zookeeper/sigkill_session_2s"]
    assert case.series == {"grant_s": [2.1]}
    assert case.metadata == {"session_timeout_ms": 2000, "how": "sigkill"}


def test_named_series_of_trials_in_seconds_use_one_vocabulary() -> None:
    report = {
        "summary": [{"name": "lease-2s-sigkill", "granted_s": {"median": 1.0}}],
        "series": [
            {
                "name": "lease-2s-sigkill",
                "lease": "2 s",
                "trials": [{"granted_s": 1.5, "retrieved_s": 1.6, "ok": True}],
            },
        ],
    }
    cases = handover_cases(report, "kubernetes")
    assert list(cases) == ["kubernetes/lease-2s-sigkill"]
    assert cases["kubernetes/lease-2s-sigkill"].series == {"grant_s": [1.5], "retriever_s": [1.6]}


def test_a_report_without_trials_gives_no_case() -> None:
    assert handover_cases({"benchmark": "x", "summary": {"median": 1.0}}, "x") == {}


def test_the_backends_benchmarks_are_found_by_name() -> None:
    modules = handover_modules()
    assert all(m.endswith("_handover") for m in modules)
