"""A TaskManager process: one TaskExecutor with ``taskmanager.numberOfTaskSlots`` slots and its RPC server."""

from __future__ import annotations

import asyncio
import logging

from standby.config import Configuration
from standby.ha import HighAvailabilityServices, create_high_availability_services

from .._config import RuntimeSettings
from ..rpc import HttpServer, RpcClient, RpcService, build_app, secure
from ..taskexecutor import TaskExecutor

_log = logging.getLogger(__name__)


class TaskManagerProcess:
    def __init__(
        self,
        configuration: Configuration,
        services: HighAvailabilityServices | None = None,
        task_manager_id: str | None = None,
        work_dir: str | None = None,
    ) -> None:
        self.configuration = configuration
        self.settings = RuntimeSettings.from_configuration(configuration)
        self._given_services = services
        self.services = services
        self._task_manager_id = task_manager_id
        self._work_dir = work_dir
        self.rpc_service = RpcService(self.settings.taskmanager_host, 0)
        self.rpc_client = RpcClient(
            auth_token=self.settings.auth_token, timeout_s=self.settings.rpc_timeout_s, local=self.rpc_service
        )
        self._server: HttpServer | None = None
        self.executor: TaskExecutor | None = None
        self.shutdown_requested = asyncio.Event()
        self._closed = False

    @property
    def task_manager_id(self) -> str:
        assert self.executor is not None
        return self.executor.task_manager_id

    async def start(self) -> None:
        s = self.settings
        if self.services is None:
            self.services = await create_high_availability_services(self.configuration)
        app = build_app(
            title="standby TaskManager",
            rpc_service=self.rpc_service,
            auth_token=s.auth_token,
            max_content_length=s.max_content_length,
        )
        self._server = HttpServer(
            secure(app, auth_token=s.auth_token, max_content_length=s.max_content_length),
            s.taskmanager_bind_host,
            s.taskmanager_rpc_port,
            "TaskManager RPC",
        )
        port = await self._server.start()
        self.rpc_service.set_address(s.taskmanager_host, port)
        self.executor = TaskExecutor(
            s,
            self.services,
            self.rpc_service,
            self.rpc_client,
            self._task_manager_id,
            self._work_dir,
            on_shutdown_request=self.shutdown_requested.set,
        )
        self.rpc_service.register(self.executor)
        await self.executor.start()
        _log.info(
            "TaskManager %s started with %d slots at %s",
            self.executor.task_manager_id,
            s.num_task_slots,
            self.rpc_service.base_url,
        )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.executor is not None:
            await self.executor.stop()
        if self._server is not None:
            await self._server.stop()
        await self.rpc_client.close()
        if self.services is not None and self._given_services is None:
            try:
                await self.services.close()
            except Exception:
                _log.exception("Closing the HA services failed")
        self.shutdown_requested.set()
