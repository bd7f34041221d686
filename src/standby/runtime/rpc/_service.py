"""RPC endpoints, the per-process endpoint registry with fencing, and the HTTP client that calls them.

Flink's ``RpcEndpoint``/``FencedRpcEndpoint`` and ``FencedPekkoRpcActor`` (§5.5): a fenced endpoint has a fencing
token fixed for its lifetime (the leader session id); a new leadership creates a new endpoint instance. Every call
to a fenced endpoint carries a token, and the server drops calls whose token is unset or different.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
from typing import Any
from uuid import UUID

import httpx

from standby.ha import rpc_address

from ._errors import (
    FencingTokenError,
    RpcConnectionError,
    RpcEndpointNotFoundError,
    RpcInvalidCallError,
    error_from_remote,
)

_log = logging.getLogger(__name__)

#: Header carrying the fencing token (the caller's idea of the leader session id) of a call.
FENCING_TOKEN_HEADER = "X-Standby-Fencing-Token"
#: Header carrying the shared secret (``security.auth.token``).
AUTHORIZATION_HEADER = "Authorization"

_METHOD_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class RpcEndpoint:
    """A component reachable over RPC: its ``rpc_<method>`` coroutines are the remote methods."""

    #: whether calls must carry this endpoint's fencing token
    fenced = False

    def __init__(self, endpoint_id: str) -> None:
        self.endpoint_id = endpoint_id

    @property
    def fencing_token(self) -> UUID | None:
        return None


class FencedRpcEndpoint(RpcEndpoint):
    """An endpoint of a leader: the fencing token is the leader session id, fixed for the instance's life."""

    fenced = True

    def __init__(self, endpoint_id: str, fencing_token: UUID) -> None:
        super().__init__(endpoint_id)
        self._fencing_token = fencing_token

    @property
    def fencing_token(self) -> UUID:
        return self._fencing_token


def describe_message(method: str, payload: dict[str, Any]) -> str:
    return f"RemoteFencedMessage({method}({', '.join(sorted(payload))}))"


