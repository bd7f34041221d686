"""Shared pieces of the benchmarks: result containers, statistics, pair-by-pair ratios, deadlines and timing.

A benchmark returns a :class:`BenchmarkResult`: named cases (one per backend or configuration), each holding
named series (lists of float seconds or other numbers, one value per trial or sample) plus metadata, or the
reason it was skipped. Figures are reported as median with min-max (and p50/p99 for latency samples);
comparisons with Flink divide trial i of ours by trial i of Flink and report the median of those ratios.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

MIB = 1024 * 1024
ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
WORK_DIR = BENCH_DIR / ".work"


class BenchmarkError(RuntimeError):
    """A benchmark step failed; the message names the step and where to look."""


class BenchmarkTimeout(BenchmarkError):
    """A benchmark ran out of its time budget, or one of its waits timed out."""


# ---------------------------------------------------------------------------------------------- statistics


def clean(values: Sequence[float | None]) -> list[float]:
    """The finite numbers of ``values`` (None and NaN dropped)."""
    return [float(v) for v in values if v is not None and not math.isnan(float(v))]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation between closest ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of an empty series")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = math.ceil(position)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize(values: Sequence[float | None]) -> dict[str, float | int | None]:
    """n, median, min, max, mean, p50, p99 of the finite values (all None when there are none)."""
    vals = clean(values)
    if not vals:
        return {"n": 0, "median": None, "min": None, "max": None, "mean": None, "p50": None, "p99": None}
    return {
        "n": len(vals),
        "median": statistics.median(vals),
        "min": min(vals),
        "max": max(vals),
        "mean": statistics.fmean(vals),
        "p50": percentile(vals, 50.0),
        "p99": percentile(vals, 99.0),
    }


def paired_ratios(ours: Sequence[float | None], theirs: Sequence[float | None]) -> list[float]:
    """``ours[i] / theirs[i]`` for every trial i both sides have (missing, NaN or zero denominators skipped).

    Pairs are by position: trial i of ours against trial i of theirs, both from the same invocation; extra
    trials on either side have no partner and are left out.
    """
    ratios: list[float] = []
    for a, b in zip(ours, theirs, strict=False):
        if a is None or b is None:
            continue
        fa, fb = float(a), float(b)
        if math.isnan(fa) or math.isnan(fb) or fb == 0.0:
            continue
        ratios.append(fa / fb)
    return ratios


def ratio_summary(
    ours: Sequence[float | None], theirs: Sequence[float | None]
) -> dict[str, float | int | None]:
    """Median (and min, max) of the pair-by-pair ratios, with the number of pairs."""
    ratios = paired_ratios(ours, theirs)
    if not ratios:
        return {"pairs": 0, "median": None, "min": None, "max": None}
    return {"pairs": len(ratios), "median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}


# ---------------------------------------------------------------------------------------------- results


@dataclass
class Case:
    """One configuration of a benchmark (a backend, a session timeout, a kill signal...).

    ``series`` maps a name to its values (one per trial or sample); ``units`` names the unit of each series
    (``s``, ``MiB``, ``1/s``...); ``skipped`` holds the reason when the case did not run.
    """

    series: dict[str, list[float]] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None
    error: str | None = None

    @staticmethod
    def skip(reason: str, **metadata: Any) -> Case:
        return Case(skipped=reason, metadata=dict(metadata))

    def add(self, name: str, value: float | None, unit: str = "s") -> None:
        """Append one value to series ``name`` (created on first use); None is not recorded."""
        values = self.series.setdefault(name, [])
        self.units.setdefault(name, unit)
        if value is not None:
            values.append(float(value))

    def extend(self, name: str, values: Sequence[float | None], unit: str = "s") -> None:
        for value in values:
            self.add(name, value, unit)

    def summary(self) -> dict[str, dict[str, float | int | None]]:
        return {name: summarize(values) for name, values in self.series.items()}

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "series": {k: [_round(v) for v in vs] for k, vs in self.series.items()},
            "units": dict(self.units),
            "summary": {k: {s: _round(x) for s, x in st.items()} for k, st in self.summary().items()},
            "metadata": self.metadata,
        }
        if self.skipped is not None:
            body["skipped"] = self.skipped
        if self.error is not None:
            body["error"] = self.error
        return body

    @staticmethod
    def from_json(body: Mapping[str, Any]) -> Case:
        return Case(
            series={str(k): [float(v) for v in vs] for k, vs in (body.get("series") or {}).items()},
            units={str(k): str(v) for k, v in (body.get("units") or {}).items()},
            metadata=dict(body.get("metadata") or {}),
            skipped=body.get("skipped"),
            error=body.get("error"),
        )


@dataclass
class BenchmarkResult:
    """What a benchmark function returns: its cases, keyed by case name, plus metadata."""

    name: str
    title: str
    cases: dict[str, Case] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    #: the series shown in the report, in order (all series when empty)
    headline: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "headline": list(self.headline),
            "metadata": self.metadata,
            "cases": {name: case.to_json() for name, case in self.cases.items()},
        }

    @staticmethod
    def from_json(body: Mapping[str, Any]) -> BenchmarkResult:
        return BenchmarkResult(
            name=str(body["name"]),
            title=str(body.get("title") or body["name"]),
            cases={str(k): Case.from_json(v) for k, v in (body.get("cases") or {}).items()},
            metadata=dict(body.get("metadata") or {}),
            headline=[str(h) for h in body.get("headline") or []],
        )


def _round(value: Any) -> Any:
    """Floats to 6 significant-enough decimals for the JSON (microseconds for seconds)."""
    if isinstance(value, float):
        return round(value, 6)
    return value


# ---------------------------------------------------------------------------------------------- options


@dataclass
class RunOptions:
    """What ``benchmarks.run`` was asked for; benchmarks scale their work with it."""

    quick: bool = False
    trials: int = 10
    #: leader-notification samples per backend
    samples: int = 200
    #: checkpoints added per trial of the commit benchmark
    commits: int = 200
    #: numbers of stored execution plans for the recovery benchmark
    plan_counts: tuple[int, ...] = (1, 10, 100, 1000)
    #: jobs whose HA data the memory benchmark recovers
    memory_jobs: int = 1000
    #: restrict to these backends (all when empty)
    backends: tuple[str, ...] = ()
    skip_flink: bool = False
    #: wall-clock bound of one benchmark (all its cases)
    budget_s: float = 3600.0
    work_dir: Path = WORK_DIR
    #: keep each failover case's scratch directory (logs of every process) even when it succeeded
    keep_work: bool = False

    @staticmethod
    def quick_defaults(**overrides: Any) -> RunOptions:
        values: dict[str, Any] = {
            "quick": True,
            "trials": 3,
            "samples": 30,
            "commits": 50,
            "plan_counts": (1, 10, 100),
            "memory_jobs": 100,
            "budget_s": 900.0,
        }
        values.update(overrides)
        return RunOptions(**values)

    def wants_backend(self, name: str) -> bool:
        return not self.backends or name in self.backends or name.split("-")[0] in self.backends


# ---------------------------------------------------------------------------------------------- time


class Deadline:
    """A wall-clock bound (monotonic) shared by the steps of one benchmark."""

    def __init__(self, seconds: float, what: str) -> None:
        self.what = what
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self._end - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self._end

    def check(self, step: str) -> None:
        if self.expired():
            raise BenchmarkTimeout(f"{self.what}: time budget of {self.seconds:.0f} s used up before {step}")

    def bound(self, timeout: float) -> float:
        """``timeout``, cut to what is left of the budget (at least a little, so a wait can still fail cleanly)."""
        return max(0.01, min(timeout, self.remaining()))


#: how long a benchmark may overrun its budget (finishing a step, cleaning up) before it is cancelled
GRACE_S = 120.0


async def bounded(benchmark: Awaitable[T], deadline: Deadline, grace: float = GRACE_S) -> T:
    """Await ``benchmark``, cancelled (its ``finally`` blocks clean up) ``grace`` seconds after the budget."""
    try:
        return await asyncio.wait_for(benchmark, deadline.remaining() + grace)
    except TimeoutError:
        raise BenchmarkTimeout(f"{deadline.what}: over its time budget of {deadline.seconds:.0f} s") from None


async def wait_for_async(
    what: str,
    check: Callable[[], Awaitable[T | None]],
    timeout: float,
    interval: float = 0.02,
) -> T:
    """Call ``check`` until it returns something other than None/False; bounded by ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:  # bounded by the deadline below
        result = await check()
        if result is not None and result is not False:
            return result
        if time.monotonic() >= deadline:
            raise BenchmarkTimeout(f"timed out after {timeout:.1f} s waiting for {what}")
        await asyncio.sleep(interval)


