"""Leader election on the cluster ConfigMap: the lock record, the election driver (Flink's
``KubernetesLeaderElectionDriverTest`` scenarios on the 2.x single-ConfigMap layout), the retrieval driver, and the
elector's rules (acquire on expiry, release on close, re-join after losing, faster failover through the watch)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime
from typing import Any

import pytest

from standby.backends.kubernetes import (
    LEADER_ANNOTATION_KEY,
    KubernetesHaServices,
    LeaderElectionRecord,
)
from standby.ha import JobID, LeaderElection, LeaderElectionError
from standby.testing.kubernetes_api_server import KubernetesApiTestServer
from standby.testing.recording import RecordingContender, RecordingRetrievalListener

from .conftest import CLUSTER_ID, NAMESPACE, ServicesFactory, eventually, lock_annotation

CLUSTER_CONFIG_MAP = f"{CLUSTER_ID}-cluster-config-map"
#: Timings under which nothing happens by polling within a test: only the watch can make a standby act.
SLOW_POLLING = {
    "high-availability.kubernetes.leader-election.lease-duration": "120 s",
    "high-availability.kubernetes.leader-election.renew-deadline": "90 s",
    "high-availability.kubernetes.leader-election.retry-period": "60 s",
}


def cluster_config_map(server: KubernetesApiTestServer) -> dict[str, Any]:
    found = server.get_configmap(NAMESPACE, CLUSTER_CONFIG_MAP)
    assert found is not None, f"ConfigMap {CLUSTER_CONFIG_MAP} does not exist"
    return found


def record_of(server: KubernetesApiTestServer) -> dict[str, Any]:
    annotations = cluster_config_map(server)["metadata"].get("annotations", {})
    body: dict[str, Any] = json.loads(annotations[LEADER_ANNOTATION_KEY])
    return body


def data_of(server: KubernetesApiTestServer) -> dict[str, str]:
    data: dict[str, str] = cluster_config_map(server).get("data", {})
    return data


async def lead(
    services: KubernetesHaServices, component: str = "dispatcher"
) -> tuple[LeaderElection, RecordingContender, uuid.UUID]:
    election = {
        "dispatcher": services.get_dispatcher_leader_election,
        "resourcemanager": services.get_resource_manager_leader_election,
        "restserver": services.get_cluster_rest_endpoint_leader_election,
    }[component]()
    contender = RecordingContender(component)
    await election.start_leader_election(contender)
    session_id = await contender.wait_for_leadership()
    return election, contender, session_id


# ---------------------------------------------------------------------------------------------- the lock record


async def test_the_lock_record_is_written_as_client_go_and_fabric8_write_it(
    k8s_server: KubernetesApiTestServer, new_services: ServicesFactory
) -> None:
    services = await new_services()
    election, _, _ = await lead(services)
    record = record_of(k8s_server)
    assert set(record) == {
        "holderIdentity",
        "leaseDurationSeconds",
        "acquireTime",
        "renewTime",
        "leaderTransitions",
    }
    assert record["holderIdentity"] == services.lock_identity
    assert record["leaseDurationSeconds"] == 2
    assert record["leaderTransitions"] == 0
    for key in ("acquireTime", "renewTime"):
        assert record[key].endswith("Z")
        datetime.fromisoformat(record[key])  # RFC 3339
    labels = cluster_config_map(k8s_server)["metadata"]["labels"]
    assert labels == {"type": "flink-native-kubernetes", "app": CLUSTER_ID}
    await election.close()


def test_record_round_trip_and_foreign_formats() -> None:
    text = (
        '{"holderIdentity":"a","leaseDurationSeconds":10,"acquireTime":"2018-07-12T16:25:07Z",'
        '"renewTime":"2018-07-12T18:40:46Z","leaderTransitions":3}'
    )
    record = LeaderElectionRecord.from_json(text)  # client-go writes whole seconds
    assert (record.holder_identity, record.lease_duration_seconds, record.leader_transitions) == ("a", 10, 3)
    assert LeaderElectionRecord.from_json(record.to_json()) == record
    with pytest.raises(ValueError, match="invalid leader election record"):
        LeaderElectionRecord.from_json("[1]")


async def test_renewals_keep_the_acquire_time_and_the_term(
    k8s_server: KubernetesApiTestServer, new_services: ServicesFactory
) -> None:
    services = await new_services()
    election, _, _ = await lead(services)
    first = record_of(k8s_server)
    await eventually(lambda: record_of(k8s_server)["renewTime"] != first["renewTime"], "a renewal")
    renewed = record_of(k8s_server)
    assert renewed["acquireTime"] == first["acquireTime"]
    assert renewed["leaderTransitions"] == first["leaderTransitions"]
    await election.close()


# ---------------------------------------------------------------------------------------------- driver


async def test_leader_information_is_written_on_grant_under_kubernetes_component_ids(
    k8s_server: KubernetesApiTestServer, new_services: ServicesFactory
) -> None:
    services = await new_services()
    job_id = JobID.generate()
    elections = {
        "dispatcher": services.get_dispatcher_leader_election(),
        "resourcemanager": services.get_resource_manager_leader_election(),
        "restserver": services.get_cluster_rest_endpoint_leader_election(),
        f"job-{job_id}": services.get_job_manager_leader_election(job_id),
    }
    contenders = {}
    for component, election in elections.items():
        contenders[component] = RecordingContender(component)
        await election.start_leader_election(contenders[component])
    for component, election in elections.items():
        session_id = await contenders[component].wait_for_leadership()
        await election.confirm_leadership(session_id, f"http://127.0.0.1:1/{component},with,commas")
    data = data_of(k8s_server)
    for component, contender in contenders.items():
        assert data[f"org.apache.flink.k8s.leader.{component}"] == (
            f"{contender.session_id},http://127.0.0.1:1/{component},with,commas"
        )
    for election in elections.values():
        await election.close()


async def test_leader_information_is_cleared_when_the_contender_leaves(
    k8s_server: KubernetesApiTestServer, new_services: ServicesFactory
) -> None:
    services = await new_services()
    election, contender, session_id = await lead(services)
    await election.confirm_leadership(session_id, "http://leader")
    assert "org.apache.flink.k8s.leader.dispatcher" in data_of(k8s_server)
    await election.close()
    assert contender.events[-1].kind == "revoke"
    assert "org.apache.flink.k8s.leader.dispatcher" not in data_of(k8s_server)


async def test_has_leadership_is_local(
    k8s_server: KubernetesApiTestServer, new_services: ServicesFactory
) -> None:
    services = await new_services()
    election, _, session_id = await lead(services)
    driver = services.election_driver
    assert driver is not None
    before = len(k8s_server.requests())
    calls = 50
    for _ in range(calls):
        assert driver.has_leadership()
        assert await election.has_leadership(session_id)
    # only the renewals (a GET and a PUT every 200 ms) hit the server, never a GET per call
    assert len(k8s_server.requests()) - before < calls / 2
    await election.close()


async def test_externally_modified_leader_information_is_corrected(
    k8s_server: KubernetesApiTestServer, new_services: ServicesFactory
) -> None:
    services = await new_services()
    election, _, session_id = await lead(services)
    await election.confirm_leadership(session_id, "http://leader")
    key = "org.apache.flink.k8s.leader.dispatcher"
    current = cluster_config_map(k8s_server)
    k8s_server.put_configmap(
        NAMESPACE,
        CLUSTER_CONFIG_MAP,
        {**current.get("data", {}), key: f"{uuid.uuid4()},http://intruder"},
        labels=current["metadata"]["labels"],
        annotations=current["metadata"]["annotations"],
    )
    await eventually(lambda: data_of(k8s_server).get(key) == f"{session_id},http://leader", "the correction")
    # and an external deletion of the key too
    current = cluster_config_map(k8s_server)
    k8s_server.put_configmap(
        NAMESPACE,
        CLUSTER_CONFIG_MAP,
        {k: v for k, v in current.get("data", {}).items() if k != key},
        labels=current["metadata"]["labels"],
        annotations=current["metadata"]["annotations"],
    )
    await eventually(
        lambda: data_of(k8s_server).get(key) == f"{session_id},http://leader", "the re-publication"
    )
    await election.close()


async def test_externally_deleted_config_map_is_an_error(
    k8s_server: KubernetesApiTestServer, new_services: ServicesFactory
) -> None:
    services = await new_services()
    election, contender, _ = await lead(services)
    k8s_server.delete_configmap(NAMESPACE, CLUSTER_CONFIG_MAP)
    error = await contender.wait_for_error()
    assert isinstance(error, LeaderElectionError)
    assert f"ConfigMap {CLUSTER_CONFIG_MAP} has been deleted externally" in str(error)
    await election.close()


async def test_watch_errors_are_forwarded_to_the_contenders(
    k8s_server: KubernetesApiTestServer, new_services: ServicesFactory
) -> None:
    services = await new_services()
    election, contender, _ = await lead(services)
    await k8s_server.wait_for_open_watches(1)
    k8s_server.faults.fail_next(1, code=403, watch=True, message="configmaps is forbidden")
    k8s_server.faults.drop_watches("reset")
    error = await contender.wait_for_error()
    assert f"Error while watching the ConfigMap {CLUSTER_CONFIG_MAP}" in str(error)
    await election.close()


async def test_a_new_watch_after_410_still_corrects_external_changes(
    k8s_server: KubernetesApiTestServer, new_services: ServicesFactory
) -> None:
    services = await new_services()
    election, contender, session_id = await lead(services)
    await election.confirm_leadership(session_id, "http://leader")
    await k8s_server.wait_for_open_watches(1)
    lists = services.watcher.list_count
    k8s_server.faults.compact_history()
    k8s_server.faults.drop_watches("expire")
    await eventually(lambda: services.watcher.list_count > lists, "a new list and watch")
    key = "org.apache.flink.k8s.leader.dispatcher"
    current = cluster_config_map(k8s_server)
    k8s_server.put_configmap(
        NAMESPACE,
        CLUSTER_CONFIG_MAP,
        {**current.get("data", {}), key: f"{uuid.uuid4()},http://intruder"},
        labels=current["metadata"]["labels"],
        annotations=current["metadata"]["annotations"],
    )
    await eventually(lambda: data_of(k8s_server).get(key) == f"{session_id},http://leader", "the correction")
    assert contender.errors == []
    await election.close()


# ---------------------------------------------------------------------------------------------- retrieval


async def test_retrieval_notifies_added_and_modified_ignores_deleted(
    k8s_server: KubernetesApiTestServer, new_services: ServicesFactory
) -> None:
    key = "org.apache.flink.k8s.leader.dispatcher"
    first = uuid.uuid4()
    k8s_server.put_configmap(NAMESPACE, CLUSTER_CONFIG_MAP, {key: f"{first},http://one"})
    services = await new_services()
    retriever = services.get_dispatcher_leader_retriever()
    listener = RecordingRetrievalListener()
    await retriever.start(listener)
    await listener.wait_for_leader("http://one", first)
    second = uuid.uuid4()
    k8s_server.put_configmap(NAMESPACE, CLUSTER_CONFIG_MAP, {key: f"{second},http://two"})
    await listener.wait_for_leader("http://two", second)
    k8s_server.put_configmap(NAMESPACE, CLUSTER_CONFIG_MAP, {key: "not a leader value"})
    await listener.wait_for_no_leader()
    k8s_server.delete_configmap(NAMESPACE, CLUSTER_CONFIG_MAP)
    k8s_server.put_configmap(NAMESPACE, "unrelated", {key: f"{first},http://one"})
    third = uuid.uuid4()
    k8s_server.put_configmap(NAMESPACE, CLUSTER_CONFIG_MAP, {key: f"{third},http://three"})
    await listener.wait_for_leader("http://three", third)
    assert listener.notifications == [
        ("http://one", first),
        ("http://two", second),
        (None, None),
        ("http://three", third),
    ]
    assert listener.errors == []
    await retriever.stop()


async def test_retrieval_of_an_empty_config_map_notifies_nothing_until_a_leader_appears(
    k8s_server: KubernetesApiTestServer, new_services: ServicesFactory
) -> None:
    k8s_server.put_configmap(NAMESPACE, CLUSTER_CONFIG_MAP, {})
    services = await new_services()
    retriever = services.get_resource_manager_leader_retriever()
    listener = RecordingRetrievalListener()
    await retriever.start(listener)
    await services.watcher.wait_synced(10)
    assert listener.notifications == []
    leader = await new_services()
    election, _, session_id = await lead(leader, "resourcemanager")
    await election.confirm_leadership(session_id, "http://rm")
    await listener.wait_for_leader("http://rm", session_id)
    await retriever.stop()
    await election.close()


async def test_retrieval_watch_errors_go_to_the_fatal_handler(
    k8s_server: KubernetesApiTestServer, new_services: ServicesFactory
) -> None:
    services = await new_services()
    k8s_server.faults.fail_next(1, code=403, watch=True)
    retriever = services.get_dispatcher_leader_retriever()
    listener = RecordingRetrievalListener()
    await retriever.start(listener)
    error = await listener.wait_for_error()
    assert f"Error while watching the ConfigMap {CLUSTER_CONFIG_MAP}" in str(error)
    await retriever.stop()


# ---------------------------------------------------------------------------------------------- elector rules


async def test_a_fresh_lock_of_another_holder_is_respected_until_it_expires(
    k8s_server: KubernetesApiTestServer, new_services: ServicesFactory
) -> None:
    k8s_server.put_configmap(
        NAMESPACE, CLUSTER_CONFIG_MAP, {}, annotations=lock_annotation("someone-else", 4, lease_seconds=3)
    )
    services = await new_services()
    election = services.get_dispatcher_leader_election()
    contender = RecordingContender()
    await election.start_leader_election(contender)
    await eventually(lambda: any(r.method == "GET" for r in k8s_server.requests()), "a first acquire attempt")
    assert not contender.is_leader
    assert record_of(k8s_server)["holderIdentity"] == "someone-else"
    await contender.wait_for_leadership()
    record = record_of(k8s_server)
    assert record["holderIdentity"] == services.lock_identity
    assert record["leaderTransitions"] == 5
    await election.close()


async def test_an_expired_lock_is_taken_at_once(
    k8s_server: KubernetesApiTestServer, new_services: ServicesFactory
) -> None:
    k8s_server.put_configmap(
        NAMESPACE,
        CLUSTER_CONFIG_MAP,
        {"org.apache.flink.k8s.leader.dispatcher": f"{uuid.uuid4()},http://dead"},
        annotations=lock_annotation("dead-leader", 9, renewed_ago=60, lease_seconds=15),
    )
    services = await new_services(**SLOW_POLLING)
    election, _, _ = await lead(services)
    assert record_of(k8s_server)["leaderTransitions"] == 10
    await election.close()


async def test_graceful_close_releases_the_lock_like_release_on_cancel(
    k8s_server: KubernetesApiTestServer, new_services: ServicesFactory
) -> None:
    services = await new_services()
    election, _, _ = await lead(services)
    term = record_of(k8s_server)["leaderTransitions"]
    await election.close()
    record = record_of(k8s_server)
    assert record["holderIdentity"] == ""
    assert record["leaseDurationSeconds"] == 1
    assert record["leaderTransitions"] == term


async def test_a_standby_takes_a_released_lock_through_the_watch(
    k8s_server: KubernetesApiTestServer, new_services: ServicesFactory
) -> None:
    """The faster-failover edge: with a 60 s retry period, only the watch can make the standby act in time."""
    leader = await new_services(**SLOW_POLLING)
    standby = await new_services(**SLOW_POLLING)
    election, _, _ = await lead(leader)
    standby_election = standby.get_dispatcher_leader_election()
    standby_contender = RecordingContender("standby")
    await standby_election.start_leader_election(standby_contender)
    await eventually(lambda: standby.watcher.synced, "the standby's watch")
    await election.close()
    await standby_contender.wait_for_leadership(timeout=20)
    assert record_of(k8s_server)["holderIdentity"] == standby.lock_identity
    await standby_election.close()


async def test_a_leader_that_sees_another_holder_steps_down_and_rejoins(
    k8s_server: KubernetesApiTestServer, new_services: ServicesFactory
) -> None:
    services = await new_services()
    election, contender, first_session = await lead(services)
    driver = services.election_driver
    assert driver is not None
    term = record_of(k8s_server)["leaderTransitions"]
    current = cluster_config_map(k8s_server)
    # another process takes the lock (e.g. after our lease expired while we were paused)
    k8s_server.put_configmap(
        NAMESPACE,
        CLUSTER_CONFIG_MAP,
        current.get("data", {}),
        labels=current["metadata"]["labels"],
        annotations=lock_annotation("usurper", term + 1, lease_seconds=2),
    )
    await contender.wait_for_revocation()
    assert not driver.has_leadership()
    # a fresh election round (FLINK-34007) takes the lock again once the usurper's lease expired
    second_session = await contender.wait_for_leadership()
    assert second_session != first_session
    assert record_of(k8s_server)["leaderTransitions"] == term + 2
    assert driver.elector.rounds >= 2
    await election.close()


async def test_a_leader_that_cannot_renew_steps_down_before_its_lease_expires(
    k8s_server: KubernetesApiTestServer, new_services: ServicesFactory
) -> None:
    services = await new_services(
        **{
            "high-availability.kubernetes.leader-election.lease-duration": "6 s",
            "high-availability.kubernetes.leader-election.renew-deadline": "1 s",
            "high-availability.kubernetes.leader-election.retry-period": "200 ms",
        }
    )
    election, contender, _ = await lead(services)
    driver = services.election_driver
    assert driver is not None
    k8s_server.faults.fail_next(1000, code=500, path=f"/configmaps/{CLUSTER_CONFIG_MAP}$")
    await contender.wait_for_revocation()
    assert not driver.has_leadership()
    # the lock still names us and has not expired: nobody else may have taken over while we led
    record = LeaderElectionRecord.from_json(
        cluster_config_map(k8s_server)["metadata"]["annotations"][LEADER_ANNOTATION_KEY]
    )
    assert record.holder_identity == services.lock_identity
    assert not record.is_expired(datetime.now(record.renew_time.tzinfo))
    k8s_server.faults.clear_failures()
    await contender.wait_for_leadership()  # and it re-joins once the API server answers again
    await election.close()


async def test_a_new_driver_while_the_old_one_closes_keeps_its_leadership(
    k8s_server: KubernetesApiTestServer, new_services: ServicesFactory
) -> None:
    """The last contender leaves (the driver closes, releasing the lock) while another registers (a new driver of
    the same process acquires a new term): the old driver must neither clear the new leadership nor release the
    new term's lock."""
    services = await new_services()
    first, _, _ = await lead(services)
    closing = asyncio.ensure_future(first.close())
    await eventually(lambda: not services.leader_election_service.has_driver, "the old driver to be closing")
    second = services.get_resource_manager_leader_election()
    contender = RecordingContender("second")
    await second.start_leader_election(contender)
    await closing
    session_id = await contender.wait_for_leadership()
    renewed = record_of(k8s_server)["renewTime"]
    await eventually(lambda: record_of(k8s_server)["renewTime"] != renewed, "a renewal of the new term")
    assert await second.has_leadership(session_id)
    assert record_of(k8s_server)["holderIdentity"] == services.lock_identity
    assert services.leadership.current_term() == record_of(k8s_server)["leaderTransitions"]
    assert [event.kind for event in contender.events] == ["grant"]  # never revoked by the old driver
    await second.close()
