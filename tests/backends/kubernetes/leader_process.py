"""A JobManager stand-in for the multi-process tests: Kubernetes HA services, one dispatcher contender.

Usage: ``python leader_process.py '<configuration as JSON>' <name>``. Prints one line per event on stdout:
``READY <lock identity>`` once it contends, ``LEADER <session id>`` once it leads and has confirmed the address
``http://<name>``, ``REVOKED`` when it loses leadership, ``CLOSED`` after a graceful stop (SIGTERM).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from uuid import UUID

from standby.backends.kubernetes import KubernetesHaServicesFactory
from standby.config import Configuration
from standby.ha import LeaderContender, LeaderElection


def say(line: str) -> None:
    print(line, flush=True)


class Contender(LeaderContender):
    def __init__(self, name: str) -> None:
        self.name = name
        self.election: LeaderElection | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def grant_leadership(self, session_id: UUID) -> None:
        task = asyncio.get_running_loop().create_task(self._confirm(session_id))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _confirm(self, session_id: UUID) -> None:
        assert self.election is not None
        await self.election.confirm_leadership(session_id, f"http://{self.name}")
        say(f"LEADER {session_id}")

    def revoke_leadership(self) -> None:
        say("REVOKED")

    def handle_error(self, error: Exception) -> None:
        say(f"ERROR {error}")


async def main(config_json: str, name: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    services = await KubernetesHaServicesFactory().create_ha_services(Configuration(json.loads(config_json)))
    contender = Contender(name)
    election = services.get_dispatcher_leader_election()
    contender.election = election
    await election.start_leader_election(contender)
    say(f"READY {services.lock_identity}")
    await stop.wait()
    await election.close()
    await services.close()
    say("CLOSED")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
