"""Benchmark (not a test): leader hand-over time of the ZooKeeper HA backend between OS processes.

A real ZooKeeper server (Debian's package) runs on 127.0.0.1. Two JobManager-like processes contend for the
dispatcher leadership; a third process follows it with a leader retriever. Each trial ends the leader, either by
SIGKILL (its ephemeral latch node vanishes only when the server expires its session) or gracefully (SIGTERM: it
closes its election, which deletes the latch node), and measures on the host's monotonic clock, shared by all
processes:

* ``grant_ms``: from the kill (or SIGTERM) to the standby being granted leadership;
* ``retriever_ms``: from the kill to the retriever process seeing the new leader's address.

A fresh standby is started after every trial, so each trial has one leader and one waiting standby. Session
timeouts of 2 s and 4 s are measured (Flink's default is 60 s).

    uv run python -m benchmarks.zookeeper_handover --trials 10

Results go to ``benchmarks/results/zookeeper-handover-<date>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from uuid import UUID

RESULTS_DIR = Path(__file__).with_name("results")
PROJECT_ROOT = Path(__file__).resolve().parent.parent
SESSION_TIMEOUTS = (2.0, 4.0)
WAIT = 60.0


# ------------------------------------------------------------------------------------------------ child processes


def _emit(*fields: object) -> None:
    print(*fields, flush=True)


async def _child(role: str, config_json: str, name: str) -> None:
    """One JobManager-like process: ``contender`` (leads the dispatcher) or ``retriever`` (follows it)."""
    from standby.backends.zookeeper import ZooKeeperHaServicesFactory
    from standby.config import Configuration
    from standby.ha import LeaderContender, LeaderElection, LeaderRetrievalListener

    services = await ZooKeeperHaServicesFactory().create_ha_services(Configuration(json.loads(config_json)))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    address = f"http://{name}"

    if role == "retriever":

        class Listener(LeaderRetrievalListener):
            def notify_leader_address(self, leader: str | None, session_id: UUID | None) -> None:
                _emit("LEADER", time.monotonic(), leader)

            def handle_error(self, error: Exception) -> None:
                _emit("ERROR", error)

        retriever = services.get_dispatcher_leader_retriever()
        await retriever.start(Listener())
        _emit("READY")
        await stop.wait()
        await retriever.stop()
    else:
        election = services.get_dispatcher_leader_election()
        tasks: set[asyncio.Task[None]] = set()

        class Contender(LeaderContender):
            def __init__(self, election: LeaderElection) -> None:
                self.election = election

            def grant_leadership(self, session_id: UUID) -> None:
                _emit("GRANTED", time.monotonic())

                async def confirm() -> None:
                    await self.election.confirm_leadership(session_id, address)
                    _emit("CONFIRMED")

                task = loop.create_task(confirm())
                tasks.add(task)
                task.add_done_callback(tasks.discard)

            def revoke_leadership(self) -> None:
                _emit("REVOKED")

            def handle_error(self, error: Exception) -> None:
                _emit("ERROR", error)

        await election.start_leader_election(Contender(election))
        driver = services.election_driver_factory.driver
        deadline = time.monotonic() + WAIT
        while driver is not None and driver.latch_node is None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)  # the latch node is created by the driver's own task
        _emit("READY")
        await stop.wait()
        await election.close()  # graceful: the latch node is deleted, the standby takes over at once
    await services.close()


class Child:
    """A child process speaking the line protocol above."""

    def __init__(self, name: str, log_dir: Path) -> None:
        self.name = name
        self.log_dir = log_dir
        self.lines: list[list[str]] = []
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, role: str, config: dict[str, str]) -> Child:
        with (self.log_dir / f"{self.name}.log").open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "benchmarks.zookeeper_handover",
                "child",
                role,
                json.dumps(config),
                self.name,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                cwd=PROJECT_ROOT,
            )
        await self.wait_for("READY")
        return self

    async def wait_for(self, kind: str, count: int = 1) -> list[str]:
        """The ``count``-th line of ``kind`` (its fields)."""
        assert self.process is not None and self.process.stdout is not None
        deadline = time.monotonic() + WAIT
        while True:
            seen = [fields for fields in self.lines if fields[0] == kind]
            if len(seen) >= count:
                return seen[count - 1]
            raw = await asyncio.wait_for(
                self.process.stdout.readline(), max(0.001, deadline - time.monotonic())
            )
            if not raw:
                raise RuntimeError(
                    f"{self.name} ended before printing {kind}; see {self.log_dir}/{self.name}.log"
                )
            self.lines.append(raw.decode().split())

    def count(self, kind: str) -> int:
        return sum(1 for fields in self.lines if fields[0] == kind)

    def signal(self, signum: int) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signum)

    async def stop(self) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        self.signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


# ------------------------------------------------------------------------------------------------ trials


def _configuration(quorum: str, storage: str, session_timeout: float) -> dict[str, str]:
    return {
        "high-availability.type": "zookeeper",
        "high-availability.zookeeper.quorum": quorum,
        "high-availability.zookeeper.path.root": "/standby-benchmark",
        "high-availability.cluster-id": f"handover-{os.getpid()}-{time.monotonic_ns()}",
        "high-availability.storageDir": storage,
        "high-availability.zookeeper.client.session-timeout": f"{int(session_timeout * 1000)} ms",
        "high-availability.zookeeper.client.connection-timeout": "5 s",
        "high-availability.zookeeper.client.retry-wait": "100 ms",
        "high-availability.zookeeper.client.max-retry-wait": "1 s",
    }


async def _leader_seen(retriever: Child, address: str, after: int) -> float:
    count = after + 1
    while True:
        fields = await retriever.wait_for("LEADER", count)
        if fields[2] == address:
            return float(fields[1])
        count += 1


async def run_trials(
    quorum: str, session_timeout: float, how: str, trials: int, work: Path
) -> list[dict[str, float]]:
    config = _configuration(quorum, str(work / "ha"), session_timeout)
    log_dir = work / f"logs-{how}-{session_timeout:g}s"
    log_dir.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, float]] = []
    children: list[Child] = []
    try:
        retriever = await Child("retriever", log_dir).start("retriever", config)
        children.append(retriever)
        leader = await Child("jm-0", log_dir).start("contender", config)
        children.append(leader)
        await leader.wait_for("CONFIRMED")
        standby = await Child("jm-1", log_dir).start("contender", config)
        children.append(standby)
        await _leader_seen(retriever, f"http://{leader.name}", 0)
        for trial in range(trials):
            seen_before = retriever.count("LEADER")
            start = time.monotonic()
            leader.signal(signal.SIGKILL if how == "sigkill" else signal.SIGTERM)
            granted = float((await standby.wait_for("GRANTED"))[1])
            seen = await _leader_seen(retriever, f"http://{standby.name}", seen_before)
            results.append({"grant_ms": (granted - start) * 1000, "retriever_ms": (seen - start) * 1000})
            await standby.wait_for("CONFIRMED")
            await leader.stop()
            leader = standby
            standby = await Child(f"jm-{trial + 2}", log_dir).start("contender", config)
            children.append(standby)
    finally:
        for child in children:
            await child.stop()
    return results


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median": round(statistics.median(ordered), 1),
        "min": round(ordered[0], 1),
        "max": round(ordered[-1], 1),
        "p90": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 1),
    }


async def main(argv: list[str]) -> None:
    from standby.testing.servers import ZooKeeperServer, require_zookeeper

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.trials < 1:
        parser.error("--trials must be at least 1")
    installation = require_zookeeper()
    report: dict[str, Any] = {
        "benchmark": "zookeeper_handover",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "trials": args.trials,
        "environment": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
            "zookeeper": installation.version,
            "zookeeper_tick_time_ms": 250,
        },
        "results": {},
    }
    with tempfile.TemporaryDirectory(prefix="standby-zk-handover-") as tmp:
        work = Path(tmp)
        with ZooKeeperServer(
            installation=installation, base_dir=work / "zookeeper", tick_time_ms=250
        ) as server:
            for session_timeout in SESSION_TIMEOUTS:
                for how in ("sigkill", "graceful"):
                    samples = await run_trials(server.connect_string, session_timeout, how, args.trials, work)
                    key = f"{how}_session_{session_timeout:g}s"
                    report["results"][key] = {
                        "session_timeout_ms": int(session_timeout * 1000),
                        "how": how,
                        "grant_ms": _summary([s["grant_ms"] for s in samples]),
                        "retriever_ms": _summary([s["retriever_ms"] for s in samples]),
                        "samples": [{k: round(v, 1) for k, v in s.items()} for s in samples],
                    }
                    result = report["results"][key]
                    print(
                        f"{how:8s} session {session_timeout:g} s ({args.trials} trials): median grant "
                        f"{result['grant_ms']['median']:.1f} ms, median retriever {result['retriever_ms']['median']:.1f} ms",
                        flush=True,
                    )
    output = args.output or RESULTS_DIR / f"zookeeper-handover-{datetime.date.today().isoformat()}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results written to {output}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        asyncio.run(_child(sys.argv[2], sys.argv[3], sys.argv[4]))
    else:
        asyncio.run(main(sys.argv[1:]))
