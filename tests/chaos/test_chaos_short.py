"""The short chaos runs of CI: a real cluster under a seeded fault schedule, then the safety checker.

Each run starts 3 JobManagers and 2 TaskManagers as processes, keeps checkpointing counter jobs running and injects
one fault of every kind its backend supports (aimed at the leader first), then heals everything, waits for the
jobs, shuts the cluster down with cleanup and checks the audit log. The long version is
``python -m standby.testing.chaos --duration 600 ...`` (docs/chaos.md). ``STANDBY_CHAOS_SEED`` overrides the seeds.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from standby.testing.chaos import ChaosOptions, ChaosReport, fault_kinds, run_chaos

pytestmark = pytest.mark.slow


def _seed(default: int) -> int:
    return int(os.environ.get("STANDBY_CHAOS_SEED", default))


def _explain(report: ChaosReport) -> str:
    logs = report.work_dir / "logs"
    tails = "\n".join(
        f"===== {log.name}\n{log.read_text(errors='replace')[-2500:]}" for log in sorted(logs.glob("*.log"))
    )
    return f"{report.render()}\n(work directory {report.work_dir})\n{tails}"


def _assert_safe(report: ChaosReport, backend: str) -> None:
    assert report.passed, _explain(report)
    assert report.check is not None
    injected = {f.spec.kind for f in report.faults}
    # the first round of the schedule has one fault of every kind: all of them must have run
    assert injected == set(fault_kinds(backend)), _explain(report)
    assert report.check.stats["failovers"] >= 1, _explain(report)
    assert report.check.stats["checkpoint_recoveries"] >= 2, _explain(report)
    assert report.check.stats["accepted_writes"].get("checkpoint_add", 0) >= 5, _explain(report)


async def _short_run(
    tmp_path: Path, backend: str, seed: int, duration_s: float, session_timeout_s: float = 3.0
) -> None:
    """One short run with the CI settings shared by every backend, then the safety checks."""
    report = await run_chaos(
        ChaosOptions(
            backend=backend,
            duration_s=duration_s,
            seed=_seed(seed),
            max_gap_s=1.5,
            finish_timeout_s=60.0,
            recovery_timeout_s=30.0,
            work_dir=tmp_path / "run",
            log=print,
            session_timeout_s=session_timeout_s,
        )
    )
    _assert_safe(report, backend)


@pytest.mark.timeout(150)
async def test_filesystem_backend_survives_a_short_chaos_run(tmp_path: Path) -> None:
    await _short_run(tmp_path, "filesystem", seed=1, duration_s=15.0)


@pytest.mark.zookeeper
@pytest.mark.timeout(170)
async def test_zookeeper_backend_survives_a_short_chaos_run(tmp_path: Path) -> None:
    await _short_run(tmp_path, "zookeeper", seed=2, duration_s=20.0, session_timeout_s=2.5)


@pytest.mark.etcd
@pytest.mark.timeout(170)
async def test_etcd_backend_survives_a_short_chaos_run(tmp_path: Path) -> None:
    await _short_run(tmp_path, "etcd", seed=3, duration_s=20.0, session_timeout_s=2.0)
