"""Tests of the real-server harness: ZooKeeper and etcd processes, session expiry, and the fault-injecting proxy."""

from __future__ import annotations

import asyncio
import os
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import aetcd
import pytest
from kazoo.client import KazooClient
from kazoo.protocol.states import KazooState
from kazoo.retry import KazooRetry

from standby.testing.servers import (
    EtcdCluster,
    EtcdInstallation,
    EtcdServer,
    ProxyMode,
    ServerStartError,
    TcpProxy,
    ZooKeeperEnsemble,
    ZooKeeperInstallation,
    ZooKeeperServer,
    etcd_unavailable_reason,
    expire_session,
    find_etcd,
    find_zookeeper,
    free_port,
    is_port_free,
    zookeeper_unavailable_reason,
)

if TYPE_CHECKING:
    # Imported for annotations only: pytest must import the plugin module itself to rewrite its asserts.
    from standby.testing.pytest_fixtures import TcpProxyFactory


WAIT = 20.0  # upper bound of every wait below; the waits end as soon as their condition holds
# Session timeout for tests that expect a session to survive an outage: long enough that a restart on a loaded CI
# machine stays well inside it (nothing waits for it to pass).
SURVIVING_SESSION = 30.0


class StateLog:
    """A kazoo state listener that records every state and lets the test wait for one."""

    def __init__(self) -> None:
        self.states: list[str] = []
        self._cond = threading.Condition()

    def __call__(self, state: str) -> bool:
        with self._cond:
            self.states.append(state)
            self._cond.notify_all()
        return False

    def mark(self) -> int:
        with self._cond:
            return len(self.states)

    def wait_for(self, state: str, since: int = 0, timeout: float = WAIT) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: state in self.states[since:], timeout):
                raise AssertionError(f"kazoo never reported {state} within {timeout}s; states: {self.states}")


def _client(hosts: str, timeout: float) -> tuple[KazooClient, StateLog]:
    # Reconnect attempts at most 0.25 s apart (kazoo's default backoff grows to seconds), so that tests notice
    # a server that is back quickly.
    reconnect = KazooRetry(max_tries=-1, delay=0.05, backoff=2, max_delay=0.25)
    client = KazooClient(hosts=hosts, timeout=timeout, connection_retry=reconnect)
    log = StateLog()
    client.add_listener(log)
    client.start(timeout=WAIT)
    return client, log


def _close(client: KazooClient) -> None:
    client.stop()
    client.close()


def _retry() -> KazooRetry:
    return KazooRetry(max_tries=-1, delay=0.05, max_delay=1.0, deadline=WAIT)


def _poll(predicate: object, what: str, timeout: float = WAIT) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


# --------------------------------------------------------------------------------------------- installation


