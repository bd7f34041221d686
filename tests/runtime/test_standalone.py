"""Without HA (``high-availability.type: none``): fixed addresses from the configuration, one JobManager."""

from __future__ import annotations

import base64

import httpx

from standby.config import Configuration
from standby.runtime import JobManagerProcess, TaskManagerProcess
from tests.e2e._processes import free_port

from ._support import COUNTER, counter_expectation, wait_until


async def test_a_job_runs_on_a_standalone_cluster() -> None:
    rest = free_port()
    conf = Configuration(
        {
            "jobmanager.rpc.port": str(free_port()),
            "rest.port": str(rest),
            "heartbeat.interval": "200 ms",
            "heartbeat.timeout": "2 s",
            "execution.checkpointing.interval": "100 ms",
        }
    )
    jm = JobManagerProcess(conf)
    tm = TaskManagerProcess(conf)
    await jm.start()
    await tm.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://localhost:{rest}") as http:

            async def registered() -> bool:
                return bool((await http.get("/overview")).json()["taskmanagers"])

            await wait_until("the TaskManager to register", registered)
            response = await http.post(
                "/jobs",
                json={"jobFile": base64.b64encode(COUNTER).decode(), "programArgsList": ["100", "1"]},
            )
            job_id = response.json()["jobid"]

            async def result() -> dict[str, object] | None:
                body = (await http.get(f"/jobs/{job_id}/execution-result")).json()
                return body.get("job-execution-result") if body["status"]["id"] == "COMPLETED" else None

            execution = await wait_until("the result", result)
        assert execution["accumulator-results"] == counter_expectation(100)
        assert jm.rest_url() == f"http://localhost:{rest}"
    finally:
        await tm.close()
        await jm.close()
