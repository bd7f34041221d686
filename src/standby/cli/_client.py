"""The CLI's REST client: finds the REST leader (``--address`` or leader retrieval of ``rest_server``) and
retries across leader changes."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import httpx

from standby.config import Configuration, options
from standby.ha import (
    HighAvailabilityServices,
    create_high_availability_services,
    high_availability_type,
    rest_address,
)
from standby.runtime._config import RuntimeSettings
from standby.runtime._util import LeaderTracker

from ._errors import CliError

__all__ = ["CliError", "ClusterClient"]


class ClusterClient:
    """REST calls to the cluster's leader; ``async with ClusterClient(...) as client``."""

    def __init__(
        self, configuration: Configuration, address: str | None = None, leader_timeout_s: float = 30.0
    ) -> None:
        self._conf = configuration
        self._fixed = address.rstrip("/") if address else None
        self._timeout = leader_timeout_s
        self._settings = RuntimeSettings.from_configuration(configuration)
        self._services: HighAvailabilityServices | None = None
        self._tracker: LeaderTracker | None = None
        headers = (
            {"Authorization": f"Bearer {self._settings.auth_token}"} if self._settings.auth_token else {}
        )
        self._http = httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(30.0))
        self.url: str | None = None

    async def __aenter__(self) -> ClusterClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()
        if self._tracker is not None:
            with contextlib.suppress(Exception):
                await self._tracker.stop()
        if self._services is not None:
            with contextlib.suppress(Exception):
                await self._services.close()

    async def leader_url(self, refresh: bool = False) -> str:
        if self._fixed is not None:
            return self._fixed
        if high_availability_type(self._conf) == "none":
            return rest_address(self._conf.get(options.REST_ADDRESS), self._conf.get(options.REST_PORT))
        if self._tracker is None:
            try:
                self._services = await create_high_availability_services(self._conf)
                self._tracker = LeaderTracker(
                    "rest_server", self._services.get_cluster_rest_endpoint_leader_retriever()
                )
                await self._tracker.start()
            except Exception as e:
                raise CliError(f"Cannot reach the HA services to find the cluster: {e}") from e
        try:
            leader = await self._tracker.wait_for_leader(self._timeout)
        except TimeoutError:
            raise CliError(
                f"No JobManager leads the cluster (no REST leader after {self._timeout:.0f} s); is a JobManager "
                "running with this configuration? (or pass --address)"
            ) from None
        assert leader.address is not None
        return leader.address.rstrip("/")

    async def request(
        self,
        method: str,
        path: str,
        json: Any = None,
        params: dict[str, str] | None = None,
        retry_s: float = 30.0,
        ok_statuses: tuple[int, ...] = (),
    ) -> Any:
        """JSON result of a REST call; retried while no leader answers (failover), up to ``retry_s``."""
        # a fixed --address has no leader to rediscover: fail fast when it does not answer
        deadline = time.monotonic() + (min(retry_s, 3.0) if self._fixed is not None else retry_s)
        delay = 0.1
        last = ""
        # bounded by retry_s
        while True:
            url = await self.leader_url()
            self.url = url
            try:
                response = await self._http.request(method, f"{url}{path}", json=json, params=params)
            except httpx.HTTPError as e:
                last = f"{url} is unreachable ({type(e).__name__})"
            else:
                if response.status_code < 400 or response.status_code in ok_statuses:
                    return response.json() if response.content else None
                message = _error_message(response)
                # 503: no leader / standby without leader; 409: fencing token changed under a failover
                if response.status_code not in (503, 409):
                    raise CliError(f"{method} {path} failed ({response.status_code}): {message}")
                last = message
            if time.monotonic() + delay > deadline:
                raise CliError(f"{method} {path} failed: {last}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    if isinstance(body, dict):
        errors = body.get("errors") or body.get("detail")
        if isinstance(errors, list) and errors:
            return str(errors[0])
        if errors:
            return str(errors)
    return str(body)[:300]
