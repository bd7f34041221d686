"""Fixtures of the end-to-end tests: real JobManager and TaskManager processes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ._processes import ProcessCluster


@pytest.fixture
async def processes(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[ProcessCluster]:
    cluster = ProcessCluster(tmp_path)
    yield cluster
    await cluster.close()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(cluster.logs())


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
