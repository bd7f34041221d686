"""The deployment example under deploy/kubernetes: every manifest loads, the shape is right (2+ JobManagers,
TaskManagers, Service, ServiceAccounts), and the Roles grant exactly the ConfigMap verbs the backend uses —
checked against ``REQUIRED_API_CALLS`` and against every (verb, resource) the API test server observed while a
full HA scenario ran (election, hand-over, retrieval, plans, checkpoints, counter, watch re-list, cleanup)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from standby.backends.kubernetes import REQUIRED_API_CALLS, KubernetesHaSettings
from standby.config import Configuration
from standby.ha import (
    CompletedCheckpoint,
    DefaultCheckpointsCleaner,
    ExecutionPlan,
    JobID,
    JobStatus,
)
from standby.testing.kubernetes_api_server import KubernetesApiTestServer, RequestRecord
from standby.testing.recording import RecordingContender, RecordingRetrievalListener
from standby.testing.store_contract import RecordingExecutionPlanListener

from .conftest import ServicesFactory, eventually

DEPLOY = Path(__file__).resolve().parents[3] / "deploy" / "kubernetes"


def _documents() -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            assert isinstance(document, dict), f"{path.name}: every document is a mapping"
            document["__file__"] = path.name
            documents.append(document)
    return documents


def _of_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in _documents() if d.get("kind") == kind]


def _deployment(component: str) -> dict[str, Any]:
    matches = [
        d
        for d in _of_kind("Deployment")
        if d["metadata"]["labels"].get("app.kubernetes.io/component") == component
    ]
    assert len(matches) == 1, f"one {component} Deployment"
    return matches[0]


def _role_calls(role_name: str) -> set[tuple[str, str]]:
    (role,) = [r for r in _of_kind("Role") if r["metadata"]["name"] == role_name]
    calls: set[tuple[str, str]] = set()
    for rule in role["rules"]:
        assert rule["apiGroups"] == [""], "core API group only"
        assert "resourceNames" not in rule
        for resource in rule["resources"]:
            for verb in rule["verbs"]:
                assert verb != "*" and resource != "*", "no wildcards"
                calls.add((verb, resource))
    return calls


def _role_of_service_account(service_account: str) -> str:
    bindings = [
        b
        for b in _of_kind("RoleBinding")
        if any(s["kind"] == "ServiceAccount" and s["name"] == service_account for s in b["subjects"])
    ]
    assert len(bindings) == 1, f"one RoleBinding for {service_account}"
    assert bindings[0]["roleRef"]["kind"] == "Role"
    return str(bindings[0]["roleRef"]["name"])


# ---------------------------------------------------------------------------------------------- the manifests


def test_every_manifest_loads_and_is_listed_in_the_kustomization() -> None:
    documents = _documents()
    assert documents
    for document in documents:
        assert document.get("apiVersion") and document.get("kind"), document["__file__"]
    (kustomization,) = _of_kind("Kustomization")
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


def test_jobmanagers_stand_by_and_taskmanagers_follow() -> None:
    jobmanager = _deployment("jobmanager")
    assert jobmanager["spec"]["replicas"] >= 2
    (container,) = jobmanager["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["standby", "jobmanager"]
    assert "jobmanager.rpc.address=$(POD_IP)" in container["args"]
    taskmanager = _deployment("taskmanager")
    (tm_container,) = taskmanager["spec"]["template"]["spec"]["containers"]
    assert tm_container["command"] == ["standby", "taskmanager"]
    (service,) = _of_kind("Service")
    assert service["spec"]["selector"] == jobmanager["spec"]["selector"]["matchLabels"]
    service_accounts = {s["metadata"]["name"] for s in _of_kind("ServiceAccount")}
    assert jobmanager["spec"]["template"]["spec"]["serviceAccountName"] in service_accounts
    assert taskmanager["spec"]["template"]["spec"]["serviceAccountName"] in service_accounts


def test_the_configuration_in_the_example_is_valid_kubernetes_ha() -> None:
    (config_map,) = [c for c in _of_kind("ConfigMap") if c["metadata"]["name"] == "standby-config"]
    values = yaml.safe_load(config_map["data"]["config.yaml"])
    config = Configuration(values)
    assert config.validate() == []
    settings = KubernetesHaSettings.from_configuration(config)
    assert settings.renew_deadline < settings.lease_duration


def test_the_jobmanager_role_grants_exactly_the_calls_of_the_backend() -> None:
    calls = _role_calls(_role_of_service_account("standby-jobmanager"))
    assert calls == set(REQUIRED_API_CALLS)
    assert {resource for _, resource in calls} == {"configmaps"}


def test_the_taskmanager_role_only_reads() -> None:
    assert _role_calls(_role_of_service_account("standby-taskmanager")) == {
        ("get", "configmaps"),
        ("list", "configmaps"),
        ("watch", "configmaps"),
    }


# ---------------------------------------------------------------------------------------------- observed calls

_PATH = re.compile(r"^/api/v1/namespaces/[^/]+/(?P<resource>[a-z]+)(?:/(?P<name>[^/]+))?$")


def rbac_call(record: RequestRecord) -> tuple[str, str]:
    """The RBAC (verb, resource) of one request, as the apiserver's authorizer names it."""
    match = _PATH.match(record.path)
    assert match is not None, f"unexpected API path {record.path}"
    named = match.group("name") is not None
    verb = {
        "GET": "watch" if record.watch else ("get" if named else "list"),
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete" if named else "deletecollection",
    }[record.method]
    return verb, match.group("resource")


