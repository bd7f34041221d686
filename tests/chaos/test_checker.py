"""The chaos checker on synthetic audit logs: it passes a clean history and finds each kind of violation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from standby.testing.chaos import (
    AuditRecord,
    check_audit_log,
    check_exact_results,
    check_no_interleaving,
    check_no_leftover_data,
    check_no_lost_checkpoint,
    check_writes_by_granted_sessions,
    counter_expectation,
    leftover_files,
    load_audit_log,
)

JOB = "a" * 32
A = "aaaaaaaa-0000-0000-0000-000000000001"
B = "bbbbbbbb-0000-0000-0000-000000000002"


def rec(
    kind: str,
    key: str,
    start: int,
    end: int | None = None,
    session: str | None = A,
    pid: int = 1,
    status: str = "accepted",
    **extra: Any,
) -> AuditRecord:
    return AuditRecord(pid, session, kind, key, start, end if end is not None else start + 1, status, extra)


def checkpoint(
    cid: int, start: int, session: str = A, pid: int = 1, end: int | None = None
) -> list[AuditRecord]:
    """A counter increment then the add of checkpoint ``cid``."""
    return [
        rec("counter_increment", JOB, start, start + 1, session, pid, job_id=JOB, value=cid),
        rec(
            "checkpoint_add",
            f"{JOB}/{cid}",
            start + 2,
            end or start + 3,
            session,
            pid,
            job_id=JOB,
            checkpoint_id=cid,
        ),
    ]


def grant(session: str, at: int, pid: int) -> list[AuditRecord]:
    return [
        rec("leader_grant", "dispatcher", at, at, session, pid, status="event"),
        rec("leader_confirm", "dispatcher", at + 1, at + 2, session, pid),
    ]


def clean_history() -> list[AuditRecord]:
    """Leader A (pid 1) submits and checkpoints, is deposed; B (pid 2) recovers the latest and finishes."""
    records = [
        *grant(A, 0, 1),
        rec("plan_put", JOB, 10, 12, A, 1),
        rec("checkpoint_recover", JOB, 13, 14, A, 1, status="read", job_id=JOB, checkpoint_ids=[]),
        *checkpoint(1, 20),
        *checkpoint(2, 30),
        rec("leader_revoke", "dispatcher", 40, 40, A, 1, status="event"),
        *grant(B, 50, 2),
        rec("checkpoint_recover", JOB, 60, 62, B, 2, status="read", job_id=JOB, checkpoint_ids=[2]),
        # a deposed write is refused: evidence, not a violation
        rec("checkpoint_add", f"{JOB}/3", 63, 64, A, 1, status="rejected", error="FencingError", job_id=JOB),
        *checkpoint(3, 70, B, 2),
        rec(
            "job_result_dirty",
            JOB,
            80,
            81,
            B,
            2,
            application_status="SUCCEEDED",
            accumulators=counter_expectation(10),
        ),
        rec("checkpoint_shutdown", JOB, 82, 83, B, 2, job_id=JOB),
        rec("plan_remove", JOB, 84, 85, B, 2),
        rec("job_result_clean", JOB, 86, 87, B, 2),
        rec("cluster_cleanup", "*", 90, 91, None, 2),
    ]
    return records


def test_a_clean_history_passes_every_check() -> None:
    report = check_audit_log(clean_history(), {JOB: counter_expectation(10)}, leftovers=[])
    assert report.passed, report.render()
    assert report.stats["failovers"] == 1
    assert report.stats["rejected_writes"] == {"checkpoint_add:FencingError": 1}


def test_an_old_leader_writing_after_the_new_one_is_an_interleaving() -> None:
    records = [*clean_history(), *checkpoint(4, 75, A, 1)]  # deposed A adds after B's checkpoint 3
    result = check_no_interleaving(records)
    assert not result.passed
    assert "session aaaaaaaa (pid 1) wrote before and after session bbbbbbbb" in result.violations[0]


def test_overlapping_writes_of_two_sessions_are_not_an_interleaving() -> None:
    # A's last write may have committed before B's first: the intervals overlap, nothing is certain
    records = [*grant(A, 0, 1), *checkpoint(1, 10, A, 1, end=60), *grant(B, 20, 2), *checkpoint(2, 30, B, 2)]
    assert check_no_interleaving(records).passed


def test_a_write_without_a_granted_session_is_found() -> None:
    records = [*clean_history(), rec("plan_put", "b" * 32, 100, 101, "cccccccc-0000", 3)]
    result = check_writes_by_granted_sessions(records)
    assert not result.passed
    assert "never granted to pid 3" in result.violations[0]
    orphan = check_writes_by_granted_sessions([*clean_history(), rec("plan_remove", JOB, 100, 101, None, 2)])
    assert "write outside any leader session" in orphan.violations[0]


def test_a_recovery_older_than_a_completed_checkpoint_is_a_lost_checkpoint() -> None:
    records = [
        rec("checkpoint_recover", JOB, 60, 62, B, 2, status="read", job_id=JOB, checkpoint_ids=[1])
        if r.kind == "checkpoint_recover" and r.session_id == B
        else r
        for r in clean_history()
    ]
    result = check_no_lost_checkpoint(records)
    assert not result.passed
    assert "restored from checkpoint 1" in result.violations[0]
    assert "checkpoint 2 had completed before" in result.violations[0]


def test_a_recovered_checkpoint_without_its_state_is_lost() -> None:
    records = [
        rec(
            "checkpoint_recover",
            JOB,
            60,
            62,
            B,
            2,
            status="read",
            job_id=JOB,
            checkpoint_ids=[2],
            missing_state=["x"],
        )
        if r.kind == "checkpoint_recover" and r.session_id == B
        else r
        for r in clean_history()
    ]
    result = check_no_lost_checkpoint(records)
    assert "whose state is gone" in result.violations[0]


def test_recoveries_after_the_terminal_cleanup_began_are_exempt() -> None:
    records = [
        *clean_history(),
        rec("checkpoint_recover", JOB, 95, 96, B, 2, status="read", job_id=JOB, checkpoint_ids=[]),
    ]
    assert check_no_lost_checkpoint(records).passed


def test_a_reused_checkpoint_id_or_counter_value_is_found() -> None:
    records = [*clean_history(), *checkpoint(2, 100, B, 2)]  # id 2 again after 3
    result = check_no_lost_checkpoint(records)
    assert any("checkpoint id 2 came after 3" in v for v in result.violations)
    assert any("checkpoint id counter value 2 came after 3" in v for v in result.violations)


def test_wrong_missing_and_repeated_results_are_found() -> None:
    expected = {JOB: counter_expectation(10)}
    wrong = [
        rec("job_result_dirty", JOB, 80, 81, B, 2, application_status="SUCCEEDED", accumulators={"count": 9})
        if r.kind == "job_result_dirty"
        else r
        for r in clean_history()
    ]
    assert "result {'count': 9} != expected" in check_exact_results(wrong, expected).violations[0]
    twice = [*clean_history(), rec("job_result_dirty", JOB, 100, 101, B, 2, application_status="SUCCEEDED",
                                   accumulators=counter_expectation(10))]  # fmt: skip
    assert "2 dirty job results were accepted" in check_exact_results(twice, expected).violations[0]
    never = [r for r in clean_history() if r.kind != "job_result_dirty"]
    assert "never finished" in check_exact_results(never, expected).violations[0]
    unknown = check_exact_results(clean_history(), {})
    assert "not one of the submitted jobs" in unknown.violations[0]
    rest = check_exact_results(clean_history(), expected, {JOB: {"application-status": "SUCCEEDED"}})
    assert "REST reported" in rest.violations[0]


def test_leftover_data_and_unfinished_cleanups_are_found(tmp_path: Path) -> None:
    storage = tmp_path / "ha"
    (storage / "cluster" / "jobs" / JOB).mkdir(parents=True)
    (storage / "cluster" / "completedCheckpointabc").write_text("x")
    (storage / "job-result-store" / "cluster").mkdir(parents=True)
    (storage / "job-result-store" / "cluster" / f"{JOB}.json").write_text("{}")  # clean: allowed
    (storage / "job-result-store" / "cluster" / f"{'b' * 32}_DIRTY.json").write_text("{}")
    found = leftover_files(storage)
    assert found == [
        "file cluster/completedCheckpointabc",
        f"file job-result-store/cluster/{'b' * 32}_DIRTY.json",
    ]
    result = check_no_leftover_data(clean_history(), [JOB], found)
    assert len(result.violations) == 2
    not_clean = [r for r in clean_history() if r.kind not in ("job_result_clean", "cluster_cleanup")]
    result = check_no_leftover_data(not_clean, [JOB], [])
    assert "never marked clean" in result.violations[0]
    assert "never removed" in result.violations[1]
    assert leftover_files(tmp_path / "missing") == []


def test_the_log_is_read_back_and_a_cut_line_skipped(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    body = {"pid": 1, "session_id": A, "kind": "plan_put", "key": JOB, "start_ns": 1, "end_ns": 2, "x": 3}
    log.write_text(json.dumps(body) + "\n" + '{"pid": 1, "ses')
    records, bad = load_audit_log(log)
    assert bad == 1
    assert records == [AuditRecord(1, A, "plan_put", JOB, 1, 2, "accepted", {"x": 3}, line=1)]


def test_records_without_a_known_outcome_are_not_held_against_a_session() -> None:
    # a deposed leader's in-memory subsume and a write cancelled in flight may never have reached the store
    records = [
        *clean_history(),
        rec("checkpoint_subsume", f"{JOB}/1", 75, 76, A, 1, status="inferred", job_id=JOB, checkpoint_id=1),
        rec("checkpoint_add", f"{JOB}/9", 75, 76, A, 1, status="cancelled", job_id=JOB, checkpoint_id=9),
    ]
    report = check_audit_log(records, {JOB: counter_expectation(10)}, leftovers=[])
    assert report.passed, report.render()
    assert report.stats["cancelled_writes"] == {"checkpoint_add": 1}
