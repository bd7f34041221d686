"""The client layer: configuration (kubeconfig, context, cluster id), ConfigMap CRUD with typed errors, and
Flink's ``checkAndUpdateConfigMap`` (compare-and-swap, bounded retries) against the API test server."""

from __future__ import annotations

from pathlib import Path

import pytest

from standby.backends.kubernetes import (
    ConfigMapAlreadyExistsError,
    ConfigMapConflictError,
    ConfigMapNotFoundError,
    KubernetesApiError,
    KubernetesClient,
    KubernetesConfigMap,
    LightkubeClientFactory,
    RetryPolicy,
    check_and_update_config_map,
    validate_cluster_id,
)
from standby.backends.kubernetes._client import create_config_map_if_missing, load_kube_config
from standby.config import Configuration, ConfigurationError
from standby.ha import PossibleInconsistentStateError
from standby.testing.kubernetes_api_server import KubernetesApiTestServer

from .conftest import NAMESPACE, ConfigFactory

_RETRY = RetryPolicy(max_retries=3, initial_delay=0.001, max_delay=0.01)


# ---------------------------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (None, "is not set"),
        ("a" * 46, "46 characters"),
        ("Upper", "DNS label"),
        ("1abc", "DNS label"),
        ("abc-", "DNS label"),
        ("ab_c", "DNS label"),
        ("abc\n", "DNS label"),
    ],
)
def test_invalid_cluster_ids_are_refused_naming_key_and_value(value: str | None, problem: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        validate_cluster_id(value)
    message = str(caught.value)
    assert "kubernetes.cluster-id" in message
    assert problem in message
    if value:
        assert repr(value) in message


@pytest.mark.parametrize("value", ["a", "abc", "my-flink-cluster-1", "a" * 45])
def test_valid_cluster_ids(value: str) -> None:
    assert validate_cluster_id(value) == value


def test_in_cluster_service_account_is_used_without_a_kubeconfig(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("pod-token")
    (account / "namespace").write_text("pod-namespace")
    (account / "ca.crt").write_text("")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    single = load_kube_config(Configuration(), account).get()
    assert single is not None
    assert single.cluster.server == "https://10.0.0.1:443"
    assert single.user is not None and single.user.token == "pod-token"
    # a configured kubeconfig file wins over the service account
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters: [{name: c, cluster: {server: 'http://127.0.0.1:1'}}]\n"
        "users: [{name: c, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: c, user: c}}]\n"
    )
    chosen = load_kube_config(Configuration({"kubernetes.config.file": str(kubeconfig)}), account).get()
    assert chosen is not None and chosen.cluster.server == "http://127.0.0.1:1"


def test_without_any_configuration_the_error_says_what_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    with pytest.raises(ConfigurationError, match=r"Set 'kubernetes\.config\.file'"):
        load_kube_config(Configuration(), tmp_path)


def test_missing_kubeconfig_file_names_the_key(tmp_path: Path) -> None:
    config = Configuration({"kubernetes.config.file": str(tmp_path / "nope")})
    with pytest.raises(ConfigurationError, match=r"kubernetes\.config\.file"):
        LightkubeClientFactory().create(config)


def test_unknown_context_names_the_key_and_the_contexts(make_config: ConfigFactory) -> None:
    config = make_config(**{"kubernetes.context": "elsewhere"})
    with pytest.raises(ConfigurationError) as caught:
        LightkubeClientFactory().create(config)
    assert "kubernetes.context" in str(caught.value)
    assert "standby-test" in str(caught.value)


async def test_client_uses_the_configured_namespace(
    k8s_server: KubernetesApiTestServer, k8s_client: KubernetesClient
) -> None:
    assert k8s_client.namespace == NAMESPACE
    await k8s_client.create_config_map(KubernetesConfigMap("cm", data={"k": "v"}))
    assert k8s_server.get_configmap(NAMESPACE, "cm") is not None
    assert k8s_server.get_configmap("default", "cm") is None


# ---------------------------------------------------------------------------------------------- CRUD


async def test_crud_and_typed_errors(k8s_client: KubernetesClient) -> None:
    assert await k8s_client.get_config_map("cm") is None
    created = await k8s_client.create_config_map(
        KubernetesConfigMap("cm", data={"a": "1"}, annotations={"x/y": "z"}, labels={"app": "c"})
    )
    assert created.resource_version is not None
    assert dict(created.data) == {"a": "1"}
    assert dict(created.annotations) == {"x/y": "z"}
    assert dict(created.labels) == {"app": "c"}
    with pytest.raises(ConfigMapAlreadyExistsError):
        await k8s_client.create_config_map(KubernetesConfigMap("cm"))

    updated = await k8s_client.replace_config_map(created.evolve(data={"a": "2"}))
    assert updated.resource_version != created.resource_version
    with pytest.raises(ConfigMapConflictError):
        await k8s_client.replace_config_map(created.evolve(data={"a": "3"}))  # stale resourceVersion

    found, list_version = await k8s_client.list_config_map("cm")
    assert found is not None and dict(found.data) == {"a": "2"}
    assert list_version

    assert await k8s_client.delete_config_map("cm") is True
    assert await k8s_client.delete_config_map("cm") is False
    with pytest.raises(ConfigMapNotFoundError):
        await k8s_client.replace_config_map(updated)
    missing, _ = await k8s_client.list_config_map("cm")
    assert missing is None


async def test_version_read_asks_for_metadata_only(
    k8s_server: KubernetesApiTestServer, k8s_client: KubernetesClient
) -> None:
    assert await k8s_client.get_config_map_version("cm") is None
    created = await k8s_client.create_config_map(KubernetesConfigMap("cm", data={"a": "1"}))
    assert await k8s_client.get_config_map_version("cm") == created.resource_version
    assert "as=PartialObjectMetadata" in k8s_server.requests()[-1].accept
    k8s_server.faults.fail_next(1, code=403, method="GET")
    with pytest.raises(KubernetesApiError) as caught:
        await k8s_client.get_config_map_version("cm")
    assert caught.value.code == 403


async def test_server_errors_are_typed_with_their_code(
    k8s_server: KubernetesApiTestServer, k8s_client: KubernetesClient
) -> None:
    k8s_server.faults.fail_next(1, code=403, method="GET")
    with pytest.raises(KubernetesApiError) as caught:
        await k8s_client.get_config_map("cm")
    assert caught.value.code == 403
    assert not caught.value.retryable


async def test_create_if_missing_returns_the_existing_config_map(k8s_client: KubernetesClient) -> None:
    first = await create_config_map_if_missing(k8s_client, KubernetesConfigMap("cm", data={"a": "1"}))
    second = await create_config_map_if_missing(k8s_client, KubernetesConfigMap("cm", data={"a": "2"}))
    assert second.resource_version == first.resource_version
    assert dict(second.data) == {"a": "1"}


# ---------------------------------------------------------------------------------------------- check and update


async def _set(current: KubernetesConfigMap, key: str, value: str) -> KubernetesConfigMap:
    return current.evolve(data={**current.data, key: value})


async def test_check_and_update_writes_with_the_version_read(
    k8s_server: KubernetesApiTestServer, k8s_client: KubernetesClient
) -> None:
    await k8s_client.create_config_map(KubernetesConfigMap("cm"))
    written = await check_and_update_config_map(k8s_client, "cm", lambda cm: _set(cm, "k", "v"), _RETRY)
    assert written is not None and dict(written.data) == {"k": "v"}
    puts = [r for r in k8s_server.requests() if r.method == "PUT"]
    assert len(puts) == 1


async def test_check_and_update_declined_writes_nothing(
    k8s_server: KubernetesApiTestServer, k8s_client: KubernetesClient
) -> None:
    await k8s_client.create_config_map(KubernetesConfigMap("cm"))

    async def decline(_current: KubernetesConfigMap) -> KubernetesConfigMap | None:
        return None

    assert await check_and_update_config_map(k8s_client, "cm", decline, _RETRY) is None
    assert not [r for r in k8s_server.requests() if r.method == "PUT"]


async def test_check_and_update_retries_conflicts_reading_again(
    k8s_server: KubernetesApiTestServer, k8s_client: KubernetesClient
) -> None:
    await k8s_client.create_config_map(KubernetesConfigMap("cm", data={"n": "0"}))
    calls = 0

    async def increment(current: KubernetesConfigMap) -> KubernetesConfigMap:
        nonlocal calls
        calls += 1
        if calls == 1:
            # somebody else writes between our read and our write: our PUT must get 409 and we read again
            k8s_server.put_configmap(NAMESPACE, "cm", {"n": "10"})
        return current.evolve(data={"n": str(int(current.data["n"]) + 1)})

    written = await check_and_update_config_map(k8s_client, "cm", increment, _RETRY)
    assert written is not None and written.data["n"] == "11"
    assert calls == 2
    assert [r.status for r in k8s_server.requests() if r.method == "PUT"] == [409, 200]


async def test_check_and_update_gives_up_after_max_retries(
    k8s_server: KubernetesApiTestServer, k8s_client: KubernetesClient
) -> None:
    await k8s_client.create_config_map(KubernetesConfigMap("cm"))
    k8s_server.faults.fail_next(10, code=409, method="PUT", reason="Conflict")
    with pytest.raises(ConfigMapConflictError):
        await check_and_update_config_map(k8s_client, "cm", lambda cm: _set(cm, "k", "v"), _RETRY)
    assert len([r for r in k8s_server.requests() if r.method == "PUT"]) == _RETRY.max_retries + 1


async def test_ambiguous_failures_end_as_possible_inconsistent_state(
    k8s_server: KubernetesApiTestServer, k8s_client: KubernetesClient
) -> None:
    await k8s_client.create_config_map(KubernetesConfigMap("cm"))
    k8s_server.faults.fail_next(10, code=500, method="PUT")
    with pytest.raises(PossibleInconsistentStateError):
        await check_and_update_config_map(k8s_client, "cm", lambda cm: _set(cm, "k", "v"), _RETRY)


async def test_transient_failures_are_retried(
    k8s_server: KubernetesApiTestServer, k8s_client: KubernetesClient
) -> None:
    await k8s_client.create_config_map(KubernetesConfigMap("cm"))
    k8s_server.faults.fail_next(2, code=500, method="PUT")
    written = await check_and_update_config_map(k8s_client, "cm", lambda cm: _set(cm, "k", "v"), _RETRY)
    assert written is not None and written.data["k"] == "v"


async def test_check_and_update_of_a_missing_config_map_fails_at_once(k8s_client: KubernetesClient) -> None:
    with pytest.raises(ConfigMapNotFoundError, match="does not exist"):
        await check_and_update_config_map(k8s_client, "nope", lambda cm: _set(cm, "k", "v"), _RETRY)


async def test_forbidden_write_is_not_retried(
    k8s_server: KubernetesApiTestServer, k8s_client: KubernetesClient
) -> None:
    await k8s_client.create_config_map(KubernetesConfigMap("cm"))
    k8s_server.faults.fail_next(1, code=403, method="PUT")
    with pytest.raises(KubernetesApiError) as caught:
        await check_and_update_config_map(k8s_client, "cm", lambda cm: _set(cm, "k", "v"), _RETRY)
    assert caught.value.code == 403
    assert len([r for r in k8s_server.requests() if r.method == "PUT"]) == 1
