"""``standby ha inspect`` and ``standby ha clean``: see and remove a cluster's HA data through the HA interfaces.

Beyond Flink (DESIGN.md §6): Flink has no tool for its HA state, and leaked ZooKeeper nodes or ConfigMaps of jobs
that are long gone are a known pain. Both commands work on every backend because they only use the
``HighAvailabilityServices`` created from the configuration: leader retrievers, the execution plan store, the
checkpoint recovery factory, the job result store and the blob store.

Reading never changes HA data: entries locked to be read are released at once (plans: ``local_cleanup`` and
``stop``; checkpoint stores: ``shutdown(SUSPENDED)``, which keeps every checkpoint), and a job's checkpoint counter
is only read when the job has checkpoints (reading a missing counter would create it on ZooKeeper, as Curator's
``SharedCount`` does).

Cleaning first makes this process the leader of the cluster (every backend fences its writes to the leader), so
it never deletes data under a running JobManager: it refuses while a dispatcher leader is published, and even with
``--force`` it deletes nothing unless it wins the leader election within ``--lock-timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar
from uuid import UUID

from fsspec.core import url_to_fs

from standby.config import Configuration, options
from standby.ha import (
    CheckpointsCleaner,
    CompletedCheckpoint,
    DefaultCheckpointsCleaner,
    ExecutionPlanListener,
    ExecutionPlanStore,
    FencingError,
    FileSystemJobResultStore,
    HighAvailabilityServices,
    JobID,
    JobResult,
    JobStatus,
    LeaderContender,
    LeaderElection,
    LeaderInformation,
    LeaderRetrievalService,
    create_high_availability_services,
    decode_job_result_entry,
    ha_storage_path,
    high_availability_type,
    max_retained_checkpoints,
)
from standby.runtime._util import LeaderTracker

from ._errors import CliError

_log = logging.getLogger(__name__)

T = TypeVar("T")

#: The cluster-wide components whose leaders ``inspect`` shows (the keys of its JSON ``leaders`` object).
COMPONENTS: tuple[str, ...] = ("dispatcher", "resource_manager", "rest_server")


class RefusedError(CliError):
    """The command refuses to run (a leader is active, no confirmation possible); the CLI exits with 2."""


# ---------------------------------------------------------------------------------------------- shared helpers


class _ErrorCollector:
    """Fatal error handler of the tool's HA services: remembers backend errors to report them."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def on_fatal_error(self, error: BaseException) -> None:
        _log.debug("HA backend error", exc_info=error)
        self.errors.append(f"{type(error).__name__}: {error}")


class _IgnoringPlanListener(ExecutionPlanListener):
    """The plan store must be started to be used; the tool does not care about other JobManagers' changes."""

    def on_added_execution_plan(self, job_id: JobID) -> None:
        return None

    def on_removed_execution_plan(self, job_id: JobID) -> None:
        return None


def cluster_label(config: Configuration) -> str:
    """The id naming the cluster's HA data (Kubernetes: ``kubernetes.cluster-id``, which names its ConfigMaps)."""
    if high_availability_type(config) == "kubernetes":
        k8s_id = config.get(options.KUBERNETES_CLUSTER_ID)
        if k8s_id:
            return k8s_id
    return config.get(options.HA_CLUSTER_ID).strip().strip("/") or "default"


def _storage_path(config: Configuration) -> str | None:
    """``<storageDir>/<cluster-id>``; on Kubernetes the cluster id defaults to ``kubernetes.cluster-id`` (Flink's
    native Kubernetes does that, and so does the backend)."""
    effective = config
    if high_availability_type(config) == "kubernetes" and not config.contains(options.HA_CLUSTER_ID):
        k8s_id = config.get(options.KUBERNETES_CLUSTER_ID)
        if k8s_id:
            effective = config.copy().set(options.HA_CLUSTER_ID, k8s_id)
    try:
        return ha_storage_path(effective)
    except Exception:
        return None


async def open_services(config: Configuration) -> tuple[HighAvailabilityServices, _ErrorCollector]:
    """The HA services of ``config``; a clear error when HA is off (there is no HA data then)."""
    ha_type = high_availability_type(config)
    if ha_type in ("none", "embedded"):
        raise CliError(
            f"'{options.HA_TYPE.key}' is '{config.get(options.HA_TYPE)}': this cluster keeps no HA data. "
            "Pass the configuration of the HA cluster (--config FILE or -D high-availability.type=...)."
        )
    collector = _ErrorCollector()
    try:
        services = await create_high_availability_services(config, collector)
    except CliError:
        raise
    except Exception as e:
        raise CliError(f"Cannot open the HA services ({ha_type}): {type(e).__name__}: {e}") from e
    return services, collector


