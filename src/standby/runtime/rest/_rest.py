"""The REST API of a JobManager (Flink-shaped paths), served by every JobManager process.

The REST leader (component ``rest_server``) answers job and cluster requests by calling the leading Dispatcher;
a standby forwards them to the REST leader it learns from leader retrieval (or answers 503 naming the leader when
it cannot). ``/cluster/leaders`` and ``/metrics`` are always answered by the process asked.
"""

from __future__ import annotations

import abc
import logging
import os
from typing import Any
from uuid import UUID

import httpx
from fastapi import FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from standby.ha import LeaderContender, LeaderElection

from .._metrics import Metrics
from .._util import LeaderTracker, now_ms
from ..rpc import RpcClient, RpcConnectionError, RpcService, error_response

_log = logging.getLogger(__name__)

FORWARDED_HEADER = "X-Standby-Forwarded-By"

#: paths a standby forwards to the REST leader
_FORWARDED_PREFIXES = (
    "/overview",
    "/jobs",
    "/taskmanagers",
    "/jobmanager/config",
    "/jobmanagers",
    "/cluster",
)
_LOCAL_PATHS = ("/cluster/leaders",)


class RestEndpointContext(abc.ABC):
    """What the REST handlers need from their JobManager process."""

    jobmanager_id: str
    metrics: Metrics
    rpc_service: RpcService
    rpc_client: RpcClient
    rest_leader: LeaderTracker
    dispatcher_leader: LeaderTracker
    resource_manager_leader: LeaderTracker

    @abc.abstractmethod
    def rest_url(self) -> str: ...

    @abc.abstractmethod
    def is_rest_leader(self) -> bool: ...

    @abc.abstractmethod
    def local_dispatcher_token(self) -> UUID | None:
        """The fencing token of this process's leading Dispatcher, if it leads."""

    @abc.abstractmethod
    def display_config(self) -> dict[str, str]: ...

    @abc.abstractmethod
    def process_info(self) -> dict[str, Any]: ...

    @abc.abstractmethod
    def auth_token(self) -> str | None: ...


class RestLeaderContender(LeaderContender):
    """Contender of ``rest_server``: confirms the REST URL (clients find the cluster by it)."""

    def __init__(self, election: LeaderElection, url: str, metrics: Metrics | None = None) -> None:
        self._election = election
        self._url = url
        self._metrics = metrics
        self.session_id: UUID | None = None
        self._pending: set[Any] = set()

    async def start(self) -> None:
        await self._election.start_leader_election(self)

    async def close(self) -> None:
        await self._election.close()

    def grant_leadership(self, session_id: UUID) -> None:
        import asyncio

        self.session_id = session_id
        if self._metrics is not None:
            self._metrics.leadership("rest_server", True)
        task = asyncio.ensure_future(self._election.confirm_leadership(session_id, self._url))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def revoke_leadership(self) -> None:
        self.session_id = None
        if self._metrics is not None:
            self._metrics.leadership("rest_server", False)

    def handle_error(self, error: Exception) -> None:
        _log.error("REST leader election failed: %s", error)


class SubmitJobRequest(BaseModel):
    """``POST /jobs``: the job file travels base64-encoded (no multipart needed)."""

    jobFile: str = Field(description="The Python job file, base64-encoded")
    jobFileName: str = Field(default="job.py", max_length=255)
    entryClass: str | None = Field(default=None, description="Task subclass to run (default: the only one)")
    programArgsList: list[str] = Field(default_factory=list)
    parallelism: int | None = Field(default=None, ge=1, le=10_000)
    jobName: str | None = Field(default=None, max_length=1000)
    jobId: str | None = Field(default=None, description="32 hex characters; generated when absent")


class _ForwardingMiddleware(BaseHTTPMiddleware):
    def __init__(self, app: Any, context: RestEndpointContext) -> None:
        super().__init__(app)
        self._ctx = context

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        path = request.url.path
        if path in _LOCAL_PATHS or not path.startswith(_FORWARDED_PREFIXES) or self._ctx.is_rest_leader():
            return await call_next(request)
        leader = self._ctx.rest_leader.leader
        if leader.address is None:
            return error_response(503, "No REST leader is known yet; retry in a moment", "RpcConnectionError")
        if leader.address.rstrip("/") == self._ctx.rest_url().rstrip("/") or request.headers.get(
            FORWARDED_HEADER
        ):
            return JSONResponse(
                {
                    "errors": [f"This JobManager is not the leader; the leader is {leader.address}"],
                    "leader": leader.address,
                },
                status_code=503,
            )
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        headers[FORWARDED_HEADER] = self._ctx.jobmanager_id
        body = await request.body()
        url = f"{leader.address.rstrip('/')}{path}"
        try:
            async with httpx.AsyncClient(timeout=30.0) as client:
                upstream = await client.request(
                    request.method,
                    url,
                    params=list(request.query_params.multi_items()),
                    content=body,
                    headers=headers,
                )
        except httpx.HTTPError as e:
            return JSONResponse(
                {
                    "errors": [f"The REST leader {leader.address} is unreachable: {e!r}"],
                    "leader": leader.address,
                },
                status_code=503,
            )
        passthrough = {
            k: v for k, v in upstream.headers.items() if k.lower() in ("content-type", "www-authenticate")
        }
        passthrough[FORWARDED_HEADER] = leader.address
        return Response(upstream.content, status_code=upstream.status_code, headers=passthrough)


