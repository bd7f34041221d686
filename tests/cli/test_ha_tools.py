"""``standby ha inspect`` and ``standby ha clean`` on HA data written through the HA services API."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import yaml
from kazoo.client import KazooClient
from typer.testing import CliRunner, Result

from standby.cli import CliError, app
from standby.cli._ha_tools import clean_ha
from standby.config import Configuration
from standby.ha import (
    ApplicationStatus,
    CompletedCheckpoint,
    DefaultCheckpointsCleaner,
    ExecutionPlan,
    ExecutionPlanListener,
    JobID,
    JobResult,
    JobResultEntry,
    JobStatus,
    LeaderContender,
    LeaderElection,
    create_high_availability_services,
)
from standby.testing.kubernetes_api_server import KubernetesApiTestServer
from standby.testing.servers import ZooKeeperServer

JOB_A = JobID("a" * 32)
JOB_B = JobID("b" * 32)
JOB_C = JobID("c" * 32)  # finished, cleanup pending: a dirty result and leaked checkpoints, no plan
JOB_D = JobID("d" * 32)  # finished and cleaned: a clean result only

# ------------------------------------------------------------------------------------------------ helpers


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


async def cli_async(*args: str) -> Result:
    # the command runs its own event loop: give it a thread
    return await asyncio.to_thread(cli, *args)


def write_config(path: Path, values: dict[str, str]) -> str:
    path.write_text(yaml.safe_dump(values))
    return str(path)


def filesystem_values(tmp_path: Path) -> dict[str, str]:
    return {
        "high-availability.type": "filesystem",
        "high-availability.storageDir": str(tmp_path / "ha"),
        "high-availability.cluster-id": "tools",
        "execution.checkpointing.num-retained": "3",
        # keep clean results as files, so that inspect can list them
        "job-result-store.delete-on-commit": "false",
    }


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every directory (None) and file (its bytes) under ``root``.

    In-flight temporary files of an atomic write (``.<name>.tmp-*``, renamed a moment later by a running leader)
    are not HA data and are left out, as are files that vanish while we look.
    """
    found: dict[str, bytes | None] = {}
    for path in sorted(root.rglob("*")):
        if ".tmp-" in path.name:
            continue
        key = str(path.relative_to(root))
        try:
            found[key] = None if path.is_dir() else path.read_bytes()
        except FileNotFoundError:
            continue
    return found


class Contender(LeaderContender):
    def __init__(self) -> None:
        self.granted = asyncio.Event()
        self.session_id: UUID | None = None

    def grant_leadership(self, session_id: UUID) -> None:
        self.session_id = session_id
        self.granted.set()

    def revoke_leadership(self) -> None:
        self.granted.clear()

    def handle_error(self, error: Exception) -> None:
        raise AssertionError(f"unexpected election error: {error}")


class IgnoringListener(ExecutionPlanListener):
    def on_added_execution_plan(self, job_id: JobID) -> None:
        return None

    def on_removed_execution_plan(self, job_id: JobID) -> None:
        return None


async def lead(election: LeaderElection, address: str | None = None) -> Contender:
    contender = Contender()
    await election.start_leader_election(contender)
    await asyncio.wait_for(contender.granted.wait(), 10.0)
    if address is not None:
        assert contender.session_id is not None
        await election.confirm_leadership(contender.session_id, address)
    return contender


@dataclass
class Written:
    """What ``populate`` wrote: per job the checkpoint state files (outside the HA storage dir)."""

    state_files: dict[JobID, list[Path]] = field(default_factory=dict)


