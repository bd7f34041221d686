"""The ``standby`` command: cluster processes (jobmanager, taskmanager), job commands and the failover demo."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import gc
import importlib
import json
import logging
import os
import signal
import sys
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from standby.config import Configuration, ConfigurationError
from standby.ha import BUILTIN_BACKENDS, high_availability_type
from standby.runtime import JobFileError, find_task_class
from standby.runtime._config import load_configuration

from ._errors import CliError
from ._ha_tools import RefusedError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from ._client import ClusterClient

T = TypeVar("T")

app = typer.Typer(
    name="standby",
    help="A highly available job cluster after Apache Flink's JobManager HA. Start with: standby demo",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


# rich and the REST client are imported where used: a JobManager or TaskManager process needs neither (~0.1 s and
# ~7 MiB less per process)
@functools.cache
def _out() -> Console:
    from rich.console import Console

    return Console(soft_wrap=True)


@functools.cache
def _err() -> Console:
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)


ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML configuration file (Flink key names).", show_default=False),
]
DynamicOpt = Annotated[
    list[str] | None,
    typer.Option("-D", help="Override a configuration key: -D key=value (repeatable).", show_default=False),
]
AddressOpt = Annotated[
    str | None,
    typer.Option(
        "--address",
        "-a",
        help="REST URL of a JobManager (default: found by leader retrieval).",
        show_default=False,
    ),
]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging and full tracebacks.")]

_state: dict[str, bool] = {"verbose": False}


def _setup_logging(verbose: bool, level: int = logging.WARNING) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    for noisy in ("httpx", "httpcore", "uvicorn", "uvicorn.error", "uvicorn.access", "kazoo", "fsspec"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _run(coro_factory: Callable[[], Awaitable[T]]) -> T:
    """Run a command; errors are one clear line unless --verbose."""
    try:
        return asyncio.run(_as_coroutine(coro_factory))
    except RefusedError as e:
        if _state["verbose"]:
            traceback.print_exc()
        _err().print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(2) from None
    except (CliError, ConfigurationError, JobFileError, OSError, TimeoutError) as e:
        if _state["verbose"]:
            traceback.print_exc()
        _err().print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except Exception as e:
        if _state["verbose"]:
            traceback.print_exc()
        _err().print(f"[red]error:[/red] {type(e).__name__}: {e}", highlight=False)
        raise typer.Exit(1) from None


async def _as_coroutine(factory: Callable[[], Awaitable[T]]) -> T:
    return await factory()


def _load(config: Path | None, dynamic: list[str] | None, verbose: bool) -> Configuration:
    _state["verbose"] = verbose
    try:
        return load_configuration(str(config) if config else None, list(dynamic or []))
    except ConfigurationError as e:
        if verbose:
            traceback.print_exc()
        _err().print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(1) from None


# ---------------------------------------------------------------------------------------------- processes


@contextlib.contextmanager
def _server_imports(conf: Configuration) -> Iterator[None]:
    """Import what a server process keeps for its lifetime (the runtime, the configured HA backend) with the cyclic
    garbage collector off, then freeze it all (``gc.freeze``).

    The imports create ~80k long-lived container objects that the collector would otherwise traverse over and over
    during start-up, and again in every later full collection, without ever freeing one. The few hundred objects
    of import-time garbage are frozen with them. Only objects that exist before the process starts are frozen.
    (pydantic models defined meanwhile are built as usual.)
    """
    gc.disable()
    try:
        yield
        spec = BUILTIN_BACKENDS.get(high_availability_type(conf))
        if spec is not None:
            # start() reports a backend that cannot be imported, with the valid types
            with contextlib.suppress(Exception):
                importlib.import_module(spec.partition(":")[0])
    finally:
        gc.freeze()
        gc.enable()


async def _serve(process: Any) -> int:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        # graceful: close the elections so that a standby takes over at once
        loop.add_signal_handler(sig, process.shutdown_requested.set)
    try:
        await process.start()
        await process.shutdown_requested.wait()
    finally:
        if hasattr(process, "cleanup_ha_on_shutdown"):
            await process.close(cleanup_ha=process.cleanup_ha_on_shutdown)
        else:
            await process.close()
    return 1 if getattr(process, "fatal_error", None) is not None else 0


@app.command()
def jobmanager(config: ConfigOpt = None, dynamic: DynamicOpt = None, verbose: VerboseOpt = False) -> None:
    """Run a JobManager (Dispatcher, ResourceManager, REST, JobMasters). Start several: one leads, the others
    stand by. SIGTERM hands leadership over at once."""
    conf = _load(config, dynamic, verbose)
    _setup_logging(verbose, logging.INFO)
    with _server_imports(conf):
        from standby.runtime.entrypoint import JobManagerProcess
    code = _run(lambda: _serve(JobManagerProcess(conf)))
    raise typer.Exit(code)


@app.command()
def taskmanager(config: ConfigOpt = None, dynamic: DynamicOpt = None, verbose: VerboseOpt = False) -> None:
    """Run a TaskManager with taskmanager.numberOfTaskSlots slots; it follows the leading ResourceManager."""
    conf = _load(config, dynamic, verbose)
    _setup_logging(verbose, logging.INFO)
    with _server_imports(conf):
        from standby.runtime.entrypoint import TaskManagerProcess
    code = _run(lambda: _serve(TaskManagerProcess(conf)))
    raise typer.Exit(code)


# ---------------------------------------------------------------------------------------------- jobs


def _split_target(target: str) -> tuple[Path, str | None]:
    path, sep, cls = target.rpartition(":")
    if sep and path and cls.isidentifier() and not Path(target).exists():
        return Path(path), cls
    return Path(target), None


def _fmt_ms(ms: Any) -> str:
    if not isinstance(ms, int | float) or ms <= 0:
        return "-"
    return datetime.fromtimestamp(ms / 1000).strftime("%H:%M:%S")


def _fmt_duration(ms: Any) -> str:
    if not isinstance(ms, int | float) or ms < 0:
        return "-"
    return f"{ms / 1000:.1f}s"


def _result_table(accumulators: dict[str, Any], limit: int = 30) -> Table:
    from rich.table import Table

    table = Table(title="Accumulators", show_header=True)
    table.add_column("name")
    table.add_column("value", justify="right")
    for key in sorted(accumulators)[:limit]:
        table.add_row(key, str(accumulators[key]))
    if len(accumulators) > limit:
        table.add_row("…", f"{len(accumulators) - limit} more (use --json)")
    return table


@app.command()
def run(
    target: Annotated[str, typer.Argument(help="Job file, optionally with the Task class: FILE[:ClassName]")],
    parallelism: Annotated[
        int | None, typer.Option("--parallelism", "-p", min=1, help="Subtasks to run.")
    ] = None,
    detached: Annotated[bool, typer.Option("--detached", "-d", help="Print the job id and return.")] = False,
    arg: Annotated[list[str] | None, typer.Option("--arg", help="Argument for the job (repeatable).")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Job name.")] = None,
    job_id: Annotated[str | None, typer.Option("--job-id", help="Job id (32 hex characters).")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the result.")] = 3600.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    config: ConfigOpt = None,
    dynamic: DynamicOpt = None,
    address: AddressOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Submit a job and (unless --detached) wait for its result."""
    conf = _load(config, dynamic, verbose)
    _setup_logging(verbose)
    path, entry = _split_target(target)

    async def go() -> int:
        from ._client import ClusterClient

        try:
            code = path.read_bytes()
        except OSError as e:
            raise CliError(f"Cannot read the job file {path}: {e.strerror}") from None
        entry_class = find_task_class(code, path.name, entry)
        jid = job_id or uuid.uuid4().hex
        async with ClusterClient(conf, address) as client:
            body = {
                "jobFile": base64.b64encode(code).decode(),
                "jobFileName": path.name,
                "entryClass": entry_class,
                "programArgsList": list(arg or []),
                "parallelism": parallelism,
                "jobName": name,
                "jobId": jid,
            }
            try:
                submitted = await client.request("POST", "/jobs", json=body)
                jid = submitted["jobid"]
            except CliError as e:
                # a retry after a failover may find our own job already submitted
                if "already been submitted" not in str(e) or job_id:
                    raise
            if not as_json:
                _out().print(
                    f"Job [bold]{jid}[/bold] submitted ({path.name}:{entry_class}).", highlight=False
                )
            if detached:
                if as_json:
                    _out().print_json(json.dumps({"jobid": jid}))
                return 0
            deadline = time.monotonic() + timeout
            # bounded by --timeout
            while True:
                result = await client.request("GET", f"/jobs/{jid}/execution-result", retry_s=60.0)
                if result["status"]["id"] == "COMPLETED":
                    break
                if time.monotonic() > deadline:
                    raise CliError(f"Job {jid} did not finish within {timeout:.0f} s (it keeps running)")
                await asyncio.sleep(0.25)
            execution = result.get("job-execution-result") or {}
            status = execution.get("application-status", "UNKNOWN")
            if as_json:
                _out().print_json(json.dumps(execution))
            else:
                _out().print(
                    f"Job {jid} {status} in {_fmt_duration(execution.get('net-runtime'))}.", highlight=False
                )
                accumulators = execution.get("accumulator-results") or {}
                if accumulators:
                    _out().print(_result_table(accumulators))
                cause = execution.get("failure-cause")
                if cause:
                    _err().print(
                        f"[red]failure:[/red] {cause.get('stack-trace', '').splitlines()[0]}", highlight=False
                    )
            return 0 if status == "SUCCEEDED" else 1

    raise typer.Exit(_run(go))


