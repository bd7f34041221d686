"""A JobManager-like process for the process tests: contends for "dispatcher" on ZooKeeper and writes on command.

Run as ``python leader_process.py '<configuration as JSON>'``. It prints one line per event on stdout:
``READY``, ``GRANTED <session id>``, ``REVOKED``, ``ERROR <message>``, and for each command read from stdin
``OK <command>``, ``FENCED <command>: <message>`` or ``FAILED <command>: <message>``; ``CLOSED`` after a graceful
stop (SIGTERM or the ``close`` command). Commands: ``put-plan <jobId>``, ``add-checkpoint <jobId> <id>``.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from uuid import UUID

from standby.backends.zookeeper import ZooKeeperHaServicesFactory
from standby.config import Configuration
from standby.ha import (
    CheckpointsCleaner,
    CompletedCheckpoint,
    CompletedCheckpointStore,
    ExecutionPlan,
    ExecutionPlanListener,
    FencingError,
    JobID,
    LeaderContender,
    LeaderElection,
)


def emit(line: str) -> None:
    print(line, flush=True)


class Contender(LeaderContender):
    def __init__(self, election: LeaderElection, address: str) -> None:
        self.election = election
        self.address = address
        self.tasks: set[asyncio.Task[None]] = set()

    def grant_leadership(self, session_id: UUID) -> None:
        async def confirm() -> None:
            await self.election.confirm_leadership(session_id, self.address)
            emit(f"GRANTED {session_id}")

        task = asyncio.get_running_loop().create_task(confirm())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def revoke_leadership(self) -> None:
        emit("REVOKED")

    def handle_error(self, error: Exception) -> None:
        emit(f"ERROR {error}")


class IgnorePlans(ExecutionPlanListener):
    def on_added_execution_plan(self, job_id: JobID) -> None:
        return None

    def on_removed_execution_plan(self, job_id: JobID) -> None:
        return None


class KeepFiles(CheckpointsCleaner):
    async def clean_checkpoint(self, checkpoint: CompletedCheckpoint, discard: bool) -> None:
        return None


def is_fencing(error: BaseException | None) -> bool:
    while error is not None:
        if isinstance(error, FencingError):
            return True
        error = error.__cause__ or error.__context__
    return False


async def main(config_json: str) -> None:
    config = Configuration(json.loads(config_json))
    services = await ZooKeeperHaServicesFactory().create_ha_services(config)
    election = services.get_dispatcher_leader_election()
    contender = Contender(election, f"http://127.0.0.1/dispatcher/{id(services)}")
    plans = services.get_execution_plan_store()
    await plans.start(IgnorePlans())
    checkpoint_stores: dict[JobID, CompletedCheckpointStore] = {}
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await election.start_leader_election(contender)
    emit("READY")

    async def run(command: str) -> None:
        parts = command.split()
        try:
            if parts[0] == "put-plan":
                await plans.put_execution_plan(ExecutionPlan(JobID(parts[1]), "process test"))
            elif parts[0] == "add-checkpoint":
                job_id = JobID(parts[1])
                if job_id not in checkpoint_stores:
                    factory = services.get_checkpoint_recovery_factory()
                    checkpoint_stores[job_id] = await factory.create_recovered_completed_checkpoint_store(
                        job_id, 10
                    )
                checkpoint = CompletedCheckpoint(job_id, int(parts[2]), 1, 2)
                await checkpoint_stores[job_id].add_checkpoint_and_subsume_oldest_one(checkpoint, KeepFiles())
            elif parts[0] == "close":
                stop.set()
                return
            else:
                raise ValueError(f"unknown command {command!r}")
            emit(f"OK {command}")
        except Exception as e:
            emit(f"{'FENCED' if is_fencing(e) else 'FAILED'} {command}: {type(e).__name__}: {e}")

    async def read_commands() -> None:
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while not stop.is_set():
            line = await reader.readline()
            if not line:
                return
            if line.strip():
                await run(line.decode().strip())

    commands = loop.create_task(read_commands())
    await stop.wait()
    commands.cancel()
    await election.close()
    await plans.stop()
    await services.close()
    emit("CLOSED")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
