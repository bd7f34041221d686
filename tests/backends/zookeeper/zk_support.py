"""Helpers of the ZooKeeper backend tests: settings with small timeouts, waits, recorders of driver events."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from uuid import UUID

from standby.backends.zookeeper import (
    ZooKeeperClient,
    ZooKeeperClientSettings,
    ZooKeeperLeaderElectionDriverFactory,
)
from standby.config import Configuration
from standby.ha import (
    DefaultLeaderElectionService,
    LeaderContender,
    LeaderElection,
    LeaderElectionDriverListener,
    LeaderInformation,
    LeaderInformationRegister,
    LeaderRetrievalEventHandler,
    LeaderRetrievalListener,
)
from standby.testing.servers import TcpProxy

#: Small timeouts keep the fault tests fast: a session expires 2 s after its connection died.
SESSION_TIMEOUT = 2.0
CONNECTION_TIMEOUT = 2.0
#: Upper bound of every wait in the tests (a failure, not a timing assertion).
WAIT = 20.0


def make_settings(quorum: str, **overrides: Any) -> ZooKeeperClientSettings:
    """Settings with test timeouts and a fresh cluster id (tests share a server but not data)."""
    settings = ZooKeeperClientSettings(
        quorum=quorum,
        root="/standby-tests",
        cluster_id=f"/{uuid.uuid4().hex[:12]}",
        session_timeout=SESSION_TIMEOUT,
        connection_timeout=CONNECTION_TIMEOUT,
        retry_wait=0.05,
        max_retry_wait=0.5,
        max_retry_attempts=3,
    )
    return replace(settings, **overrides)


async def wait_until(predicate: Callable[[], Any], within: float = WAIT, what: str = "a condition") -> Any:
    """Poll ``predicate`` (sync or async) until truthy; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if isinstance(value, Awaitable):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.02)


class ClientFactory:
    """Starts ``ZooKeeperClient`` objects for a test and closes them at its end."""

    def __init__(self) -> None:
        self.clients: list[ZooKeeperClient] = []

    async def __call__(self, settings: ZooKeeperClientSettings) -> ZooKeeperClient:
        client = ZooKeeperClient(settings)
        await client.start()
        self.clients.append(client)
        return client

    async def close(self) -> None:
        for client in reversed(self.clients):
            await client.close()


