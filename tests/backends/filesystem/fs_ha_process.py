"""A JobManager-like process for the multi-process tests and the hand-over benchmark of the filesystem backend.

    python fs_ha_process.py contender <storageDir> <name> [poll]   # contends for "dispatcher" (http://<name>)
    python fs_ha_process.py retriever <storageDir> [name] [poll]    # follows the "dispatcher" leader

``poll`` (optional) disables inotify, so that only polling finds changes.

Reports on stdout, one event per line, each with a monotonic timestamp (``time.monotonic()``, comparable between
processes on one host)::

    READY <t>
    GRANTED <t> <session id>            leadership granted
    WROTE <t> <job id>                  first leader: wrote an execution plan and checkpoint 1 for a new job
    RECOVERED_PLAN <t> <job id>         later leaders: recovered the plan ...
    RECOVERED_CHECKPOINT <t> <job id> <checkpoint id>   ... and the checkpoints of the job
    CONFIRMED <t>                       leadership confirmed with the address
    REVOKED <t>
    LEADER <t> <address or None>        (retriever) the leader changed

Closing stdin makes the process shut down gracefully (closing the election hands leadership over at once).
"""

from __future__ import annotations

import asyncio
import sys
import time
from uuid import UUID

from standby.config import Configuration
from standby.ha import (
    CheckpointsCleaner,
    CompletedCheckpoint,
    ExecutionPlan,
    ExecutionPlanListener,
    HighAvailabilityServices,
    JobID,
    LeaderContender,
    LeaderElection,
    LeaderRetrievalListener,
    create_high_availability_services,
)


def emit(event: str, *fields: object) -> None:
    print(event, f"{time.monotonic():.6f}", *fields, flush=True)


class _Cleaner(CheckpointsCleaner):
    async def clean_checkpoint(self, checkpoint: CompletedCheckpoint, discard: bool) -> None:
        return None


class _Plans(ExecutionPlanListener):
    def on_added_execution_plan(self, job_id: JobID) -> None:
        return None

    def on_removed_execution_plan(self, job_id: JobID) -> None:
        return None


class Contender(LeaderContender):
    def __init__(self, services: HighAvailabilityServices, election: LeaderElection, address: str) -> None:
        self.services = services
        self.election = election
        self.address = address
        self.tasks: set[asyncio.Task[None]] = set()

    def grant_leadership(self, session_id: UUID) -> None:
        emit("GRANTED", session_id)
        task = asyncio.get_running_loop().create_task(self.lead(session_id))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def lead(self, session_id: UUID) -> None:
        try:
            await self._lead(session_id)
        except Exception as e:
            emit("ERROR", repr(e).replace("\n", " "))

    async def _lead(self, session_id: UUID) -> None:
        # confirm first (what a retriever waits for), then recover the jobs as a Dispatcher would
        await self.election.confirm_leadership(session_id, self.address)
        emit("CONFIRMED")
        plans = self.services.get_execution_plan_store()
        await plans.start(_Plans())
        job_ids = await plans.get_job_ids()
        recovery = self.services.get_checkpoint_recovery_factory()
        if not job_ids:
            job_id = JobID.generate()
            await plans.put_execution_plan(ExecutionPlan(job_id, "multi-process job"))
            checkpoints = await recovery.create_recovered_completed_checkpoint_store(job_id, 1)
            counter = await recovery.create_checkpoint_id_counter(job_id)
            checkpoint = CompletedCheckpoint(job_id, await counter.get_and_increment(), 1, 2)
            await checkpoints.add_checkpoint_and_subsume_oldest_one(checkpoint, _Cleaner())
            emit("WROTE", job_id)
        for job_id in job_ids:
            plan = await plans.recover_execution_plan(job_id)
            emit("RECOVERED_PLAN", plan.job_id if plan is not None else None)
            store = await recovery.create_recovered_completed_checkpoint_store(job_id, 1)
            for checkpoint in store.get_all_checkpoints():
                emit("RECOVERED_CHECKPOINT", job_id, checkpoint.checkpoint_id)

    def revoke_leadership(self) -> None:
        emit("REVOKED")

    def handle_error(self, error: Exception) -> None:
        emit("ERROR", repr(error).replace("\n", " "))


class Listener(LeaderRetrievalListener):
    def notify_leader_address(self, address: str | None, session_id: UUID | None) -> None:
        emit("LEADER", address)

    def handle_error(self, error: Exception) -> None:
        emit("ERROR", repr(error).replace("\n", " "))


async def wait_for_stdin_eof() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.read(4096):
        pass


async def main(role: str, storage_dir: str, name: str = "", mode: str = "inotify") -> None:
    config = Configuration(
        {
            "high-availability.type": "filesystem",
            "high-availability.storageDir": storage_dir,
            "high-availability.cluster-id": "multi-process",
            "high-availability.filesystem.inotify": "false" if mode == "poll" else "true",
        }
    )
    services = await create_high_availability_services(config)
    try:
        if role == "contender":
            election = services.get_dispatcher_leader_election()
            await election.start_leader_election(Contender(services, election, f"http://{name}"))
            emit("READY")
            await wait_for_stdin_eof()
            await election.close()
        else:
            retriever = services.get_dispatcher_leader_retriever()
            await retriever.start(Listener())
            emit("READY")
            await wait_for_stdin_eof()
            await retriever.stop()
    finally:
        await services.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
