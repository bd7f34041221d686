"""A JobManager process (Flink's ``ClusterEntrypoint`` for a session cluster).

Dispatcher, ResourceManager and REST endpoint contend for leadership through the process's ONE leader election
service (components ``dispatcher``, ``resource_manager``, ``rest_server``; every job adds ``job-<jobId>``). Several
JobManagers run at once: one leads, the others stand by. ``close()`` hands leadership over at once (elections
closed, HA data kept); only a terminal cluster shutdown removes the HA data (``close(cleanup_ha=True)``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import operator
import os
import uuid
from functools import partial
from typing import Any
from uuid import UUID

from standby.config import Configuration
from standby.ha import (
    BlobStore,
    ExecutionPlan,
    HighAvailabilityServices,
    VoidBlobStore,
    create_high_availability_services,
    rest_address,
)

from .._config import RuntimeSettings, display_items
from .._metrics import Metrics
from .._util import LeaderTracker, TaskGroup, now_ms
from ..dispatcher import DefaultDispatcherRunner, DispatcherServices
from ..jobmaster import JobMasterServices
from ..resourcemanager import ResourceManagerService
from ..rest import RestEndpointContext, RestLeaderContender, add_rest_routes
from ..rpc import (
    HttpServer,
    RpcClient,
    RpcConnectionError,
    RpcEndpoint,
    RpcError,
    RpcService,
    build_app,
    secure,
)

_log = logging.getLogger(__name__)

JOBMANAGER_CONTROL_ENDPOINT = "jobmanager"


class UserCodeNotFoundError(RuntimeError):
    """The job file of a recovered job is not in the blob store."""


class _ControlEndpoint(RpcEndpoint):
    """Unfenced per-process control (cluster shutdown reaches standbys through it)."""

    def __init__(self, process: JobManagerProcess) -> None:
        super().__init__(JOBMANAGER_CONTROL_ENDPOINT)
        self._process = process

    async def rpc_shutdown(self) -> None:
        self._process.request_shutdown(cleanup_ha=False)

    async def rpc_info(self) -> dict[str, Any]:
        return self._process.process_info()


class JobManagerProcess(RestEndpointContext):
    def __init__(
        self,
        configuration: Configuration,
        services: HighAvailabilityServices | None = None,
        jobmanager_id: str | None = None,
    ) -> None:
        self.configuration = configuration
        self.settings = RuntimeSettings.from_configuration(configuration)
        self.jobmanager_id = jobmanager_id or f"jm-{uuid.uuid4().hex[:12]}"
        self._given_services = services
        self.services: HighAvailabilityServices | None = services
        self.metrics = Metrics()
        self.rpc_service = RpcService(self.settings.jobmanager_host, 0)
        self.rpc_client = RpcClient(
            auth_token=self.settings.auth_token, timeout_s=self.settings.rpc_timeout_s, local=self.rpc_service
        )
        self._servers: list[HttpServer] = []
        self._rest_url = ""
        self._tasks = TaskGroup(self.jobmanager_id)
        self.started_at_ms = now_ms()
        #: set when the process should end; ``cleanup_ha`` says whether the HA data goes too
        self.shutdown_requested = asyncio.Event()
        self.cleanup_ha_on_shutdown = False
        self.fatal_error: BaseException | None = None
        self._closed = False
        self.dispatcher_runner: DefaultDispatcherRunner | None = None
        self.resource_manager_service: ResourceManagerService | None = None
        self.rest_contender: RestLeaderContender | None = None
        self._blob_store: BlobStore | None = None
        self._code_cache: dict[str, bytes] = {}

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        s = self.settings
        if self.services is None:
            self.services = await create_high_availability_services(self.configuration, self)
        services = self.services
        app = build_app(
            title="standby JobManager",
            rpc_service=self.rpc_service,
            auth_token=s.auth_token,
            max_content_length=s.max_content_length,
        )
        add_rest_routes(app, self)
        asgi = secure(app, auth_token=s.auth_token, max_content_length=s.max_content_length)
        rest_server = HttpServer(asgi, s.rest_bind_address, s.rest_port, "REST")
        rest_port = await rest_server.start()
        self._servers.append(rest_server)
        same = s.jobmanager_rpc_port in (0, rest_port) and s.jobmanager_bind_host == s.rest_bind_address
        if s.ha_type in ("none", "standalone") or not same:
            rpc_server = HttpServer(asgi, s.jobmanager_bind_host, s.jobmanager_rpc_port, "RPC")
            rpc_port = await rpc_server.start()
            self._servers.append(rpc_server)
        else:
            rpc_port = rest_port  # one server for REST and RPC
        self.rpc_service.set_address(s.jobmanager_host, rpc_port)
        self._rest_url = rest_address(s.rest_address, rest_port)
        self.rpc_service.register(_ControlEndpoint(self))

        self.resource_manager_leader = LeaderTracker(
            "resource_manager", services.get_resource_manager_leader_retriever()
        )
        self.dispatcher_leader = LeaderTracker("dispatcher", services.get_dispatcher_leader_retriever())
        self.rest_leader = LeaderTracker("rest_server", services.get_cluster_rest_endpoint_leader_retriever())
        for tracker in (self.resource_manager_leader, self.dispatcher_leader, self.rest_leader):
            await tracker.start()
        try:
            self._blob_store = services.create_blob_store()
        except Exception as e:
            _log.warning("No blob store: %s", e)
        blob_store = self._blob_store
        job_master_services = JobMasterServices(
            settings=s,
            rpc_client=self.rpc_client,
            resource_manager=self.resource_manager_leader,
            checkpoint_recovery_factory=services.get_checkpoint_recovery_factory(),
            user_code=self._user_code,
            metrics=self.metrics,
        )
        dispatcher_services = DispatcherServices(
            settings=s,
            configuration=self.configuration,
            ha_services=services,
            rpc_service=self.rpc_service,
            rpc_client=self.rpc_client,
            job_master_services=job_master_services,
            blob_store=blob_store if blob_store is not None else VoidBlobStore(),
            job_result_store=services.get_job_result_store(),
            resource_manager=self.resource_manager_leader,
            fatal_error_handler=self,
            metrics=self.metrics,
            on_shutdown_cluster=self._on_shutdown_cluster,
            code_cache=self._code_cache,
        )
        self.resource_manager_service = ResourceManagerService(
            services.get_resource_manager_leader_election(),
            s,
            self.rpc_service,
            self.rpc_client,
            self,
            self.metrics,
        )
        self.dispatcher_runner = DefaultDispatcherRunner(
            services.get_dispatcher_leader_election(),
            dispatcher_services,
            services.get_execution_plan_store,
            self,
        )
        self.rest_contender = RestLeaderContender(
            services.get_cluster_rest_endpoint_leader_election(), self._rest_url, self.metrics
        )
        await self.resource_manager_service.start()
        await self.dispatcher_runner.start()
        await self.rest_contender.start()
        self._tasks.spawn(self._announce_loop(), name=f"{self.jobmanager_id}-announce")
        _log.info(
            "JobManager %s started: REST %s, RPC %s (HA: %s)",
            self.jobmanager_id,
            self._rest_url,
            self.rpc_service.base_url,
            s.ha_type,
        )

    async def close(self, cleanup_ha: bool = False) -> None:
        """Stop; leadership is handed over at once. ``cleanup_ha`` removes ALL HA data (terminal shutdown only)."""
        if self._closed:
            return
        self._closed = True
        await self._deregister()
        await self._tasks.close()
        # elections first (hand-over), the rest after
        for component in (self.dispatcher_runner, self.resource_manager_service, self.rest_contender):
            if component is not None:
                try:
                    await component.close()
                except Exception:
                    _log.exception("Closing %s failed", type(component).__name__)
        for tracker_name in ("resource_manager_leader", "dispatcher_leader", "rest_leader"):
            tracker = getattr(self, tracker_name, None)
            if tracker is not None:
                await tracker.stop()
        for server in reversed(self._servers):
            await server.stop()
        await self.rpc_client.close()
        services = self.services
        removed = False
        if services is not None and (self._given_services is None or cleanup_ha):
            try:
                await services.close_with_optional_clean(cleanup_ha)
                removed = cleanup_ha
            except Exception:
                _log.exception(
                    "Closing the HA services failed%s", "; HA data may be left" if cleanup_ha else ""
                )
        self.shutdown_requested.set()
        _log.info(
            "JobManager %s stopped%s", self.jobmanager_id, " and removed the HA data" if removed else ""
        )

    def request_shutdown(self, cleanup_ha: bool = False) -> None:
        self.cleanup_ha_on_shutdown = self.cleanup_ha_on_shutdown or cleanup_ha
        self.shutdown_requested.set()

    # ------------------------------------------------------------------ FatalErrorHandler

    def on_fatal_error(self, error: BaseException) -> None:
        """Flink terminates the process on a fatal error; so do we (HA data kept for the next leader)."""
        _log.critical("Fatal error in JobManager %s: %s", self.jobmanager_id, error, exc_info=error)
        if self.fatal_error is None:
            self.fatal_error = error
        self.request_shutdown(cleanup_ha=False)

    # ------------------------------------------------------------------ job files

    async def _user_code(self, plan: ExecutionPlan) -> bytes:
        key = plan.user_code or ""
        code = self._code_cache.get(key)
        if code is not None:
            return code
        if self._blob_store is not None:
            code = await self._blob_store.get(plan.job_id, key)
        if code is None:
            raise UserCodeNotFoundError(
                f"The job file of job {plan.job_id} (blob {key}) is not in the blob store; with "
                "high-availability.type none or embedded nothing survives the JobManager that received it"
            )
        self._code_cache[key] = code
        return code

    # ------------------------------------------------------------------ cluster shutdown

    def _on_shutdown_cluster(self) -> None:
        self._tasks.spawn(self._shutdown_cluster(), name="shutdown-cluster")

    async def _shutdown_cluster(self) -> None:
        """Stop the standbys and TaskManagers first (none may take over), then ourselves with HA data removed."""
        dispatcher = self.dispatcher_runner.dispatcher if self.dispatcher_runner else None
        others: list[str] = []
        task_managers: list[str] = []
        if dispatcher is not None:
            others = [
                jm["rpcAddress"]
                for jm in await dispatcher.rpc_list_jobmanagers()
                if jm["id"] != self.jobmanager_id
            ]
            task_managers = [tm["path"] for tm in await dispatcher.rpc_task_managers()]

        async def stop(address: str) -> None:
            try:
                await self.rpc_client.call(address, "shutdown", {}, timeout_s=5)
            except RpcError as e:
                _log.info("Could not ask %s to shut down: %s", address, e)

        await asyncio.gather(*(stop(a) for a in others + task_managers))

        async def gone(address: str) -> None:
            # a standby still running could take over once we let go, and write into what we remove
            deadline = asyncio.get_running_loop().time() + 15.0
            while asyncio.get_running_loop().time() < deadline:
                try:
                    await self.rpc_client.call(address, "info", {}, timeout_s=1)
                except RpcConnectionError:
                    return
                except RpcError:
                    pass
                await asyncio.sleep(0.1)
            _log.warning("%s did not stop within 15 s", address)

        await asyncio.gather(*(gone(a) for a in others + task_managers))
        self.request_shutdown(cleanup_ha=True)

    # ------------------------------------------------------------------ announce (for `standby status`)

    async def _announce_loop(self) -> None:
        while True:
            leader = self.dispatcher_leader.leader
            if leader.address is not None:
                with contextlib.suppress(RpcError):
                    await self.rpc_client.call(
                        leader.address,
                        "register_jobmanager",
                        {
                            "jobmanager_id": self.jobmanager_id,
                            "rest_address": self._rest_url,
                            "rpc_address": self.rpc_service.address_of(JOBMANAGER_CONTROL_ENDPOINT),
                            "pid": os.getpid(),
                            "started_at": self.started_at_ms,
                        },
                        fencing_token=leader.session_id,
                        timeout_s=2.0,
                    )
            # re-announce soon after a leader change, else every heartbeat interval
            with contextlib.suppress(TimeoutError):
                await self.dispatcher_leader.wait_for(
                    partial(operator.ne, leader), self.settings.heartbeat_interval_s
                )

    async def _deregister(self) -> None:
        leader = getattr(self, "dispatcher_leader", None)
        if leader is None or leader.leader.address is None:
            return
        with contextlib.suppress(RpcError):
            await self.rpc_client.call(
                leader.leader.address,
                "deregister_jobmanager",
                {"jobmanager_id": self.jobmanager_id},
                fencing_token=leader.leader.session_id,
                timeout_s=1.0,
            )

    # ------------------------------------------------------------------ RestEndpointContext

    def rest_url(self) -> str:
        return self._rest_url

    def is_rest_leader(self) -> bool:
        contender = self.rest_contender
        return contender is not None and contender.session_id is not None

    def local_dispatcher_token(self) -> UUID | None:
        dispatcher = self.dispatcher_runner.dispatcher if self.dispatcher_runner else None
        if dispatcher is None or self.rpc_service.get("dispatcher") is not dispatcher:
            return None
        return dispatcher.fencing_token

    def display_config(self) -> dict[str, str]:
        return display_items(self.configuration)

    def process_info(self) -> dict[str, Any]:
        return {
            "id": self.jobmanager_id,
            "pid": os.getpid(),
            "restAddress": self._rest_url,
            "rpcAddress": self.rpc_service.base_url,
            "startedAt": self.started_at_ms,
            "isRestLeader": self.is_rest_leader(),
            "isDispatcherLeader": self.local_dispatcher_token() is not None,
        }

    def auth_token(self) -> str | None:
        return self.settings.auth_token
