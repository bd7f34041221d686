"""A loopback TCP proxy with fault modes (stall, drop) for network-fault tests against real servers.

Clients connect to the proxy instead of the server; the test then stalls the link (connections stay open but
nothing is delivered, like a partition or a frozen switch), drops it (every connection is reset and new ones are
reset at once, like a crashed peer or a firewall RST) and heals it again. The proxy runs its own asyncio event loop
in its own thread, so it works the same from synchronous code, from kazoo's threads, and from async tests running
on another loop.
"""

from __future__ import annotations

import asyncio
import enum
import socket
import struct
import threading
import time
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, TypeVar

from ._ports import LOOPBACK

__all__ = ["ProxyMode", "TcpProxy"]

_T = TypeVar("_T")

_CONTROL_TIMEOUT = 10.0
# struct linger {int l_onoff; int l_linger;} with a zero timeout: close() sends RST instead of FIN.
_LINGER_RESET = struct.pack("ii", 1, 0)


class ProxyMode(enum.Enum):
    """What the proxy does with traffic."""

    PASS = "pass"
    """Forward both ways."""
    STALL = "stall"
    """Keep connections open, forward nothing (data waits, or is discarded with ``stall(discard=True)``)."""
    DROP = "drop"
    """Reset every connection, and reset new ones right after accepting them."""


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close a connection abruptly with a TCP RST, as a crashed peer or a firewall would."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        except OSError:
            pass
    writer.transport.abort()


class _Link:
    """One proxied connection: the client side and the upstream side."""

    def __init__(
        self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter, task: asyncio.Task[None]
    ):
        self.client = client
        self.upstream = upstream
        self.task = task
        self.aborted = False

    def reset(self) -> None:
        self.aborted = True
        _reset(self.client)
        _reset(self.upstream)
        self.task.cancel()

    async def close(self) -> None:
        for writer in (self.client, self.upstream):
            if writer.transport.is_closing():
                continue
            writer.close()
        for writer in (self.client, self.upstream):
            try:
                await writer.wait_closed()
            except (OSError, asyncio.CancelledError):
                pass


