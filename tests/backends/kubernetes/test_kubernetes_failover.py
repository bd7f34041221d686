"""Hand-over between JobManager processes: the leader is SIGKILLed (a standby takes over once the 2 s lease
expired) or stopped gracefully (the lock is released and the standby takes over at once)."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from standby.backends.kubernetes import LEADER_ANNOTATION_KEY, LeaderElectionRecord
from standby.testing.kubernetes_api_server import KubernetesApiTestServer
from standby.testing.recording import RecordingContender, RecordingRetrievalListener

from .conftest import CLUSTER_ID, NAMESPACE, ConfigFactory, ServicesFactory

LEADER_PROCESS = Path(__file__).with_name("leader_process.py")
CLUSTER_CONFIG_MAP = f"{CLUSTER_ID}-cluster-config-map"
_TIMEOUT = 30.0


class JobManagerProcess:
    """A ``leader_process.py`` child; its stdout lines are the events (read by a background task)."""

    def __init__(self, name: str, process: asyncio.subprocess.Process) -> None:
        self.name = name
        self.process = process
        self.lines: list[str] = []
        self._consumed = 0
        self._changed = asyncio.Event()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @staticmethod
    async def start(name: str, config: dict[str, str]) -> JobManagerProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(LEADER_PROCESS),
            json.dumps(config),
            name,
            stdout=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
        )
        return JobManagerProcess(name, process)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while raw := await self.process.stdout.readline():
            self.lines.append(raw.decode().strip())
            self._changed.set()
        self._changed.set()

    def _next(self, prefix: str) -> str | None:
        for index in range(self._consumed, len(self.lines)):
            if self.lines[index].startswith(prefix):
                self._consumed = index + 1
                return self.lines[index]
        return None

    async def wait_for(self, prefix: str, timeout: float = _TIMEOUT) -> str:
        """The next line starting with ``prefix``."""

        async def wait() -> str:
            while (line := self._next(prefix)) is None:
                if self._reader.done():
                    raise AssertionError(f"{self.name} exited before {prefix!r}: {self.lines}")
                self._changed.clear()
                await self._changed.wait()
            return line

        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"{self.name} printed no {prefix!r} within {timeout} s: {self.lines}"
            ) from None

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()

    async def terminate(self) -> int:
        """SIGTERM, wait for its ``CLOSED`` line and its exit code."""
        self.process.send_signal(signal.SIGTERM)
        await self.wait_for("CLOSED")
        return await asyncio.wait_for(self.process.wait(), _TIMEOUT)

    async def close(self) -> None:
        self.kill()
        await asyncio.wait_for(self.process.wait(), _TIMEOUT)
        await asyncio.wait_for(self._reader, _TIMEOUT)


async def first_leader(candidates: list[JobManagerProcess]) -> JobManagerProcess:
    """The candidate that prints ``LEADER`` first (the others must not lead meanwhile)."""
    waits = {asyncio.ensure_future(c.wait_for("LEADER")): c for c in candidates}
    done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    winner = waits[next(iter(done))]
    next(iter(done)).result()
    return winner


@pytest.fixture
async def processes() -> AsyncIterator[list[JobManagerProcess]]:
    started: list[JobManagerProcess] = []
    yield started
    for process in started:
        await process.close()


def _record(server: KubernetesApiTestServer) -> LeaderElectionRecord:
    found = server.get_configmap(NAMESPACE, CLUSTER_CONFIG_MAP)
    assert found is not None
    return LeaderElectionRecord.from_json(found["metadata"]["annotations"][LEADER_ANNOTATION_KEY])


@pytest.mark.slow
async def test_sigkill_and_graceful_hand_over_between_processes(
    k8s_server: KubernetesApiTestServer,
    make_config: ConfigFactory,
    new_services: ServicesFactory,
    processes: list[JobManagerProcess],
) -> None:
    config = {key: str(value) for key, value in make_config().to_dict().items()}
    watcher = (await new_services()).get_dispatcher_leader_retriever()
    listener = RecordingRetrievalListener()
    await watcher.start(listener)

    # two JobManager processes start at once (their start-up is the slow part of this test)
    candidates = [await JobManagerProcess.start(f"jm-{i}", config) for i in (1, 2)]
    processes.extend(candidates)
    identities = {(await p.wait_for("READY")).split()[1]: p for p in candidates}
    first = await first_leader(candidates)
    await listener.wait_for_leader(f"http://{first.name}")
    first_session = listener.session_id
    record = _record(k8s_server)
    assert identities[record.holder_identity] is first
    term = record.leader_transitions
    second = next(p for p in candidates if p is not first)

    # SIGKILL: nothing is released; the standby takes over after the lease expired
    first.kill()
    await second.wait_for("LEADER")
    await listener.wait_for_leader(f"http://{second.name}")
    record = _record(k8s_server)
    assert identities[record.holder_identity] is second
    assert record.leader_transitions == term + 1
    assert listener.session_id != first_session

    # graceful: the leader releases the lock on SIGTERM and a standby (here in the test process) takes over
    standby = await new_services()
    election = standby.get_dispatcher_leader_election()
    contender = RecordingContender("jm-3")
    await election.start_leader_election(contender)
    assert await second.terminate() == 0
    session_id = await contender.wait_for_leadership()
    await election.confirm_leadership(session_id, "http://jm-3")
    await listener.wait_for_leader("http://jm-3", session_id)
    record = _record(k8s_server)
    assert record.holder_identity == standby.lock_identity
    assert record.leader_transitions == term + 2
    await election.close()
    await watcher.stop()