async def populate(config: Configuration, state_dir: Path) -> Written:
    """HA data as a JobManager leaves it: plans of A and B, checkpoints 1-3 (counter 4) of A, checkpoint 1 of C
    with C's dirty result, a clean result of D and blobs of A and B. Written as leader, then released."""
    written = Written()
    services = await create_high_availability_services(config)
    election = services.get_dispatcher_leader_election()
    try:
        await lead(election)
        plans = services.get_execution_plan_store()
        await plans.start(IgnoringListener())
        for job_id, name, parallelism in ((JOB_A, "alpha", 2), (JOB_B, "beta", 1)):
            await plans.put_execution_plan(
                ExecutionPlan(
                    job_id, name, parallelism, user_code="job.py", submitted_at_ms=1_700_000_000_000
                )
            )
        await plans.stop()
        factory = services.get_checkpoint_recovery_factory()
        cleaner = DefaultCheckpointsCleaner()
        for job_id, count in ((JOB_A, 3), (JOB_C, 1)):
            store = await factory.create_recovered_completed_checkpoint_store(job_id, 3)
            counter = await factory.create_checkpoint_id_counter(job_id)
            await counter.start()
            for _ in range(count):
                checkpoint_id = await counter.get_and_increment()
                state = state_dir / f"{job_id}-{checkpoint_id}.state"
                state.write_bytes(b"state")
                written.state_files.setdefault(job_id, []).append(state)
                await store.add_checkpoint_and_subsume_oldest_one(
                    CompletedCheckpoint(
                        job_id, checkpoint_id, 1_700_000_000_000, 1_700_000_001_000, {"0": str(state)}
                    ),
                    cleaner,
                )
            await store.shutdown(JobStatus.SUSPENDED, cleaner)
            await counter.shutdown(JobStatus.SUSPENDED)
        blobs = services.create_blob_store()
        for job_id in (JOB_A, JOB_B):
            assert await blobs.put(b"print('job')", job_id, "job.py")
        results = services.get_job_result_store()
        for job_id, name in ((JOB_C, "gamma"), (JOB_D, "delta")):
            await results.create_dirty_result(
                JobResultEntry(
                    JobResult(job_id, name, ApplicationStatus.SUCCEEDED, end_time_ms=1_700_000_002_000)
                )
            )
        await results.mark_result_as_clean(JOB_D)
    finally:
        await election.close()
        await services.close()
    return written


def files_of(job_id: JobID, before: dict[str, bytes | None]) -> set[str]:
    """The files of one job: named after it, or payloads that mention it."""
    return {
        path
        for path, data in before.items()
        if data is not None
        and not path.startswith("tools/leader")
        and (job_id in path or job_id.encode() in data)
    }


# ------------------------------------------------------------------------------------------------ file system


async def test_inspect_shows_the_ha_data_and_changes_nothing(tmp_path: Path) -> None:
    values = filesystem_values(tmp_path)
    config = write_config(tmp_path / "conf.yaml", values)
    (tmp_path / "state").mkdir()
    await populate(Configuration(values), tmp_path / "state")
    before = snapshot(tmp_path / "ha")

    result = await cli_async("ha", "inspect", "--json", "--timeout", "0.3", "--config", config)

    assert result.exit_code == 0, result.stderr
    assert snapshot(tmp_path / "ha") == before, "inspect changed the HA data"
    report = json.loads(result.stdout)
    assert (report["clusterId"], report["backend"]) == ("tools", "filesystem")
    assert report["storagePath"] == f"{tmp_path / 'ha'}/tools"
    assert report["leaders"] == {"dispatcher": None, "resource_manager": None, "rest_server": None}
    assert report["executionPlans"] == [
        {"jobId": JOB_A, "name": "alpha", "parallelism": 2, "submittedAt": 1_700_000_000_000},
        {"jobId": JOB_B, "name": "beta", "parallelism": 1, "submittedAt": 1_700_000_000_000},
    ]
    jobs = {job["jobId"]: job for job in report["jobs"]}
    assert set(jobs) == {JOB_A, JOB_B, JOB_C, JOB_D}
    assert [c["id"] for c in jobs[JOB_A]["checkpoints"]] == [1, 2, 3]
    assert jobs[JOB_A]["checkpoints"][0]["completedAt"] == 1_700_000_001_000
    assert jobs[JOB_A]["checkpointCounter"] == 4
    assert [c["id"] for c in jobs[JOB_C]["checkpoints"]] == [1]
    assert jobs[JOB_C]["checkpointCounter"] == 2
    assert jobs[JOB_B]["checkpoints"] == [] and jobs[JOB_B]["checkpointCounter"] is None
    assert all(job["leader"] is None for job in jobs.values())
    results = report["jobResults"]
    assert [(r["jobId"], r["state"], r["status"]) for r in results["dirty"]] == [
        (JOB_C, "dirty", "SUCCEEDED")
    ]
    assert [(r["jobId"], r["name"]) for r in results["clean"]] == [(JOB_D, "delta")]
    assert report["errors"] == []

    table = await cli_async("ha", "inspect", "--timeout", "0.3", "--config", config)
    assert table.exit_code == 0, table.stderr
    for title in ("Leaders", "Execution plans", "Checkpoints", "Job results", "alpha", "no leader"):
        assert title in table.stdout
    assert snapshot(tmp_path / "ha") == before