class TcpProxy:
    """Forward ``127.0.0.1:<port>`` to ``upstream_host:upstream_port``, with :meth:`stall`, :meth:`drop` and
    :meth:`resume` (alias :meth:`heal`).

    Memory is bounded: each direction of a connection holds at most one ``chunk_size`` read while stalled; the
    rest waits in kernel buffers, and TCP flow control then blocks the sender. At most ``max_connections``
    connections are proxied at once; more are reset.

    ``with TcpProxy("127.0.0.1", zk.port) as proxy: KazooClient(proxy.endpoint)``; in async code
    ``async with TcpProxy(...) as proxy``. The control methods are thread-safe and return once the proxy's loop
    applied them (after :meth:`drop` returns, every former connection has been reset).
    """

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        listen_host: str = LOOPBACK,
        listen_port: int = 0,
        max_connections: int = 512,
        chunk_size: int = 64 * 1024,
        connect_timeout: float = 5.0,
    ) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._listen = (listen_host, listen_port)
        self.max_connections = max_connections
        self.chunk_size = chunk_size
        self.connect_timeout = connect_timeout
        self._mode = ProxyMode.PASS
        self._discard = False
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._closed = False
        # Created on the proxy's loop.
        self._stop: asyncio.Event | None = None
        self._flowing: asyncio.Event | None = None
        self._links: set[_Link] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._counts = threading.Condition()
        self._connection_count = 0
        self._total_connections = 0
        self._discarded_bytes = 0

    # ----------------------------------------------------------------------------------------- properties

    @property
    def host(self) -> str:
        return self._listen[0]

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the proxy is not started; call start() or use it as a context manager")
        return self._port

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def endpoint(self) -> str:
        """``"127.0.0.1:<port>"``: the connect string to give a client instead of the server's."""
        return f"{self.host}:{self.port}"

    @property
    def upstream(self) -> tuple[str, int]:
        return self._upstream

    @property
    def mode(self) -> ProxyMode:
        return self._mode

    @property
    def connection_count(self) -> int:
        """Connections proxied right now."""
        return self._connection_count

    @property
    def total_connections(self) -> int:
        """Connections proxied since start (connections reset while dropping are not counted)."""
        return self._total_connections

    @property
    def discarded_bytes(self) -> int:
        """Bytes thrown away while stalled with ``discard=True``."""
        return self._discarded_bytes

    # ----------------------------------------------------------------------------------------- lifecycle

    def start(self) -> TcpProxy:
        """Start listening (in the proxy's own thread); returns ``self``."""
        if self._closed:
            raise RuntimeError("the proxy is closed; create a new one")
        if self._thread is not None:
            return self
        self._thread = threading.Thread(
            target=self._run, name=f"TcpProxy->{self._upstream[0]}:{self._upstream[1]}", daemon=True
        )
        self._thread.start()
        if not self._started.wait(_CONTROL_TIMEOUT):
            raise RuntimeError(
                f"the proxy to {self._upstream} did not start listening within {_CONTROL_TIMEOUT}s"
            )
        if self._start_error is not None:
            self._thread.join(_CONTROL_TIMEOUT)
            self._thread = None
            raise RuntimeError(
                f"the proxy could not listen on {self._listen[0]}:{self._listen[1]}: {self._start_error}"
            ) from self._start_error
        return self

    def close(self) -> None:
        """Reset every connection, stop listening and end the proxy's thread (bounded)."""
        if self._closed:
            return
        self._closed = True
        loop, thread, stop = self._loop, self._thread, self._stop
        if loop is None or thread is None or stop is None:
            return
        try:
            loop.call_soon_threadsafe(stop.set)
        except RuntimeError:
            pass  # the loop is already closed
        thread.join(_CONTROL_TIMEOUT)
        if thread.is_alive():
            raise RuntimeError(f"the proxy thread {thread.name} did not end within {_CONTROL_TIMEOUT}s")

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> TcpProxy:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.close)

    def __repr__(self) -> str:
        where = f"{self.host}:{self._port}" if self._port is not None else "not started"
        upstream = f"{self._upstream[0]}:{self._upstream[1]}"
        return f"<TcpProxy {where} -> {upstream} {self._mode.value} connections={self._connection_count}>"

    # ----------------------------------------------------------------------------------------- faults

    def stall(self, *, discard: bool = False) -> None:
        """Keep connections open but forward nothing; new connections are accepted but stall too.

        With ``discard=False`` (default) data waits and is delivered on :meth:`resume` (a delayed network);
        with ``discard=True`` it is read and thrown away (a black hole).
        """

        def apply() -> None:
            assert self._flowing is not None
            self._mode = ProxyMode.STALL
            self._discard = discard
            self._flowing.clear()

        self._control(apply)

    def drop(self) -> None:
        """Reset every current connection (RST to both sides) and reset new ones as soon as they arrive."""

        async def apply() -> None:
            assert self._flowing is not None
            self._mode = ProxyMode.DROP
            self._flowing.clear()
            await self._reset_links()

        self._call(apply)

    def resume(self) -> None:
        """Forward again (what stalled is delivered now, unless it was discarded)."""

        def apply() -> None:
            assert self._flowing is not None
            self._mode = ProxyMode.PASS
            self._discard = False
            self._flowing.set()

        self._control(apply)

    heal = resume

    def reset_connections(self) -> None:
        """Reset every current connection once, and keep forwarding (a one-off connection loss)."""

        self._call(self._reset_links)

    def set_upstream(self, host: str, port: int) -> None:
        """Send new connections to another server (current ones stay where they are)."""
        self._upstream = (host, port)

    def wait_connections(self, count: int, timeout: float = 10.0) -> None:
        """Block until exactly ``count`` connections are proxied; :class:`TimeoutError` after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._counts:
            while self._connection_count != count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"proxy {self.endpoint} has {self._connection_count} connections, "
                        f"expected {count} within {timeout}s"
                    )
                self._counts.wait(remaining)

    # ----------------------------------------------------------------------------------------- loop thread

    def _control(self, apply: Callable[[], None]) -> None:
        async def run() -> None:
            apply()

        self._call(run)

    def _call(self, factory: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
        loop = self._loop
        if loop is None or self._closed or not self._started.is_set():
            raise RuntimeError("the proxy is not running; start() it first")
        if threading.current_thread() is self._thread:
            raise RuntimeError("TcpProxy control methods cannot be called from the proxy's own thread")
        future = asyncio.run_coroutine_threadsafe(factory(), loop)
        return future.result(_CONTROL_TIMEOUT)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # surfaced by start()
            self._start_error = exc
            self._started.set()
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        self._flowing = asyncio.Event()
        self._flowing.set()
        server = await asyncio.start_server(
            self._handle, self._listen[0], self._listen[1], limit=self.chunk_size
        )
        try:
            self._port = server.sockets[0].getsockname()[1]
            self._started.set()
            await self._stop.wait()
        finally:
            server.close()
            for link in list(self._links):
                link.reset()
            for task in list(self._handlers):
                task.cancel()
            if self._handlers:
                await asyncio.wait(list(self._handlers), timeout=_CONTROL_TIMEOUT)
            await server.wait_closed()

    async def _reset_links(self) -> None:
        links = list(self._links)
        for link in links:
            link.reset()
        if links:
            # Returning once the handlers finished means the sockets are closed and the RSTs are sent.
            await asyncio.wait([link.task for link in links], timeout=_CONTROL_TIMEOUT)

    def _dropping(self) -> bool:
        return self._mode is ProxyMode.DROP

    def _count(self, delta: int) -> None:
        with self._counts:
            self._connection_count += delta
            if delta > 0:
                self._total_connections += delta
            self._counts.notify_all()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._serve(client_reader, client_writer, task)
        except asyncio.CancelledError:
            pass  # reset by drop() / close(): the link is already torn down
        finally:
            self._handlers.discard(task)

    async def _serve(
        self,
        client_reader: asyncio.StreamReader,
        client_writer: asyncio.StreamWriter,
        task: asyncio.Task[None],
    ) -> None:
        if self._dropping() or self._connection_count >= self.max_connections:
            _reset(client_writer)
            return
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(*self._upstream, limit=self.chunk_size), self.connect_timeout
            )
        except (TimeoutError, OSError):
            # Upstream down: the client sees what it would see from a dead server, a reset connection.
            _reset(client_writer)
            return
        link = _Link(client_writer, upstream_writer, task)
        if self._dropping():  # drop() came while connecting upstream
            link.aborted = True
            _reset(client_writer)
            _reset(upstream_writer)
            return
        self._links.add(link)
        self._count(+1)
        try:
            await asyncio.gather(
                self._pump(link, client_reader, upstream_writer),
                self._pump(link, upstream_reader, client_writer),
            )
        finally:
            self._links.discard(link)
            self._count(-1)
            if not link.aborted:
                await link.close()

    async def _pump(self, link: _Link, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        flowing = self._flowing
        assert flowing is not None
        try:
            while not link.aborted:
                data = await source.read(self.chunk_size)
                if not data:
                    break
                if not flowing.is_set():
                    if self._discard:
                        self._discarded_bytes += len(data)
                        continue
                    await flowing.wait()
                sink.write(data)
                await sink.drain()
            if link.aborted:
                return
            # A stalled network does not deliver the FIN either.
            await flowing.wait()
            if not link.aborted and not sink.transport.is_closing() and sink.can_write_eof():
                sink.write_eof()
        except OSError:
            # One side broke (reset, refused write): break the other side the same way.
            if not link.aborted:
                link.aborted = True
                _reset(link.client)
                _reset(link.upstream)
