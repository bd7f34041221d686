"""Report rendering on synthetic results: comparisons with Flink, goals, Markdown, README section, files."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from benchmarks._common import BenchmarkResult, Case
from benchmarks.report import (
    README_BEGIN,
    README_END,
    build_document,
    compare,
    evaluate_goals,
    fmt,
    headline_lines,
    render_markdown,
    render_readme_section,
    update_readme,
    write_report,
)

ENV = {
    "date": "2026-11-21T12:00:00",
    "host": "test",
    "cpus": 2,
    "loadavg": [1.0, 1.0, 1.0],
    "git_commit": "abc",
}
OPTS = {"trials": 3, "quick": False}


def failover_results() -> list[BenchmarkResult]:
    ours = BenchmarkResult("failover", "Failover of standby", headline=["new_leader_s", "job_running_s"])
    ours.cases["zookeeper-4s/SIGKILL"] = Case(
        series={
            "new_leader_s": [4.0, 4.1, 4.2],
            "job_running_s": [4.1, 4.2, 4.6],
            "recovery_overhead_s": [0.1, 0.1, 0.4],
            "standby_rss_mib": [60.0, 61.0, 90.0, 62.0],
            "start_to_rest_s": [2.0, 2.1, 2.2],
            "restart_to_rest_s": [1.0, 1.1, 1.2, 1.3],
        },
        metadata={"backend": "zookeeper", "kill_signal": "SIGKILL", "session_timeout_s": 4.0},
    )
    ours.cases["filesystem/SIGTERM"] = Case(
        series={"job_running_s": [0.3, 0.6, 0.4]},
        metadata={"backend": "filesystem", "kill_signal": "SIGTERM"},
    )
    ours.cases["etcd-2s/SIGKILL"] = Case.skip(
        "etcd backend not merged", backend="etcd", kill_signal="SIGKILL"
    )
    flink = BenchmarkResult("failover-flink", "Failover of Flink 2.3")
    flink.cases["zookeeper-4s/SIGKILL"] = Case(
        series={"new_leader_s": [4.0, 8.2, 2.1], "job_running_s": [5.5, 5.6, 5.7]},
        metadata={"backend": "zookeeper", "kill_signal": "SIGKILL"},
    )
    return [ours, flink]


def primitive_results() -> list[BenchmarkResult]:
    notify = BenchmarkResult("leader-notification", "Leader notification", headline=["grant_to_notified_s"])
    notify.cases["filesystem"] = Case(series={"grant_to_notified_s": [0.002, 0.004, 0.003, 0.050]})
    notify.cases["zookeeper"] = Case.skip("no ZooKeeper server")
    recovery = BenchmarkResult("plan-recovery", "Plan recovery", headline=["plans_1", "plans_10"])
    recovery.cases["filesystem"] = Case(series={"plans_1": [0.001, 0.002], "plans_10": [0.01, 0.02]})
    return [notify, recovery]


def test_compare_pairs_the_same_case_of_both_systems() -> None:
    ours, flink = failover_results()
    rows = compare(ours, flink)
    assert {(r["case"], r["metric"]) for r in rows} == {
        ("zookeeper-4s/SIGKILL", "new_leader_s"),
        ("zookeeper-4s/SIGKILL", "job_running_s"),
    }
    leader = next(r for r in rows if r["metric"] == "new_leader_s")
    # pair ratios 1.0, 0.5, 2.0 -> median 1.0 (median of ours / median of theirs would be 4.1 / 4.0)
    assert leader["ratio"] == {"pairs": 3, "median": 1.0, "min": 0.5, "max": 2.0}
    assert leader["ours"]["median"] == 4.1
    assert leader["theirs"]["median"] == 4.0


def test_results_of_different_invocations_are_not_paired() -> None:
    ours, flink = failover_results()
    ours.metadata["run_id"] = "2026-11-21T10:00:00"
    flink.metadata["run_id"] = "2026-11-21T09:00:00"
    assert compare(ours, flink) == []
    flink.metadata["run_id"] = ours.metadata["run_id"]
    assert compare(ours, flink)


def test_goals_use_case_metadata_for_their_targets() -> None:
    benchmarks = {r.name: r for r in failover_results()}
    goals = evaluate_goals(benchmarks)
    by_goal = {(g["goal"], g["case"]): g for g in goals}
    zk = by_goal[("SIGKILL → job running within session timeout + 0.3 s (ZooKeeper)", "zookeeper-4s/SIGKILL")]
    assert zk["target"] == pytest.approx(4.3)
    assert zk["median"] == 4.2
    assert zk["met"] is True
    sigterm = by_goal[("SIGTERM → job running < 0.5 s", "filesystem/SIGTERM")]
    assert sigterm["met"] is True
    assert sigterm["flink_reference"] == 2.04
    standby = by_goal[("standby JM < 80 MiB", "zookeeper-4s/SIGKILL")]
    assert standby["median"] == 61.5
    overhead = by_goal[("recovery overhead < 0.2 s", "zookeeper-4s/SIGKILL")]
    assert overhead["met"] is True
    # initial starts and restarts are pooled: 7 trials, median 1.3 s
    start = by_goal[("JM start → REST < 1.5 s", "zookeeper-4s/SIGKILL")]
    assert (start["n"], start["median"], start["met"]) == (7, 1.3, True)
    # a skipped case is never judged
    assert not any(g["case"] == "etcd-2s/SIGKILL" for g in goals)


def test_a_missed_goal_is_reported_as_missed() -> None:
    ours = BenchmarkResult("failover", "Failover")
    ours.cases["filesystem/SIGKILL"] = Case(
        series={"job_running_s": [1.5, 1.6, 1.7]},
        metadata={"backend": "filesystem", "kill_signal": "SIGKILL"},
    )
    [goal] = evaluate_goals({"failover": ours})
    assert goal["goal"] == "SIGKILL → job running < 1 s (filesystem)"
    assert goal["met"] is False


def test_fmt_picks_readable_units() -> None:
    assert fmt(None) == "-"
    assert fmt(0.0042) == "4.20 ms"
    assert fmt(0.042) == "42.0 ms"
    assert fmt(1.2345) == "1.234 s" or fmt(1.2345) == "1.235 s"
    assert fmt(12.5) == "12.50 s"
    assert fmt(61.25, "MiB") == "61.2 MiB" or fmt(61.25, "MiB") == "61.3 MiB"
    assert fmt(812.4, "1/s") == "812/s"
    assert fmt(0.5, "x") == "0.50x"


def test_markdown_has_comparison_goals_tables_and_skip_reasons() -> None:
    document = build_document(failover_results() + primitive_results(), ENV, OPTS)
    text = render_markdown(document, ["2026-11-21-failover.png"])
    assert "## Side by side with Flink 2.3" in text
    assert (
        "| zookeeper-4s/SIGKILL | kill → new leader | 4.100 s (4.000 s - 4.200 s) | 4.000 s (2.100 s - 8.200 s) |"
        in text
    )
    assert "1.00x (0.50x - 2.00x, 3 pairs)" in text
    assert "## Goals" in text
    assert "- etcd-2s/SIGKILL: skipped — etcd backend not merged" in text
    assert "- zookeeper: skipped — no ZooKeeper server" in text
    assert "| filesystem | grant → retriever notified (other process) | 4 | 3.50 ms |" in text
    assert "![2026-11-21-failover](2026-11-21-failover.png)" in text


def test_headline_lines_show_flink_next_to_ours_and_the_primitives() -> None:
    document = build_document(failover_results() + primitive_results(), ENV, OPTS)
    text = "\n".join(headline_lines(document))
    assert (
        "| zookeeper-4s/SIGKILL | 4.100 s (Flink 4.000 s, 1.00x) | 4.200 s (Flink 5.600 s, 0.75x) |" in text
    )
    assert "| filesystem/SIGTERM | - | 0.400 s | - | - | - |" in text
    assert (
        "| leader-notification | filesystem | grant → retriever notified (other process) | p50 3.50 ms"
        in text
    )
    assert "etcd-2s/SIGKILL" not in text  # skipped cases are listed under the tables instead
    assert headline_lines(build_document([], ENV, OPTS)) == ["No results yet."]


def test_skipped_cases_are_grouped_by_reason() -> None:
    document = build_document(failover_results() + primitive_results(), ENV, OPTS)
    from benchmarks.report import skipped_lines

    assert skipped_lines(document) == [
        "- failover etcd-2s/SIGKILL: etcd backend not merged",
        "- leader-notification zookeeper: no ZooKeeper server",
    ]


def test_readme_section_replaces_only_what_is_between_the_markers() -> None:
    document = build_document(primitive_results(), ENV, OPTS)
    section = render_readme_section(document, "2026-11-21.md", ["2026-11-21-notification.png"])
    assert section.startswith(README_BEGIN) and section.endswith(README_END)
    assert "results/2026-11-21.md" in section
    assert "![2026-11-21-notification](results/2026-11-21-notification.png)" in section
    before = (
        f"# Benchmarks\n\nintro\n\n{README_BEGIN}\nold table\n{README_END}\n\n## How to reproduce\nsteps\n"
    )
    after = update_readme(before, section)
    assert "old table" not in after
    assert after.startswith("# Benchmarks\n\nintro\n\n" + README_BEGIN)
    assert after.endswith(f"{README_END}\n\n## How to reproduce\nsteps\n")
    assert update_readme(after, section) == after  # idempotent
    appended = update_readme("# Benchmarks\n", section)
    assert appended.endswith(section + "\n")


def test_a_later_run_on_the_same_day_keeps_the_benchmarks_it_did_not_rerun() -> None:
    first = build_document(primitive_results(), ENV, OPTS)
    rerun = BenchmarkResult("plan-recovery", "Plan recovery")
    rerun.cases["filesystem"] = Case(series={"plans_1": [0.5]})
    merged = build_document([rerun], ENV, OPTS, previous=first)
    assert set(merged["benchmarks"]) == {"leader-notification", "plan-recovery"}
    assert merged["benchmarks"]["plan-recovery"]["cases"]["filesystem"]["series"] == {"plans_1": [0.5]}
    assert len(merged["runs"]) == 2


def test_write_report_writes_json_markdown_and_the_readme(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Benchmarks\n\n{README_BEGIN}\n{README_END}\n")
    written = write_report(
        failover_results() + primitive_results(),
        ENV,
        OPTS,
        tmp_path / "results",
        readme,
        dt.date(2026, 11, 21),
    )
    document = json.loads(written["json"].read_text())
    assert written["json"].name == "2026-11-21.json"
    assert document["comparisons"] and document["goals"]
    assert written["markdown"].read_text().startswith("# standby benchmarks — 2026-11-21")
    assert "results/2026-11-21.md" in readme.read_text()


def test_quick_reports_get_their_own_files(tmp_path: Path) -> None:
    written = write_report(
        primitive_results(), ENV, {"quick": True}, tmp_path, None, dt.date(2026, 11, 21), plots=False
    )
    assert written["json"].name == "2026-11-21-quick.json"
    assert "readme" not in written
    tagged = write_report(
        primitive_results(), ENV, {"tag": "integration"}, tmp_path, None, dt.date(2026, 11, 21), plots=False
    )
    assert tagged["markdown"].name == "2026-11-21-integration.md"


def test_plots_are_drawn_for_every_benchmark_with_data(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from benchmarks.report import write_plots

    document = build_document(failover_results() + primitive_results(), ENV, OPTS)
    made = write_plots(document, tmp_path, "day")
    assert sorted(p.name for p in made) == [
        "day-failover.png",
        "day-notification.png",
        "day-plan-recovery.png",
    ]
    assert all(p.stat().st_size > 1000 and p.read_bytes()[:4] == b"\x89PNG" for p in made)


def test_number_lists_are_written_on_one_line() -> None:
    from benchmarks.report import dump_json

    text = dump_json({"series": {"a": [1.5, -2, 3e-05]}, "names": ["x", "y"]})
    assert '"a": [1.5, -2, 3e-05]' in text
    assert json.loads(text) == {"series": {"a": [1.5, -2, 3e-05]}, "names": ["x", "y"]}