def test_missing_zookeeper_reason_names_package_and_script(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("STANDBY_ZOOKEEPER_HOME", str(tmp_path))  # an "installation" without any jar
    assert find_zookeeper() is None
    reason = zookeeper_unavailable_reason()
    assert reason is not None
    assert "`zookeeper` package" in reason
    assert "scripts/install-test-servers" in reason


def test_missing_etcd_reason_names_package_and_script(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("STANDBY_ETCD", str(tmp_path / "no-such-etcd"))
    assert find_etcd() is None
    reason = etcd_unavailable_reason()
    assert reason is not None
    assert "`etcd-server` package" in reason
    assert "scripts/install-test-servers" in reason


def test_fixtures_skip_with_install_hint_when_server_missing(tmp_path: Path) -> None:
    (tmp_path / "test_needs_etcd.py").write_text(
        "import pytest\n"
        "def test_fixture(etcd_server):\n"
        "    raise AssertionError('must be skipped')\n"
        "@pytest.mark.etcd\n"
        "def test_marked():\n"
        "    raise AssertionError('must be skipped')\n"
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    # Only our plugin: loading every installed pytest plugin would triple the run time.
    env = {
        **os.environ,
        "STANDBY_ETCD": str(tmp_path / "no-such-etcd"),
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    plugin = "standby.testing.pytest_fixtures"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            plugin,
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            "--strict-markers",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 skipped" in result.stdout
    assert "warning" not in result.stdout
    assert result.stdout.count("scripts/install-test-servers") == 2


def test_free_port_is_bindable_and_never_repeats() -> None:
    ports = {free_port() for _ in range(20)}
    assert len(ports) == 20
    assert all(is_port_free(port) for port in ports)


# --------------------------------------------------------------------------------------------- ZooKeeper


@pytest.mark.zookeeper
def test_zookeeper_installation_is_found(zookeeper_installation: ZooKeeperInstallation) -> None:
    assert Path(zookeeper_installation.java).exists()
    assert any(Path(entry).name.startswith("zookeeper") for entry in zookeeper_installation.classpath)
    assert zookeeper_installation.version is None or zookeeper_installation.version.startswith("3.")


@pytest.mark.zookeeper
def test_zookeeper_restart_keeps_data_and_sessions(
    zookeeper_installation: ZooKeeperInstallation, tmp_path: Path
) -> None:
    with ZooKeeperServer(installation=zookeeper_installation, base_dir=tmp_path) as zk:
        assert zk.four_letter_word("ruok") == "imok"
        assert zk.mode() == "leader"  # a quorum of one, see ZooKeeperServer
        assert "zk_server_state\tleader" in zk.four_letter_word("mntr")
        client, log = _client(zk.connect_string, timeout=SURVIVING_SESSION)
        try:
            session_id = client.client_id[0]
            assert f"sid=0x{session_id:x}" in zk.four_letter_word("cons")
            client.create("/kept", b"data")
            client.create("/session-node", b"", ephemeral=True)

            for crash in (False, True):
                mark = log.mark()
                zk.restart(kill=crash)
                log.wait_for(KazooState.SUSPENDED, since=mark)
                log.wait_for(KazooState.CONNECTED, since=mark)
                assert _retry()(client.get, "/kept")[0] == b"data"
                # The restart was shorter than the session timeout: same session, ephemeral node still there.
                assert client.client_id[0] == session_id
                assert client.exists("/session-node") is not None
            assert KazooState.LOST not in log.states
        finally:
            _close(client)
        assert zk.log_path.is_file()


@pytest.mark.zookeeper
def test_zookeeper_start_failure_reports_log_tail(
    zookeeper_installation: ZooKeeperInstallation, tmp_path: Path
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        server = ZooKeeperServer(
            installation=zookeeper_installation,
            base_dir=tmp_path,
            port=squatter.getsockname()[1],
            startup_timeout=WAIT,
        )
        try:
            with pytest.raises(ServerStartError, match="Address already in use"):
                server.start()
            assert not server.running
        finally:
            server.close()


@pytest.mark.zookeeper
def test_expire_session_makes_kazoo_lose_its_session(zookeeper_server: ZooKeeperServer) -> None:
    client, log = _client(zookeeper_server.connect_string, timeout=5.0)
    try:
        old_session = client.client_id[0]
        client.create("/expiring", b"", ephemeral=True)
        mark = log.mark()
        expire_session(client)
        log.wait_for(KazooState.LOST, since=mark)
        log.wait_for(KazooState.CONNECTED, since=mark)
        assert client.client_id[0] != old_session
        assert client.exists("/expiring") is None  # the server ended the old session: its ephemerals are gone
    finally:
        _close(client)


@pytest.mark.zookeeper
def test_zookeeper_pause_and_resume(zookeeper_server: ZooKeeperServer) -> None:
    zookeeper_server.pause()
    try:
        assert not zookeeper_server.is_ok()  # a frozen JVM accepts TCP connections but answers nothing
    finally:
        zookeeper_server.resume()
    _poll(zookeeper_server.is_ok, "ZooKeeper to answer ruok after SIGCONT")


@pytest.mark.zookeeper
@pytest.mark.slow
def test_zookeeper_ensemble_survives_one_member_stop(zookeeper_ensemble: ZooKeeperEnsemble) -> None:
    ensemble = zookeeper_ensemble
    assert sorted(str(member.mode()) for member in ensemble) == ["follower", "follower", "leader"]
    client, _ = _client(ensemble.connect_string, timeout=10.0)
    try:
        client.create("/ensemble", b"1")
        old_leader = ensemble.leader_index()
        assert old_leader is not None
        ensemble.stop_member(old_leader)
        assert not ensemble[old_leader].running
        ensemble.wait_ready(timeout=WAIT)  # the two others elect a leader among themselves
        assert ensemble.leader_index() not in (None, old_leader)
        _retry()(client.set, "/ensemble", b"2")

        ensemble.start_member(old_leader)
        assert ensemble[old_leader].mode() == "follower"
        rejoined, _ = _client(ensemble[old_leader].connect_string, timeout=10.0)
        try:
            rejoined.sync("/ensemble")
            assert rejoined.get("/ensemble")[0] == b"2"  # caught up with the write made while it was down
        finally:
            _close(rejoined)
    finally:
        _close(client)


# --------------------------------------------------------------------------------------------- etcd


@pytest.mark.etcd
async def test_etcd_put_get_lease_and_restart_keeps_data(
    etcd_installation: EtcdInstallation, tmp_path: Path
) -> None:
    server = EtcdServer(installation=etcd_installation, base_dir=tmp_path)
    await asyncio.to_thread(server.start)
    try:
        assert server.is_healthy()
        assert server.is_leader()
        async with aetcd.Client(server.host, server.port) as client:
            await client.put(b"/standby/key", b"v1")
            lease = await client.lease(60)
            await client.put(b"/standby/leased", b"x", lease=lease)
            got = await client.get(b"/standby/key")
            assert got is not None
            assert got.value == b"v1"
            leased = await client.get(b"/standby/leased")
            assert leased is not None
            assert leased.lease == lease.id

        await asyncio.to_thread(server.restart, kill=True)

        async with aetcd.Client(server.host, server.port) as client:
            got = await client.get(b"/standby/key")
            assert got is not None
            assert got.value == b"v1"
            leased = await client.get(b"/standby/leased")
            assert leased is not None
            assert leased.lease == lease.id
    finally:
        await asyncio.to_thread(server.close)


@pytest.mark.etcd
@pytest.mark.slow
async def test_etcd_cluster_survives_one_member_kill(etcd_cluster: EtcdCluster) -> None:
    cluster = etcd_cluster
    assert len(cluster.endpoints) == 3
    old_leader = await asyncio.to_thread(cluster.leader_index)
    assert old_leader is not None
    await asyncio.to_thread(cluster.kill_member, old_leader)
    await asyncio.to_thread(cluster.wait_ready, WAIT)
    new_leader = await asyncio.to_thread(cluster.leader_index)
    assert new_leader not in (None, old_leader)

    survivors = [i for i in range(3) if i != old_leader]
    async with aetcd.Client(*cluster.addresses[survivors[0]]) as client:
        await client.put(b"/standby/cluster", b"written-with-one-member-down")
    async with aetcd.Client(*cluster.addresses[survivors[1]]) as client:
        got = await client.get(b"/standby/cluster")
        assert got is not None
        assert got.value == b"written-with-one-member-down"

    await asyncio.to_thread(cluster.start_member, old_leader)
    async with aetcd.Client(*cluster.addresses[old_leader]) as client:
        got = await client.get(b"/standby/cluster")  # linearizable: the member caught up
        assert got is not None
        assert got.value == b"written-with-one-member-down"


# --------------------------------------------------------------------------------------------- TCP proxy


class _EchoHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        try:
            while data := sock.recv(65536):
                sock.sendall(data)
        except OSError:
            pass


@pytest.fixture
def echo_server() -> Iterator[tuple[str, int]]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _EchoHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield str(host), int(port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(WAIT)


def _roundtrip(sock: socket.socket, payload: bytes) -> bytes:
    sock.sendall(payload)
    received = b""
    while len(received) < len(payload):
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def _mode(proxy: TcpProxy) -> ProxyMode:
    return proxy.mode  # a call, so that mypy does not narrow the mode across the proxy's state changes


def _connection_is_reset(address: tuple[str, int]) -> bool:
    """Whether a new connection to ``address`` is reset (during connect() or right after it)."""
    try:
        sock = socket.create_connection(address, timeout=WAIT)
    except ConnectionResetError:
        return True
    with sock:
        return _is_reset(sock)


def _is_reset(sock: socket.socket) -> bool:
    """Whether the peer closed the connection (RST, or EOF) within the socket's timeout."""
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


def test_proxy_pass_stall_drop_with_raw_sockets(
    echo_server: tuple[str, int], tcp_proxy: TcpProxyFactory
) -> None:
    proxy = tcp_proxy(*echo_server)
    assert _mode(proxy) is ProxyMode.PASS
    with socket.create_connection(proxy.address, timeout=WAIT) as sock:
        assert _roundtrip(sock, b"hello") == b"hello"
        proxy.wait_connections(1)

        proxy.stall()
        assert _mode(proxy) is ProxyMode.STALL
        sock.sendall(b"held back")
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(100)  # nothing is delivered while stalled ...
        assert proxy.connection_count == 1  # ... and the connection stays open
        sock.settimeout(WAIT)
        proxy.resume()
        received = b""
        while len(received) < len(b"held back"):
            received += sock.recv(100)
        assert received == b"held back"  # delivered late, not lost

        proxy.drop()
        assert _mode(proxy) is ProxyMode.DROP
        assert _is_reset(sock)
    proxy.wait_connections(0)
    assert _connection_is_reset(proxy.address)  # new connections are reset while dropping
    assert proxy.connection_count == 0

    proxy.heal()
    with socket.create_connection(proxy.address, timeout=WAIT) as sock:
        assert _roundtrip(sock, b"again") == b"again"
    assert proxy.total_connections == 2


def test_proxy_stall_discard_loses_data(echo_server: tuple[str, int], tcp_proxy: TcpProxyFactory) -> None:
    proxy = tcp_proxy(*echo_server)
    with socket.create_connection(proxy.address, timeout=WAIT) as sock:
        assert _roundtrip(sock, b"first") == b"first"
        proxy.stall(discard=True)
        sock.sendall(b"into the void")
        _poll(
            lambda: proxy.discarded_bytes == len(b"into the void"), "the proxy to discard the stalled bytes"
        )
        proxy.resume()
        assert _roundtrip(sock, b"after") == b"after"


async def test_proxy_from_async_code(echo_server: tuple[str, int]) -> None:
    async with TcpProxy(*echo_server) as proxy:
        reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
        try:
            writer.write(b"ping")
            await writer.drain()
            assert await asyncio.wait_for(reader.readexactly(4), WAIT) == b"ping"
            await asyncio.to_thread(proxy.drop)
            with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
                await asyncio.wait_for(reader.readexactly(1), WAIT)
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except ConnectionResetError:
                pass


@pytest.mark.zookeeper
def test_proxy_drop_suspends_kazoo_and_heal_keeps_session(
    zookeeper_server: ZooKeeperServer, tcp_proxy: TcpProxyFactory
) -> None:
    proxy = tcp_proxy(zookeeper_server.host, zookeeper_server.port)
    client, log = _client(proxy.endpoint, timeout=SURVIVING_SESSION)
    try:
        session_id = client.client_id[0]
        client.create("/through-proxy", b"", ephemeral=True)
        mark = log.mark()
        proxy.drop()
        log.wait_for(KazooState.SUSPENDED, since=mark)
        proxy.heal()
        log.wait_for(KazooState.CONNECTED, since=mark)
        assert client.client_id[0] == session_id  # a short outage does not cost the session
        assert client.exists("/through-proxy") is not None
    finally:
        _close(client)


@pytest.mark.zookeeper
def test_proxy_stall_suspends_kazoo(zookeeper_server: ZooKeeperServer, tcp_proxy: TcpProxyFactory) -> None:
    proxy = tcp_proxy(zookeeper_server.host, zookeeper_server.port)
    client, log = _client(proxy.endpoint, timeout=3.0)
    try:
        mark = log.mark()
        proxy.stall()
        # No answer to its pings: kazoo gives up on the connection after 2/3 of the session timeout.
        log.wait_for(KazooState.SUSPENDED, since=mark)
        assert proxy.connection_count >= 1  # the proxy closed nothing; the client did
        proxy.resume()
        log.wait_for(KazooState.CONNECTED, since=mark)
        assert _retry()(client.exists, "/") is not None
    finally:
        _close(client)