async def test_clean_job_removes_exactly_that_jobs_data(tmp_path: Path) -> None:
    values = filesystem_values(tmp_path)
    config = write_config(tmp_path / "conf.yaml", values)
    (tmp_path / "state").mkdir()
    written = await populate(Configuration(values), tmp_path / "state")
    before = snapshot(tmp_path / "ha")
    of_a = files_of(JOB_A, before)
    assert len(of_a) >= 8  # plan pointer + payload, 3 checkpoint pointers + payloads, counter, blob

    result = await cli_async(
        "ha", "clean", "--job", JOB_A, "--yes", "--json", "--timeout", "0.3", "--config", config
    )

    assert result.exit_code == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["errors"] == []
    assert report["removed"] == [
        "execution plan",
        "3 checkpoint(s): 1, 2, 3",
        "checkpoint id counter (if any)",
        "blobs (if any)",
    ]
    after = snapshot(tmp_path / "ha")
    unchanged = {p: d for p, d in after.items() if d is not None and not p.startswith("tools/leader")}
    expected = {
        p: d
        for p, d in before.items()
        if d is not None and p not in of_a and not p.startswith("tools/leader")
    }
    assert unchanged == expected, "clean --job touched other jobs' data or left some of A's"
    assert not any(path.exists() for path in written.state_files[JOB_A])
    assert all(path.exists() for path in written.state_files[JOB_C])

    # a finished job whose cleanup is pending: its leaked checkpoints go and its result turns clean
    finished = await cli_async("ha", "clean", "--job", JOB_C, "--yes", "--timeout", "0.3", "--config", config)
    assert finished.exit_code == 0, finished.stderr
    assert "dirty job result (marked clean)" in finished.stdout
    inspected = json.loads(
        (await cli_async("ha", "inspect", "--json", "--timeout", "0.3", "--config", config)).stdout
    )
    assert [p["jobId"] for p in inspected["executionPlans"]] == [JOB_B]
    assert inspected["jobResults"]["dirty"] == []
    assert sorted(r["jobId"] for r in inspected["jobResults"]["clean"]) == [JOB_C, JOB_D]
    assert all(job["checkpoints"] == [] for job in inspected["jobs"])


async def test_clean_all_removes_everything(tmp_path: Path) -> None:
    values = filesystem_values(tmp_path)
    config = write_config(tmp_path / "conf.yaml", values)
    (tmp_path / "state").mkdir()
    written = await populate(Configuration(values), tmp_path / "state")

    result = await cli_async("ha", "clean", "--all", "--yes", "--timeout", "0.3", "--config", config)

    assert result.exit_code == 0, result.stderr
    assert "execution plan " + JOB_A in result.stdout and "3 checkpoint(s) of job " + JOB_A in result.stdout
    assert f"dirty job result of {JOB_C} (marked clean)" in result.stdout
    assert not (tmp_path / "ha" / "tools").exists()
    job_results = tmp_path / "ha" / "job-result-store" / "tools"
    assert sorted(p.name for p in job_results.iterdir()) == [f"{JOB_C}.json", f"{JOB_D}.json"]
    # as Flink's cleanupAllData: HA pointers and payloads go, the checkpoint state files themselves stay
    assert all(path.exists() for paths in written.state_files.values() for path in paths)
    inspected = json.loads(
        (await cli_async("ha", "inspect", "--json", "--timeout", "0.3", "--config", config)).stdout
    )
    assert inspected["executionPlans"] == [] and inspected["jobResults"]["dirty"] == []