def add_rest_routes(app: FastAPI, ctx: RestEndpointContext) -> None:
    """Register the REST API on ``app``."""
    app.add_middleware(_ForwardingMiddleware, context=ctx)

    async def dispatcher(method: str, payload: dict[str, Any] | None = None) -> Any:
        token = ctx.local_dispatcher_token()
        if token is not None:
            return await ctx.rpc_service.invoke("dispatcher", method, str(token), dict(payload or {}))
        leader = ctx.dispatcher_leader.leader
        if leader.address is None:
            raise RpcConnectionError("No Dispatcher leader is known yet; retry in a moment")
        return await ctx.rpc_client.call(leader.address, method, payload, fencing_token=leader.session_id)

    @app.get("/overview", tags=["cluster"])
    async def overview() -> dict[str, Any]:
        result: dict[str, Any] = await dispatcher("overview")
        return result

    @app.get("/config", tags=["cluster"])
    async def dashboard_config() -> dict[str, Any]:
        return {"refresh-interval": 3000, "timezone-name": "UTC", "flink-version": "standby", "features": {}}

    @app.get("/jobs", tags=["jobs"])
    async def list_jobs() -> dict[str, Any]:
        jobs = await dispatcher("list_jobs")
        return {"jobs": [{"id": j["jid"], "status": j.get("state")} for j in jobs]}

    @app.get("/jobs/overview", tags=["jobs"])
    async def jobs_overview() -> dict[str, Any]:
        jobs = await dispatcher("list_jobs")
        return {
            "jobs": [
                {
                    "jid": j["jid"],
                    "name": j.get("name"),
                    "state": j.get("state"),
                    "start-time": j.get("start-time"),
                    "end-time": j.get("end-time"),
                    "duration": j.get("duration"),
                    "last-modification": max((j.get("timestamps") or {"": 0}).values() or [0]),
                    "tasks": j.get("status-counts", {}),
                    "restarts": j.get("restarts", 0),
                    "parallelism": j.get("parallelism"),
                }
                for j in jobs
            ]
        }

    @app.post("/jobs", status_code=202, tags=["jobs"])
    async def submit_job(body: SubmitJobRequest) -> dict[str, Any]:
        result: dict[str, Any] = await dispatcher(
            "submit_job",
            {
                "job_file": body.jobFile,
                "job_file_name": body.jobFileName,
                "entry_class": body.entryClass,
                "args": body.programArgsList,
                "parallelism": body.parallelism,
                "job_name": body.jobName,
                "job_id": body.jobId,
            },
        )
        return result

    @app.get("/jobs/{job_id}", tags=["jobs"])
    async def job_details(job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await dispatcher("job_details", {"job_id": job_id})
        return result

    @app.patch("/jobs/{job_id}", status_code=202, tags=["jobs"])
    async def cancel_job(job_id: str, mode: str = Query(default="cancel")) -> dict[str, Any]:
        if mode != "cancel":
            return error_response(400, f"Unsupported mode {mode!r}: only 'cancel' is supported")  # type: ignore[return-value]
        result: dict[str, Any] = await dispatcher("cancel_job", {"job_id": job_id})
        return result

    @app.get("/jobs/{job_id}/checkpoints", tags=["jobs"])
    async def job_checkpoints(job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await dispatcher("job_checkpoints", {"job_id": job_id})
        return result

    @app.get("/jobs/{job_id}/execution-result", tags=["jobs"])
    async def job_result(job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await dispatcher("job_result", {"job_id": job_id})
        return result

    @app.get("/taskmanagers", tags=["cluster"])
    async def task_managers() -> dict[str, Any]:
        return {"taskmanagers": await dispatcher("task_managers")}

    @app.get("/jobmanager/config", tags=["cluster"])
    async def jobmanager_config() -> list[dict[str, str]]:
        return [{"key": k, "value": v} for k, v in sorted(ctx.display_config().items())]

    @app.get("/jobmanagers", tags=["cluster"])
    async def jobmanagers() -> dict[str, Any]:
        return {"jobmanagers": await dispatcher("list_jobmanagers")}

    @app.delete("/cluster", status_code=202, tags=["cluster"])
    async def shutdown_cluster() -> dict[str, Any]:
        result: dict[str, Any] = await dispatcher("shutdown_cluster")
        return result

    @app.get("/cluster/leaders", tags=["cluster"])
    async def cluster_leaders() -> dict[str, Any]:
        def info(tracker: LeaderTracker) -> dict[str, Any]:
            leader = tracker.leader
            return {
                "address": leader.address,
                "sessionId": str(leader.session_id) if leader.session_id else None,
                "changes": tracker.changes,
            }

        body: dict[str, Any] = {
            "answeredBy": ctx.process_info(),
            "now": now_ms(),
            "leaders": {
                "dispatcher": info(ctx.dispatcher_leader),
                "resource_manager": info(ctx.resource_manager_leader),
                "rest_server": info(ctx.rest_leader),
            },
            "jobs": {},
        }
        try:
            for job in await dispatcher("list_jobs"):
                if job.get("job-master-id"):
                    body["jobs"][job["jid"]] = {
                        "address": job.get("job-master-address"),
                        "sessionId": job.get("job-master-id"),
                        "state": job.get("state"),
                    }
        except Exception as e:  # the leader may be changing: leaders are still worth answering
            body["jobsError"] = str(e)
        return body

    @app.get("/metrics", tags=["cluster"], response_class=Response)
    async def metrics() -> Response:
        ctx.metrics.fencing_rejections.set(ctx.rpc_service.fencing_rejections)
        return Response(ctx.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/jobmanager/info", tags=["cluster"])
    async def jobmanager_info() -> dict[str, Any]:
        return {**ctx.process_info(), "pid": os.getpid()}
