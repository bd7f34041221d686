"""The ``standby`` command (temporary: an in-process leader election demo until the job cluster lands)."""

from __future__ import annotations

import asyncio
import sys


def main() -> None:
    if sys.argv[1:2] != ["demo"]:
        print("usage: standby demo", file=sys.stderr)
        raise SystemExit(2)
    asyncio.run(_demo())


async def _demo() -> None:
    from standby.ha import EmbeddedHaServices
    from standby.testing.recording import RecordingContender, RecordingRetrievalListener

    services = EmbeddedHaServices()
    retriever = services.get_dispatcher_leader_retriever()
    listener = RecordingRetrievalListener()
    await retriever.start(listener)
    elections = [services.get_dispatcher_leader_election() for _ in range(3)]
    contenders = [RecordingContender(f"jobmanager-{i}") for i in range(3)]
    for election, contender in zip(elections, contenders, strict=True):
        await election.start_leader_election(contender)
    await contenders[0].wait_for_leadership(5)
    for _ in range(3):
        index = next(i for i, c in enumerate(contenders) if c.is_leader)
        session_id = contenders[index].session_id
        assert session_id is not None
        await elections[index].confirm_leadership(session_id, f"http://127.0.0.1/{contenders[index].name}")
        address, _ = await listener.wait_for_leader(session_id=session_id, timeout=5)
        print(f"leader: {contenders[index].name}, retrieved address {address}, session {session_id}")
        await elections[index].close()
        if any(not c.events for c in contenders):
            await next(c for c in contenders if not c.events).wait_for_leadership(5)
    await retriever.stop()
    await services.close()