async def test_clean_refuses_while_a_jobmanager_leads(tmp_path: Path) -> None:
    values = filesystem_values(tmp_path)
    config = write_config(tmp_path / "conf.yaml", values)
    (tmp_path / "state").mkdir()
    await populate(Configuration(values), tmp_path / "state")
    services = await create_high_availability_services(Configuration(values))
    election = services.get_dispatcher_leader_election()
    try:
        contender = await lead(election, "http://127.0.0.1:9/rpc/dispatcher")
        published = tmp_path / "ha" / "tools" / "leader" / "dispatcher"

        def settled() -> bool:  # the leader's own write is done (no temporary file left)
            names = [p.name for p in published.iterdir()] if published.is_dir() else []
            return names == ["connection_info"]

        await asyncio.to_thread(wait_for, settled, "the leader information to be published")
        before = snapshot(tmp_path / "ha")

        refused = await cli_async("ha", "clean", "--job", JOB_A, "--yes", "--config", config)
        assert refused.exit_code == 2
        assert refused.stderr.startswith("error:") and refused.stderr.count("\n") == 1, refused.stderr
        assert "http://127.0.0.1:9/rpc/dispatcher" in refused.stderr
        # --force ignores the published leader but must still win the election: it cannot, so nothing happens
        forced = await cli_async(
            "ha", "clean", "--all", "--yes", "--force", "--lock-timeout", "0.3", "--config", config
        )
        assert forced.exit_code == 2
        assert "Could not become the leader" in forced.stderr
        assert snapshot(tmp_path / "ha") == before

        inspected = await cli_async("ha", "inspect", "--json", "--timeout", "1.5", "--config", config)
        leaders = json.loads(inspected.stdout)["leaders"]
        assert leaders["dispatcher"] == {
            "address": "http://127.0.0.1:9/rpc/dispatcher",
            "sessionId": str(contender.session_id),
        }
    finally:
        await election.close()
        await services.close()

    # the JobManager is gone: now it works
    cleaned = await cli_async("ha", "clean", "--job", JOB_A, "--yes", "--timeout", "0.3", "--config", config)
    assert cleaned.exit_code == 0, cleaned.stderr


async def test_clean_deletes_nothing_when_the_answer_is_no(tmp_path: Path) -> None:
    values = filesystem_values(tmp_path)
    (tmp_path / "state").mkdir()
    await populate(Configuration(values), tmp_path / "state")
    before = snapshot(tmp_path / "ha")
    questions: list[str] = []

    async def no(question: str) -> bool:
        questions.append(question)
        return False

    with pytest.raises(CliError, match="Aborted; nothing was deleted"):
        await clean_ha(Configuration(values), JOB_A, False, no, leader_timeout_s=0.3)
    assert questions == [f"Delete the HA data of job {JOB_A} of cluster 'tools' (filesystem)?"]
    assert snapshot(tmp_path / "ha") == before


def test_clean_asks_and_needs_yes_without_a_terminal(tmp_path: Path) -> None:
    config = write_config(tmp_path / "conf.yaml", filesystem_values(tmp_path))
    cases = {
        "needs --yes": ("ha", "clean", "--all", "--config", config),
        "neither": ("ha", "clean", "--yes", "--config", config),
        "both": ("ha", "clean", "--all", "--job", JOB_A, "--yes", "--config", config),
        "bad job id": ("ha", "clean", "--job", "nope", "--yes", "--config", config),
    }
    for case, args in cases.items():
        result = cli(*args)
        assert result.exit_code == 2, case
        assert result.stderr.startswith("error:") and result.stderr.count("\n") == 1, (case, result.stderr)
    assert "pass --yes" in cli(*cases["needs --yes"]).stderr
    assert "32 hexadecimal" in cli(*cases["bad job id"]).stderr
    assert not (tmp_path / "ha").exists()


def test_without_high_availability_there_is_nothing_to_inspect() -> None:
    result = cli("ha", "inspect", "-D", "high-availability.type=NONE")
    assert result.exit_code == 1
    assert result.stderr.startswith("error:") and result.stderr.count("\n") == 1
    assert "keeps no HA data" in result.stderr


# ------------------------------------------------------------------------------------------------ ZooKeeper


@pytest.fixture
def kazoo(zookeeper_server: ZooKeeperServer) -> Iterator[KazooClient]:
    client = KazooClient(hosts=zookeeper_server.connect_string)
    client.start(timeout=10)
    try:
        yield client
    finally:
        client.stop()
        client.close()


def znodes(client: KazooClient, path: str) -> dict[str, bytes]:
    """Every node under ``path`` with its data (empty when ``path`` does not exist)."""
    found: dict[str, bytes] = {}
    pending = [path]
    while pending:
        node = pending.pop()
        if client.exists(node) is None:
            continue
        data, _ = client.get(node)
        found[node] = data
        pending.extend(f"{node}/{child}" for child in client.get_children(node))
    return found