def _leader_json(info: LeaderInformation | None) -> dict[str, str] | None:
    if info is None or info.is_empty():
        return None
    return {"address": str(info.address), "sessionId": str(info.session_id)}


async def _probe_leader(
    name: str, retriever: LeaderRetrievalService, timeout_s: float, errors: list[str]
) -> LeaderInformation | None:
    """The leader ``retriever`` reports within ``timeout_s``, or None (some backends report nothing at all when
    there has never been a leader, so silence until the timeout means "no leader")."""
    tracker = LeaderTracker(name, retriever)
    try:
        await tracker.start()
        try:
            return await tracker.wait_for_leader(timeout_s)
        except TimeoutError:
            return None
        finally:
            if tracker.error is not None:
                errors.append(f"leader retrieval of {name}: {tracker.error}")
    except Exception as e:
        errors.append(f"leader retrieval of {name}: {type(e).__name__}: {e}")
        return None
    finally:
        with contextlib.suppress(Exception):
            await tracker.stop()


async def _guarded(what: str, errors: list[str], action: Callable[[], Awaitable[T]]) -> T | None:
    try:
        return await action()
    except Exception as e:
        _log.debug("%s failed", what, exc_info=True)
        errors.append(f"{what}: {type(e).__name__}: {e}")
        return None


# ---------------------------------------------------------------------------------------------- inspect


async def _read_plans(services: HighAvailabilityServices, errors: list[str]) -> list[dict[str, Any]]:
    store = services.get_execution_plan_store()
    await store.start(_IgnoringPlanListener())
    try:
        return await _read_plans_started(store, errors)
    finally:
        await store.stop()


async def _read_plans_started(store: ExecutionPlanStore, errors: list[str]) -> list[dict[str, Any]]:
    """The plans of a started store; each is locked only while it is read."""
    plans: list[dict[str, Any]] = []
    for job_id in sorted(await store.get_job_ids()):
        entry: dict[str, Any] = {"jobId": str(job_id)}
        try:
            plan = await store.recover_execution_plan(job_id)
            if plan is None:
                continue  # removed since it was listed
            entry.update(name=plan.name, parallelism=plan.parallelism, submittedAt=plan.submitted_at_ms)
        except Exception as e:
            entry["error"] = f"{type(e).__name__}: {e}"
            errors.append(f"execution plan {job_id}: {entry['error']}")
        finally:
            # release our lock at once: a plan must stay removable by its JobManager
            await _guarded(f"releasing execution plan {job_id}", errors, partial(store.local_cleanup, job_id))
        plans.append(entry)
    return plans


async def _read_checkpoints(
    services: HighAvailabilityServices, job_id: JobID, max_retain: int
) -> dict[str, Any]:
    entry: dict[str, Any] = {"jobId": str(job_id), "checkpoints": [], "checkpointCounter": None}
    factory = services.get_checkpoint_recovery_factory()
    try:
        store = await factory.create_recovered_completed_checkpoint_store(job_id, max_retain)
    except FencingError:
        # Kubernetes: recovering a job's checkpoints first claims its ConfigMap for the leader's term
        entry["error"] = "not readable here: this backend lets only the leader recover checkpoints"
        return entry
    except Exception as e:
        entry["error"] = f"{type(e).__name__}: {e}"
        return entry
    try:
        entry["checkpoints"] = [
            {
                "id": c.checkpoint_id,
                "timestamp": c.timestamp_ms,
                "completedAt": c.completion_timestamp_ms,
                "savepoint": c.properties.is_savepoint,
                "location": c.external_pointer,
            }
            for c in store.get_all_checkpoints()
        ]
    finally:
        # SUSPENDED keeps every checkpoint and only releases this store's locks
        await store.shutdown(JobStatus.SUSPENDED, DefaultCheckpointsCleaner())
    if entry["checkpoints"]:
        counter = await factory.create_checkpoint_id_counter(job_id)
        try:
            entry["checkpointCounter"] = await counter.get()
        except Exception as e:
            entry["error"] = f"checkpoint counter: {type(e).__name__}: {e}"
    return entry


def _result_json(result: JobResult, state: str) -> dict[str, Any]:
    return {
        "jobId": str(result.job_id),
        "name": result.name,
        "state": state,
        "status": result.application_status.value,
        "endTime": result.end_time_ms,
    }


