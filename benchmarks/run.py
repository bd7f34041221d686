"""The one entry point of the benchmarks.

    uv sync --group bench
    uv run --group bench python -m benchmarks.run [--quick] [--only NAME ...] [--trials N] [--backends B ...]
        [--skip-flink] [--no-readme]

Names: ``leader-notification``, ``checkpoint-commits``, ``plan-recovery``, ``memory``, ``handover`` (the
backends' own ``benchmarks/<backend>_handover.py``; group ``ha``), and
``failover`` (our cluster, side by side with Flink 2.3 on the same ZooKeeper unless ``--skip-flink``). Results
go to ``benchmarks/results/<date>.json`` / ``.md`` / ``-*.png`` (``<date>-quick`` with ``--quick``); a later run
on the same day replaces the benchmarks it re-ran and keeps the others. The results section of
``benchmarks/README.md`` is rewritten unless ``--no-readme`` (quick runs never touch it).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import re
import sys
import time
from pathlib import Path
from typing import Any

from ._common import (
    BENCH_DIR,
    RESULTS_DIR,
    WORK_DIR,
    BenchmarkResult,
    RunOptions,
    compile_bytecode,
    environment_metadata,
)
from .report import write_report

ALL = ("leader-notification", "checkpoint-commits", "plan-recovery", "memory", "handover", "failover")
GROUPS = {
    "ha": ("leader-notification", "checkpoint-commits", "plan-recovery", "memory", "handover"),
    "all": ALL,
}

_log = logging.getLogger("benchmarks")


def expand_names(only: list[str] | None) -> list[str]:
    """``--only`` values to benchmark names, in canonical order; unknown names are an error naming the valid ones."""
    if not only:
        return list(ALL)
    wanted: set[str] = set()
    for name in only:
        if name in GROUPS:
            wanted.update(GROUPS[name])
        elif name in ALL:
            wanted.add(name)
        else:
            raise SystemExit(f"unknown benchmark {name!r}; choose from {', '.join((*ALL, *GROUPS))}")
    return [n for n in ALL if n in wanted]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    ap.add_argument(
        "--quick", action="store_true", help="few trials and samples: a smoke run of every benchmark"
    )
    ap.add_argument(
        "--only", nargs="+", metavar="NAME", help=f"run only these ({', '.join((*ALL, *GROUPS))})"
    )
    ap.add_argument("--trials", type=int, help="trials per case (default 10, quick 3)")
    ap.add_argument(
        "--samples", type=int, help="leader-notification samples per backend (default 200, quick 30)"
    )
    ap.add_argument(
        "--backends",
        nargs="+",
        metavar="B",
        help="only these backends (filesystem zookeeper etcd kubernetes)",
    )
    ap.add_argument("--skip-flink", action="store_true", help="do not run Flink 2.3 next to our failover")
    ap.add_argument(
        "--budget", type=float, help="time budget of each benchmark in seconds (default 3600, quick 900)"
    )
    ap.add_argument(
        "--work-dir", type=Path, default=WORK_DIR, help="scratch space (default benchmarks/.work)"
    )
    ap.add_argument(
        "--out-dir", type=Path, default=RESULTS_DIR, help="where results go (default benchmarks/results)"
    )
    ap.add_argument(
        "--keep-work", action="store_true", help="keep every failover case's logs, not only failed ones"
    )
    ap.add_argument("--no-readme", action="store_true", help="leave benchmarks/README.md alone")
    ap.add_argument("--tag", help="name the result files <date>-<tag> (e.g. a run on another branch)")
    ap.add_argument("-v", "--verbose", action="store_true")
    return ap.parse_args(argv)


def options_from(args: argparse.Namespace) -> RunOptions:
    overrides: dict[str, Any] = {
        "skip_flink": args.skip_flink,
        "work_dir": args.work_dir.resolve(),
        "keep_work": args.keep_work,
    }
    if args.trials is not None:
        if args.trials < 1:
            raise SystemExit("--trials must be at least 1")
        overrides["trials"] = args.trials
    if args.samples is not None:
        if args.samples < 1:
            raise SystemExit("--samples must be at least 1")
        overrides["samples"] = args.samples
    if args.budget is not None:
        overrides["budget_s"] = args.budget
    if args.backends:
        overrides["backends"] = tuple(args.backends)
    if args.quick:
        return RunOptions.quick_defaults(**overrides)
    return RunOptions(**overrides)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # our progress at INFO; the libraries (kazoo, httpx, lightkube, standby itself) only when they warn
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("benchmarks").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    logging.getLogger("flink-bench").setLevel(logging.INFO)
    names = expand_names(args.only)
    opts = options_from(args)
    if args.tag is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", args.tag):
        raise SystemExit(f"--tag {args.tag!r}: use letters, digits, '.', '_' and '-'")
    environment = environment_metadata()
    environment.update(compile_bytecode())
    started = time.monotonic()
    results: list[BenchmarkResult] = []

    primitives = [n for n in names if n != "failover"]
    if primitives:
        from .ha_primitives import run_ha_primitives

        results += run_ha_primitives(opts, primitives)
    if "failover" in names:
        from .failover import run_failover

        results += run_failover(opts)

    run_id = environment["date"]
    for result in results:  # comparisons pair trials of the same invocation only
        result.metadata["run_id"] = run_id
    options = {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(opts).items()}
    options["only"] = names
    if args.tag:
        options["tag"] = args.tag
    options["duration_s"] = round(time.monotonic() - started, 1)
    readme = None if (args.no_readme or opts.quick) else BENCH_DIR / "README.md"
    written = write_report(results, environment, options, args.out_dir, readme)
    for kind, path in written.items():
        _log.info("wrote %s: %s", kind, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
