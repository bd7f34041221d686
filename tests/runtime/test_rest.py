"""The REST API: Flink-shaped answers, standby JobManagers forwarding to the leader, metrics and config."""

from __future__ import annotations

from pathlib import Path

import httpx

from standby.runtime.rest import FORWARDED_HEADER

from ._support import Cluster, TestHaServices, cluster_config, counter_expectation, wait_until


async def test_a_standby_forwards_to_the_leader(cluster: Cluster) -> None:
    leader = await cluster.add_jobmanager()
    standby = await cluster.add_jobmanager()
    await cluster.add_taskmanager()
    await cluster.ready()
    await wait_until(
        "the standby to know the REST leader", lambda: standby.rest_leader.leader.address is not None
    )
    job_id = await cluster.submit(args=["30", "1"], parallelism=1)

    async with httpx.AsyncClient() as http:
        response = await http.get(f"{standby.rest_url()}/jobs/{job_id}/execution-result")
        assert response.status_code == 200
        assert response.headers[FORWARDED_HEADER] == leader.rest_url()
        result = await cluster.result(job_id)
        assert result["accumulator-results"] == counter_expectation(30)
        overview = (await http.get(f"{standby.rest_url()}/overview")).json()
        leaders = (await http.get(f"{standby.rest_url()}/cluster/leaders")).json()

    assert overview["taskmanagers"] == 1
    assert overview["jobs-finished"] == 1
    assert leaders["answeredBy"]["id"] == standby.jobmanager_id  # answered locally, not forwarded
    assert leaders["leaders"]["rest_server"]["address"] == leader.rest_url()
    assert leaders["leaders"]["dispatcher"]["address"].endswith("/rpc/dispatcher")


async def test_jobs_taskmanagers_config_and_metrics(cluster: Cluster) -> None:
    await cluster.add_jobmanager()
    await cluster.add_taskmanager()
    leader = await cluster.ready()
    job_id = await cluster.submit(args=["20", "1"], parallelism=1)
    await cluster.result(job_id)

    jobs = (await cluster.rest("GET", "/jobs")).json()
    overview = (await cluster.rest("GET", "/jobs/overview")).json()
    task_managers = (await cluster.rest("GET", "/taskmanagers")).json()
    config = (await cluster.rest("GET", "/jobmanager/config")).json()
    metrics = await cluster.rest("GET", "/metrics")
    missing = await cluster.rest("GET", f"/jobs/{'0' * 32}")
    invalid = await cluster.rest("POST", "/jobs", json={"parallelism": 0})
    openapi = await cluster.rest("GET", "/openapi.json")

    assert jobs == {"jobs": [{"id": job_id, "status": "FINISHED"}]}
    assert overview["jobs"][0]["jid"] == job_id
    assert task_managers["taskmanagers"][0]["slotsNumber"] == 2
    assert {"key": "high-availability.type", "value": "embedded"} in config
    assert metrics.status_code == 200
    assert "standby_leadership_is_leader" in metrics.text
    assert 'standby_leadership_is_leader{component="dispatcher"} 1.0' in metrics.text
    assert missing.status_code == 404
    assert invalid.status_code == 400 and "Malformed request" in invalid.json()["errors"][0]
    assert "/jobs/{job_id}/execution-result" in openapi.json()["paths"]
    assert leader.rest_url()


async def test_with_a_shared_token_every_call_needs_it(services: TestHaServices, tmp_path: Path) -> None:
    cluster = Cluster(services, cluster_config(tmp_path, **{"security.auth.token": "t0ken"}))
    cluster.http.headers["Authorization"] = "Bearer t0ken"
    try:
        await cluster.add_jobmanager()
        await cluster.add_taskmanager()  # registers and heartbeats with the token
        leader = await cluster.ready()
        job_id = await cluster.submit(args=["30", "1"], parallelism=2)
        result = await cluster.result(job_id)
        async with httpx.AsyncClient() as anonymous:
            rest = await anonymous.get(f"{leader.rest_url()}/overview")
            rpc = await anonymous.post(f"{leader.rpc_service.address_of('dispatcher')}/list_jobs", json={})
    finally:
        await cluster.close()
    assert result["accumulator-results"] == counter_expectation(30)
    assert rest.status_code == 401 and rpc.status_code == 401
    assert "security.auth.token" in rest.json()["errors"][0]