async def _read_job_results(services: HighAvailabilityServices, errors: list[str]) -> dict[str, Any]:
    store = services.get_job_result_store()
    if isinstance(store, FileSystemJobResultStore):
        # listed directly: both dirty and clean results, and no base directory is created by looking
        return await asyncio.to_thread(_list_file_system_results, store, errors)
    dirty = await store.get_dirty_results()
    return {
        "dirty": [_result_json(r, "dirty") for r in sorted(dirty, key=lambda r: r.job_id)],
        "clean": None,
        "note": f"clean job results cannot be listed through the interface of {type(store).__name__}",
    }


def _list_file_system_results(store: FileSystemJobResultStore, errors: list[str]) -> dict[str, Any]:
    fs, base = url_to_fs(store.base_path)
    found: dict[str, list[dict[str, Any]]] = {"dirty": [], "clean": []}
    try:
        listing = fs.ls(base, detail=True) if fs.exists(base) else []
    except OSError as e:
        errors.append(f"job result store {store.base_path}: {e}")
        listing = []
    for info in sorted(listing, key=lambda i: str(i["name"])):
        path = str(info["name"])
        name = path.rsplit("/", 1)[-1]
        if info.get("type") == "directory":
            continue
        state = "dirty" if store.is_dirty_file(name) else "clean" if store.is_clean_file(name) else None
        if state is None:
            continue
        try:
            result = decode_job_result_entry(fs.cat_file(path), path).job_result
        except FileNotFoundError:
            continue  # cleaned meanwhile
        except Exception as e:
            errors.append(f"job result {path}: {type(e).__name__}: {e}")
            continue
        found[state].append(_result_json(result, state))
    return {"dirty": found["dirty"], "clean": found["clean"], "path": store.base_path}


async def inspect_ha(config: Configuration, leader_timeout_s: float = 2.0) -> dict[str, Any]:
    """Everything the cluster keeps in its HA services, as JSON-ready data; changes nothing."""
    services, collector = await open_services(config)
    errors = collector.errors
    try:
        plans = await _guarded("execution plans", errors, partial(_read_plans, services, errors)) or []
        results = await _guarded("job results", errors, partial(_read_job_results, services, errors)) or {
            "dirty": [],
            "clean": None,
        }
        job_ids = sorted(
            {JobID(p["jobId"]) for p in plans}
            | {JobID(r["jobId"]) for r in results.get("dirty") or []}
            | {JobID(r["jobId"]) for r in results.get("clean") or []}
        )
        retrievers: dict[str, LeaderRetrievalService] = {
            "dispatcher": services.get_dispatcher_leader_retriever(),
            "resource_manager": services.get_resource_manager_leader_retriever(),
            "rest_server": services.get_cluster_rest_endpoint_leader_retriever(),
        }
        for job_id in job_ids:
            retrievers[f"job-{job_id}"] = services.get_job_manager_leader_retriever(job_id)
        max_retain = max_retained_checkpoints(config)
        leaders, jobs = await asyncio.gather(
            asyncio.gather(*(_probe_leader(n, r, leader_timeout_s, errors) for n, r in retrievers.items())),
            asyncio.gather(*(_read_checkpoints(services, j, max_retain) for j in job_ids)),
        )
        by_name = dict(zip(retrievers, leaders, strict=True))
        for job in jobs:
            job["leader"] = _leader_json(by_name.get(f"job-{job['jobId']}"))
            if "error" in job:
                errors.append(f"checkpoints of job {job['jobId']}: {job['error']}")
        return {
            "clusterId": cluster_label(config),
            "backend": high_availability_type(config),
            "storagePath": _storage_path(config),
            "leaders": {name: _leader_json(by_name[name]) for name in COMPONENTS},
            "executionPlans": plans,
            "jobs": jobs,
            "jobResults": results,
            "errors": errors,
        }
    finally:
        await _guarded("closing the HA services", errors, services.close)


# ---------------------------------------------------------------------------------------------- clean


class _ToolContender(LeaderContender):
    """Contends for the dispatcher's leadership so that the tool's writes pass the backends' fencing."""

    def __init__(self) -> None:
        self.granted = asyncio.Event()
        self.revoked = False
        self.error: Exception | None = None

    def grant_leadership(self, session_id: UUID) -> None:
        self.granted.set()

    def revoke_leadership(self) -> None:
        if self.granted.is_set():
            self.revoked = True

    def handle_error(self, error: Exception) -> None:
        self.error = error


