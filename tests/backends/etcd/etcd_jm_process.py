"""A JobManager-like child process for the etcd failover tests and the hand-over benchmark.

Usage: ``python etcd_jm_process.py '<configuration as JSON>' <name>``. It creates ``EtcdHaServices``, contends for
the dispatcher leadership (confirming ``http://<name>`` when granted) and reports JSON lines on stdout::

    {"event": "started"}  {"event": "granted", "session": "...", "t": <time.monotonic(), shared by the processes of a host>}  {"event": "revoked", "t": ...}
    {"event": "result", "id": 1, "ok": true, "value": 5}  /  {"event": "result", "id": 1, "ok": false,
                                                               "error": "FencingError", "message": "..."}

Commands arrive as JSON lines on stdin: ``{"id": 1, "cmd": "increment"|"set"|"get", "job": "<jobId>", "value": n}``,
``{"id": 2, "cmd": "put-plan"|"cleanup-plan", "job": "<jobId>"}``, ``{"cmd": "exit"}`` (graceful: hands over).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any
from uuid import UUID

from standby.backends.etcd import EtcdHaServicesFactory
from standby.config import Configuration
from standby.ha import ExecutionPlan, ExecutionPlanListener, JobID, LeaderContender, LeaderElection


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


class _Contender(LeaderContender):
    def __init__(self, name: str) -> None:
        self.name = name
        self.election: LeaderElection | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def grant_leadership(self, session_id: UUID) -> None:
        emit("granted", session=str(session_id), t=time.monotonic())
        election = self.election
        if election is not None:
            task = asyncio.get_running_loop().create_task(
                election.confirm_leadership(session_id, f"http://{self.name}")
            )
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    def revoke_leadership(self) -> None:
        emit("revoked", t=time.monotonic())

    def handle_error(self, error: Exception) -> None:
        emit("error", message=str(error))


class _Plans(ExecutionPlanListener):
    def on_added_execution_plan(self, job_id: JobID) -> None:
        pass

    def on_removed_execution_plan(self, job_id: JobID) -> None:
        pass


async def main(config_json: str, name: str) -> None:
    services = await EtcdHaServicesFactory().create_ha_services(Configuration(json.loads(config_json)))
    contender = _Contender(name)
    election = services.get_dispatcher_leader_election()
    contender.election = election
    plans = services.get_execution_plan_store()
    await plans.start(_Plans())
    await election.start_leader_election(contender)
    emit("started")

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    factory = services.get_checkpoint_recovery_factory()
    while True:
        line = await reader.readline()
        if not line:
            break
        command = json.loads(line)
        if command["cmd"] == "exit":
            break
        try:
            job_id = JobID(command["job"])
            counter = await factory.create_checkpoint_id_counter(job_id)
            value: object = None
            if command["cmd"] == "increment":
                value = await counter.get_and_increment()
            elif command["cmd"] == "set":
                await counter.set_count(int(command["value"]))
            elif command["cmd"] == "get":
                value = await counter.get()
            elif command["cmd"] == "put-plan":
                await plans.put_execution_plan(ExecutionPlan(job_id=job_id, name=f"plan of {name}"))
            elif command["cmd"] == "cleanup-plan":
                await plans.recover_execution_plan(job_id)
                await plans.global_cleanup(job_id)
            else:
                raise ValueError(f"unknown command {command['cmd']!r}")
            emit("result", id=command.get("id"), ok=True, value=value)
        except Exception as e:
            emit("result", id=command.get("id"), ok=False, error=type(e).__name__, message=str(e))
    await plans.stop()
    await election.close()
    await services.close()
    emit("closed", t=time.monotonic())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