class RecordingDriverListener(LeaderElectionDriverListener):
    """Records the events of an election driver; ``await next()`` returns them in order."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.errors: list[BaseException] = []
        self.session_id: UUID | None = None

    def on_grant_leadership(self, session_id: UUID) -> None:
        self.session_id = session_id
        self.events.put_nowait(("grant", session_id))

    def on_revoke_leadership(self) -> None:
        self.session_id = None
        self.events.put_nowait(("revoke", None))

    def on_leader_information_change(self, component_id: str, info: LeaderInformation) -> None:
        self.events.put_nowait(("info", (component_id, info)))

    def on_all_leader_information_change(self, register: LeaderInformationRegister) -> None:
        self.events.put_nowait(("all-info", register))

    def on_error(self, error: BaseException) -> None:
        self.errors.append(error)
        self.events.put_nowait(("error", error))

    async def next(self, kind: str | None = None, within: float = WAIT) -> Any:
        """The next event (of ``kind``: other events before it are skipped); its payload."""
        deadline = time.monotonic() + within
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {kind or 'driver'} event within {within}s")
            try:
                event, payload = await asyncio.wait_for(self.events.get(), remaining)
            except TimeoutError:
                raise AssertionError(f"no {kind or 'driver'} event within {within}s") from None
            if kind is None or event == kind:
                return payload if kind is not None else (event, payload)

    def drain(self) -> list[tuple[str, Any]]:
        drained = []
        while not self.events.empty():
            drained.append(self.events.get_nowait())
        return drained


class RecordingRetrievalHandler(LeaderRetrievalEventHandler):
    """Records leader notifications of a retrieval driver."""

    def __init__(self) -> None:
        self.notifications: list[LeaderInformation] = []
        self.errors: list[BaseException] = []

    def notify_leader_address(self, info: LeaderInformation) -> None:
        self.notifications.append(info)

    def on_fatal_error(self, error: BaseException) -> None:
        self.errors.append(error)

    @property
    def last(self) -> LeaderInformation | None:
        return self.notifications[-1] if self.notifications else None

    async def wait_for(self, info: LeaderInformation, within: float = WAIT) -> None:
        await wait_until(lambda: self.last == info, within, f"leader information {info}")


class RecordingContender(LeaderContender):
    """A contender that confirms every grant with its address (Flink's ``TestingContender``)."""

    def __init__(self, election: LeaderElection, address: str) -> None:
        self.election = election
        self.address = address
        self.session_id: UUID | None = None
        self.grants: list[UUID] = []
        self.revokes = 0
        self.errors: list[Exception] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def grant_leadership(self, session_id: UUID) -> None:
        self.session_id = session_id
        self.grants.append(session_id)
        # callbacks must not block: confirm in a task
        task = asyncio.get_running_loop().create_task(
            self.election.confirm_leadership(session_id, self.address)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def revoke_leadership(self) -> None:
        self.session_id = None
        self.revokes += 1

    def handle_error(self, error: Exception) -> None:
        self.errors.append(error)

    @property
    def confirmed(self) -> LeaderInformation | None:
        return None if self.session_id is None else LeaderInformation.known(self.session_id, self.address)

    async def settle(self) -> None:
        """Wait for the pending confirmations."""
        if self._tasks:
            await asyncio.gather(*self._tasks)


class RecordingRetrievalListener(LeaderRetrievalListener):
    """A retrieval service listener recording every (address, session id) it is told."""

    def __init__(self) -> None:
        self.notifications: list[LeaderInformation] = []
        self.errors: list[Exception] = []

    def notify_leader_address(self, address: str | None, session_id: UUID | None) -> None:
        self.notifications.append(LeaderInformation(session_id, address))

    def handle_error(self, error: Exception) -> None:
        self.errors.append(error)

    @property
    def last(self) -> LeaderInformation | None:
        return self.notifications[-1] if self.notifications else None

    async def wait_for(self, info: LeaderInformation, within: float = WAIT) -> None:
        await wait_until(lambda: self.last == info, within, f"the retriever to see {info}")


class ElectionProcess:
    """One simulated JobManager process: its own ZooKeeper session, election service and contenders."""

    def __init__(self, client: ZooKeeperClient) -> None:
        self.client = client
        self.driver_factory = ZooKeeperLeaderElectionDriverFactory(client)
        self.service = DefaultLeaderElectionService(self.driver_factory)
        self.contenders: dict[str, RecordingContender] = {}

    async def contend(self, component_id: str, address: str) -> RecordingContender:
        election = self.service.create_leader_election(component_id)
        contender = RecordingContender(election, address)
        self.contenders[component_id] = contender
        await election.start_leader_election(contender)
        return contender

    def is_leader(self) -> bool:
        driver = self.driver_factory.driver
        return driver is not None and driver.has_leadership()

    async def stop_contending(self) -> None:
        for contender in self.contenders.values():
            await contender.election.close()
        self.contenders.clear()

    async def close(self) -> None:
        await self.stop_contending()
        await self.service.close()


def make_configuration(
    quorum: str, storage_dir: str, *, root: str = "/standby-tests", **extra: str
) -> Configuration:
    """A ``high-availability.type: zookeeper`` configuration with test timeouts and a fresh cluster id."""
    values = {
        "high-availability.type": "zookeeper",
        "high-availability.zookeeper.quorum": quorum,
        "high-availability.zookeeper.path.root": root,
        "high-availability.cluster-id": f"/{uuid.uuid4().hex[:12]}",
        "high-availability.storageDir": storage_dir,
        "high-availability.zookeeper.client.session-timeout": "2 s",
        "high-availability.zookeeper.client.connection-timeout": "2 s",
        "high-availability.zookeeper.client.retry-wait": "50 ms",
        "high-availability.zookeeper.client.max-retry-wait": "500 ms",
    }
    values.update(extra)
    return Configuration(values)


LEADER_PROCESS_SCRIPT = Path(__file__).with_name("leader_process.py")


class LeaderProcess:
    """A real child process running ``leader_process.py`` (a JobManager that contends for the dispatcher)."""

    def __init__(self, config: Configuration, log_path: Path) -> None:
        self.config = config
        self.log_path = log_path
        self.lines: list[str] = []
        self._process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    async def start(self) -> LeaderProcess:
        with self.log_path.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(LEADER_PROCESS_SCRIPT),
                json.dumps(self.config.to_dict()),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
            )
        await self.expect("READY")
        return self

    async def expect(self, *prefixes: str, within: float = WAIT) -> str:
        """The next output line starting with one of ``prefixes`` (earlier lines are kept in ``lines``)."""
        assert self._process is not None and self._process.stdout is not None
        deadline = time.monotonic() + within
        while True:
            remaining = deadline - time.monotonic()
            try:
                raw = await asyncio.wait_for(self._process.stdout.readline(), max(remaining, 0.001))
            except TimeoutError:
                raise AssertionError(
                    f"process {self.pid} printed no line starting with {prefixes} within {within}s; "
                    f"output so far: {self.lines}; log: {self.log_path}"
                ) from None
            if not raw:
                raise AssertionError(f"process {self.pid} ended; output: {self.lines}; log: {self.log_path}")
            line = raw.decode().strip()
            self.lines.append(line)
            if line.startswith(prefixes):
                return line

    async def command(self, command: str, within: float = WAIT) -> str:
        """Send ``command``; its result line (``OK``, ``FENCED`` or ``FAILED``)."""
        assert self._process is not None and self._process.stdin is not None
        self._process.stdin.write(f"{command}\n".encode())
        await self._process.stdin.drain()
        return await self.expect(f"OK {command}", f"FENCED {command}", f"FAILED {command}", within=within)

    def send_signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    async def wait(self, within: float = WAIT) -> int:
        assert self._process is not None
        return await asyncio.wait_for(self._process.wait(), within)

    async def kill(self) -> None:
        """SIGKILL (after SIGCONT, in case it is paused) and reap."""
        process = self._process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGCONT)
            process.kill()
        await asyncio.wait_for(process.wait(), WAIT)


class ProxyFactory:
    """``factory(host, port)`` starts a :class:`TcpProxy`; ``close()`` closes them all."""

    def __init__(self) -> None:
        self.proxies: list[TcpProxy] = []

    def __call__(self, host: str, port: int) -> TcpProxy:
        proxy = TcpProxy(host, port)
        self.proxies.append(proxy)
        return proxy.start()

    def close(self) -> None:
        while self.proxies:
            self.proxies.pop().close()