@dataclass
class CleanReport:
    """What ``clean`` removed (``removed``) and what failed (``errors``)."""

    cluster_id: str
    backend: str
    scope: str
    removed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: problems that did not stop the cleaning (e.g. of the leader lookup)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "clusterId": self.cluster_id,
            "backend": self.backend,
            "scope": self.scope,
            "removed": self.removed,
            "errors": self.errors,
            "warnings": self.warnings,
        }


async def _acquire_leadership(
    services: HighAvailabilityServices, timeout_s: float, cluster: str
) -> tuple[LeaderElection, _ToolContender]:
    election = services.get_dispatcher_leader_election()
    contender = _ToolContender()
    await election.start_leader_election(contender)
    try:
        await asyncio.wait_for(contender.granted.wait(), timeout_s)
    except TimeoutError:
        await election.close()
        raise RefusedError(
            f"Could not become the leader of cluster '{cluster}' within {timeout_s:g} s: a JobManager holds the "
            "leadership. Stop the cluster's JobManagers first (or raise --lock-timeout if its old leader has "
            "just died and its lease or session has not expired yet)."
        ) from None
    return election, contender


async def clean_ha(
    config: Configuration,
    job_id: JobID | None,
    force: bool,
    confirm: Callable[[str], Awaitable[bool]],
    leader_timeout_s: float = 2.0,
    lock_timeout_s: float = 30.0,
) -> CleanReport:
    """Remove one job's HA data (``job_id``) or all HA data of the cluster (``job_id is None``).

    Raises ``RefusedError`` while a dispatcher leader is published (unless ``force``) or when this process cannot
    win the leader election; ``CliError("Aborted")`` when ``confirm`` says no.
    """
    cluster = cluster_label(config)
    report = CleanReport(cluster, high_availability_type(config), f"job {job_id}" if job_id else "all")
    services, collector = await open_services(config)
    try:
        leader = await _probe_leader(
            "dispatcher", services.get_dispatcher_leader_retriever(), leader_timeout_s, report.warnings
        )
        if leader is not None and not force:
            raise RefusedError(
                f"A JobManager leads cluster '{cluster}' (dispatcher at {leader.address}, session "
                f"{leader.session_id}); refusing to delete HA data under it. Stop the cluster first, or pass "
                "--force if that leader is gone and its leader information is stale."
            )
        what = f"the HA data of job {job_id}" if job_id else "ALL HA data"
        if not await confirm(f"Delete {what} of cluster '{cluster}' ({report.backend})?"):
            raise CliError("Aborted; nothing was deleted.")
        election, contender = await _acquire_leadership(services, lock_timeout_s, cluster)
        try:
            if job_id is not None:
                await _clean_job(services, config, job_id, report)
            else:
                await _remove_known_jobs(services, config, report)
            lost = contender.revoked  # closing the election below revokes as well
        finally:
            await election.close()
        if lost:
            report.errors.append(
                "the leadership was lost while cleaning; some steps may have been refused (run clean again)"
            )
        elif job_id is None:
            # unfenced, after the leadership is given back: the latch itself lives in the data being removed
            await _clean_all(services, report)
    finally:
        with contextlib.suppress(Exception):
            await services.close()
    report.warnings.extend(collector.errors)
    return report


class _KeepStateCleaner(CheckpointsCleaner):
    """Removes nothing: ``--all`` drops the HA metadata of checkpoints but keeps their state files, as Flink's
    ``cleanupAllData`` does (a retained checkpoint can still be restored from its directory)."""

    async def clean_checkpoint(self, checkpoint: CompletedCheckpoint, discard: bool) -> None:
        return None


async def _remove_checkpoints(
    services: HighAvailabilityServices,
    config: Configuration,
    job_id: JobID,
    cleaner: CheckpointsCleaner,
) -> list[int]:
    """Remove the job's checkpoints (pointers and metadata files; state per ``cleaner``) and its counter."""
    factory = services.get_checkpoint_recovery_factory()
    store = await factory.create_recovered_completed_checkpoint_store(
        job_id, max_retained_checkpoints(config)
    )
    ids = [c.checkpoint_id for c in store.get_all_checkpoints()]
    # CANCELED is globally terminal: every entry is removed (savepoints keep their files: they are the user's)
    await store.shutdown(JobStatus.CANCELED, cleaner)
    counter = await factory.create_checkpoint_id_counter(job_id)
    # started first: some counters ignore a shutdown when they were never started
    await counter.start()
    await counter.shutdown(JobStatus.CANCELED)
    return ids


