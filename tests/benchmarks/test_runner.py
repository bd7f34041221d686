"""The entry point's argument handling and the failover benchmark's pure parts (no cluster is started)."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks.failover import _all_running, _metric, case_name, failover_cases, flink_case
from benchmarks.run import expand_names, options_from, parse_args


def test_names_and_groups_expand_in_canonical_order() -> None:
    assert expand_names(None)[-1] == "failover"
    assert expand_names(["memory", "leader-notification"]) == ["leader-notification", "memory"]
    assert expand_names(["ha"]) == [
        "leader-notification",
        "checkpoint-commits",
        "plan-recovery",
        "memory",
        "handover",
    ]
    with pytest.raises(SystemExit, match="unknown benchmark 'nope'"):
        expand_names(["nope"])


def test_options_from_the_command_line() -> None:
    quick = options_from(parse_args(["--quick", "--trials", "4", "--backends", "filesystem", "--skip-flink"]))
    assert quick.quick and quick.trials == 4 and quick.backends == ("filesystem",) and quick.skip_flink
    full = options_from(parse_args([]))
    assert full.trials >= 10 and full.samples >= 100 and 1000 in full.plan_counts
    with pytest.raises(SystemExit):
        options_from(parse_args(["--trials", "0"]))


def test_the_failover_matrix_covers_every_backend_and_both_signals() -> None:
    names = [case_name(env, sig) for env, sig in failover_cases()]
    assert names == [
        "filesystem/SIGKILL",
        "filesystem/SIGTERM",
        "zookeeper-4s/SIGKILL",
        "zookeeper-4s/SIGTERM",
        "zookeeper-2s/SIGKILL",
        "zookeeper-2s/SIGTERM",
        "etcd-2s/SIGKILL",
        "etcd-2s/SIGTERM",
        "kubernetes-2s/SIGKILL",
        "kubernetes-2s/SIGTERM",
    ]


def test_all_running_needs_every_subtask_of_every_vertex_running() -> None:
    running = {"state": "RUNNING", "vertices": [{"parallelism": 2, "tasks": {"RUNNING": 2}}]}
    assert _all_running(running)
    assert not _all_running(
        {"state": "RUNNING", "vertices": [{"parallelism": 2, "tasks": {"RUNNING": 1, "DEPLOYING": 1}}]}
    )
    assert not _all_running({"state": "INITIALIZING", "vertices": running["vertices"]})
    assert not _all_running(None)


def test_prometheus_values_are_read_by_name() -> None:
    text = (
        "# HELP standby_job_recovery_seconds x\n"
        'standby_job_recovery_seconds_bucket{le="0.05"} 0.0\n'
        "standby_job_recovery_seconds_count 2.0\n"
        "standby_job_recovery_seconds_sum 0.25\n"
    )
    assert _metric(text, "standby_job_recovery_seconds_sum") == 0.25
    assert _metric(text, "standby_job_recovery_seconds_count") == 2.0
    assert _metric(text, "standby_missing") is None


def test_flink_results_become_a_case_with_our_series_names() -> None:
    result = {
        "config": {"kill_signal": "SIGKILL", "session_timeout_s": 4.0},
        "trials": [
            {
                "new_leader_s": 4.0,
                "job_running_s": 5.5,
                "standby_rss_mib": [230.0, 231.0],
                "leader_rss_mib": 338.0,
            },
            {"new_leader_s": 4.1, "job_running_s": None, "standby_rss_mib": [229.0], "leader_rss_mib": 340.0},
        ],
        "jm_starts": {"initial": [{"rest_ok_s": 6.7, "rest_any_s": 6.0}], "restarts": [{"rest_ok_s": 8.0}]},
    }
    case = flink_case(result)
    assert case.series["new_leader_s"] == [4.0, 4.1]
    assert case.series["job_running_s"] == [5.5]
    assert case.series["standby_rss_mib"] == [230.0, 231.0, 229.0]
    assert case.units["standby_rss_mib"] == "MiB"
    assert case.series["start_to_rest_s"] == [6.7]
    assert case.series["restart_to_rest_s"] == [8.0]
    assert case.metadata["kill_signal"] == "SIGKILL"
    assert case.metadata["session_timeout_s"] == 4.0


async def test_leader_addresses_map_to_jobmanagers_by_port(tmp_path: Path) -> None:
    import httpx
    from benchmarks.failover import Cluster

    async with httpx.AsyncClient() as http:
        cluster = Cluster(tmp_path, {"high-availability.type": "filesystem"}, http)
        first, second = cluster.add("jobmanager"), cluster.add("jobmanager")
        cluster.add("taskmanager")
    assert cluster.by_address(f"http://127.0.0.1:{second.port}") is second
    assert cluster.by_address(f"http://127.0.0.1:{first.port}/") is first
    assert cluster.by_address("http://127.0.0.1:1") is None
    assert cluster.by_address(None) is None
    assert (tmp_path / "config.yaml").read_text().strip() == "high-availability.type: filesystem"
