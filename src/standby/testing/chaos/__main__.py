"""``python -m standby.testing.chaos``: one chaos run from the command line (exit code 0 only if every check passed).

python -m standby.testing.chaos --backend zookeeper --duration 600 --seed 42
python -m standby.testing.chaos --check-only WORK_DIR/audit.jsonl     # re-check a kept run's audit log
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import sys
from pathlib import Path

from ._checker import check_audit_log, load_audit_log
from ._runner import BACKENDS, ChaosOptions, ChaosSetupError, run_chaos


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m standby.testing.chaos",
        description="Failure-injection safety run of a standby HA cluster (see docs/chaos.md).",
    )
    parser.add_argument("--backend", choices=BACKENDS, default="filesystem")
    parser.add_argument(
        "--duration", type=float, default=300.0, help="seconds of fault injection (default 300)"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the fault schedule (default: random)")
    parser.add_argument("--jobmanagers", type=int, default=3)
    parser.add_argument("--taskmanagers", type=int, default=2)
    parser.add_argument("--concurrent-jobs", type=int, default=2)
    parser.add_argument(
        "--job-seconds", type=float, default=None, help="compute time of one job without faults"
    )
    parser.add_argument(
        "--session-timeout",
        type=float,
        default=3.0,
        help="ZooKeeper session timeout / etcd lease TTL (seconds)",
    )
    parser.add_argument("--max-gap", type=float, default=3.0, help="longest quiet time between two faults")
    parser.add_argument("--work-dir", type=Path, default=None, help="keep everything here (logs, audit log)")
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary work directory even on success"
    )
    parser.add_argument("--report", type=Path, default=None, help="write the report as JSON to this file")
    parser.add_argument("--check-only", type=Path, default=None, metavar="AUDIT_LOG", help="only check a log")
    parser.add_argument("--verbose", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    if args.check_only is not None:
        records, bad = load_audit_log(args.check_only)
        # without the runner's job list only the job-independent checks are meaningful
        checked = check_audit_log(records, {}, None, None, bad)
        for name in ("exact-results", "no-leftover-data"):
            checked.results.remove(checked.result(name))
        print(checked.render())
        print(json.dumps(checked.stats, sort_keys=True))
        return 0 if checked.passed else 1
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    options = ChaosOptions(
        backend=args.backend,
        duration_s=args.duration,
        seed=seed,
        jobmanagers=args.jobmanagers,
        taskmanagers=args.taskmanagers,
        concurrent_jobs=args.concurrent_jobs,
        job_seconds=args.job_seconds,
        session_timeout_s=args.session_timeout,
        max_gap_s=args.max_gap,
        work_dir=args.work_dir,
        keep=args.keep,
        log=lambda line: print(line, flush=True),
    )
    try:
        report = asyncio.run(run_chaos(options))
    except ChaosSetupError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(report.render())
    if args.report is not None:
        args.report.write_text(json.dumps(report.to_json(), indent=2, sort_keys=True))
    if not report.passed:
        print(f"Kept {report.work_dir} (logs/, audit.jsonl); re-run with --seed {seed}.")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
