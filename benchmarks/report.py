"""Benchmark report: the results JSON, a Markdown table, PNG plots, and the results section of the README.

Everything here is a pure function of the results document except :func:`write_report` (files) and the plot
functions (matplotlib, group ``bench``). The document is::

    {"benchmark": "standby", "environment": {...}, "options": {...},
     "benchmarks": {name: BenchmarkResult.to_json()}, "comparisons": [...], "goals": [...]}

Comparisons put each case of ``failover`` next to the same case of ``failover-flink`` (same ZooKeeper server,
same session timeout, same kill signal, same invocation): per metric both summaries and the median of the
pair-by-pair ratios standby/Flink (trial i against trial i). Goals check our medians against the targets.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._common import BENCH_DIR, RESULTS_DIR, BenchmarkResult, Case, percentile, ratio_summary, summarize

README_BEGIN = "<!-- results:begin -->"
README_END = "<!-- results:end -->"

OURS = "failover"
FLINK = "failover-flink"

#: metrics compared side by side with Flink, in table order
COMPARED_METRICS = (
    "new_leader_s",
    "job_running_s",
    "checkpoint_s",
    "recovery_overhead_s",
    "leader_rss_mib",
    "standby_rss_mib",
    "start_to_rest_s",
)

METRIC_LABELS = {
    "new_leader_s": "kill → new leader",
    "job_running_s": "kill → all tasks running",
    "checkpoint_s": "kill → first new checkpoint",
    "recovery_overhead_s": "recovery overhead (leader → running)",
    "leader_rss_mib": "leader JM RSS",
    "standby_rss_mib": "standby JM RSS",
    "start_to_rest_s": "JM start → REST answering",
    "grant_to_notified_s": "grant → retriever notified (other process)",
    "confirmed_to_notified_s": "confirm returned → retriever notified",
    "grant_to_confirmed_s": "grant → confirm returned",
    "close_to_regrant_s": "close → re-granted (same process)",
    "commits_per_s": "checkpoint commits per second",
    "commit_latency_s": "checkpoint commit latency",
    "rss_interpreter_mib": "RSS: interpreter + imports",
    "rss_services_mib": "RSS: + HA services, leading",
    "rss_recovered_mib": "RSS: + every job's HA data recovered",
    "rss_per_job_kib": "RSS per recovered job",
    "recover_all_s": "recover all jobs' HA data",
    "jobmaster_grant_to_running_s": "JobMaster grant → all running (its metric)",
    "jobmaster_created_to_running_s": "JobMaster created → all running (job timestamps)",
    "internal_running_s": "kill → all running (JobMaster's own clock)",
    "checkpoint_ack_s": "kill → new checkpoint acknowledged (its timestamp)",
    "rest_server_leader_s": "kill → new rest_server leader",
    "resource_manager_leader_s": "kill → new resource_manager leader",
    "dispatcher_leader_s": "kill → new dispatcher leader",
    "restart_to_rest_s": "JM restart → REST answering (under load)",
    "restarted_standby_rss_mib": "restarted standby JM RSS",
    "start_to_rest_any_s": "JM start → REST answers anything",
    "log_grant_s": "kill → leadership granted (Flink log)",
    "log_all_running_s": "kill → all running (Flink log)",
    "log_checkpoint_s": "kill → checkpoint completed (Flink log)",
    "checkpoint_flink_ack_s": "kill → new checkpoint acknowledged (its timestamp)",
    "grant_s": "leader ended → standby granted",
    "retriever_s": "leader ended → new leader seen by a retriever (other process)",
    "confirmed_s": "leader ended → new leader published",
    "leader_exit_s": "leader ended → its process reaped",
    "lease_left_s": "lease left at the kill",
    "leader_stopping_s": "signal → old leader starts closing",
    "leader_released_s": "signal → old leader released the lock",
}

#: Flink 2.3 with a 4 s ZooKeeper session, measured earlier on this machine (the issue's reference figures)
FLINK_REFERENCE: dict[tuple[str, str], float] = {
    ("SIGKILL", "new_leader_s"): 3.97,
    ("SIGKILL", "job_running_s"): 5.49,
    ("SIGKILL", "checkpoint_s"): 5.71,
    ("SIGTERM", "new_leader_s"): 0.35,
    ("SIGTERM", "job_running_s"): 2.04,
    ("*", "recovery_overhead_s"): 1.56,
    ("*", "standby_rss_mib"): 230.0,
    ("*", "leader_rss_mib"): 338.0,
    ("*", "start_to_rest_s"): 6.7,
}


# ---------------------------------------------------------------------------------------------- goals


@dataclass(frozen=True)
class Goal:
    """A target for the median of ``metric`` in every matching case of the ``failover`` benchmark."""

    text: str
    metric: str
    applies: Callable[[str, Mapping[str, Any]], bool]
    target: Callable[[Mapping[str, Any]], float]
    #: further series measuring the same thing, pooled with ``metric`` (more trials per case)
    pooled: tuple[str, ...] = ()


def _signal(meta: Mapping[str, Any]) -> str:
    return str(meta.get("kill_signal", ""))


GOALS: tuple[Goal, ...] = (
    Goal("recovery overhead < 0.2 s", "recovery_overhead_s", lambda _c, _m: True, lambda _m: 0.2),
    Goal(
        "SIGKILL → job running within session timeout + 0.3 s (ZooKeeper)",
        "job_running_s",
        lambda _c, m: m.get("backend") == "zookeeper" and _signal(m) == "SIGKILL",
        lambda m: float(m.get("session_timeout_s") or 0.0) + 0.3,
    ),
    Goal(
        "SIGKILL → job running < 1 s (filesystem)",
        "job_running_s",
        lambda _c, m: m.get("backend") == "filesystem" and _signal(m) == "SIGKILL",
        lambda _m: 1.0,
    ),
    Goal(
        "SIGTERM → job running < 0.5 s",
        "job_running_s",
        lambda _c, m: _signal(m) == "SIGTERM",
        lambda _m: 0.5,
    ),
    Goal("standby JM < 80 MiB", "standby_rss_mib", lambda _c, _m: True, lambda _m: 80.0),
    # the three initial starts of a case and every restart of a killed JobManager (spawn -> GET /overview 200)
    Goal(
        "JM start → REST < 1.5 s",
        "start_to_rest_s",
        lambda _c, _m: True,
        lambda _m: 1.5,
        pooled=("restart_to_rest_s",),
    ),
)


def evaluate_goals(benchmarks: Mapping[str, BenchmarkResult]) -> list[dict[str, Any]]:
    """Each goal against each matching case of ``failover`` that ran (median vs target)."""
    ours = benchmarks.get(OURS)
    if ours is None:
        return []
    rows: list[dict[str, Any]] = []
    for goal in GOALS:
        for case_name, case in ours.cases.items():
            if case.skipped or case.error or not goal.applies(case_name, case.metadata):
                continue
            values = list(case.series.get(goal.metric, []))
            for other in goal.pooled:
                values += case.series.get(other, [])
            stats = summarize(values)
            median = stats["median"]
            if median is None:
                continue
            target = goal.target(case.metadata)
            rows.append(
                {
                    "goal": goal.text,
                    "case": case_name,
                    "metric": goal.metric,
                    "median": median,
                    "max": stats["max"],
                    "n": stats["n"],
                    "target": target,
                    "met": float(median) < target,
                    "flink_reference": flink_reference(_signal(case.metadata), goal.metric),
                }
            )
    return rows


def flink_reference(signal: str, metric: str) -> float | None:
    return FLINK_REFERENCE.get((signal, metric), FLINK_REFERENCE.get(("*", metric)))


# ---------------------------------------------------------------------------------------------- comparisons


def compare(
    ours: BenchmarkResult, theirs: BenchmarkResult, metrics: Sequence[str] = COMPARED_METRICS
) -> list[dict[str, Any]]:
    """Per case both ran and per metric both have: both summaries and the pair-by-pair ratio ours/theirs.

    Only results of the same invocation are paired (``metadata["run_id"]``): trial i of one run says nothing
    about trial i of another run under another load.
    """
    rows: list[dict[str, Any]] = []
    if ours.metadata.get("run_id") != theirs.metadata.get("run_id"):
        return rows
    for case_name, mine in ours.cases.items():
        other = theirs.cases.get(case_name)
        if other is None or mine.skipped or other.skipped:
            continue
        for metric in metrics:
            a = mine.series.get(metric)
            b = other.series.get(metric)
            if not a or not b:
                continue
            rows.append(
                {
                    "case": case_name,
                    "metric": metric,
                    "ours": summarize(a),
                    "theirs": summarize(b),
                    "ratio": ratio_summary(a, b),
                }
            )
    return rows


def comparisons(benchmarks: Mapping[str, BenchmarkResult]) -> list[dict[str, Any]]:
    ours, theirs = benchmarks.get(OURS), benchmarks.get(FLINK)
    if ours is None or theirs is None:
        return []
    return compare(ours, theirs)


# ---------------------------------------------------------------------------------------------- document


def build_document(
    results: Sequence[BenchmarkResult],
    environment: Mapping[str, Any],
    options: Mapping[str, Any],
    previous: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The results document; benchmarks of ``previous`` (same day) that were not re-run are kept."""
    benchmarks: dict[str, BenchmarkResult] = {}
    runs: list[dict[str, Any]] = []
    if previous is not None:
        for name, body in (previous.get("benchmarks") or {}).items():
            benchmarks[name] = BenchmarkResult.from_json(body)
        runs = list(previous.get("runs") or [])
    for result in results:
        benchmarks[result.name] = result
    runs.append(
        {"environment": dict(environment), "options": dict(options), "ran": [r.name for r in results]}
    )
    return {
        "benchmark": "standby",
        "environment": dict(environment),
        "options": dict(options),
        "runs": runs,
        "benchmarks": {name: b.to_json() for name, b in benchmarks.items()},
        "comparisons": comparisons(benchmarks),
        "goals": evaluate_goals(benchmarks),
    }