@app.command("list")
def list_jobs(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    config: ConfigOpt = None,
    dynamic: DynamicOpt = None,
    address: AddressOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """List the jobs of the cluster."""
    conf = _load(config, dynamic, verbose)
    _setup_logging(verbose)

    async def go() -> None:
        from rich.table import Table

        from ._client import ClusterClient

        async with ClusterClient(conf, address) as client:
            jobs = (await client.request("GET", "/jobs/overview"))["jobs"]
        if as_json:
            _out().print_json(json.dumps(jobs))
            return
        if not jobs:
            _out().print("No jobs.")
            return
        table = Table(show_header=True)
        for column in ("job id", "name", "state", "started", "duration", "restarts"):
            table.add_column(column)
        for job in jobs:
            table.add_row(
                job["jid"],
                str(job.get("name")),
                str(job.get("state")),
                _fmt_ms(job.get("start-time")),
                _fmt_duration(job.get("duration")),
                str(job.get("restarts", 0)),
            )
        _out().print(table)

    _run(go)


@app.command()
def cancel(
    job_id: Annotated[str, typer.Argument(help="The job to cancel.")],
    config: ConfigOpt = None,
    dynamic: DynamicOpt = None,
    address: AddressOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Cancel a job; its HA data (plan, checkpoints, blobs) is removed once it is CANCELED."""
    conf = _load(config, dynamic, verbose)
    _setup_logging(verbose)

    async def go() -> None:
        from ._client import ClusterClient

        async with ClusterClient(conf, address) as client:
            await client.request("PATCH", f"/jobs/{job_id}", params={"mode": "cancel"})
        _out().print(f"Cancellation of job {job_id} requested.", highlight=False)

    _run(go)


@app.command("shutdown-cluster")
def shutdown_cluster(
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
    config: ConfigOpt = None,
    dynamic: DynamicOpt = None,
    address: AddressOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Stop every JobManager and TaskManager and DELETE all HA data of the cluster (jobs cannot be recovered)."""
    conf = _load(config, dynamic, verbose)
    _setup_logging(verbose)
    if not yes and not typer.confirm("Stop the cluster and delete all of its HA data?", default=False):
        raise typer.Exit(1)

    async def go() -> None:
        from ._client import ClusterClient

        async with ClusterClient(conf, address) as client:
            await client.request("DELETE", "/cluster", retry_s=5.0)
        _out().print("Cluster shutdown requested; all HA data will be removed.")

    _run(go)


async def collect_status(client: ClusterClient) -> dict[str, Any]:
    """Leaders, JobManagers, TaskManagers, jobs and their latest checkpoints, from the REST leader."""
    leaders = await client.request("GET", "/cluster/leaders")
    status: dict[str, Any] = {
        "rest": client.url,
        "leaders": leaders.get("leaders", {}),
        "jobLeaders": leaders.get("jobs", {}),
    }
    status["jobmanagers"] = (await client.request("GET", "/jobmanagers"))["jobmanagers"]
    status["taskmanagers"] = (await client.request("GET", "/taskmanagers"))["taskmanagers"]
    jobs = (await client.request("GET", "/jobs/overview"))["jobs"]
    for job in jobs:
        try:
            stats = await client.request("GET", f"/jobs/{job['jid']}/checkpoints", retry_s=5.0)
            latest = (stats.get("latest") or {}).get("completed")
            job["checkpoints"] = {
                "completed": (stats.get("counts") or {}).get("completed", 0),
                "latest": latest.get("id") if latest else None,
                "restored": ((stats.get("latest") or {}).get("restored") or {}).get("id"),
            }
        except CliError:
            job["checkpoints"] = None
    status["jobs"] = jobs
    return status


def render_status(status: dict[str, Any]) -> list[Table]:
    from rich.table import Table

    leaders = Table(title="Leaders", show_header=True)
    for column in ("component", "address", "session id"):
        leaders.add_column(column)
    for component, info in status["leaders"].items():
        leaders.add_row(component, str(info.get("address") or "-"), str(info.get("sessionId") or "-"))
    for job_id, info in status.get("jobLeaders", {}).items():
        leaders.add_row(
            f"job-{job_id[:8]}…", str(info.get("address") or "-"), str(info.get("sessionId") or "-")
        )
    dispatcher_rest = status["rest"]
    jms = Table(title="JobManagers", show_header=True)
    for column in ("id", "pid", "REST", "role", "alive"):
        jms.add_column(column)
    for jm in status["jobmanagers"]:
        role = (
            "leader"
            if jm.get("restAddress", "").rstrip("/") == (dispatcher_rest or "").rstrip("/")
            else "standby"
        )
        jms.add_row(
            jm["id"], str(jm.get("pid")), jm.get("restAddress", "-"), role, "yes" if jm.get("alive") else "no"
        )
    tms = Table(title="TaskManagers", show_header=True)
    for column in ("id", "pid", "slots", "free", "last heartbeat"):
        tms.add_column(column)
    for tm in status["taskmanagers"]:
        tms.add_row(
            tm["id"],
            str(tm.get("pid")),
            str(tm.get("slotsNumber")),
            str(tm.get("freeSlots")),
            f"{tm.get('timeSinceLastHeartbeat', 0) / 1000:.1f}s ago",
        )
    jobs = Table(title="Jobs", show_header=True)
    for column in ("job id", "name", "state", "restarts", "checkpoints", "latest", "restored from"):
        jobs.add_column(column)
    for job in status["jobs"]:
        cp = job.get("checkpoints") or {}
        jobs.add_row(
            job["jid"],
            str(job.get("name")),
            str(job.get("state")),
            str(job.get("restarts", 0)),
            str(cp.get("completed", "-")),
            str(cp.get("latest") or "-"),
            str(cp.get("restored") or "-"),
        )
    return [leaders, jms, tms, jobs]


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    config: ConfigOpt = None,
    dynamic: DynamicOpt = None,
    address: AddressOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Leaders, JobManagers, TaskManagers, jobs and their latest checkpoints."""
    conf = _load(config, dynamic, verbose)
    _setup_logging(verbose)

    async def go() -> None:
        from ._client import ClusterClient

        async with ClusterClient(conf, address) as client:
            result = await collect_status(client)
        if as_json:
            _out().print_json(json.dumps(result))
            return
        _out().print(f"Cluster at {result['rest']}", highlight=False)
        for table in render_status(result):
            _out().print(table)

    _run(go)


@app.command()
def demo(
    backend: Annotated[
        str,
        typer.Option(
            "--backend", help="HA backend: filesystem (default, no service needed), zookeeper, etcd."
        ),
    ] = "filesystem",
    failovers: Annotated[int, typer.Option("--failovers", min=0, max=5, help="Leaders to SIGKILL.")] = 2,
    count: Annotated[int, typer.Option("--count", min=10, help="Numbers the counter job counts.")] = 3000,
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the temporary directory (logs, HA data).")
    ] = False,
    config: ConfigOpt = None,
    dynamic: DynamicOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """A temporary HA cluster (3 JobManagers, 2 TaskManagers as processes) runs the counter job while the leading
    JobManager is SIGKILLed; prints each failover's timing and whether the result is exact (exit 0 only then)."""
    from ._demo import DemoOptions, run_demo

    conf = _load(config, dynamic, verbose) if (config or dynamic) else None
    _setup_logging(verbose)
    options = DemoOptions(backend=backend, failovers=failovers, count=count, keep=keep, verbose=verbose)
    ok = _run(lambda: run_demo(options, conf, _out()))
    raise typer.Exit(0 if ok else 1)


# ---------------------------------------------------------------------------------------------- HA data

ha_app = typer.Typer(
    name="ha",
    help="See and clean the HA data of a cluster (leaders, execution plans, checkpoints, job results).",
    no_args_is_help=True,
)
app.add_typer(ha_app, name="ha")

LeaderTimeoutOpt = Annotated[
    float,
    typer.Option(
        "--timeout", min=0.0, help="Seconds to wait for each leader to be reported (silence means no leader)."
    ),
]


def _fmt_leader(info: dict[str, str] | None) -> tuple[str, str]:
    return (info["address"], info["sessionId"]) if info else ("no leader", "-")


def render_inspection(report: dict[str, Any]) -> list[Any]:
    """Rich tables of ``inspect_ha``'s report."""
    from rich.table import Table

    leaders = Table(title="Leaders", show_header=True)
    for column in ("component", "address", "session id"):
        leaders.add_column(column)
    for component, info in report["leaders"].items():
        leaders.add_row(component, *_fmt_leader(info))
    plans = Table(title="Execution plans", show_header=True)
    for column in ("job id", "name", "parallelism", "submitted", "job leader"):
        plans.add_column(column)
    job_leaders = {job["jobId"]: job.get("leader") for job in report["jobs"]}
    for plan in report["executionPlans"]:
        plans.add_row(
            plan["jobId"],
            str(plan.get("name", plan.get("error", "?"))),
            str(plan.get("parallelism", "-")),
            _fmt_timestamp(plan.get("submittedAt")),
            _fmt_leader(job_leaders.get(plan["jobId"]))[0],
        )
    checkpoints = Table(title="Checkpoints", show_header=True)
    for column in ("job id", "retained", "latest completed", "counter (next id)"):
        checkpoints.add_column(column)
    for job in report["jobs"]:
        retained = job["checkpoints"]
        latest = retained[-1] if retained else None
        checkpoints.add_row(
            job["jobId"],
            ", ".join(str(c["id"]) + (" (savepoint)" if c["savepoint"] else "") for c in retained) or "none",
            _fmt_timestamp(latest["completedAt"]) if latest else "-",
            str(job["checkpointCounter"]) if job["checkpointCounter"] is not None else "-",
        )
    results = Table(title="Job results", show_header=True)
    for column in ("job id", "name", "state", "status", "ended"):
        results.add_column(column)
    job_results = report["jobResults"]
    for entry in (job_results.get("dirty") or []) + (job_results.get("clean") or []):
        results.add_row(
            entry["jobId"], entry["name"], entry["state"], entry["status"], _fmt_timestamp(entry["endTime"])
        )
    return [leaders, plans, checkpoints, results]


def _fmt_timestamp(ms: Any) -> str:
    if not isinstance(ms, int | float) or ms <= 0:
        return "-"
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


@ha_app.command("inspect")
def ha_inspect(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    timeout: LeaderTimeoutOpt = 2.0,
    config: ConfigOpt = None,
    dynamic: DynamicOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Show the cluster's HA data: leaders, execution plans, checkpoints, job results.

    Changes nothing; works while the cluster runs or is down, on every backend."""
    from ._ha_tools import inspect_ha

    conf = _load(config, dynamic, verbose)
    _setup_logging(verbose)
    report = _run(lambda: inspect_ha(conf, timeout))
    if as_json:
        _out().print_json(json.dumps(report))
        return
    location = f", HA storage {report['storagePath']}" if report["storagePath"] else ""
    _out().print(
        f"Cluster [bold]{report['clusterId']}[/bold] ({report['backend']}{location})", highlight=False
    )
    for table in render_inspection(report):
        _out().print(table)
    note = report["jobResults"].get("note")
    if note:
        _out().print(f"Note: {note}.", highlight=False)
    for problem in report["errors"]:
        _err().print(f"[yellow]warning:[/yellow] {problem}", highlight=False)


@ha_app.command("clean")
def ha_clean(
    job: Annotated[
        str | None, typer.Option("--job", help="Remove the HA data of this job (32 hex characters).")
    ] = None,
    all_data: Annotated[bool, typer.Option("--all", help="Remove ALL HA data of the cluster.")] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Ignore published leader information (stale after a crash); the leader election must still "
            "be won before anything is deleted.",
        ),
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", help="Do not ask (required when stdin is not a terminal).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    timeout: LeaderTimeoutOpt = 2.0,
    lock_timeout: Annotated[
        float, typer.Option("--lock-timeout", min=0.0, help="Seconds to wait to win the leader election.")
    ] = 30.0,
    config: ConfigOpt = None,
    dynamic: DynamicOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Remove the HA data of one job (--job) or of the whole cluster (--all).

    Refuses (exit 2) while a JobManager leads the cluster: stop the cluster first."""
    from standby.ha import JobID

    from ._ha_tools import clean_ha

    conf = _load(config, dynamic, verbose)
    _setup_logging(verbose)

    def refuse(message: str) -> typer.Exit:
        _err().print(f"[red]error:[/red] {message}", highlight=False)
        return typer.Exit(2)

    if (job is None) == (not all_data):
        raise refuse("Pass either --job JOB_ID or --all.")
    job_id: JobID | None = None
    if job is not None:
        try:
            job_id = JobID(job)
        except ValueError as e:
            raise refuse(str(e)) from None
    if not yes and not sys.stdin.isatty():
        raise refuse("Refusing to delete HA data without confirmation: stdin is not a terminal; pass --yes.")

    async def confirm(question: str) -> bool:
        if yes:
            return True
        return await asyncio.to_thread(typer.confirm, question, default=False)

    report = _run(lambda: clean_ha(conf, job_id, force, confirm, timeout, lock_timeout))
    if as_json:
        _out().print_json(json.dumps(report.to_json()))
    else:
        scope = f"job {job_id}" if job_id else "the whole cluster"
        _out().print(f"Cluster {report.cluster_id} ({report.backend}), {scope}:", highlight=False)
        for line in report.removed:
            _out().print(f"  removed: {line}", highlight=False)
        if not report.removed:
            _out().print("  nothing found to remove.", highlight=False)
        for problem in report.warnings:
            _err().print(f"[yellow]warning:[/yellow] {problem}", highlight=False)
        for problem in report.errors:
            _err().print(f"[red]error:[/red] {problem}", highlight=False)
    raise typer.Exit(1 if report.errors else 0)


def main() -> None:
    """Console entry point ``standby``."""
    # the child processes of the demo and users' scripts expect unbuffered, line-wise logs
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    # SIGPIPE stays ignored (Python's default): servers must see EPIPE as an error, not die of the signal
    app()
