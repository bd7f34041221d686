"""The ``standby`` command: job commands against a real cluster, one-line errors, and ``standby demo``."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from standby.cli import app
from tests.e2e._processes import ROOT, ProcessCluster, free_port

EXAMPLE = str(ROOT / "examples" / "counter.py")


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


async def cli_async(*args: str) -> Result:
    # the command runs its own event loop: give it a thread
    return await asyncio.to_thread(cli, *args)


@pytest.mark.slow
async def test_run_list_status_and_cancel_find_the_leader_through_ha_retrieval(tmp_path: Path) -> None:
    cluster = ProcessCluster(tmp_path)
    try:
        await cluster.start("jobmanager")
        await cluster.start("taskmanager")
        await cluster.ready()
        config = str(cluster.config)

        run = await cli_async(
            "run", f"{EXAMPLE}:Counter", "-p", "2", "--arg", "200", "--arg", "1", "--config", config
        )
        assert run.exit_code == 0, run.stderr
        assert "SUCCEEDED" in run.stdout
        assert "20100" in run.stdout  # sum 1..200

        listed = await cli_async("list", "--json", "--config", config)
        assert listed.exit_code == 0, listed.stderr
        jobs = json.loads(listed.stdout)
        assert [j["state"] for j in jobs] == ["FINISHED"]

        status = await cli_async("status", "--json", "--config", config)
        assert status.exit_code == 0, status.stderr
        body = json.loads(status.stdout)
        assert body["leaders"]["dispatcher"]["address"].endswith("/rpc/dispatcher")
        assert len(body["taskmanagers"]) == 1
        assert len(body["jobmanagers"]) == 1
        assert body["jobs"][0]["jid"] == jobs[0]["jid"]

        table = await cli_async("status", "--config", config)
        assert table.exit_code == 0, table.stderr
        assert "Leaders" in table.stdout and "TaskManagers" in table.stdout

        cancel = await cli_async("cancel", "0" * 32, "--config", config)
        assert cancel.exit_code == 1
        assert cancel.stderr.startswith("error:") and cancel.stderr.count("\n") == 1
        assert "Could not find" in cancel.stderr
    finally:
        await cluster.close()


def test_errors_are_one_clear_line(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"

    missing = cli("run", str(tmp_path / "missing.py"), "--address", closed)
    unreachable = cli("list", "--address", closed)
    bad_config = cli("jobmanager", "-D", "heartbeat.interval=soon")
    bad_job = tmp_path / "bad.py"
    bad_job.write_text("x = 1\n")
    no_task = cli("run", str(bad_job), "--address", closed)
    verbose = cli("list", "--address", closed, "--verbose")

    for result, text in (
        (missing, "Cannot read the job file"),
        (unreachable, "unreachable"),
        (bad_config, "heartbeat.interval"),
        (no_task, "no subclass of standby.Task"),
    ):
        assert result.exit_code == 1
        assert result.stderr.startswith("error:"), result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
        assert text in result.stderr
    assert verbose.exit_code == 1 and "Traceback" in verbose.stderr


@pytest.mark.slow
async def test_standby_demo_reports_an_exact_result() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "standby.cli",
        "demo",
        "--count",
        "1500",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(ROOT),
    )
    out, err = await asyncio.wait_for(proc.communicate(), 150)
    text = out.decode()
    assert proc.returncode == 0, text + err.decode()
    assert "EXACT" in text
    assert text.count("SIGKILL leader") == 2
    assert "Failovers (filesystem backend)" in text and "running after" in text