def wait_for(predicate: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.zookeeper
async def test_zookeeper_inspect_changes_nothing_and_clean_all_leaves_no_znodes(
    zookeeper_server: ZooKeeperServer, kazoo: KazooClient, tmp_path: Path
) -> None:
    cluster = uuid.uuid4().hex[:12]
    values: dict[str, Any] = {
        "high-availability.type": "zookeeper",
        "high-availability.zookeeper.quorum": zookeeper_server.connect_string,
        "high-availability.zookeeper.path.root": "/standby-hatools",
        "high-availability.cluster-id": cluster,
        "high-availability.storageDir": str(tmp_path / "ha"),
        "high-availability.zookeeper.client.session-timeout": "2 s",
        "high-availability.zookeeper.client.connection-timeout": "5 s",
        "execution.checkpointing.num-retained": "3",
    }
    config = write_config(tmp_path / "conf.yaml", values)
    (tmp_path / "state").mkdir()
    await populate(Configuration(values), tmp_path / "state")
    cluster_path = f"/standby-hatools/{cluster}"
    # the writer's session is closed: its ephemeral latch node is gone
    wait_for(
        lambda: not any("latch-" in p for p in znodes(kazoo, cluster_path)), "the writer's latch to vanish"
    )
    before = znodes(kazoo, cluster_path)
    assert f"{cluster_path}/execution-plans/{JOB_A}" in before

    inspected = await cli_async("ha", "inspect", "--json", "--timeout", "0.3", "--config", config)

    assert inspected.exit_code == 0, inspected.stderr
    assert znodes(kazoo, cluster_path) == before, "inspect changed ZooKeeper data"
    report = json.loads(inspected.stdout)
    assert report["backend"] == "zookeeper"
    assert [p["jobId"] for p in report["executionPlans"]] == [JOB_A, JOB_B]
    jobs = {job["jobId"]: job for job in report["jobs"]}
    assert [c["id"] for c in jobs[JOB_A]["checkpoints"]] == [1, 2, 3]
    assert jobs[JOB_A]["checkpointCounter"] == 4
    assert [r["jobId"] for r in report["jobResults"]["dirty"]] == [JOB_C]

    cleaned = await cli_async("ha", "clean", "--all", "--yes", "--timeout", "0.3", "--config", config)

    assert cleaned.exit_code == 0, cleaned.stderr
    assert znodes(kazoo, cluster_path) == {}
    # the plans' and checkpoints' metadata files went with their pointers, the blobs with the blob store
    assert [p for p in (tmp_path / "ha" / cluster).rglob("*") if p.is_file()] == []


# ------------------------------------------------------------------------------------------------ Kubernetes


async def test_kubernetes_inspect_changes_nothing_and_clean_all_leaves_no_configmaps(tmp_path: Path) -> None:
    async with KubernetesApiTestServer() as server:
        values = {
            "high-availability.type": "kubernetes",
            "high-availability.storageDir": str(tmp_path / "ha"),
            "kubernetes.cluster-id": "tools",
            "kubernetes.namespace": "ns",
            "kubernetes.config.file": str(server.write_kubeconfig(tmp_path / "kubeconfig", namespace="ns")),
            "high-availability.kubernetes.leader-election.lease-duration": "2 s",
            "high-availability.kubernetes.leader-election.renew-deadline": "1 s",
            "high-availability.kubernetes.leader-election.retry-period": "200 ms",
        }
        config = write_config(tmp_path / "conf.yaml", values)
        (tmp_path / "state").mkdir()
        await populate(Configuration(values), tmp_path / "state")
        before = server.configmaps("ns")
        assert {c["metadata"]["name"] for c in before} >= {
            "tools-cluster-config-map",
            f"tools-{JOB_A}-config-map",
        }

        inspected = await cli_async("ha", "inspect", "--json", "--timeout", "0.3", "--config", config)

        assert inspected.exit_code == 0, inspected.stderr
        assert server.configmaps("ns") == before, "inspect changed ConfigMaps"
        report = json.loads(inspected.stdout)
        assert report["storagePath"] == f"{tmp_path / 'ha'}/tools"
        assert [p["name"] for p in report["executionPlans"]] == ["alpha", "beta"]
        # only the leader may recover checkpoints on Kubernetes (it claims the job's ConfigMap first)
        assert "only the leader" in {job["jobId"]: job for job in report["jobs"]}[JOB_A]["error"]

        cleaned = await cli_async(
            "ha",
            "clean",
            "--all",
            "--yes",
            "--json",
            "--timeout",
            "0.3",
            "--lock-timeout",
            "10",
            "--config",
            config,
        )

        assert cleaned.exit_code == 0, cleaned.stdout + cleaned.stderr
        assert "3 checkpoint(s) of job " + JOB_A in json.loads(cleaned.stdout)["removed"]
        assert [c["metadata"]["name"] for c in server.configmaps("ns")] == []
        assert [p for p in (tmp_path / "ha" / "tools").rglob("*") if p.is_file()] == []
