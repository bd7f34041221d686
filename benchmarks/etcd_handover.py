"""Benchmark (not a test): leader hand-over time of the etcd HA backend between OS processes.

A real etcd server (Debian's ``etcd-server``) runs on 127.0.0.1. Two JobManager-like processes
(``tests/backends/etcd/etcd_jm_process.py``) contend for the dispatcher leadership; this process follows it with a
leader retriever. Each trial ends the leader, either by SIGKILL (etcd deletes its election key only when the lease
expires: up to one TTL after the last keep-alive, plus etcd's expiry check every 500 ms) or gracefully (it closes
its election and services, which revokes the lease and deletes the key at once), and measures on the host's
monotonic clock, shared by all processes:

* ``grant_ms``: from the kill (or the exit request) to the standby being granted leadership;
* ``retriever_ms``: from the kill to the retriever seeing the new leader's address.

A fresh standby is started after every trial, so each trial has one leader and one waiting standby.

    uv run python -m benchmarks.etcd_handover --trials 10 --lease-ttl 2

Results go to ``benchmarks/results/etcd-handover-<date>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from uuid import UUID

from tests.backends.etcd.etcd_processes import JobManagerProcess

from standby.backends.etcd import EtcdClient, EtcdHaServicesFactory, EtcdSettings
from standby.config import Configuration
from standby.ha import LeaderRetrievalListener
from standby.testing.servers import EtcdServer, require_etcd

RESULTS_DIR = Path(__file__).with_name("results")
WAIT = 60.0


class _TimedRetrievalListener(LeaderRetrievalListener):
    """Records (monotonic time, address) of every notification."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, str | None]] = []
        self.changed = asyncio.Event()

    def notify_leader_address(self, address: str | None, session_id: UUID | None) -> None:
        self.seen.append((time.monotonic(), address))
        self.changed.set()

    def handle_error(self, error: Exception) -> None:
        print(f"retrieval error: {error}")

    async def wait_for(self, address: str, after: int) -> float:
        async with asyncio.timeout(WAIT):
            while True:
                for seen_at, seen in self.seen[after:]:
                    if seen == address:
                        return seen_at
                self.changed.clear()
                await self.changed.wait()


async def _joined(config: dict[str, Any], latch_size: int) -> None:
    """Wait until the new standby's election key exists (so the trial starts with a waiting standby)."""
    settings = EtcdSettings.from_configuration(Configuration(config))
    client = EtcdClient(settings)
    prefix = settings.cluster_prefix + "/leader/latch/"
    try:
        async with asyncio.timeout(WAIT):
            while len((await client.get_prefix(prefix.encode(), keys_only=True)).kvs) < latch_size:
                await asyncio.sleep(0.02)  # polling etcd with a deadline
    finally:
        await client.close()


async def run_trials(config: dict[str, Any], trials: int, how: str) -> list[dict[str, float]]:
    results: list[dict[str, float]] = []
    reader = await EtcdHaServicesFactory().create_ha_services(Configuration(config))
    listener = _TimedRetrievalListener()
    retriever = reader.get_dispatcher_leader_retriever()
    await retriever.start(listener)
    children: list[JobManagerProcess] = []
    try:
        leader = await JobManagerProcess.start(config, f"{how}-0")
        children.append(leader)
        await leader.wait_for("granted", timeout=WAIT)
        await listener.wait_for(f"http://{leader.name}", 0)
        standby = await JobManagerProcess.start(config, f"{how}-1")
        children.append(standby)
        await standby.wait_for("started", timeout=WAIT)
        await _joined(config, 2)
        for trial in range(trials):
            seen_before = len(listener.seen)
            start = time.monotonic()
            if how == "sigkill":
                leader.kill()
            else:
                await leader.exit_gracefully()
            granted = float((await standby.wait_for("granted", timeout=WAIT))["t"])
            seen = await listener.wait_for(f"http://{standby.name}", seen_before)
            results.append({"grant_ms": (granted - start) * 1000, "retriever_ms": (seen - start) * 1000})
            print(
                f"  {how} trial {trial + 1}: grant {results[-1]['grant_ms']:.0f} ms, "
                f"retriever {results[-1]['retriever_ms']:.0f} ms"
            )
            await leader.close()
            leader = standby
            standby = await JobManagerProcess.start(config, f"{how}-{trial + 2}")
            children.append(standby)
            await standby.wait_for("started", timeout=WAIT)
            await _joined(config, 2)
    finally:
        for child in children:
            await child.close()
        await retriever.stop()
        await reader.close()
    return results


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median": round(statistics.median(ordered), 3),
        "min": round(ordered[0], 3),
        "max": round(ordered[-1], 3),
        "p90": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 3),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--lease-ttl", type=int, default=2, help="lease TTL in whole seconds (default 2)")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    if args.trials < 1 or args.lease_ttl < 1:
        parser.error("--trials and --lease-ttl must be at least 1")
    installation = require_etcd()
    report: dict[str, Any] = {
        "benchmark": "etcd_handover",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "trials": args.trials,
        "lease_ttl_s": args.lease_ttl,
        "keep_alive_interval_s": round(args.lease_ttl / 3, 3),
        "environment": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "etcd": installation.version,
            "etcd_members": 1,
        },
    }
    with (
        tempfile.TemporaryDirectory(prefix="standby-etcd-handover-") as work,
        EtcdServer(installation=installation, base_dir=work) as server,
    ):
        for how in ("sigkill", "graceful"):
            config = {
                "high-availability.type": "etcd",
                "high-availability.etcd.endpoints": [server.endpoint],
                "high-availability.etcd.lease-ttl": f"{args.lease_ttl} s",
                "high-availability.cluster-id": f"bench-{uuid.uuid4().hex[:8]}",
                "high-availability.storageDir": str(Path(work) / "ha"),
            }
            samples = await run_trials(config, args.trials, how)
            report[how] = {
                "grant_ms": _summary([s["grant_ms"] for s in samples]),
                "retriever_ms": _summary([s["retriever_ms"] for s in samples]),
                "samples": [{k: round(v, 3) for k, v in s.items()} for s in samples],
            }
            print(
                f"{how:9s} (lease TTL {args.lease_ttl} s, {args.trials} trials): "
                f"median grant {report[how]['grant_ms']['median']:.1f} ms, "
                f"median retriever {report[how]['retriever_ms']['median']:.1f} ms"
            )
    output = args.output or RESULTS_DIR / f"etcd-handover-{datetime.date.today().isoformat()}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results written to {output}")


if __name__ == "__main__":
    asyncio.run(main())
