"""Benchmark: leader hand-over of the Kubernetes HA backend between JobManager processes.

Two JobManager stand-ins (this script in ``--child`` mode: Kubernetes HA services, one dispatcher contender)
contend on the in-repo Kubernetes API test server, which runs in its own process. Each trial ends the leader —
SIGKILL (nothing released: the standby waits for the lease to expire) or SIGTERM (graceful: the lock is released
and the standby, woken by its watch of the ConfigMap, takes over at once) — and measures, from the signal:

* ``granted_s``: the standby's leadership grant (its elector acquired the lock);
* ``confirmed_s``: the standby published its address (leader information written to the ConfigMap);
* ``retrieved_s``: an observer (leader retrieval in this process) was told the new leader's address.

For SIGKILL it also records ``lease_left_s``: how much of the lease was left at the kill (renewTime + lease -
kill time), the part of the hand-over no implementation can avoid. Configurations: a 2 s lease (renew deadline
1 s, retry period 200 ms) and standby's defaults (15 s / 10 s / 5 s; fewer trials). Results go to
``benchmarks/results/kubernetes-handover-<date>.json``; medians are printed.

Run from the repository root: ``uv run python benchmarks/kubernetes_handover.py [--trials 10 --default-trials 3]``.

What the API test server does not model (so real clusters add to these numbers): network latency and API
server load, etcd write latency and replication, watch-cache lag, API priority and fairness, client-side rate
limiting, pod scheduling and start-up (standbys here are already running), and authentication/authorization
overhead. See docs/kubernetes-api-test-server.md ("What is NOT modelled") for the full list.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib.metadata
import json
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

SCRIPT = Path(__file__).resolve()
RESULTS_DIR = SCRIPT.parent / "results"

FAST = {
    "high-availability.kubernetes.leader-election.lease-duration": "2 s",
    "high-availability.kubernetes.leader-election.renew-deadline": "1 s",
    "high-availability.kubernetes.leader-election.retry-period": "200 ms",
}
DEFAULT = {
    "high-availability.kubernetes.leader-election.lease-duration": "15 s",
    "high-availability.kubernetes.leader-election.renew-deadline": "10 s",
    "high-availability.kubernetes.leader-election.retry-period": "5 s",
}


# ---------------------------------------------------------------------------------------------- child


def _say(line: str) -> None:
    print(line, flush=True)


async def _child(config_json: str, name: str) -> None:
    from standby.backends.kubernetes import KubernetesHaServicesFactory
    from standby.config import Configuration
    from standby.ha import LeaderContender, LeaderElection

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    services = await KubernetesHaServicesFactory().create_ha_services(Configuration(json.loads(config_json)))
    election: LeaderElection = services.get_dispatcher_leader_election()
    tasks: set[asyncio.Task[None]] = set()

    class Contender(LeaderContender):
        def grant_leadership(self, session_id: UUID) -> None:
            _say(f"GRANTED {time.time()}")
            task = asyncio.get_running_loop().create_task(self._confirm(session_id))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        async def _confirm(self, session_id: UUID) -> None:
            await election.confirm_leadership(session_id, f"http://{name}")
            _say(f"LEADER {time.time()}")

        def revoke_leadership(self) -> None:
            _say(f"REVOKED {time.time()}")

        def handle_error(self, error: Exception) -> None:
            _say(f"ERROR {error}")

    await election.start_leader_election(Contender())
    _say(f"READY {services.lock_identity}")
    await stop.wait()
    _say(f"STOPPING {time.time()}")
    await election.close()
    _say(f"RELEASED {time.time()}")
    await services.close()
    _say(f"CLOSED {time.time()}")


# ---------------------------------------------------------------------------------------------- parent


class Child:
    def __init__(self, name: str, process: asyncio.subprocess.Process) -> None:
        self.name = name
        self.process = process
        self.lines: list[str] = []
        self.changed = asyncio.Event()
        self.reader = asyncio.get_running_loop().create_task(self._read())

    @staticmethod
    async def start(name: str, config: dict[str, str]) -> Child:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(SCRIPT),
            "--child",
            json.dumps(config),
            name,
            stdout=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
        )
        return Child(name, process)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while raw := await self.process.stdout.readline():
            self.lines.append(raw.decode().strip())
            self.changed.set()
        self.changed.set()

    def last(self, prefix: str) -> str | None:
        return next((line for line in reversed(self.lines) if line.startswith(prefix)), None)

    async def wait_for(self, prefix: str, timeout: float, after: int = 0) -> str:
        async def wait() -> str:
            while True:
                for line in self.lines[after:]:
                    if line.startswith(prefix):
                        return line
                if self.reader.done():
                    raise RuntimeError(f"{self.name} exited before {prefix!r}: {self.lines}")
                self.changed.clear()
                await self.changed.wait()

        return await asyncio.wait_for(wait(), timeout)

    async def close(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        await asyncio.wait_for(self.process.wait(), 30)
        await asyncio.wait_for(self.reader, 30)


@dataclass
class Trial:
    mode: str
    lease_s: float
    granted_s: float
    confirmed_s: float
    retrieved_s: float
    lease_left_s: float | None = None
    #: graceful only: the old leader began closing its election (signal delivered) / had released the lock
    leader_stopping_s: float | None = None
    leader_released_s: float | None = None


@dataclass
class Series:
    name: str
    lease: dict[str, str]
    trials: list[Trial] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        result: dict[str, Any] = {"series": self.name, "trials": len(self.trials)}
        for key in (
            "granted_s",
            "confirmed_s",
            "retrieved_s",
            "lease_left_s",
            "leader_stopping_s",
            "leader_released_s",
        ):
            values = [getattr(t, key) for t in self.trials if getattr(t, key) is not None]
            if values:
                result[f"median_{key}"] = round(statistics.median(values), 3)
                result[f"min_{key}"] = round(min(values), 3)
                result[f"max_{key}"] = round(max(values), 3)
        return result


async def _run_series(
    name: str, mode: str, lease: dict[str, str], trials: int, base_config: dict[str, str]
) -> Series:
    from standby.backends.kubernetes import LeaderElectionRecord
    from standby.config import Configuration
    from standby.ha import create_high_availability_services
    from standby.testing.recording import RecordingRetrievalListener

    cluster_id = f"bench-{name}"
    config = {**base_config, **lease, "kubernetes.cluster-id": cluster_id}
    lease_seconds = float(lease["high-availability.kubernetes.leader-election.lease-duration"].split()[0])
    timeout = lease_seconds * 3 + 60
    series = Series(name, lease)
    observer_services = await create_high_availability_services(Configuration(config))
    retriever = observer_services.get_dispatcher_leader_retriever()
    listener = RecordingRetrievalListener()
    seen: list[tuple[str | None, float]] = []
    original = listener.notify_leader_address

    def record(address: str | None, session_id: UUID | None) -> None:
        seen.append((address, time.time()))
        original(address, session_id)

    listener.notify_leader_address = record  # type: ignore[method-assign]
    await retriever.start(listener)

    counter = 0

    async def spawn() -> Child:
        nonlocal counter
        counter += 1
        child = await Child.start(f"{name}-jm-{counter}", config)
        await child.wait_for("READY", 120)
        return child

    children = list(await asyncio.gather(spawn(), spawn()))
    try:
        leader = await _first_leader(children, timeout)
        await listener.wait_for_leader(f"http://{leader.name}", timeout=timeout)
        for index in range(trials):
            standby = next(c for c in children if c is not leader)
            marks = len(standby.lines)
            lease_left: float | None = None
            if mode == "sigkill":
                client = observer_services.client  # type: ignore[attr-defined]
                current = await client.get_config_map(f"{cluster_id}-cluster-config-map")
                lock = LeaderElectionRecord.from_json(
                    current.annotations["control-plane.alpha.kubernetes.io/leader"]
                )
                started = time.time()
                leader.process.kill()
                lease_left = lock.expires_at().timestamp() - started
            else:
                started = time.time()
                leader.process.send_signal(signal.SIGTERM)
            granted = float((await standby.wait_for("GRANTED", timeout, marks)).split()[1])
            confirmed = float((await standby.wait_for("LEADER", timeout, marks)).split()[1])
            await listener.wait_for_leader(f"http://{standby.name}", timeout=timeout)
            retrieved = next(t for a, t in seen if a == f"http://{standby.name}" and t >= started)
            trial = Trial(
                mode, lease_seconds, granted - started, confirmed - started, retrieved - started, lease_left
            )
            if mode == "graceful":
                stopping = await leader.wait_for("STOPPING", timeout)
                released = await leader.wait_for("RELEASED", timeout)
                trial.leader_stopping_s = float(stopping.split()[1]) - started
                trial.leader_released_s = float(released.split()[1]) - started
            series.trials.append(trial)
            print(
                f"  {name} #{index + 1}: granted {trial.granted_s:.3f} s, confirmed {trial.confirmed_s:.3f} s, "
                f"retrieved {trial.retrieved_s:.3f} s"
                + (f" (lease left at kill {lease_left:.3f} s)" if lease_left is not None else "")
                + (
                    f" (old leader: closing at {trial.leader_stopping_s:.3f} s, released at "
                    f"{trial.leader_released_s:.3f} s)"
                    if trial.leader_released_s is not None and trial.leader_stopping_s is not None
                    else ""
                ),
                flush=True,
            )
            await leader.close()
            children.remove(leader)
            leader = standby
            if index + 1 < trials:
                children.append(await spawn())
    finally:
        for child in children:
            await child.close()
        await retriever.stop()
        await observer_services.close()
    return series


async def _first_leader(children: list[Child], timeout: float) -> Child:
    waits = {asyncio.ensure_future(c.wait_for("LEADER", timeout)): c for c in children}
    done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    first = next(iter(done))
    first.result()
    return waits[first]


async def _main(arguments: argparse.Namespace) -> dict[str, Any]:
    from standby.testing.kubernetes_api_server import KubernetesApiServerProcess

    with tempfile.TemporaryDirectory(prefix="standby-k8s-bench-") as tmp:
        kubeconfig = Path(tmp) / "kubeconfig"
        server = KubernetesApiServerProcess(kubeconfig=kubeconfig, namespace="bench")
        url = await asyncio.to_thread(server.start)
        try:
            base = {
                "high-availability.type": "kubernetes",
                "high-availability.storageDir": str(Path(tmp) / "ha"),
                "kubernetes.namespace": "bench",
                "kubernetes.config.file": str(kubeconfig),
            }
            plan = [
                ("lease-2s-sigkill", "sigkill", FAST, arguments.trials),
                ("lease-2s-graceful", "graceful", FAST, arguments.trials),
                ("lease-15s-sigkill", "sigkill", DEFAULT, arguments.default_trials),
                ("lease-15s-graceful", "graceful", DEFAULT, arguments.default_trials),
            ]
            series = []
            for name, mode, lease, trials in plan:
                if trials <= 0:
                    continue
                print(f"{name}: {trials} trials", flush=True)
                series.append(await _run_series(name, mode, lease, trials, base))
        finally:
            await asyncio.to_thread(server.stop)
    return {
        "benchmark": "kubernetes_handover",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "api_server": f"standby.testing.kubernetes_api_server in its own process ({url})",
        "environment": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_1m": os.getloadavg()[0],
            "lightkube": importlib.metadata.version("lightkube"),
        },
        "metrics": {
            "granted_s": "signal to the standby's leadership grant",
            "confirmed_s": "signal to the standby's address written to the cluster ConfigMap",
            "retrieved_s": "signal to an observer's leader retrieval naming the standby",
            "lease_left_s": "SIGKILL only: renewTime + lease - kill time (waiting for it is unavoidable)",
            "leader_stopping_s": "graceful only: signal to the old leader starting to close (signal delivery)",
            "leader_released_s": "graceful only: signal to the old leader having released the lock",
        },
        "not_modelled": (
            "No network latency, API server load, etcd latency, watch-cache lag, API priority and fairness, "
            "rate limiting, pod scheduling/start-up or auth overhead; see docs/kubernetes-api-test-server.md."
        ),
        "summary": [s.summary() for s in series],
        "series": [
            {"name": s.name, "lease": s.lease, "trials": [asdict(t) for t in s.trials]} for s in series
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--child", nargs=2, metavar=("CONFIG_JSON", "NAME"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--trials", type=int, default=10, help="trials per mode with the 2 s lease (default 10)"
    )
    parser.add_argument(
        "--default-trials",
        type=int,
        default=3,
        help="trials per mode with the default 15 s lease (default 3)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="results file (default benchmarks/results/kubernetes-handover-<date>.json)",
    )
    arguments = parser.parse_args(argv)
    if arguments.child:
        asyncio.run(_child(*arguments.child))
        return 0
    results = asyncio.run(_main(arguments))
    output = arguments.output or RESULTS_DIR / f"kubernetes-handover-{dt.date.today().isoformat()}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nresults: {output}")
    for row in results["summary"]:
        print(
            f"  {row['series']:<20} n={row['trials']:<3} median granted {row.get('median_granted_s')} s, "
            f"confirmed {row.get('median_confirmed_s')} s, retrieved {row.get('median_retrieved_s')} s"
            + (f", lease left at kill {row['median_lease_left_s']} s" if "median_lease_left_s" in row else "")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
