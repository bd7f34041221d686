"""Leader election and retrieval of the filesystem backend, several "JobManagers" in one process."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest

from standby.backends.filesystem import FileSystemHaServices

from .fs_ha_testing import Cluster, exited_process, pid_namespace, tree, wait_until


def _connection_info(services: FileSystemHaServices, component: str = "dispatcher") -> Path:
    return services.leader_dir / component / "connection_info"


def _epoch(services: FileSystemHaServices) -> int:
    return int(json.loads((services.leader_dir / "epoch").read_text())["epoch"])


def _writer(pid: int, create_time: float) -> dict[str, Any]:
    return {
        "pid": pid,
        "createTime": create_time,
        "pidNamespace": pid_namespace(),
        "host": os.uname().nodename,
    }


async def test_exactly_one_leader_and_graceful_hand_over(cluster: Cluster) -> None:
    services = [await cluster.new_services() for _ in range(3)]
    contenders = [await cluster.contend(s, f"http://jm-{i}") for i, s in enumerate(services)]
    listener = await cluster.retrieve(await cluster.new_services())
    seen: list[str] = []
    for _ in range(3):
        await wait_until(lambda: sum(c.is_leader for c in contenders) == 1, what="one leader")
        leader = next(c for c in contenders if c.is_leader)
        address = leader.address
        await wait_until(lambda: listener.address == address, what="the retriever to see the leader")  # noqa: B023
        assert listener.session_id == leader.session_id
        assert sum(c.is_leader for c in contenders) == 1
        seen.append(leader.address)
        contenders.remove(leader)
        await leader.election.close()
        assert not leader.is_leader
    assert len(set(seen)) == 3


async def test_every_leadership_period_has_a_fresh_session_and_epoch(cluster: Cluster) -> None:
    first, second = await cluster.new_services(), await cluster.new_services()
    one = await cluster.contend(first, "http://one")
    await wait_until(lambda: one.is_leader)
    epoch_one = _epoch(first)
    two = await cluster.contend(second, "http://two")
    await one.election.close()
    await wait_until(lambda: two.is_leader)
    assert _epoch(first) == epoch_one + 1
    assert two.session_id not in one.grants


async def test_leader_information_file(cluster: Cluster) -> None:
    services = await cluster.new_services()
    contender = await cluster.contend(services, "http://leader:8081")
    await wait_until(lambda: _connection_info(services).exists())
    body = json.loads(_connection_info(services).read_text())
    assert body["sessionId"] == str(contender.session_id)
    assert body["address"] == "http://leader:8081"
    assert body["epoch"] == 1
    assert body["writer"]["pid"] == os.getpid()
    assert body["version"] == 1


async def test_closing_the_election_deletes_the_leader_information(cluster: Cluster) -> None:
    services = await cluster.new_services()
    contender = await cluster.contend(services, "http://a")
    await wait_until(lambda: _connection_info(services).exists())
    await contender.election.close()
    assert not _connection_info(services).exists()


@pytest.mark.parametrize("change", ["overwrite", "delete", "garbage"])
async def test_externally_changed_leader_information_is_corrected(cluster: Cluster, change: str) -> None:
    services = await cluster.new_services()
    contender = await cluster.contend(services, "http://right")
    path = _connection_info(services)
    await wait_until(lambda: path.exists())
    if change == "overwrite":
        body = json.loads(path.read_bytes())
        body["address"] = "http://wrong"
        body["sessionId"] = str(uuid.uuid4())
        path.write_text(json.dumps(body))
    elif change == "delete":
        path.unlink()
    else:
        path.write_bytes(b"\x00garbage")

    def corrected() -> bool:
        try:
            return bool(json.loads(path.read_bytes())["address"] == "http://right")
        except (OSError, ValueError):
            return False

    await wait_until(corrected, what="self-healing of the leader information")
    assert contender.is_leader


async def test_polling_fallback_without_inotify(cluster: Cluster) -> None:
    no_inotify = {"high-availability.filesystem.inotify": "false"}
    first = await cluster.new_services(**no_inotify)
    second = await cluster.new_services(**no_inotify)
    listener = await cluster.retrieve(await cluster.new_services(**no_inotify))
    one = await cluster.contend(first, "http://one")
    two = await cluster.contend(second, "http://two")
    await wait_until(lambda: one.is_leader or two.is_leader)
    leader, standby = (one, two) if one.is_leader else (two, one)
    await wait_until(lambda: listener.address == leader.address)
    await leader.election.close()
    await wait_until(lambda: standby.is_leader)
    await wait_until(lambda: listener.address == standby.address)


async def test_retriever_reports_no_leader_when_the_writer_is_dead_or_deposed(cluster: Cluster) -> None:
    services = await cluster.new_services()
    dead_pid, dead_create_time = exited_process()
    path = _connection_info(services)
    path.parent.mkdir(parents=True)
    (services.leader_dir / "epoch").write_text(json.dumps({"version": 1, "epoch": 3}))
    body: dict[str, Any] = {
        "version": 1,
        "sessionId": str(uuid.uuid4()),
        "address": "http://somewhere",
        "epoch": 3,
        "writer": _writer(dead_pid, dead_create_time),
    }
    path.write_text(json.dumps(body))
    listener = await cluster.retrieve(services)
    assert listener.history == [None]
    # the same information from a live writer is believed
    body["writer"] = _writer(os.getpid(), round(psutil.Process().create_time(), 2))
    path.write_text(json.dumps(body))
    await wait_until(lambda: listener.address == "http://somewhere")
    # a newer epoch (another leader was elected) makes it stale
    (services.leader_dir / "epoch").write_text(json.dumps({"version": 1, "epoch": 4}))
    await wait_until(lambda: listener.address is None)


async def test_new_leader_removes_leader_information_of_older_epochs(cluster: Cluster) -> None:
    services = await cluster.new_services()
    stale = services.leader_dir / ("job-" + "0" * 32)
    stale.mkdir(parents=True)
    (stale / "connection_info").write_text(
        json.dumps({"version": 1, "sessionId": str(uuid.uuid4()), "address": "http://old", "epoch": 0})
    )
    contender = await cluster.contend(services, "http://new")
    await wait_until(lambda: contender.is_leader)
    assert not stale.exists()


async def test_retriever_of_a_cluster_that_does_not_exist_yet(cluster: Cluster, storage_dir: Path) -> None:
    observer = await cluster.new_services()
    listener = await cluster.retrieve(observer, "resource_manager")
    assert listener.history == [None]
    assert tree(storage_dir.parent) == []  # nothing created by a retriever
    services = await cluster.new_services()
    contender = await cluster.contend(services, "http://rm", "resource_manager")
    await wait_until(lambda: listener.address == "http://rm")
    assert listener.session_id == contender.session_id