@pytest.mark.slow
async def test_every_call_of_a_full_scenario_is_granted_by_the_roles(
    k8s_server: KubernetesApiTestServer, new_services: ServicesFactory
) -> None:
    # a TaskManager: retrieval only
    taskmanager = await new_services()
    retriever = taskmanager.get_resource_manager_leader_retriever()
    listener = RecordingRetrievalListener()
    await retriever.start(listener)
    await taskmanager.watcher.wait_synced(10)

    # two JobManagers: one leads, writes everything, hands over; the other takes over and cleans up
    first, second = await new_services(), await new_services()
    election = first.get_resource_manager_leader_election()
    contender = RecordingContender("jm-1")
    await election.start_leader_election(contender)
    session_id = await contender.wait_for_leadership()
    await election.confirm_leadership(session_id, "http://jm-1")
    await listener.wait_for_leader("http://jm-1")
    job_id = JobID.generate()
    plans = first.get_execution_plan_store()
    await plans.start(RecordingExecutionPlanListener())
    await plans.put_execution_plan(ExecutionPlan(job_id, "job"))
    recovery = first.get_checkpoint_recovery_factory()
    checkpoints = await recovery.create_recovered_completed_checkpoint_store(job_id, 1)
    counter = await recovery.create_checkpoint_id_counter(job_id)
    await counter.start()
    cleaner = DefaultCheckpointsCleaner()
    for _ in range(2):
        checkpoint_id = await counter.get_and_increment()
        await checkpoints.add_checkpoint_and_subsume_oldest_one(
            CompletedCheckpoint(job_id, checkpoint_id, 1, 2), cleaner
        )
    # the watches lose their history once: they list again
    k8s_server.faults.compact_history()
    k8s_server.faults.drop_watches("expire")

    successor_election = second.get_resource_manager_leader_election()
    successor = RecordingContender("jm-2")
    await successor_election.start_leader_election(successor)
    await election.close()
    successor_session = await successor.wait_for_leadership()
    await successor_election.confirm_leadership(successor_session, "http://jm-2")
    await listener.wait_for_leader("http://jm-2")
    second_plans = second.get_execution_plan_store()
    await second_plans.start(RecordingExecutionPlanListener())
    await second_plans.recover_execution_plan(job_id)
    recovered = await second.get_checkpoint_recovery_factory().create_recovered_completed_checkpoint_store(
        job_id, 1
    )
    await recovered.shutdown(JobStatus.FINISHED, cleaner)
    await second_plans.global_cleanup(job_id)
    await second.global_cleanup(job_id)
    await successor_election.close()
    await retriever.stop()
    await second.close_with_optional_clean(True)
    for services in (first, taskmanager):
        await services.close()

    # watch requests are logged when their stream ends (the services closed them)
    await eventually(lambda: any(r.watch for r in k8s_server.requests()), "the watch requests in the log")
    observed = {rbac_call(r) for r in k8s_server.requests()}
    jobmanager_role = _role_calls(_role_of_service_account("standby-jobmanager"))
    assert observed <= jobmanager_role, f"calls not granted: {observed - jobmanager_role}"
    assert observed == set(REQUIRED_API_CALLS), "REQUIRED_API_CALLS lists calls the backend does not make"


async def test_a_taskmanager_only_reads(
    k8s_server: KubernetesApiTestServer, new_services: ServicesFactory
) -> None:
    taskmanager = await new_services()
    retrievers = [
        taskmanager.get_resource_manager_leader_retriever(),
        taskmanager.get_job_manager_leader_retriever(JobID.generate()),
    ]
    for retriever in retrievers:
        await retriever.start(RecordingRetrievalListener())
    await taskmanager.watcher.wait_synced(10)
    for retriever in retrievers:
        await retriever.stop()
    await taskmanager.close()
    await eventually(lambda: any(r.watch for r in k8s_server.requests()), "the watch request in the log")
    observed = {rbac_call(r) for r in k8s_server.requests()}
    assert observed <= _role_calls(_role_of_service_account("standby-taskmanager"))
