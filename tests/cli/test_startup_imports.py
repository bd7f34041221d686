"""What the server commands load: ``standby jobmanager``/``taskmanager`` stay free of the client-side and optional
libraries (HTTP client, rich, prometheus_client, WebSocket protocols), and freeze their start-up objects.

Each case runs the real command in a fresh interpreter; a probe thread in that interpreter waits until the server
answers HTTP, then reports ``sys.modules`` and the GC state. No timings are asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e._processes import ROOT, free_port

if TYPE_CHECKING:
    pass

#: imported by neither server command (the CLI's client commands load them on use)
NEVER_IN_SERVERS = (
    "rich",
    "pygments",
    "wsproto",
    "websockets",
    "standby.cli._client",
)
#: the JobManager's parts a TaskManager does not need
JOBMANAGER_ONLY = (
    "standby.runtime.dispatcher",
    "standby.runtime.jobmaster",
    "standby.runtime.rest",
    "standby.runtime.resourcemanager",
    "pydantic.v1",
)

_PROBE = """
import json, os, sys, threading, time, urllib.error, urllib.request, runpy, gc

url, out = sys.argv[1], sys.argv[2]
sys.argv = ["standby", *sys.argv[3:]]

def probe():
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                pass
            break
        except urllib.error.HTTPError:
            break  # the server answers: it has started
        except OSError:
            time.sleep(0.02)
    report = {"modules": sorted(sys.modules), "frozen": gc.get_freeze_count(), "gc": gc.isenabled()}
    if url.endswith("/overview"):
        with urllib.request.urlopen(url.rsplit("/", 1)[0] + "/openapi.json", timeout=30) as response:
            report["openapi"] = json.load(response)
    with open(out, "w") as f:
        json.dump(report, f)
    os._exit(0)

threading.Thread(target=probe, daemon=True).start()
runpy.run_module("standby.cli", run_name="__main__")
"""


def _run_server(tmp_path: Path, command: str, url: str, *extra: str) -> dict[str, Any]:
    config = tmp_path / "config.yaml"
    config.write_text(
        "high-availability.type: filesystem\n"
        f"high-availability.storageDir: {tmp_path / 'ha'}\n"
        "high-availability.cluster-id: imports\n"
        "rest.address: 127.0.0.1\nrest.bind-address: 127.0.0.1\n"
        "jobmanager.rpc.address: 127.0.0.1\njobmanager.bind-host: 127.0.0.1\n"
        "taskmanager.host: 127.0.0.1\ntaskmanager.bind-host: 127.0.0.1\n"
    )
    probe, report = tmp_path / "probe.py", tmp_path / "report.json"
    probe.write_text(_PROBE)
    args = [sys.executable, str(probe), url, str(report), command, "--config", str(config), *extra]
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=90)
    assert report.exists(), f"{command} did not start (exit {result.returncode}):\n{result.stderr[-3000:]}"
    data: dict[str, Any] = json.loads(report.read_text())
    return data


def _loaded(modules: list[str], names: tuple[str, ...]) -> list[str]:
    return [m for m in modules if any(m == n or m.startswith(f"{n}.") for n in names)]


def test_importing_the_cli_loads_no_client_or_server_stack() -> None:
    code = "import json, sys; import standby.cli; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    modules = json.loads(result.stdout)

    assert _loaded(modules, (*NEVER_IN_SERVERS, "fastapi", "uvicorn", "standby.runtime.entrypoint")) == []


@pytest.mark.slow
def test_a_jobmanager_loads_no_client_libraries_and_freezes_its_imports(tmp_path: Path) -> None:
    port = free_port()
    report = _run_server(
        tmp_path, "jobmanager", f"http://127.0.0.1:{port}/overview", "-D", f"rest.port={port}"
    )

    assert _loaded(report["modules"], NEVER_IN_SERVERS) == []
    assert "standby.backends.filesystem" in report["modules"]
    assert report["frozen"] > 10_000  # the runtime's modules went to the permanent generation
    assert report["gc"] is True


@pytest.mark.slow
def test_a_taskmanager_loads_no_jobmanager_parts(tmp_path: Path) -> None:
    port = free_port()
    report = _run_server(
        tmp_path,
        "taskmanager",
        f"http://127.0.0.1:{port}/rpc/none/none",
        "-D",
        f"taskmanager.rpc.port={port}",
    )

    assert _loaded(report["modules"], (*NEVER_IN_SERVERS, *JOBMANAGER_ONLY)) == []
    assert "fastapi" in report["modules"]
    assert report["frozen"] > 10_000