class RpcService:
    """The endpoints of one process and the address they are reached at (one HTTP server per process)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._endpoints: dict[str, RpcEndpoint] = {}
        self._fenced_ids: set[str] = set()
        #: counts of calls rejected for their fencing token (a metric and a test hook)
        self.fencing_rejections = 0

    def set_address(self, host: str, port: int) -> None:
        self.host = host
        self.port = port

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/rpc/"

    def address_of(self, endpoint_id: str) -> str:
        return rpc_address(self.host, self.port, endpoint_id)

    def register(self, endpoint: RpcEndpoint) -> str:
        """Make ``endpoint`` reachable (replacing a previous instance of the same id); returns its address."""
        self._endpoints[endpoint.endpoint_id] = endpoint
        if endpoint.fenced:
            self._fenced_ids.add(endpoint.endpoint_id)
        return self.address_of(endpoint.endpoint_id)

    def unregister(self, endpoint: RpcEndpoint) -> None:
        """Remove ``endpoint`` if it is still the registered instance (a newer leader's is kept)."""
        if self._endpoints.get(endpoint.endpoint_id) is endpoint:
            del self._endpoints[endpoint.endpoint_id]

    def get(self, endpoint_id: str) -> RpcEndpoint | None:
        return self._endpoints.get(endpoint_id)

    async def invoke(
        self, endpoint_id: str, method: str, fencing_token: str | None, payload: dict[str, Any]
    ) -> Any:
        """Run one call: fencing check first (a rejected call is never acted on), then the method."""
        message = describe_message(method, payload)
        endpoint = self._endpoints.get(endpoint_id)
        address = self.address_of(endpoint_id)
        if endpoint is None:
            if endpoint_id in self._fenced_ids:
                # FencedPekkoRpcActor with a null expected token: the endpoint is not leading here (any more).
                self.fencing_rejections += 1
                raise FencingTokenError(
                    f"Fencing token not set: Ignoring message {message} sent to {address} because the fencing "
                    "token is null."
                )
            raise RpcEndpointNotFoundError(
                f"Could not find the RPC endpoint '{endpoint_id}' at {address}; endpoints here: "
                f"{sorted(self._endpoints) or 'none'}"
            )
        if endpoint.fenced:
            expected = endpoint.fencing_token
            if fencing_token is None or not fencing_token.strip():
                self.fencing_rejections += 1
                _log.info("Rejected %s to %s: no fencing token", message, address)
                raise FencingTokenError(
                    f"Fencing token not set: Ignoring message {message} sent to {address} because the fencing "
                    "token is null."
                )
            try:
                token = UUID(fencing_token.strip())
            except ValueError:
                token = None
            if token is None or token != expected:
                self.fencing_rejections += 1
                _log.info(
                    "Rejected %s to %s: fencing token %s, expected %s",
                    message,
                    address,
                    fencing_token,
                    expected,
                )
                raise FencingTokenError(
                    f"Fencing token mismatch: Ignoring message {message} because the fencing token "
                    f"{fencing_token} did not match the expected fencing token {expected}."
                )
        if not _METHOD_RE.match(method):
            raise RpcInvalidCallError(f"Invalid RPC method name {method!r} for endpoint '{endpoint_id}'")
        handler = getattr(endpoint, f"rpc_{method}", None)
        if handler is None or not inspect.iscoroutinefunction(handler):
            raise RpcInvalidCallError(f"The RPC endpoint '{endpoint_id}' has no method '{method}'")
        try:
            inspect.signature(handler).bind(**payload)
        except TypeError as e:
            raise RpcInvalidCallError(f"Malformed call of {endpoint_id}.{method}: {e}") from None
        return await handler(**payload)


def _json_copy(value: Any) -> Any:
    # A local call keeps the wire semantics: JSON-only values, no shared mutable objects.
    return json.loads(json.dumps(value))


class RpcClient:
    """Calls endpoints by address; calls to this process's own service skip the network (Flink's local actor)."""

    def __init__(
        self,
        *,
        auth_token: str | None = None,
        timeout_s: float = 10.0,
        local: RpcService | None = None,
    ) -> None:
        self._auth_token = auth_token
        self._timeout_s = timeout_s
        self._local = local
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            headers = {AUTHORIZATION_HEADER: f"Bearer {self._auth_token}"} if self._auth_token else {}
            self._client = httpx.AsyncClient(
                headers=headers,
                timeout=httpx.Timeout(self._timeout_s),
                limits=httpx.Limits(max_keepalive_connections=32, max_connections=128),
            )
        return self._client

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def call(
        self,
        address: str,
        method: str,
        payload: dict[str, Any] | None = None,
        *,
        fencing_token: UUID | None = None,
        timeout_s: float | None = None,
    ) -> Any:
        """Call ``method`` of the endpoint at ``address`` (``http://host:port/rpc/<endpoint>``)."""
        body = payload or {}
        base, _, endpoint_id = address.rstrip("/").rpartition("/")
        if self._local is not None and f"{base}/" == self._local.base_url:
            token = str(fencing_token) if fencing_token is not None else None
            result = await self._local.invoke(endpoint_id, method, token, _json_copy(body))
            return _json_copy(result)
        headers = {FENCING_TOKEN_HEADER: str(fencing_token)} if fencing_token is not None else {}
        url = f"{address.rstrip('/')}/{method}"
        try:
            response = await self._http().post(
                url,
                json=body,
                headers=headers,
                timeout=httpx.Timeout(timeout_s) if timeout_s is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TimeoutException as e:
            raise RpcConnectionError(f"RPC {method} to {address} timed out: {e!r}") from e
        except httpx.HTTPError as e:
            raise RpcConnectionError(f"Cannot reach {address} for RPC {method}: {e!r}") from e
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code == 200 and isinstance(data, dict) and "result" in data:
            return data["result"]
        message = f"RPC {method} to {address} failed with HTTP {response.status_code}"
        remote_type: str | None = None
        if isinstance(data, dict):
            errors = data.get("errors")
            if isinstance(errors, list) and errors:
                message = str(errors[0])
            remote_type = data.get("type") if isinstance(data.get("type"), str) else None
        raise error_from_remote(response.status_code, remote_type, message)
