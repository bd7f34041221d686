"""The safety checker of a chaos run: reads the HA audit log and proves the run kept the HA guarantees.

Checks (each sound: it never reports a violation that did not happen, given that a write took effect somewhere
inside its logged ``[start_ns, end_ns]`` and that ``CLOCK_MONOTONIC`` is system-wide):

* ``no-interleaving``: no two leader sessions' accepted writes interleave. A write *definitely precedes* another
  when it ended before the other started. Sessions are ordered by their first accepted write; a violation is a
  session A with writes a1, a2 and another session B with a write b such that a1 precedes b and b precedes a2
  (A wrote, then B, then A again: the deposed A was not fenced).
* ``writes-by-granted-sessions``: every accepted write was made under a leader session that the process had been
  granted before the write started. Only the final ``cleanup_all_data`` runs without a session (Flink removes the
  cluster's HA data after the elections are closed).
* ``no-lost-checkpoint``: whenever a JobMaster recovered a job's checkpoint store, it saw a checkpoint at least as
  new as every checkpoint whose addition had completed before the recovery started; checkpoint ids and checkpoint
  id counter values grow across all sessions (a reused id would hide a checkpoint).
* ``exact-results``: every job has exactly one accepted dirty job result (a finished job never runs again), it
  SUCCEEDED, and its accumulators equal the expected ones (and so do the results read over REST).
* ``no-leftover-data``: after the cluster was shut down with cleanup, no HA data is left (files, ZooKeeper nodes
  or etcd keys listed by the runner), and every job's result was marked clean.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from standby.ha._audit import WRITE_KINDS

__all__ = [
    "AuditRecord",
    "CheckReport",
    "CheckResult",
    "check_audit_log",
    "check_exact_results",
    "check_no_interleaving",
    "check_no_leftover_data",
    "check_no_lost_checkpoint",
    "check_writes_by_granted_sessions",
    "load_audit_log",
]

#: at most this many violations are described per check
_MAX_DETAILS = 20
#: writes that may run without a leader session (after the elections are closed at a terminal shutdown)
_SESSIONLESS_KINDS = frozenset({"cluster_cleanup"})
#: records after whose start a job's checkpoints may legitimately be missing (its terminal cleanup began)
_JOB_END_KINDS = frozenset({"job_result_dirty", "checkpoint_shutdown", "job_data_cleanup", "counter_remove"})


@dataclass(frozen=True)
class AuditRecord:
    """One line of the audit log (see ``standby.ha.AuditLog``)."""

    pid: int
    session_id: str | None
    kind: str
    key: str
    start_ns: int
    end_ns: int
    status: str = "accepted"
    extra: Mapping[str, Any] = field(default_factory=dict)
    line: int = 0

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"

    @property
    def is_write(self) -> bool:
        return self.kind in WRITE_KINDS

    @property
    def job_id(self) -> str | None:
        value = self.extra.get("job_id")
        return str(value) if value is not None else None

    def precedes(self, other: AuditRecord) -> bool:
        """This call definitely took effect before ``other`` did."""
        return self.end_ns < other.start_ns

    def describe(self) -> str:
        extra = {k: v for k, v in self.extra.items() if k not in ("job_id", "message")}
        session = self.session_id[:8] if self.session_id else None
        return (
            f"line {self.line}: pid {self.pid} session {session} {self.kind} {self.key} "
            f"[{self.start_ns}, {self.end_ns}] {self.status}{' ' + json.dumps(extra, sort_keys=True) if extra else ''}"
        )

    @staticmethod
    def from_json(body: Mapping[str, Any], line: int = 0) -> AuditRecord:
        known = {"pid", "session_id", "kind", "key", "start_ns", "end_ns", "status"}
        return AuditRecord(
            pid=int(body["pid"]),
            session_id=body.get("session_id"),
            kind=str(body["kind"]),
            key=str(body["key"]),
            start_ns=int(body["start_ns"]),
            end_ns=int(body["end_ns"]),
            status=str(body.get("status", "accepted")),
            extra={k: v for k, v in body.items() if k not in known},
            line=line,
        )


def load_audit_log(path: str | os.PathLike[str]) -> tuple[list[AuditRecord], int]:
    """The records of an audit log, and the number of unreadable lines (a line cut by a crash is skipped)."""
    records: list[AuditRecord] = []
    bad = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                records.append(AuditRecord.from_json(json.loads(text), number))
            except (ValueError, KeyError, TypeError):
                bad += 1
    return records, bad


@dataclass
class CheckResult:
    name: str
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checked: int = 0

    @property
    def passed(self) -> bool:
        return not self.violations

    def violation(self, text: str) -> None:
        if len(self.violations) < _MAX_DETAILS:
            self.violations.append(text)
        elif len(self.violations) == _MAX_DETAILS:
            self.violations.append("... (more violations not shown)")

    def summary(self) -> str:
        verdict = "PASS" if self.passed else f"FAIL ({len(self.violations)} violation(s))"
        return f"{self.name}: {verdict}, {self.checked} checked"


@dataclass
class CheckReport:
    results: list[CheckResult]
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def result(self, name: str) -> CheckResult:
        return next(r for r in self.results if r.name == name)

    def render(self) -> str:
        lines: list[str] = []
        for r in self.results:
            lines.append(r.summary())
            lines.extend(f"    VIOLATION {v}" for v in r.violations)
            lines.extend(f"    note: {n}" for n in r.notes)
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "checks": [
                {
                    "name": r.name,
                    "passed": r.passed,
                    "checked": r.checked,
                    "violations": r.violations,
                    "notes": r.notes,
                }
                for r in self.results
            ],
            "stats": self.stats,
        }


# ------------------------------------------------------------------------------------------------------ checks


def _accepted_writes(records: Iterable[AuditRecord]) -> list[AuditRecord]:
    return [r for r in records if r.accepted and r.is_write]


def check_no_interleaving(records: Sequence[AuditRecord]) -> CheckResult:
    result = CheckResult("no-interleaving")
    by_session: dict[str, list[AuditRecord]] = defaultdict(list)
    for r in _accepted_writes(records):
        if r.session_id is not None:
            by_session[r.session_id].append(r)
    result.checked = sum(len(w) for w in by_session.values())
    # sessions in the order of their first accepted write (by its end: the earliest certain commit)
    order = sorted(by_session, key=lambda s: min(w.end_ns for w in by_session[s]))
    bounds = {
        s: (min(writes, key=lambda w: w.end_ns), max(writes, key=lambda w: w.start_ns))
        for s, writes in by_session.items()
    }
    for a in order:
        first_a, last_a = bounds[a]
        for b in order:
            if a == b:
                continue
            # a write of B strictly between A's earliest and latest write: A, B, A
            between = [w for w in by_session[b] if first_a.precedes(w) and w.precedes(last_a)]
            if between:
                b_write = min(between, key=lambda w: w.start_ns)
                result.violation(
                    f"session {a[:8]} (pid {first_a.pid}) wrote before and after session {b[:8]} "
                    f"(pid {b_write.pid}): {first_a.describe()} | then {b_write.describe()} | then "
                    f"{last_a.describe()}"
                )
    result.notes.append(f"{len(order)} session(s) with accepted writes")
    return result


def check_writes_by_granted_sessions(records: Sequence[AuditRecord]) -> CheckResult:
    result = CheckResult("writes-by-granted-sessions")
    grants: dict[tuple[int, str], int] = {}
    confirmed: set[str] = set()
    for r in records:
        if r.kind == "leader_grant" and r.session_id is not None:
            key = (r.pid, r.session_id)
            grants[key] = min(grants.get(key, r.end_ns), r.end_ns)
        if r.kind == "leader_confirm" and r.accepted and r.session_id is not None:
            confirmed.add(r.session_id)
    unconfirmed: set[str] = set()
    for w in _accepted_writes(records):
        result.checked += 1
        if w.session_id is None:
            if w.kind not in _SESSIONLESS_KINDS:
                result.violation(f"write outside any leader session: {w.describe()}")
            continue
        granted_at = grants.get((w.pid, w.session_id))
        if granted_at is None:
            result.violation(f"write by a session never granted to pid {w.pid}: {w.describe()}")
        elif granted_at > w.start_ns:
            result.violation(f"write started before its session was granted ({granted_at}): {w.describe()}")
        if w.session_id not in confirmed:
            unconfirmed.add(w.session_id)
    if unconfirmed:
        # a process may be killed after writing but before its confirmation was logged: evidence, not a violation
        result.notes.append(
            f"{len(unconfirmed)} session(s) wrote without a logged leader confirmation: "
            + ", ".join(sorted(s[:8] for s in unconfirmed))
        )
    return result


def check_no_lost_checkpoint(records: Sequence[AuditRecord]) -> CheckResult:
    result = CheckResult("no-lost-checkpoint")
    adds: dict[str, list[AuditRecord]] = defaultdict(list)
    increments: dict[str, list[AuditRecord]] = defaultdict(list)
    recoveries: dict[str, list[AuditRecord]] = defaultdict(list)
    job_end: dict[str, int] = {}
    for r in records:
        job = r.job_id
        if job is None:
            continue
        if r.kind == "checkpoint_add" and r.accepted:
            adds[job].append(r)
        elif r.kind == "counter_increment" and r.accepted:
            increments[job].append(r)
        elif r.kind == "checkpoint_recover":
            recoveries[job].append(r)
        if r.kind in _JOB_END_KINDS:
            job_end[job] = min(job_end.get(job, r.start_ns), r.start_ns)

    for job, job_recoveries in recoveries.items():
        job_adds = adds.get(job, [])
        for rec in job_recoveries:
            if rec.end_ns >= job_end.get(job, rec.end_ns + 1):
                continue  # the job's terminal cleanup had begun: its checkpoints go away by design
            result.checked += 1
            ids = [int(i) for i in rec.extra.get("checkpoint_ids") or []]
            restored = max(ids) if ids else 0
            missing = list(rec.extra.get("missing_state") or [])
            if missing:
                result.violation(
                    f"job {job}: recovery found checkpoint {restored} whose state is gone ({missing}): "
                    f"{rec.describe()}"
                )
            completed = [a for a in job_adds if a.precedes(rec)]
            if not completed:
                continue
            latest = max(completed, key=lambda a: int(a.extra["checkpoint_id"]))
            if int(latest.extra["checkpoint_id"]) > restored:
                result.violation(
                    f"job {job}: recovery restored from checkpoint {restored or 'none'} (ids {ids}) although "
                    f"checkpoint {latest.extra['checkpoint_id']} had completed before: {rec.describe()} | "
                    f"completed by {latest.describe()}"
                )

    def increasing(kind: str, per_job: Mapping[str, list[AuditRecord]], field_name: str) -> None:
        for job, calls in per_job.items():
            by_end = sorted(calls, key=lambda c: c.end_ns)
            by_start = sorted(calls, key=lambda c: c.start_ns)
            best: AuditRecord | None = None
            i = 0
            for c in by_start:
                while i < len(by_end) and by_end[i].end_ns < c.start_ns:
                    if best is None or int(by_end[i].extra[field_name]) > int(best.extra[field_name]):
                        best = by_end[i]
                    i += 1
                result.checked += 1
                if best is not None and int(c.extra[field_name]) <= int(best.extra[field_name]):
                    result.violation(
                        f"job {job}: {kind} {c.extra[field_name]} came after {best.extra[field_name]}: "
                        f"{best.describe()} | then {c.describe()}"
                    )

    increasing("checkpoint id", adds, "checkpoint_id")
    increasing("checkpoint id counter value", increments, "value")
    return result


def check_exact_results(
    records: Sequence[AuditRecord],
    expected: Mapping[str, Mapping[str, Any]],
    observed: Mapping[str, Mapping[str, Any]] | None = None,
) -> CheckResult:
    """``expected``: job id -> accumulators; ``observed``: job id -> the ``job-execution-result`` read over REST."""
    result = CheckResult("exact-results")
    dirty: dict[str, list[AuditRecord]] = defaultdict(list)
    planned: set[str] = set()
    for r in records:
        if not r.accepted:
            continue
        if r.kind == "job_result_dirty":
            dirty[r.key].append(r)
        elif r.kind == "plan_put":
            planned.add(r.key)
    for job in sorted(planned - set(expected)):
        result.violation(f"job {job} was stored as an execution plan but is not one of the submitted jobs")
    for job, accumulators in sorted(expected.items()):
        result.checked += 1
        entries = dirty.get(job, [])
        if not entries:
            result.violation(f"job {job}: no job result was written (the job never finished)")
            continue
        if len(entries) > 1:
            result.violation(
                f"job {job}: {len(entries)} dirty job results were accepted (the finished job ran again): "
                + " | ".join(e.describe() for e in entries)
            )
        for entry in entries:
            status = entry.extra.get("application_status")
            if status != "SUCCEEDED":
                result.violation(f"job {job}: ended {status}, not SUCCEEDED: {entry.describe()}")
            got = dict(entry.extra.get("accumulators") or {})
            if got != dict(accumulators):
                result.violation(
                    f"job {job}: result {got} != expected {dict(accumulators)}: {entry.describe()}"
                )
        seen = (observed or {}).get(job)
        if seen is not None:
            got = dict(seen.get("accumulator-results") or {})
            if seen.get("application-status") != "SUCCEEDED" or got != dict(accumulators):
                result.violation(f"job {job}: REST reported {dict(seen)}, expected {dict(accumulators)}")
    return result


def check_no_leftover_data(
    records: Sequence[AuditRecord], jobs: Iterable[str], leftovers: Sequence[str] | None
) -> CheckResult:
    """``leftovers``: what the runner found in the storage directory / coordination store after the shutdown
    (None: not inspected)."""
    result = CheckResult("no-leftover-data")
    clean = {r.key for r in records if r.kind == "job_result_clean" and r.accepted}
    for job in sorted(set(jobs)):
        result.checked += 1
        if job not in clean:
            result.violation(f"job {job}: its job result was never marked clean (cleanup did not finish)")
    if not any(r.kind == "cluster_cleanup" and r.accepted for r in records):
        result.violation("the cluster's HA data was never removed (no accepted cleanup_all_data)")
    if leftovers is None:
        result.notes.append("storage and coordination store were not inspected")
    else:
        result.checked += 1
        for item in leftovers:
            result.violation(f"left after the shutdown: {item}")
    return result


def check_audit_log(
    records: Sequence[AuditRecord],
    expected: Mapping[str, Mapping[str, Any]],
    leftovers: Sequence[str] | None,
    observed: Mapping[str, Mapping[str, Any]] | None = None,
    unreadable_lines: int = 0,
    shutdown_ns: int | None = None,
) -> CheckReport:
    """Every check over one run's audit log; ``expected`` maps every submitted job id to its exact result,
    ``shutdown_ns`` is when the cluster shutdown began (leadership changes after it are not failovers)."""
    report = CheckReport(
        [
            check_no_interleaving(records),
            check_writes_by_granted_sessions(records),
            check_no_lost_checkpoint(records),
            check_exact_results(records, expected, observed),
            check_no_leftover_data(records, expected, leftovers),
        ]
    )
    report.stats = audit_statistics(records, shutdown_ns)
    report.stats["unreadable_lines"] = unreadable_lines
    return report


def audit_statistics(records: Sequence[AuditRecord], shutdown_ns: int | None = None) -> dict[str, Any]:
    accepted = Counter(r.kind for r in records if r.accepted and r.is_write)
    accepted.update(r.kind for r in records if r.status == "inferred")
    rejected = Counter(f"{r.kind}:{r.extra.get('error')}" for r in records if r.status == "rejected")
    cancelled = Counter(r.kind for r in records if r.status == "cancelled")
    dispatcher_sessions = {
        r.session_id
        for r in records
        if r.kind == "leader_grant"
        and r.key == "dispatcher"
        and (shutdown_ns is None or r.start_ns < shutdown_ns)
    }
    sessions = {r.session_id for r in records if r.kind == "leader_grant"}
    return {
        "records": len(records),
        "processes": len({r.pid for r in records}),
        "leader_sessions": len(sessions),
        # every grant of the dispatcher after the first one is a failover (or a re-grant after a lost connection)
        "failovers": max(0, len(dispatcher_sessions) - 1),
        "accepted_writes": dict(sorted(accepted.items())),
        "rejected_writes": dict(sorted(rejected.items())),
        # cancelled while in flight (e.g. on revocation): the outcome is unknown, so no check relies on them
        "cancelled_writes": dict(sorted(cancelled.items())),
        "checkpoint_recoveries": sum(1 for r in records if r.kind == "checkpoint_recover"),
    }


def leftover_files(storage_dir: str | os.PathLike[str]) -> list[str]:
    """Files left under an HA storage directory, except clean job results (Flink keeps them unless
    ``job-result-store.delete-on-commit``); empty directories do not count."""
    root = Path(storage_dir)
    if not root.exists():
        return []
    found: list[str] = []
    for path in sorted(root.rglob("*")):
        if path.is_dir():
            continue
        relative = path.relative_to(root).as_posix()
        if (
            relative.startswith("job-result-store/")
            and path.name.endswith(".json")
            and "_DIRTY" not in path.name
        ):
            continue
        found.append(f"file {relative}")
    return found
