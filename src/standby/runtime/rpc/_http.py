"""The HTTP side of a process: FastAPI app with the RPC route, shared-token auth, size limits, and the server.

One app serves RPC (``POST /rpc/<endpoint>/<method>``) and, in a JobManager, the REST API. Errors are JSON in
Flink's REST shape ``{"errors": [message]}`` plus the error ``type`` so the RPC client can rebuild it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from ._errors import RpcError, RpcInvalidCallError
from ._service import FENCING_TOKEN_HEADER, RpcService

_log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def error_response(status: int, message: str, error_type: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"errors": [message]}
    if error_type:
        body["type"] = error_type
    return JSONResponse(body, status_code=status)


async def _send_json(send: Send, status: int, body: dict[str, Any], extra: list[tuple[bytes, bytes]]) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


class SecurityMiddleware:
    """Shared-token authentication on every request and a request size limit (``rest.server.max-content-length``)."""

    def __init__(self, app: ASGIApp, *, auth_token: str | None, max_content_length: int) -> None:
        self._app = app
        self._expected = f"Bearer {auth_token}".encode() if auth_token else None
        self._max = max_content_length

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        if self._expected is not None:
            given = headers.get(b"authorization", b"")
            if not hmac.compare_digest(given, self._expected):
                client = scope.get("client")
                _log.warning(
                    "Rejected %s %s from %s: %s authentication token",
                    scope.get("method"),
                    scope.get("path"),
                    f"{client[0]}:{client[1]}" if client else "?",
                    "wrong" if given else "missing",
                )
                await _send_json(
                    send,
                    401,
                    {
                        "errors": [
                            "Unauthorized: this cluster requires the shared token of 'security.auth.token' "
                            "(send it as 'Authorization: Bearer <token>'; the CLI does so when configured)"
                        ],
                        "type": "RpcAuthenticationError",
                    },
                    [(b"www-authenticate", b"Bearer")],
                )
                return
        length_header = headers.get(b"content-length")
        if length_header is not None:
            try:
                length = int(length_header)
            except ValueError:
                await _send_json(send, 400, {"errors": [f"Malformed Content-Length {length_header!r}"]}, [])
                return
            if length > self._max:
                await _send_json(send, 413, self._too_large(length), [])
                return
            await self._app(scope, receive, send)
            return
        if scope.get("method") in ("POST", "PUT", "PATCH"):
            # Chunked body without a length: buffer up to the limit, then replay it.
            chunks: list[bytes] = []
            size = 0
            more = True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    break
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self._max:
                    await _send_json(send, 413, self._too_large(size), [])
                    return
                chunks.append(chunk)
                more = bool(message.get("more_body", False))
            body = b"".join(chunks)
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self._app(scope, replay, send)
            return
        await self._app(scope, receive, send)

    def _too_large(self, size: int) -> dict[str, Any]:
        return {
            "errors": [
                f"Request of {size} bytes exceeds the limit of {self._max} bytes ('rest.server.max-content-length')"
            ],
            "type": "RpcInvalidCallError",
        }


def build_app(
    *,
    title: str,
    rpc_service: RpcService,
    auth_token: str | None,
    max_content_length: int,
) -> FastAPI:
    """The app of one process with the RPC route; REST routes are added by the JobManager."""
    app = FastAPI(title=title, version="1", docs_url="/docs", openapi_url="/openapi.json")

    @app.exception_handler(RpcError)
    async def _rpc_error(_: Request, exc: RpcError) -> JSONResponse:
        return error_response(exc.status, str(exc), exc.remote_type)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', 'invalid')}"
            for err in exc.errors()
        )
        return error_response(400, f"Malformed request: {problems}", "RpcInvalidCallError")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail))

    # the path parameters are read from the request: a declared parameter makes FastAPI build a pydantic field
    # (and import pydantic.v1, ~1.5 MiB) in every process, the TaskManagers included
    @app.post("/rpc/{endpoint_id}/{method}", include_in_schema=False)
    async def _rpc(request: Request) -> JSONResponse:
        endpoint_id: str = request.path_params["endpoint_id"]
        method: str = request.path_params["method"]
        try:
            raw = await request.body()
        except ClientDisconnect:
            # the caller gave up (timeout, shutdown): nothing to act on
            return error_response(499, "Client closed the request")
        try:
            payload = json.loads(raw) if raw else {}
        except ValueError as e:
            raise RpcInvalidCallError(
                f"Malformed RPC body for {endpoint_id}.{method}: not JSON ({e})"
            ) from None
        if not isinstance(payload, dict):
            raise RpcInvalidCallError(
                f"Malformed RPC body for {endpoint_id}.{method}: expected a JSON object"
            )
        token = request.headers.get(FENCING_TOKEN_HEADER)
        result = await rpc_service.invoke(endpoint_id, method, token, payload)
        return JSONResponse({"result": result})

    return app


def secure(app: FastAPI, *, auth_token: str | None, max_content_length: int) -> ASGIApp:
    return SecurityMiddleware(app, auth_token=auth_token, max_content_length=max_content_length)


class _Server(uvicorn.Server):
    # The process owns signal handling (graceful leadership hand-over), not uvicorn.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpServer:
    """A uvicorn server bound to ``host:port`` (0 = any free port) in the running event loop."""

    def __init__(self, app: ASGIApp, host: str, port: int, name: str = "http") -> None:
        self._app = app
        self._host = host
        self._requested_port = port
        self._name = name
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None
        self.port = port

    async def start(self, timeout_s: float = 10.0) -> int:
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        # IPPROTO_TCP explicitly: asyncio disables Nagle's algorithm only on sockets whose proto says TCP, and
        # accepted sockets inherit proto 0 from socket(family, SOCK_STREAM). With Nagle on, every response on a
        # kept-alive connection waited for the client's delayed ACK: 40 ms per RPC and REST call.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self._host, self._requested_port))
        except OSError as e:
            sock.close()
            raise OSError(
                f"Cannot bind the {self._name} server to {self._host}:{self._requested_port}: {e.strerror}; "
                "choose another port or bind address"
            ) from e
        sock.listen(128)
        sock.setblocking(False)
        self._socket = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            lifespan="off",
            # no WebSocket routes: not loading a WebSocket protocol saves ~20 ms and 0.5 MiB per process (an
            # upgrade request is answered as plain HTTP, behind the token check)
            ws="none",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
            timeout_keep_alive=5,
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name=f"{self._name}-server")
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError(
                    f"The {self._name} server on {self._host}:{self.port} stopped during start-up"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"The {self._name} server on {self._host}:{self.port} did not start in {timeout_s} s"
                )
            await asyncio.sleep(0.01)
        return self.port

    async def stop(self, timeout_s: float = 5.0) -> None:
        server, task = self._server, self._task
        self._server = self._task = None
        if server is not None:
            server.should_exit = True
        if task is not None:
            try:
                await asyncio.wait_for(task, timeout_s)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            except Exception:
                _log.exception("The %s server failed while stopping", self._name)
        if self._socket is not None:
            self._socket.close()
            self._socket = None