def wait_for(what: str, check: Callable[[], T | None], timeout: float, interval: float = 0.02) -> T:
    """Synchronous :func:`wait_for_async`."""
    deadline = time.monotonic() + timeout
    while True:  # bounded by the deadline below
        result = check()
        if result is not None and result is not False:
            return result
        if time.monotonic() >= deadline:
            raise BenchmarkTimeout(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(interval)


def rss_mib(pid: int | None = None) -> float | None:
    """Resident memory of process ``pid`` (this process when None) in MiB; None if it is gone."""
    import psutil

    try:
        return float(psutil.Process(pid if pid is not None else os.getpid()).memory_info().rss) / MIB
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


# ---------------------------------------------------------------------------------------------- environment


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def git_dirty() -> bool | None:
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(out.stdout.strip())


def compile_bytecode() -> dict[str, Any]:
    """Compile standby's and the environment's modules to bytecode before anything is measured.

    A process that must compile its imports (no ``__pycache__``, e.g. ``uv sync`` without ``--compile-bytecode``
    under ``PYTHONDONTWRITEBYTECODE``) starts about 1.5 s slower and ends 8 MiB larger; installs made by pip, or by
    uv with ``--compile-bytecode``, have the bytecode. Measuring without it would time the compiler, not standby.
    """
    import compileall
    import sysconfig

    started = time.monotonic()
    roots = [Path(__file__).resolve().parent.parent / "src", Path(sysconfig.get_paths()["purelib"])]
    ok = all(compileall.compile_dir(str(r), quiet=2, workers=0) for r in roots if r.is_dir())
    return {"bytecode_compiled": ok, "bytecode_compile_s": round(time.monotonic() - started, 1)}


def environment_metadata() -> dict[str, Any]:
    """Where and when the benchmarks ran (host load matters: note it next to the numbers)."""
    try:
        load: list[float] | None = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "host": platform.node(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "loadavg": load,
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
    }


def loadavg_1m() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None
