"""Internal RPC: leader-session fencing (Flink's FencedPekkoRpcActor), shared-token auth and request limits."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import httpx
import pytest

from standby.runtime.rpc import (
    FencedRpcEndpoint,
    FencingTokenError,
    HttpServer,
    RpcAuthenticationError,
    RpcClient,
    RpcEndpointNotFoundError,
    RpcInvalidCallError,
    RpcService,
    build_app,
    secure,
)


class Counter(FencedRpcEndpoint):
    def __init__(self, token: UUID) -> None:
        super().__init__("counter", token)
        self.calls = 0

    async def rpc_increment(self, by: int = 1) -> dict[str, Any]:
        self.calls += by
        return {"calls": self.calls}


class Server:
    def __init__(self, auth_token: str | None = None, max_content_length: int = 10_000) -> None:
        self.service = RpcService("127.0.0.1", 0)
        app = build_app(
            title="t", rpc_service=self.service, auth_token=auth_token, max_content_length=max_content_length
        )
        self.http = HttpServer(
            secure(app, auth_token=auth_token, max_content_length=max_content_length), "127.0.0.1", 0
        )

    async def start(self) -> None:
        port = await self.http.start()
        self.service.set_address("127.0.0.1", port)

    @property
    def address(self) -> str:
        return self.service.address_of("counter")


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    s = Server()
    await s.start()
    yield s
    await s.http.stop()


@pytest.fixture
async def client() -> AsyncIterator[RpcClient]:
    c = RpcClient(timeout_s=5)
    yield c
    await c.close()


async def test_call_with_the_leader_session_id_is_accepted(server: Server, client: RpcClient) -> None:
    token = uuid.uuid4()
    endpoint = Counter(token)
    server.service.register(endpoint)

    assert await client.call(server.address, "increment", {"by": 2}, fencing_token=token) == {"calls": 2}


async def test_stale_fencing_token_is_rejected_and_not_acted_on(server: Server, client: RpcClient) -> None:
    old, new = uuid.uuid4(), uuid.uuid4()
    server.service.register(Counter(old))
    current = Counter(new)  # a new leadership creates a new endpoint instance with a new token
    server.service.register(current)

    with pytest.raises(FencingTokenError) as error:
        await client.call(server.address, "increment", {}, fencing_token=old)

    assert str(error.value) == (
        "Fencing token mismatch: Ignoring message RemoteFencedMessage(increment()) because the fencing token "
        f"{old} did not match the expected fencing token {new}."
    )
    assert current.calls == 0
    assert server.service.fencing_rejections == 1


async def test_missing_fencing_token_is_rejected(server: Server, client: RpcClient) -> None:
    endpoint = Counter(uuid.uuid4())
    server.service.register(endpoint)

    with pytest.raises(FencingTokenError, match="Fencing token not set: Ignoring message"):
        await client.call(server.address, "increment", {})
    assert endpoint.calls == 0


async def test_endpoint_without_leadership_rejects_every_token(server: Server, client: RpcClient) -> None:
    token = uuid.uuid4()
    endpoint = Counter(token)
    server.service.register(endpoint)
    server.service.unregister(endpoint)  # leadership revoked

    with pytest.raises(FencingTokenError, match="because the fencing token is null"):
        await client.call(server.address, "increment", {}, fencing_token=token)


async def test_rejection_is_a_4xx_with_a_flink_like_message_over_plain_http(server: Server) -> None:
    server.service.register(Counter(uuid.uuid4()))
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{server.address}/increment", json={}, headers={"X-Standby-Fencing-Token": str(uuid.uuid4())}
        )
    assert response.status_code == 409
    assert response.json()["type"] == "FencingTokenError"
    assert response.json()["errors"][0].startswith("Fencing token mismatch")


async def test_local_calls_are_fenced_too() -> None:
    service = RpcService("127.0.0.1", 9)
    endpoint = Counter(uuid.uuid4())
    service.register(endpoint)
    local = RpcClient(local=service)

    with pytest.raises(FencingTokenError):
        await local.call(service.address_of("counter"), "increment", {}, fencing_token=uuid.uuid4())
    assert await local.call(
        service.address_of("counter"), "increment", {}, fencing_token=endpoint.fencing_token
    ) == {"calls": 1}
    await local.close()


async def test_unknown_endpoint_and_method_and_bad_arguments(server: Server, client: RpcClient) -> None:
    token = uuid.uuid4()
    server.service.register(Counter(token))

    with pytest.raises(RpcEndpointNotFoundError):
        await client.call(server.service.address_of("nothing"), "increment", {})
    with pytest.raises(RpcInvalidCallError, match="has no method 'explode'"):
        await client.call(server.address, "explode", {}, fencing_token=token)
    with pytest.raises(RpcInvalidCallError, match="Malformed call"):
        await client.call(server.address, "increment", {"nope": 1}, fencing_token=token)


async def test_malformed_and_oversized_requests_get_a_4xx_with_a_message(server: Server) -> None:
    token = uuid.uuid4()
    server.service.register(Counter(token))
    headers = {"X-Standby-Fencing-Token": str(token), "Content-Type": "application/json"}
    async with httpx.AsyncClient() as http:
        malformed = await http.post(f"{server.address}/increment", content=b"{not json", headers=headers)
        oversized = await http.post(f"{server.address}/increment", content=b"x" * 20_000, headers=headers)

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(30):
                yield b"x" * 1000

        chunked = await http.post(f"{server.address}/increment", content=chunks(), headers=headers)

    assert malformed.status_code == 400
    assert "not JSON" in malformed.json()["errors"][0]
    assert oversized.status_code == 413
    assert "rest.server.max-content-length" in oversized.json()["errors"][0]
    assert chunked.status_code == 413


async def test_shared_token_is_required_on_every_call() -> None:
    s = Server(auth_token="s3cret")
    await s.start()
    token = uuid.uuid4()
    endpoint = Counter(token)
    s.service.register(endpoint)
    anonymous = RpcClient(timeout_s=5)
    wrong = RpcClient(auth_token="wrong", timeout_s=5)
    right = RpcClient(auth_token="s3cret", timeout_s=5)
    try:
        with pytest.raises(RpcAuthenticationError):
            await anonymous.call(s.address, "increment", {}, fencing_token=token)
        with pytest.raises(RpcAuthenticationError):
            await wrong.call(s.address, "increment", {}, fencing_token=token)
        assert endpoint.calls == 0
        assert await right.call(s.address, "increment", {}, fencing_token=token) == {"calls": 1}
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"http://127.0.0.1:{s.http.port}/openapi.json")).status_code == 401
    finally:
        for c in (anonymous, wrong, right):
            await c.close()
        await s.http.stop()


async def test_accepted_connections_have_nagle_off(server: Server, client: RpcClient) -> None:
    """Without TCP_NODELAY every reply on a kept-alive connection waits for the peer's delayed ACK (40 ms)."""
    token = uuid.uuid4()
    server.service.register(Counter(token))
    await client.call(server.address, "increment", {}, fencing_token=token)
    uvicorn_server = server.http._server
    assert uvicorn_server is not None
    connections = list(uvicorn_server.server_state.connections)
    assert connections, "the RPC client's connection should still be open (keep-alive)"
    for protocol in connections:
        sock = protocol.transport.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