def load_benchmarks(document: Mapping[str, Any]) -> dict[str, BenchmarkResult]:
    return {
        name: BenchmarkResult.from_json(body) for name, body in (document.get("benchmarks") or {}).items()
    }


# ---------------------------------------------------------------------------------------------- formatting


def fmt(value: float | int | None, unit: str = "s") -> str:
    """A number for a table: seconds below 0.1 s in ms, MiB with one decimal, rates as integers."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    v = float(value)
    if unit == "s":
        if abs(v) < 0.1:
            return f"{v * 1000:.2f} ms" if abs(v) < 0.01 else f"{v * 1000:.1f} ms"
        return f"{v:.3f} s" if abs(v) < 10 else f"{v:.2f} s"
    if unit == "MiB":
        return f"{v:.1f} MiB"
    if unit == "KiB":
        return f"{v:.2f} KiB"
    if unit == "1/s":
        return f"{v:.0f}/s" if v >= 100 else f"{v:.1f}/s"
    if unit == "x":
        return f"{v:.2f}x"
    return f"{v:.4g} {unit}".strip()


def fmt_range(stats: Mapping[str, Any], unit: str) -> str:
    if stats.get("median") is None:
        return "-"
    return f"{fmt(stats['median'], unit)} ({fmt(stats['min'], unit)} - {fmt(stats['max'], unit)})"


def label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric.replace("_", " "))


def unit_of(metric: str) -> str:
    if metric.endswith("_mib"):
        return "MiB"
    if metric.endswith("_kib"):
        return "KiB"
    if metric.endswith("_per_s"):
        return "1/s"
    return "s"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return lines


def comparison_lines(document: Mapping[str, Any]) -> list[str]:
    rows = []
    for row in document.get("comparisons") or []:
        unit = unit_of(row["metric"])
        ratio = row["ratio"]
        ratio_text = (
            "-"
            if ratio.get("median") is None
            else f"{fmt(ratio['median'], 'x')} ({fmt(ratio['min'], 'x')} - {fmt(ratio['max'], 'x')}, {ratio['pairs']} pairs)"
        )
        rows.append(
            [
                row["case"],
                label(row["metric"]),
                fmt_range(row["ours"], unit),
                fmt_range(row["theirs"], unit),
                ratio_text,
            ]
        )
    if not rows:
        return []
    return _table(
        [
            "case",
            "metric",
            "standby median (min - max)",
            "Flink 2.3 median (min - max)",
            "standby / Flink (median of pair ratios)",
        ],
        rows,
    )


def goal_lines(document: Mapping[str, Any]) -> list[str]:
    rows = []
    for g in document.get("goals") or []:
        unit = unit_of(g["metric"])
        ref = g.get("flink_reference")
        rows.append(
            [
                g["goal"],
                g["case"],
                f"{fmt(g['median'], unit)} (max {fmt(g.get('max'), unit)}, n={g.get('n')})",
                f"< {fmt(g['target'], unit)}",
                "yes" if g["met"] else "**no**",
                fmt(ref, unit) if ref is not None else "-",
            ]
        )
    if not rows:
        return []
    return _table(["goal", "case", "standby median", "target", "met", "Flink 2.3 (reference, 4 s ZK)"], rows)


def benchmark_lines(result: BenchmarkResult) -> list[str]:
    lines = [f"### {result.title}", "", f"`{result.name}`", ""]
    rows = []
    skipped = []
    for case_name, case in result.cases.items():
        if case.skipped:
            skipped.append(f"- {case_name}: skipped — {case.skipped}")
            continue
        if case.error:
            skipped.append(f"- {case_name}: **failed** — {case.error}")
        names = [h for h in result.headline if h in case.series] or list(case.series)
        for name in names:
            unit = case.units.get(name, unit_of(name))
            st = summarize(case.series[name])
            if st["n"] == 0:
                continue
            rows.append(
                [
                    case_name,
                    label(name),
                    str(st["n"]),
                    fmt(st["median"], unit),
                    f"{fmt(st['min'], unit)} - {fmt(st['max'], unit)}",
                    fmt(st["p99"], unit),
                ]
            )
    if rows:
        lines += _table(["case", "metric", "n", "median", "min - max", "p99"], rows)
    else:
        lines.append("No case ran.")
    if skipped:
        lines += ["", *skipped]
    return lines


def environment_line(document: Mapping[str, Any]) -> str:
    env = document.get("environment") or {}
    opts = document.get("options") or {}
    parts = [
        f"{env.get('date', '?')}",
        f"host {env.get('host', '?')} ({env.get('cpus', '?')} CPUs, load {env.get('loadavg')})",
        f"Python {env.get('python', '?')}",
        f"commit {env.get('git_commit', '?')}{' (dirty)' if env.get('git_dirty') else ''}",
        f"trials {opts.get('trials', '?')}{', quick' if opts.get('quick') else ''}",
    ]
    return "; ".join(parts)


def render_markdown(document: Mapping[str, Any], plots: Sequence[str] = ()) -> str:
    """The full Markdown report of one results document."""
    benchmarks = load_benchmarks(document)
    lines = [
        f"# standby benchmarks — {document.get('environment', {}).get('date', '')[:10]}",
        "",
        environment_line(document),
        "",
    ]
    comparison = comparison_lines(document)
    if comparison:
        lines += ["## Side by side with Flink 2.3 (same ZooKeeper, same invocation)", "", *comparison, ""]
    goals = goal_lines(document)
    if goals:
        lines += ["## Goals", "", *goals, ""]
    order = [OURS, FLINK, "leader-notification", "checkpoint-commits", "plan-recovery", "memory"]
    names = [n for n in order if n in benchmarks] + [n for n in benchmarks if n not in order]
    if names:
        lines += ["## All figures (median, min - max, p99)", ""]
    for name in names:
        lines += [*benchmark_lines(benchmarks[name]), ""]
    if plots:
        lines += ["## Plots", ""] + [f"![{Path(p).stem}]({Path(p).name})" for p in plots] + [""]
    return "\n".join(lines).rstrip() + "\n"


def headline_lines(document: Mapping[str, Any]) -> list[str]:
    """The compact tables of the README: failover next to Flink, then one row per headline HA-primitive figure."""
    benchmarks = load_benchmarks(document)
    lines: list[str] = []
    comps = {(c["case"], c["metric"]): c for c in document.get("comparisons") or []}
    ours = benchmarks.get(OURS)
    rows: list[list[str]] = []
    phases = ("new_leader_s", "job_running_s", "checkpoint_s", "recovery_overhead_s")
    for case_name, case in (ours.cases if ours is not None else {}).items():
        if case.skipped or not case.series.get("job_running_s"):
            continue
        row = [case_name]
        for metric in phases:
            text = fmt(summarize(case.series.get(metric, []))["median"], "s")
            comp = comps.get((case_name, metric))
            if comp and comp["theirs"]["median"] is not None:
                ratio = comp["ratio"]["median"]
                text += f" (Flink {fmt(comp['theirs']['median'], 's')}" + (
                    f", {fmt(ratio, 'x')})" if ratio is not None else ")"
                )
            row.append(text)
        row.append(fmt(summarize(case.series.get("standby_rss_mib", []))["median"], "MiB"))
        rows.append(row)
    if rows:
        lines += _table(
            [
                "failover case",
                "kill → new leader",
                "kill → all tasks running",
                "kill → first new checkpoint",
                "recovery overhead",
                "standby JM RSS",
            ],
            rows,
        )
        lines += [
            "",
            "Medians over the trials; in brackets Flink 2.3 on the same ZooKeeper in the same run, and the median "
            "of the pair-by-pair ratios standby / Flink.",
        ]
    rows = []
    primitives = [
        ("leader-notification", "grant_to_notified_s", "p50/p99"),
        ("handover", "grant_s", "median"),
        ("checkpoint-commits", "commits_per_s", "median"),
        ("plan-recovery", "plans_100", "median"),
        ("plan-recovery", "plans_1000", "median"),
        ("memory", "rss_recovered_mib", "median"),
    ]
    for bench, metric, kind in primitives:
        result = benchmarks.get(bench)
        if result is None:
            continue
        for case_name, case in result.cases.items():
            values = case.series.get(metric)
            if case.skipped or not values:
                continue
            unit = case.units.get(metric, unit_of(metric))
            st = summarize(values)
            if kind == "p50/p99":
                text = f"p50 {fmt(st['p50'], unit)}, p99 {fmt(st['p99'], unit)} (n={st['n']})"
            else:
                text = fmt_range(st, unit)
            name = label(metric) if not metric.startswith("plans_") else f"recover {metric[6:]} plans"
            rows.append([bench, case_name, name, text])
    if rows:
        if lines:
            lines.append("")
        lines += _table(["HA primitive", "case", "figure", "median (min - max)"], rows)
    return lines or ["No results yet."]


def skipped_lines(document: Mapping[str, Any]) -> list[str]:
    """One line per distinct reason: which cases of which benchmarks it kept from running."""
    by_reason: dict[str, list[str]] = {}
    for name, result in load_benchmarks(document).items():
        for case_name, case in result.cases.items():
            if case.skipped:
                by_reason.setdefault(case.skipped, []).append(f"{name} {case_name}")
    return [f"- {', '.join(sorted(where))}: {reason}" for reason, where in sorted(by_reason.items())]


def render_readme_section(document: Mapping[str, Any], markdown_name: str, plots: Sequence[str] = ()) -> str:
    lines = [
        README_BEGIN,
        f"Latest results ({environment_line(document)}); full tables in [`results/{markdown_name}`](results/{markdown_name}).",
        "",
        *headline_lines(document),
    ]
    skipped = skipped_lines(document)
    if skipped:
        lines += ["", "Skipped in this run:", *skipped]
    if plots:
        lines += ["", *[f"![{Path(p).stem}](results/{Path(p).name})" for p in plots]]
    lines.append(README_END)
    return "\n".join(lines)


def update_readme(text: str, section: str) -> str:
    """Replace what is between the markers (inclusive) by ``section``; append it when the markers are missing."""
    pattern = re.compile(re.escape(README_BEGIN) + r".*?" + re.escape(README_END), re.DOTALL)
    if pattern.search(text):
        return pattern.sub(lambda _m: section, text, count=1)
    return text.rstrip() + "\n\n## Results\n\n" + section + "\n"


# ---------------------------------------------------------------------------------------------- plots


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plain_log_ticks(axis: Any) -> None:
    """Tick labels of a log axis as plain numbers (1, 10, 100), no minor labels."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def plot_failover(document: Mapping[str, Any], path: Path) -> bool:
    """Grouped bars (median, min-max whiskers) of the failover phases, ours and Flink's side by side."""
    benchmarks = load_benchmarks(document)
    groups: list[tuple[str, Case]] = []
    ours = benchmarks.get(OURS)
    theirs = benchmarks.get(FLINK)
    names = list(ours.cases) if ours is not None else []
    names += [n for n in (theirs.cases if theirs is not None else {}) if n not in names]
    for case_name in names:  # each of our cases with Flink's same case right after it
        for result, prefix in ((ours, "standby"), (theirs, "Flink")):
            case = result.cases.get(case_name) if result is not None else None
            if case is not None and not case.skipped and case.series.get("job_running_s"):
                groups.append((f"{prefix}\n" + case_name.replace("/", "\n"), case))
    if not groups:
        return False
    metrics = ["new_leader_s", "job_running_s", "checkpoint_s", "recovery_overhead_s"]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(7.0, 0.85 * len(groups) + 2), 4.8))
    width = 0.8 / len(metrics)
    for k, metric in enumerate(metrics):
        xs, meds, lows, highs = [], [], [], []
        for i, (_label, case) in enumerate(groups):
            st = summarize(case.series.get(metric, []))
            if st["median"] is None:
                continue
            xs.append(i + (k - (len(metrics) - 1) / 2) * width)
            meds.append(float(st["median"]))
            lows.append(float(st["median"]) - float(st["min"]))  # type: ignore[arg-type]
            highs.append(float(st["max"]) - float(st["median"]))  # type: ignore[arg-type]
        ax.bar(xs, meds, width, yerr=[lows, highs], capsize=2, label=label(metric))
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([g[0] for g in groups], fontsize=7)
    ax.set_ylabel("seconds after the kill (median, min-max)")
    ax.set_title("JobManager failover")
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def plot_notification(document: Mapping[str, Any], path: Path) -> bool:
    """Empirical CDF of grant → notified in another process, one line per backend (log x)."""
    result = load_benchmarks(document).get("leader-notification")
    if result is None:
        return False
    lines = [
        (n, sorted(c.series["grant_to_notified_s"]))
        for n, c in result.cases.items()
        if c.series.get("grant_to_notified_s")
    ]
    if not lines:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, values in lines:
        ys = [(i + 1) / len(values) for i in range(len(values))]
        p50 = percentile(values, 50.0) * 1000
        ax.step([v * 1000 for v in values], ys, where="post", label=f"{name} (p50 {p50:.1f} ms)")
    ax.set_xscale("log")
    _plain_log_ticks(ax.xaxis)
    ax.set_xlabel("grant → confirmed leader seen in another process (ms)")
    ax.set_ylabel("fraction of samples")
    ax.set_title("Leader notification latency")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def plot_plan_recovery(document: Mapping[str, Any], path: Path) -> bool:
    """Recovery time of a new leader against the number of stored plans, one line per backend (log-log)."""
    result = load_benchmarks(document).get("plan-recovery")
    if result is None:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    drawn = False
    for name, case in result.cases.items():
        points = []
        for series, values in case.series.items():
            m = re.fullmatch(r"plans_(\d+)", series)
            st = summarize(values)
            if m and st["median"] is not None:
                points.append((int(m.group(1)), float(st["median"]), float(st["min"]), float(st["max"])))  # type: ignore[arg-type]
        if not points:
            continue
        points.sort()
        ns = [p[0] for p in points]
        med = [p[1] for p in points]
        ax.errorbar(
            ns,
            med,
            yerr=[[p[1] - p[2] for p in points], [p[3] - p[1] for p in points]],
            marker="o",
            capsize=3,
            label=name,
        )
        drawn = True
    if not drawn:
        plt.close(fig)
        return False
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_log_ticks(ax.xaxis)
    ax.set_xlabel("stored execution plans")
    ax.set_ylabel("get_job_ids + recover all (s)")
    ax.set_title("Recovery time of a new leader")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def plot_bars(
    document: Mapping[str, Any], bench: str, series: Sequence[str], ylabel: str, title: str, path: Path
) -> bool:
    """Bars (median, min-max whiskers) of ``series`` per case of ``bench``."""
    result = load_benchmarks(document).get(bench)
    if result is None:
        return False
    cases = [(n, c) for n, c in result.cases.items() if any(c.series.get(s) for s in series)]
    if not cases:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    width = 0.8 / len(series)
    for k, s in enumerate(series):
        xs, meds, lows, highs = [], [], [], []
        for i, (_n, case) in enumerate(cases):
            st = summarize(case.series.get(s, []))
            if st["median"] is None:
                continue
            xs.append(i + (k - (len(series) - 1) / 2) * width)
            meds.append(float(st["median"]))
            lows.append(float(st["median"]) - float(st["min"]))  # type: ignore[arg-type]
            highs.append(float(st["max"]) - float(st["median"]))  # type: ignore[arg-type]
        ax.bar(xs, meds, width, yerr=[lows, highs], capsize=3, label=label(s))
    ax.set_xticks(range(len(cases)))
    ax.set_xticklabels([n for n, _ in cases], fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if len(series) > 1:
        ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def write_plots(document: Mapping[str, Any], out_dir: Path, stem: str) -> list[Path]:
    """Every plot the document has data for; empty when matplotlib is missing (``uv sync --group bench``)."""
    try:
        _pyplot()
    except ImportError:
        return []
    made: list[Path] = []
    jobs: list[tuple[str, Callable[[Path], bool]]] = [
        ("failover", lambda p: plot_failover(document, p)),
        ("notification", lambda p: plot_notification(document, p)),
        ("plan-recovery", lambda p: plot_plan_recovery(document, p)),
        (
            "commits",
            lambda p: plot_bars(
                document,
                "checkpoint-commits",
                ["commits_per_s"],
                "commits per second",
                "Checkpoint commits",
                p,
            ),
        ),
        (
            "memory",
            lambda p: plot_bars(
                document,
                "memory",
                ["rss_interpreter_mib", "rss_services_mib", "rss_recovered_mib"],
                "RSS (MiB)",
                "Memory with the HA data of many jobs recovered",
                p,
            ),
        ),
    ]
    for suffix, draw in jobs:
        path = out_dir / f"{stem}-{suffix}.png"
        if draw(path):
            made.append(path)
        elif path.exists():
            path.unlink()
    return made


# ---------------------------------------------------------------------------------------------- files


def _flat(value: Any) -> bool:
    """A scalar, or a list/dict of scalars (or of lists of scalars): short enough to go on one line."""
    if isinstance(value, dict):
        return all(
            not isinstance(v, (dict, list))
            or (isinstance(v, list) and all(not isinstance(x, (dict, list)) for x in v))
            for v in value.values()
        )
    if isinstance(value, list):
        return all(not isinstance(v, (dict, list)) for v in value)
    return True


def _dump(value: Any, indent: int) -> str:
    if _flat(value):
        return json.dumps(value, separators=(", ", ": "))
    pad = " " * (indent + 1)
    if isinstance(value, dict):
        items = [f"{pad}{json.dumps(str(k))}: {_dump(v, indent + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}" if items else "{}"
    items = [f"{pad}{_dump(v, indent + 1)}" for v in value]
    return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]" if items else "[]"


def dump_json(document: Mapping[str, Any]) -> str:
    """Indented JSON with every flat list or record (a series, a trial) on one line: readable and small."""
    return _dump(json.loads(json.dumps(document)), 0) + "\n"


def report_stem(date: _dt.date, quick: bool, tag: str | None = None) -> str:
    """``<date>``, ``<date>-quick``, ``<date>-<tag>``: the name of one day's result files."""
    return f"{date.isoformat()}{'-quick' if quick else ''}{f'-{tag}' if tag else ''}"


def write_report(
    results: Sequence[BenchmarkResult],
    environment: Mapping[str, Any],
    options: Mapping[str, Any],
    out_dir: Path = RESULTS_DIR,
    readme: Path | None = None,
    date: _dt.date | None = None,
    plots: bool = True,
) -> dict[str, Path]:
    """Write ``<date>.json``, ``<date>.md`` and PNGs (merging with the same day's earlier results) and the README."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = report_stem(date or _dt.date.today(), bool(options.get("quick")), options.get("tag"))
    json_path = out_dir / f"{stem}.json"
    previous = json.loads(json_path.read_text()) if json_path.exists() else None
    document = build_document(results, environment, options, previous)
    json_path.write_text(dump_json(document))
    made = write_plots(document, out_dir, stem) if plots else []
    md_path = out_dir / f"{stem}.md"
    md_path.write_text(render_markdown(document, [p.name for p in made]))
    written = {"json": json_path, "markdown": md_path}
    if readme is not None:
        text = readme.read_text() if readme.exists() else "# Benchmarks\n"
        readme.write_text(
            update_readme(text, render_readme_section(document, md_path.name, [p.name for p in made]))
        )
        written["readme"] = readme
    for p in made:
        written[p.stem] = p
    return written


def rerender(json_path: Path, readme: Path | None) -> dict[str, Path]:
    """Markdown, plots and (optionally) the README section again from a results JSON (no benchmark runs)."""
    document = json.loads(json_path.read_text())
    stem = json_path.stem
    made = write_plots(document, json_path.parent, stem)
    md_path = json_path.with_suffix(".md")
    md_path.write_text(render_markdown(document, [p.name for p in made]))
    written = {"markdown": md_path}
    if readme is not None:
        text = readme.read_text() if readme.exists() else "# Benchmarks\n"
        readme.write_text(
            update_readme(text, render_readme_section(document, md_path.name, [p.name for p in made]))
        )
        written["readme"] = readme
    return written


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.report", description="Render the Markdown, plots and README section again"
    )
    ap.add_argument("results", type=Path, help="benchmarks/results/<date>.json")
    ap.add_argument(
        "--readme", action="store_true", help="also rewrite the results section of benchmarks/README.md"
    )
    args = ap.parse_args(argv)
    for kind, path in rerender(args.results, BENCH_DIR / "README.md" if args.readme else None).items():
        print(f"wrote {kind}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
