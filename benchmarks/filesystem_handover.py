"""Benchmark (not a test): leader hand-over time of the ``filesystem`` HA backend between OS processes.

Two JobManager-like processes contend for the dispatcher leadership, a third process follows it with a retriever.
Each trial ends the leader — by SIGKILL or gracefully (its election is closed) — and measures, on the host's
monotonic clock shared by all processes:

* grant: from the kill (or the close request) to the standby being granted leadership;
* retriever: from the kill to the retriever in another process seeing the new leader's address.

A fresh standby is started after every trial, so each trial has one leader and one waiting standby.

    uv run python -m benchmarks.filesystem_handover --trials 20
    uv run python -m benchmarks.filesystem_handover --trials 10 --poll     # inotify off: polling only

Results go to ``benchmarks/results/filesystem-handover-<date>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import functools
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.backends.filesystem.fs_ha_testing import ChildProcess

RESULTS_DIR = Path(__file__).with_name("results")


async def _leader_seen(retriever: ChildProcess, address: str, after: int) -> float:
    """Time of the first ``LEADER <address>`` line after the first ``after`` ones."""
    count = after + 1
    while True:
        fields = await retriever.wait_for("LEADER", count)
        if fields[1] == address:
            return float(fields[0])
        count += 1


def _record_time(times: list[float], _: object) -> None:
    times.append(time.monotonic())


async def _contender(name: str, storage: str, mode: str) -> ChildProcess:
    child = await ChildProcess(name).start("contender", storage, name, mode)
    await child.wait_for("READY", limit=60)
    return child


async def run_trials(trials: int, how: str, mode: str) -> list[dict[str, float]]:
    results: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="standby-handover-") as storage:
        retriever = await ChildProcess("retriever").start("retriever", storage, "retriever", mode)
        children = [retriever]
        try:
            await retriever.wait_for("READY", limit=60)
            leader = await _contender("jm-0", storage, mode)
            children.append(leader)
            await leader.wait_for("CONFIRMED", limit=60)
            standby = await _contender("jm-1", storage, mode)
            children.append(standby)
            await _leader_seen(retriever, f"http://{leader.name}", 0)
            for trial in range(trials):
                seen_before = len(retriever.events("LEADER"))
                assert leader.process is not None
                exited: list[float] = []
                start = time.monotonic()
                if how == "sigkill":
                    leader.kill()
                else:
                    assert leader.process.stdin is not None
                    leader.process.stdin.close()
                exit_task = asyncio.ensure_future(leader.process.wait())
                exit_task.add_done_callback(functools.partial(_record_time, exited))
                granted = float((await standby.wait_for("GRANTED", limit=60))[0])
                seen = await _leader_seen(retriever, f"http://{standby.name}", seen_before)
                await asyncio.wait_for(exit_task, 60)
                results.append(
                    {
                        "grant_ms": (granted - start) * 1000,
                        "retriever_ms": (seen - start) * 1000,
                        # when this process saw the old leader's exit (reaped): the part of a SIGKILL hand-over
                        # spent by the kernel tearing the process down
                        "leader_exit_ms": (exited[0] - start) * 1000,
                    }
                )
                await standby.wait_for("CONFIRMED", limit=60)
                await leader.stop()
                leader, standby = standby, await _contender(f"jm-{trial + 2}", storage, mode)
                children.append(standby)
        finally:
            for child in children:
                await child.stop()
    return results


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median": round(statistics.median(ordered), 3),
        "min": round(ordered[0], 3),
        "max": round(ordered[-1], 3),
        "p90": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 3),
    }


def _filesystem_of(path: str) -> str:
    best = ("", "?")
    try:
        with open("/proc/mounts") as mounts:
            for line in mounts:
                parts = line.split()
                if len(parts) >= 3 and path.startswith(parts[1]) and len(parts[1]) > len(best[0]):
                    best = (parts[1], parts[2])
    except OSError:
        pass
    return best[1]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--poll", action="store_true", help="disable inotify (polling every 100 ms only)")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    if args.trials < 1:
        parser.error("--trials must be at least 1")
    mode = "poll" if args.poll else "inotify"
    report: dict[str, Any] = {
        "benchmark": "filesystem_handover",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "trials": args.trials,
        "watch": mode,
        "poll_interval_ms": 100,
        "environment": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "storage_filesystem": _filesystem_of(tempfile.gettempdir()),
        },
    }
    for how in ("sigkill", "graceful"):
        samples = await run_trials(args.trials, how, mode)
        report[how] = {
            "grant_ms": _summary([s["grant_ms"] for s in samples]),
            "retriever_ms": _summary([s["retriever_ms"] for s in samples]),
            "leader_exit_ms": _summary([s["leader_exit_ms"] for s in samples]),
            "samples": [{k: round(v, 3) for k, v in s.items()} for s in samples],
        }
        print(
            f"{how:9s} ({mode}, {args.trials} trials): median grant {report[how]['grant_ms']['median']:.1f} ms, "
            f"median retriever {report[how]['retriever_ms']['median']:.1f} ms, "
            f"median exit of the old leader {report[how]['leader_exit_ms']['median']:.1f} ms"
        )
    suffix = "" if mode == "inotify" else "-poll"
    output = (
        args.output or RESULTS_DIR / f"filesystem-handover-{datetime.date.today().isoformat()}{suffix}.json"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results written to {output}")


if __name__ == "__main__":
    asyncio.run(main())