async def _clean_job(
    services: HighAvailabilityServices, config: Configuration, job_id: JobID, report: CleanReport
) -> None:
    """Flink's global cleanup of one job: plan, checkpoints, counter, job data, blobs; then the result is clean."""
    errors = report.errors

    async def plan() -> None:
        store = services.get_execution_plan_store()
        await store.start(_IgnoringPlanListener())
        try:
            existed = job_id in await store.get_job_ids()
            await store.global_cleanup(job_id)
            if existed:
                report.removed.append("execution plan")
        finally:
            await store.stop()

    async def checkpoints() -> None:
        # as a cancelled job's: checkpoint state files are discarded
        ids = await _remove_checkpoints(services, config, job_id, DefaultCheckpointsCleaner())
        if ids:
            report.removed.append(f"{len(ids)} checkpoint(s): {', '.join(map(str, ids))}")
        report.removed.append("checkpoint id counter (if any)")

    async def job_data() -> None:
        await services.global_cleanup(job_id)

    async def blobs() -> None:
        if not await services.create_blob_store().delete_all(job_id):
            raise RuntimeError("the blob store could not delete every blob of the job")
        report.removed.append("blobs (if any)")

    failed = False
    for name, step in (
        ("execution plan", plan),
        ("checkpoints", checkpoints),
        ("job data", job_data),
        ("blobs", blobs),
    ):
        before = len(errors)
        await _guarded(f"removing the {name} of job {job_id}", errors, step)
        failed = failed or len(errors) > before
    if failed:
        return  # the result stays dirty: a JobManager (or the next clean) retries the cleanup
    jrs = services.get_job_result_store()

    async def result() -> None:
        if await jrs.has_dirty_job_result_entry(job_id):
            await jrs.mark_result_as_clean(job_id)
            report.removed.append("dirty job result (marked clean)")

    await _guarded(f"marking the job result of {job_id} clean", errors, result)


async def _remove_known_jobs(
    services: HighAvailabilityServices, config: Configuration, report: CleanReport
) -> None:
    """Before ``cleanup_all_data``, while the tool leads: remove the plans, checkpoints and job data of every job it
    can find through the stores, so that their metadata files go with their pointers on every backend (the
    coordination store's cleanup alone drops only the pointers, and on Kubernetes not the job ConfigMaps).
    Checkpoint state files are kept."""
    errors = report.errors
    store = services.get_execution_plan_store()
    await store.start(_IgnoringPlanListener())
    try:
        plans = (
            await _guarded("listing execution plans", errors, partial(_read_plans_started, store, errors))
            or []
        )
        for plan in plans:
            job_id = JobID(plan["jobId"])
            before = len(errors)
            await _guarded(
                f"removing the execution plan of job {job_id}", errors, partial(store.global_cleanup, job_id)
            )
            if len(errors) == before:
                report.removed.append(f"execution plan {job_id} ({plan.get('name', '?')})")
    finally:
        await store.stop()
    results = (
        await _guarded("listing job results", errors, partial(_read_job_results, services, errors)) or {}
    )
    job_ids = sorted(
        {JobID(p["jobId"]) for p in plans}
        | {JobID(r["jobId"]) for r in results.get("dirty") or []}
        | {JobID(r["jobId"]) for r in results.get("clean") or []}
    )
    for job_id in job_ids:
        ids = await _guarded(
            f"removing the checkpoints of job {job_id}",
            errors,
            partial(_remove_checkpoints, services, config, job_id, _KeepStateCleaner()),
        )
        if ids:
            report.removed.append(f"{len(ids)} checkpoint(s) of job {job_id}")
        # the job's own HA data: Kubernetes keeps a ConfigMap per job that the cluster cleanup does not delete
        await _guarded(
            f"removing the HA data of job {job_id}", errors, partial(services.global_cleanup, job_id)
        )


async def _clean_all(services: HighAvailabilityServices, report: CleanReport) -> None:
    errors = report.errors
    results = await _guarded("listing job results", errors, partial(_read_job_results, services, errors))
    dirty = [JobID(r["jobId"]) for r in (results or {}).get("dirty") or []]
    before = len(errors)
    await _guarded("removing all HA data", errors, services.cleanup_all_data)
    if len(errors) > before:
        return  # dirty results stay dirty: their cleanup is still to be done
    report.removed.append("all HA data of the cluster (coordination store and HA storage directory)")
    jrs = services.get_job_result_store()
    for job_id in dirty:
        before = len(errors)
        await _guarded(
            f"marking the job result of {job_id} clean", errors, partial(jrs.mark_result_as_clean, job_id)
        )
        if len(errors) == before:
            report.removed.append(f"dirty job result of {job_id} (marked clean)")
