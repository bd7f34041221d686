"""AuditingHaServices on the real filesystem backend: accepted writes, grants and fenced writes are logged."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from standby.config import Configuration
from standby.ha import (
    ApplicationStatus,
    AuditingHaServices,
    AuditLog,
    AuditLogError,
    CompletedCheckpoint,
    ExecutionPlan,
    ExecutionPlanListener,
    FencingError,
    JobID,
    JobResult,
    JobResultEntry,
    JobStatus,
    LeaderContender,
    create_high_availability_services,
)
from standby.ha._checkpoints_cleaner import DefaultCheckpointsCleaner


class _Contender(LeaderContender):
    def __init__(self) -> None:
        self.session_id: UUID | None = None
        self.granted = asyncio.Event()

    def grant_leadership(self, session_id: UUID) -> None:
        self.session_id = session_id
        self.granted.set()

    def revoke_leadership(self) -> None:
        self.session_id = None

    def handle_error(self, error: Exception) -> None:
        raise AssertionError(f"unexpected election error: {error}")


class _NoListener(ExecutionPlanListener):
    def on_added_execution_plan(self, job_id: JobID) -> None:
        return None

    def on_removed_execution_plan(self, job_id: JobID) -> None:
        return None


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _config(tmp_path: Path, audit: Path) -> Configuration:
    return Configuration(
        {
            "high-availability.type": "filesystem",
            "high-availability.storageDir": str(tmp_path / "ha"),
            "high-availability.cluster-id": "audit-test",
            "high-availability.audit-log": str(audit),
        }
    )


async def test_accepted_writes_are_logged_with_the_session_and_fenced_ones_as_rejected(
    tmp_path: Path,
) -> None:
    audit = tmp_path / "logs" / "audit.jsonl"
    services = await create_high_availability_services(_config(tmp_path, audit))
    assert isinstance(services, AuditingHaServices)
    election = services.get_dispatcher_leader_election()
    contender = _Contender()
    await election.start_leader_election(contender)
    await asyncio.wait_for(contender.granted.wait(), 10)
    session = contender.session_id
    assert session is not None and services.current_session_id == session
    await election.confirm_leadership(session, "http://127.0.0.1:1/rpc/dispatcher")

    job = JobID.generate()
    before = time.monotonic_ns()
    plans = services.get_execution_plan_store()
    await plans.start(_NoListener())
    await plans.put_execution_plan(ExecutionPlan(job, "audited"))
    await plans.stop()
    factory = services.get_checkpoint_recovery_factory()
    counter = await factory.create_checkpoint_id_counter(job)
    await counter.start()
    store = await factory.create_recovered_completed_checkpoint_store(job, 1)
    cleaner = DefaultCheckpointsCleaner()
    for _ in range(2):
        cid = await counter.get_and_increment()
        await store.add_checkpoint_and_subsume_oldest_one(CompletedCheckpoint(job, cid, 0, 0), cleaner)
    results = services.get_job_result_store()
    result = JobResult(job, "audited", ApplicationStatus.SUCCEEDED, {"count": 3})
    await results.create_dirty_result(JobResultEntry(result))

    await election.close()  # leadership revoked: a further write is fenced
    assert services.current_session_id is None
    with pytest.raises(FencingError):
        await store.add_checkpoint_and_subsume_oldest_one(CompletedCheckpoint(job, 3, 0, 0), cleaner)
    await services.close_with_optional_clean(True)

    lines = _lines(audit)
    assert all(line["pid"] == os.getpid() for line in lines)
    writes = [(line["kind"], line["key"], line["status"]) for line in lines if line["start_ns"] >= before]
    assert writes == [
        ("plan_put", str(job), "accepted"),
        ("checkpoint_recover", str(job), "read"),
        ("counter_increment", str(job), "accepted"),
        ("checkpoint_add", f"{job}/1", "accepted"),
        ("counter_increment", str(job), "accepted"),
        ("checkpoint_add", f"{job}/2", "accepted"),
        ("checkpoint_subsume", f"{job}/1", "inferred"),
        ("job_result_dirty", str(job), "accepted"),
        ("leader_revoke", "dispatcher", "event"),
        ("checkpoint_add", f"{job}/3", "rejected"),
        ("cluster_cleanup", "*", "accepted"),
    ]
    by_kind = {(line["kind"], line["key"]): line for line in lines}
    assert by_kind[("leader_grant", "dispatcher")]["session_id"] == str(session)
    assert by_kind[("leader_confirm", "dispatcher")]["status"] == "accepted"
    added = by_kind[("checkpoint_add", f"{job}/2")]
    assert added["session_id"] == str(session) and added["checkpoint_id"] == 2
    assert added["start_ns"] <= added["end_ns"]
    assert by_kind[("counter_increment", str(job))]["value"] == 2
    assert by_kind[("job_result_dirty", str(job))]["accumulators"] == {"count": 3}
    assert by_kind[("checkpoint_add", f"{job}/3")]["error"] == "FencingError"
    assert by_kind[("checkpoint_add", f"{job}/3")]["session_id"] is None
    assert by_kind[("cluster_cleanup", "*")]["session_id"] is None
    assert by_kind[("checkpoint_recover", str(job))]["checkpoint_ids"] == []


async def test_without_the_option_the_services_are_not_wrapped(tmp_path: Path) -> None:
    config = _config(tmp_path, tmp_path / "unused.jsonl")
    config.remove_key("high-availability.audit-log")
    services = await create_high_availability_services(config)
    try:
        assert not isinstance(services, AuditingHaServices)
    finally:
        await services.close()
    assert not (tmp_path / "unused.jsonl").exists()


def test_an_unwritable_audit_log_fails_with_the_option_named(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(AuditLogError, match=r"high-availability\.audit-log"):
        AuditLog(tmp_path / "file" / "audit.jsonl")


def test_lines_of_two_logs_on_one_file_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    first, second = AuditLog(path), AuditLog(path)
    for i in range(200):
        (first if i % 2 else second).record("plan_put", "x" * 500, None, i, i + 1, status="accepted")
    first.close()
    second.close()
    lines = _lines(path)
    assert [line["start_ns"] for line in lines] == list(range(200))
    assert JobStatus.FINISHED.is_globally_terminal_state()
