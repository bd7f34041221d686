"""The Kubernetes API test server, driven by lightkube's real clients over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import httpx
import httpx2
import pytest
from lightkube import ApiError, AsyncClient, Client, KubeConfig
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta, Status
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import ConfigMap
from lightkube.types import OnErrorAction, OnErrorResult, PatchType, on_error_retry

from standby.testing.kubernetes_api_server import (
    CONFIGMAPS,
    KubernetesApiServerProcess,
    KubernetesApiTestServer,
    ObjectStore,
    RemoteFaultInjector,
)
from standby.testing.kubernetes_api_server._patch import JsonPatchError, json_patch, merge_patch
from standby.testing.kubernetes_api_server._selectors import parse_field_selector, parse_label_selector

NS = "ha"
WAIT = 10.0


@pytest.fixture
async def server() -> AsyncIterator[KubernetesApiTestServer]:
    async with KubernetesApiTestServer() as started:
        yield started


@pytest.fixture
def kubeconfig(server: KubernetesApiTestServer, tmp_path: Path) -> Path:
    return server.write_kubeconfig(tmp_path / "kubeconfig.yaml", namespace=NS)


@pytest.fixture
async def client(kubeconfig: Path) -> AsyncIterator[AsyncClient]:
    api = AsyncClient(config=KubeConfig.from_file(kubeconfig))
    try:
        yield api
    finally:
        await api.close()


@pytest.fixture
async def http(server: KubernetesApiTestServer) -> AsyncIterator[httpx.AsyncClient]:
    """A raw HTTP client, for what lightkube cannot send (DeleteOptions bodies, bad JSON, bookmarks)."""
    headers = {"Authorization": f"Bearer {server.token}"}
    async with httpx.AsyncClient(
        base_url=server.url, headers=headers, trust_env=False, verify=False, timeout=WAIT
    ) as raw:
        yield raw


def config_map(name: str, data: dict[str, str] | None = None, **meta: Any) -> ConfigMap:
    return ConfigMap(metadata=ObjectMeta(name=name, **meta), data=data)


Stream = AsyncGenerator[tuple[str, ConfigMap], None]


@contextlib.asynccontextmanager
async def watching(client: AsyncClient, **options: Any) -> AsyncIterator[Stream]:
    """lightkube's watch generator, always closed (a dangling one would leak its connection)."""
    stream = cast(Stream, client.watch(ConfigMap, **options))
    try:
        yield stream
    finally:
        await stream.aclose()


async def next_event(stream: Stream) -> tuple[str, ConfigMap]:
    return await asyncio.wait_for(anext(stream), WAIT)


async def events(stream: Stream, count: int) -> list[tuple[str, str | None, dict[str, str] | None]]:
    """The next ``count`` events as (type, name, data)."""
    seen: list[tuple[str, str | None, dict[str, str] | None]] = []
    for _ in range(count):
        kind, obj = await next_event(stream)
        seen.append((kind, meta(obj).name, obj.data))
    return seen


def meta(obj: ConfigMap | Lease) -> ObjectMeta:
    assert obj.metadata is not None
    return obj.metadata


def version(obj: ConfigMap | Lease) -> str:
    value = meta(obj).resourceVersion
    assert value is not None
    return value


def rv(obj: ConfigMap | Lease) -> int:
    return int(version(obj))


def message(error: ApiError) -> str:
    return str(error.status.message)


def first_cause_field(status: Status) -> str | None:
    assert status.details is not None and status.details.causes
    field: str | None = status.details.causes[0].field
    return field


# ---------------------------------------------------------------------------------------------- CRUD


async def test_create_assigns_uid_timestamp_and_increasing_resource_versions(
    server: KubernetesApiTestServer, client: AsyncClient
) -> None:
    first = await client.create(config_map("a", {"k": "v"}))
    second = await client.create(config_map("b"))

    assert meta(first).uid and meta(first).uid != meta(second).uid
    assert meta(first).creationTimestamp is not None
    assert meta(first).namespace == NS
    assert rv(second) == rv(first) + 1 == server.resource_version
    got = await client.get(ConfigMap, "a")
    assert got.data == {"k": "v"}
    assert version(got) == version(first)
    stored = server.get_configmap(NS, "a")
    assert stored is not None and stored["data"] == {"k": "v"} and stored["kind"] == "ConfigMap"


async def test_create_existing_name_is_409_already_exists(client: AsyncClient) -> None:
    await client.create(config_map("a"))
    with pytest.raises(ApiError) as caught:
        await client.create(config_map("a"))
    assert caught.value.status.code == 409
    assert caught.value.status.reason == "AlreadyExists"
    assert message(caught.value) == 'configmaps "a" already exists'


async def test_missing_object_is_404_not_found_for_every_verb(client: AsyncClient) -> None:
    calls = [
        client.get(ConfigMap, "nope"),
        client.replace(config_map("nope", {"k": "v"})),
        client.patch(ConfigMap, "nope", {"data": {"k": "v"}}, patch_type=PatchType.MERGE),
        client.delete(ConfigMap, "nope"),
    ]
    for call in calls:
        with pytest.raises(ApiError) as caught:
            await call
        assert caught.value.status.code == 404
        assert caught.value.status.reason == "NotFound"
        assert message(caught.value) == 'configmaps "nope" not found'


async def test_replace_with_stale_resource_version_is_409_conflict(client: AsyncClient) -> None:
    created = await client.create(config_map("a", {"k": "1"}))
    updated = await client.replace(config_map("a", {"k": "2"}, resourceVersion=version(created)))
    assert rv(updated) > rv(created)

    with pytest.raises(ApiError) as caught:
        await client.replace(config_map("a", {"k": "3"}, resourceVersion=version(created)))
    assert caught.value.status.code == 409
    assert caught.value.status.reason == "Conflict"
    assert message(caught.value) == (
        'Operation cannot be fulfilled on configmaps "a": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    assert (await client.get(ConfigMap, "a")).data == {"k": "2"}


async def test_read_modify_replace_loop_detects_a_concurrent_writer(
    server: KubernetesApiTestServer, client: AsyncClient
) -> None:
    """The HA backend's compare-and-swap: get, change, replace with the read resourceVersion."""
    await client.create(config_map("a", {"leader": "jm-1"}))
    mine = await client.get(ConfigMap, "a")
    theirs = await client.get(ConfigMap, "a")
    assert theirs.data is not None and mine.data is not None
    theirs.data["leader"] = "jm-2"
    await client.replace(theirs)
    mine.data["leader"] = "jm-3"
    with pytest.raises(ApiError) as caught:
        await client.replace(mine)
    assert caught.value.status.code == 409
    stored = server.get_configmap(NS, "a")
    assert stored is not None and stored["data"] == {"leader": "jm-2"}


async def test_replace_without_resource_version_is_unconditional(client: AsyncClient) -> None:
    await client.create(config_map("a", {"k": "1"}))
    await client.replace(config_map("a", {"k": "2"}))
    replaced = await client.replace(config_map("a", {"k": "3"}))
    assert replaced.data == {"k": "3"}


async def test_update_that_changes_nothing_keeps_the_resource_version(
    server: KubernetesApiTestServer, client: AsyncClient
) -> None:
    created = await client.create(config_map("a", {"k": "v"}, labels={"app": "x"}))
    again = await client.replace(config_map("a", {"k": "v"}, labels={"app": "x"}))
    assert version(again) == version(created)
    assert server.resource_version == rv(created)


async def test_merge_patch_merges_and_null_deletes(client: AsyncClient) -> None:
    await client.create(config_map("a", {"keep": "1", "drop": "2"}, annotations={"x": "1"}))
    patched = await client.patch(
        ConfigMap,
        "a",
        {"data": {"drop": None, "new": "3"}, "metadata": {"annotations": {"y": "2"}}},
        patch_type=PatchType.MERGE,
    )
    assert patched.data == {"keep": "1", "new": "3"}
    assert meta(patched).annotations == {"x": "1", "y": "2"}


async def test_strategic_merge_patch_behaves_like_merge_patch_for_config_maps(client: AsyncClient) -> None:
    await client.create(config_map("a", {"a": "1", "b": "2"}))
    patched = await client.patch(
        ConfigMap, "a", {"data": {"a": None, "c": "3"}}
    )  # lightkube default: strategic
    assert patched.data == {"b": "2", "c": "3"}


async def test_merge_patch_with_stale_resource_version_is_conflict(client: AsyncClient) -> None:
    created = await client.create(config_map("a", {"k": "1"}))
    current = await client.patch(
        ConfigMap,
        "a",
        {"metadata": {"resourceVersion": version(created)}, "data": {"k": "2"}},
        patch_type=PatchType.MERGE,
    )
    assert current.data == {"k": "2"}
    with pytest.raises(ApiError) as caught:
        await client.patch(
            ConfigMap,
            "a",
            {"metadata": {"resourceVersion": version(created)}, "data": {"k": "3"}},
            patch_type=PatchType.MERGE,
        )
    assert caught.value.status.code == 409
    assert caught.value.status.reason == "Conflict"


async def test_json_patch_add_replace_remove_and_failing_test_is_422(client: AsyncClient) -> None:
    created = await client.create(config_map("a", {"x": "1", "y": "2"}))
    created_version = version(created)
    patched = await client.patch(
        ConfigMap,
        "a",
        [
            {"op": "test", "path": "/metadata/resourceVersion", "value": created_version},
            {"op": "add", "path": "/data/z", "value": "3"},
            {"op": "replace", "path": "/data/x", "value": "10"},
            {"op": "remove", "path": "/data/y"},
        ],
        patch_type=PatchType.JSON,
    )
    assert patched.data == {"x": "10", "z": "3"}
    with pytest.raises(ApiError) as caught:
        await client.patch(
            ConfigMap,
            "a",
            [{"op": "test", "path": "/metadata/resourceVersion", "value": created_version}],
            patch_type=PatchType.JSON,
        )
    assert caught.value.status.code == 422
    assert "test failed" in message(caught.value)


async def test_server_side_apply_is_refused_with_415(client: AsyncClient) -> None:
    await client.create(config_map("a"))
    with pytest.raises(ApiError) as caught:
        await client.patch(
            ConfigMap, "a", {"data": {"k": "v"}}, patch_type=PatchType.APPLY, field_manager="t"
        )
    assert caught.value.status.code == 415


async def test_delete_then_get_is_404(server: KubernetesApiTestServer, client: AsyncClient) -> None:
    await client.create(config_map("a"))
    await client.delete(ConfigMap, "a")
    with pytest.raises(ApiError) as caught:
        await client.get(ConfigMap, "a")
    assert caught.value.status.code == 404
    assert server.get_configmap(NS, "a") is None


async def test_delete_preconditions_on_resource_version_and_uid(
    client: AsyncClient, http: httpx.AsyncClient
) -> None:
    created = await client.create(config_map("a"))
    url = f"/api/v1/namespaces/{NS}/configmaps/a"
    stale = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"resourceVersion": "1"}}
    response = await http.request("DELETE", url, json=stale)
    assert response.status_code == 409
    assert response.json()["reason"] == "Conflict"
    assert "Precondition failed: ResourceVersion in precondition: 1" in response.json()["message"]

    wrong_uid = {"preconditions": {"uid": "not-the-uid"}}
    assert (await http.request("DELETE", url, json=wrong_uid)).status_code == 409

    current = {"preconditions": {"resourceVersion": version(created), "uid": meta(created).uid}}
    response = await http.request("DELETE", url, json=current)
    assert response.status_code == 200
    body = response.json()
    assert body["kind"] == "Status" and body["status"] == "Success"
    assert body["details"] == {"name": "a", "kind": "configmaps", "uid": meta(created).uid}


async def test_dry_run_writes_nothing(server: KubernetesApiTestServer, client: AsyncClient) -> None:
    before = server.resource_version
    dry = await client.create(config_map("a", {"k": "v"}), dry_run=True)
    assert meta(dry).name == "a"
    assert server.get_configmap(NS, "a") is None
    assert server.resource_version == before


# ---------------------------------------------------------------------------------------------- list


async def test_list_filters_by_label_and_field_selectors(client: AsyncClient) -> None:
    await client.create(config_map("a", labels={"app": "flink", "role": "leader"}))
    await client.create(config_map("b", labels={"app": "flink", "role": "follower"}))
    await client.create(config_map("c", labels={"app": "other"}))
    await client.create(config_map("d"))

    async def names(**options: Any) -> list[str | None]:
        return [meta(cm).name async for cm in client.list(ConfigMap, **options)]

    assert await names() == ["a", "b", "c", "d"]
    assert await names(labels={"app": "flink"}) == ["a", "b"]
    assert await names(labels={"app": "flink", "role": "leader"}) == ["a"]
    assert await names(labels={"role": None}) == ["a", "b"]  # existence
    assert await names(labels={"app": ("flink", "other")}) == ["a", "b", "c"]  # set-based "in"
    assert await names(fields={"metadata.name": "c"}) == ["c"]


async def test_list_selector_operators_over_http(client: AsyncClient, http: httpx.AsyncClient) -> None:
    await client.create(config_map("a", labels={"app": "flink", "tier": "1"}))
    await client.create(config_map("b", labels={"app": "other"}))
    await client.create(config_map("c"))

    async def names(selector: str) -> list[str]:
        response = await http.get(f"/api/v1/namespaces/{NS}/configmaps", params={"labelSelector": selector})
        assert response.status_code == 200, response.text
        return [item["metadata"]["name"] for item in response.json()["items"]]

    assert await names("app!=flink") == ["b", "c"]
    assert await names("!app") == ["c"]
    assert await names("app notin (flink)") == ["b", "c"]
    assert await names("app in (flink, other),tier") == ["a"]
    assert await names("tier>0") == ["a"]
    response = await http.get(f"/api/v1/namespaces/{NS}/configmaps", params={"labelSelector": "app in (x"})
    assert response.status_code == 400
    assert response.json()["reason"] == "BadRequest"


async def test_list_body_has_kind_and_resource_version(
    server: KubernetesApiTestServer, client: AsyncClient, http: httpx.AsyncClient
) -> None:
    await client.create(config_map("a", {"k": "v"}))
    body = (await http.get(f"/api/v1/namespaces/{NS}/configmaps")).json()
    assert body["kind"] == "ConfigMapList"
    assert body["apiVersion"] == "v1"
    assert body["metadata"]["resourceVersion"] == str(server.resource_version)
    # like a real apiserver, items of a typed list carry no kind/apiVersion
    assert body["items"][0]["metadata"]["name"] == "a"
    assert "kind" not in body["items"][0]

    listing = client.list(ConfigMap)
    assert [meta(cm).name async for cm in listing] == ["a"]
    assert listing.resourceVersion == str(server.resource_version)


PARTIAL = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
PARTIAL_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"


async def test_metadata_only_representations(
    server: KubernetesApiTestServer, client: AsyncClient, http: httpx.AsyncClient
) -> None:
    created = await client.create(config_map("a", {"k": "v"}, annotations={"note": "x"}))
    path = f"/api/v1/namespaces/{NS}/configmaps"
    response = await http.get(f"{path}/a", headers={"Accept": PARTIAL})
    assert response.status_code == 200
    body = response.json()
    assert body["kind"] == "PartialObjectMetadata"
    assert body["apiVersion"] == "meta.k8s.io/v1"
    assert body["metadata"]["resourceVersion"] == meta(created).resourceVersion
    assert body["metadata"]["annotations"] == {"note": "x"}
    assert "data" not in body
    assert server.requests()[-1].accept == PARTIAL

    listing = (await http.get(path, headers={"Accept": PARTIAL_LIST})).json()
    assert listing["kind"] == "PartialObjectMetadataList"
    assert listing["metadata"]["resourceVersion"] == str(server.resource_version)
    assert [(i["kind"], i["metadata"]["name"], "data" in i) for i in listing["items"]] == [
        ("PartialObjectMetadata", "a", False)
    ]
    # the first alternative that can be served wins; one without "as" is the object itself
    fallback = (await http.get(f"{path}/a", headers={"Accept": f"{PARTIAL_LIST}, application/json"})).json()
    assert fallback["kind"] == "ConfigMap" and fallback["data"] == {"k": "v"}
    # nothing servable: 406 (an object asked for as a list, or a representation the server lacks)
    for accept in (PARTIAL_LIST, "application/json;as=Table;g=meta.k8s.io;v=v1"):
        refused = await http.get(f"{path}/a", headers={"Accept": accept})
        assert refused.status_code == 406
        assert refused.json()["reason"] == "NotAcceptable"
    assert (await http.get(path, headers={"Accept": PARTIAL})).status_code == 406


async def test_list_across_namespaces(client: AsyncClient) -> None:
    await client.create(config_map("a", namespace="one"))
    await client.create(config_map("a", namespace="two"))
    everything = [(meta(cm).namespace, meta(cm).name) async for cm in client.list(ConfigMap, namespace="*")]
    assert everything == [("one", "a"), ("two", "a")]
    assert [meta(cm).name async for cm in client.list(ConfigMap, namespace="one")] == ["a"]


async def test_watch_across_namespaces_and_on_the_legacy_watch_path(
    server: KubernetesApiTestServer, client: AsyncClient, http: httpx.AsyncClient
) -> None:
    start = str(server.resource_version)
    await client.create(config_map("a", namespace="one"))
    await client.create(config_map("b", namespace="two"))
    async with watching(client, namespace="*", resource_version=start) as everywhere:
        assert await events(everywhere, 2) == [("ADDED", "a", None), ("ADDED", "b", None)]
    params = {"resourceVersion": start, "timeoutSeconds": "5"}
    async with http.stream("GET", "/api/v1/watch/namespaces/two/configmaps/b", params=params) as response:
        first = json.loads(await anext(response.aiter_lines()))
    assert (first["type"], first["object"]["metadata"]["name"]) == ("ADDED", "b")


async def test_deletecollection_by_label(server: KubernetesApiTestServer, client: AsyncClient) -> None:
    await client.create(config_map("a", labels={"cluster": "c1"}))
    await client.create(config_map("b", labels={"cluster": "c1"}))
    await client.create(config_map("c", labels={"cluster": "c2"}))
    async with watching(client, namespace=NS, resource_version=str(server.resource_version)) as stream:
        await client.deletecollection(ConfigMap)  # lightkube sends no selector: everything in the namespace
        assert await events(stream, 3) == [
            ("DELETED", "a", None),
            ("DELETED", "b", None),
            ("DELETED", "c", None),
        ]
    assert server.configmaps(NS) == []


async def test_strict_field_validation_rejects_unknown_fields_before_writing(
    server: KubernetesApiTestServer, client: AsyncClient, http: httpx.AsyncClient
) -> None:
    await client.create(config_map("a", {"k": "v"}))
    before = server.resource_version
    url = f"/api/v1/namespaces/{NS}/configmaps/a"
    headers = {"Content-Type": "application/merge-patch+json"}
    strict = await http.patch(
        url, params={"fieldValidation": "Strict"}, content=b'{"bogus": 1}', headers=headers
    )
    assert strict.status_code == 400
    assert 'unknown field "bogus"' in strict.json()["message"]
    assert server.resource_version == before
    # the default (Warn) drops the field and says so in a Warning header
    warned = await http.patch(url, content=b'{"bogus": 1, "data": {"k": "w"}}', headers=headers)
    assert warned.status_code == 200
    assert "bogus" in warned.headers["warning"]
    assert "bogus" not in warned.json()


async def test_paginated_list_is_a_consistent_snapshot(
    server: KubernetesApiTestServer, client: AsyncClient
) -> None:
    for index in range(5):
        await client.create(config_map(f"cm-{index}"))
    listing = client.list(ConfigMap, chunk_size=2)
    seen = []
    async for cm in listing:
        seen.append(meta(cm).name)
        if len(seen) == 1:
            # written between pages: not part of the list that started before it
            server.put_configmap(NS, "cm-9")
            server.delete_configmap(NS, "cm-4")
    assert seen == ["cm-0", "cm-1", "cm-2", "cm-3", "cm-4"]


async def test_exact_list_and_continue_tokens_expire_with_the_history(
    server: KubernetesApiTestServer, client: AsyncClient, http: httpx.AsyncClient
) -> None:
    created = await client.create(config_map("a", {"k": "1"}))
    await client.replace(config_map("a", {"k": "2"}))
    url = f"/api/v1/namespaces/{NS}/configmaps"
    exact = {"resourceVersion": version(created), "resourceVersionMatch": "Exact"}
    old = (await http.get(url, params=exact)).json()
    assert old["items"][0]["data"] == {"k": "1"}

    await client.create(config_map("b"))
    first_page = (await http.get(url, params={"limit": "1"})).json()
    token = first_page["metadata"]["continue"]
    assert first_page["metadata"]["remainingItemCount"] == 1

    await client.replace(config_map("a", {"k": "3"}))
    server.faults.compact_history()
    for params in (exact, {"limit": "1", "continue": token}):
        response = await http.get(url, params=params)
        assert response.status_code == 410
        assert response.json()["reason"] == "Expired"


# ---------------------------------------------------------------------------------------------- watch


async def test_watch_sees_added_modified_deleted_in_order(
    server: KubernetesApiTestServer, client: AsyncClient
) -> None:
    async with watching(client, namespace=NS, resource_version=str(server.resource_version)) as stream:
        first_event = asyncio.create_task(next_event(stream))  # lightkube sends the request on first read
        await server.wait_for_open_watches(1)
        created = await client.create(config_map("a", {"k": "1"}))
        await client.patch(ConfigMap, "a", {"data": {"k": "2"}}, patch_type=PatchType.MERGE)
        await client.delete(ConfigMap, "a")
        seen = []
        for index in range(3):
            kind, obj = await first_event if index == 0 else await next_event(stream)
            seen.append((kind, obj.data, rv(obj)))
    first = rv(created)
    assert seen == [
        ("ADDED", {"k": "1"}, first),
        ("MODIFIED", {"k": "2"}, first + 1),
        ("DELETED", {"k": "2"}, first + 2),
    ]


async def test_watch_without_version_starts_with_the_current_state(client: AsyncClient) -> None:
    await client.create(config_map("b"))
    await client.create(config_map("a"))
    async with watching(client, namespace=NS) as stream:
        assert await events(stream, 2) == [("ADDED", "a", None), ("ADDED", "b", None)]
        await client.create(config_map("c"))
        assert await events(stream, 1) == [("ADDED", "c", None)]


async def test_watch_resumes_after_a_resource_version(client: AsyncClient) -> None:
    first = await client.create(config_map("a", {"n": "1"}))
    await client.replace(config_map("a", {"n": "2"}))
    await client.create(config_map("b"))
    async with watching(client, namespace=NS, resource_version=version(first)) as stream:
        assert await events(stream, 2) == [("MODIFIED", "a", {"n": "2"}), ("ADDED", "b", None)]


async def test_watch_filters_by_name_and_labels_and_reports_objects_leaving_the_selection(
    server: KubernetesApiTestServer, client: AsyncClient
) -> None:
    start = str(server.resource_version)
    async with (
        watching(client, namespace=NS, resource_version=start, fields={"metadata.name": "a"}) as by_name,
        watching(client, namespace=NS, resource_version=start, labels={"app": "flink"}) as by_label,
    ):
        # the watches start at `start` (lightkube sends them on first read), so no write can be missed
        await client.create(config_map("b", labels={"app": "flink"}))
        await client.create(config_map("a"))
        await client.patch(
            ConfigMap, "a", {"metadata": {"labels": {"app": "flink"}}}, patch_type=PatchType.MERGE
        )
        await client.patch(
            ConfigMap, "b", {"metadata": {"labels": {"app": None}}}, patch_type=PatchType.MERGE
        )
        assert await events(by_name, 2) == [("ADDED", "a", None), ("MODIFIED", "a", None)]
        # a enters the selection (ADDED), b leaves it (DELETED), as the watch cache reports them
        assert await events(by_label, 3) == [
            ("ADDED", "b", None),
            ("ADDED", "a", None),
            ("DELETED", "b", None),
        ]


async def test_watch_from_a_compacted_version_raises_410_in_lightkube(
    server: KubernetesApiTestServer, client: AsyncClient
) -> None:
    first = await client.create(config_map("a"))
    await client.replace(config_map("a", {"k": "v"}))
    server.faults.set_history_limit(0)
    async with watching(client, namespace=NS, resource_version=version(first)) as stream:
        with pytest.raises(ApiError) as caught:
            await next_event(stream)
    assert caught.value.status.code == 410
    assert caught.value.status.reason == "Expired"
    assert message(caught.value).startswith("too old resource version")


async def test_410_with_retry_handler_restarts_from_the_current_state(
    server: KubernetesApiTestServer, client: AsyncClient
) -> None:
    first = await client.create(config_map("a", {"k": "1"}))
    await client.replace(config_map("a", {"k": "2"}))
    server.faults.compact_history()
    options = {
        "namespace": NS,
        "resource_version": version(first),
        "on_error": on_error_retry,
    }
    async with watching(client, **options) as stream:
        # lightkube drops its version on 410 and re-watches: the current state arrives as ADDED
        assert await events(stream, 1) == [("ADDED", "a", {"k": "2"})]


async def test_watch_410_error_event_on_the_wire(
    server: KubernetesApiTestServer, client: AsyncClient, http: httpx.AsyncClient
) -> None:
    await client.create(config_map("a"))
    server.faults.compact_history()
    await client.create(config_map("b"))
    params = {"watch": "1", "resourceVersion": "1"}
    async with http.stream("GET", f"/api/v1/namespaces/{NS}/configmaps", params=params) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        lines = [line async for line in response.aiter_lines()]
    event = json.loads(lines[0])
    assert event["type"] == "ERROR"
    assert {k: event["object"][k] for k in ("kind", "apiVersion", "status", "reason", "code")} == {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "reason": "Expired",
        "code": 410,
    }


async def test_watch_bookmarks_and_server_timeout(tmp_path: Path) -> None:
    async with (
        KubernetesApiTestServer(token=None, bookmark_interval=0.05) as server,
        httpx.AsyncClient(base_url=server.url, trust_env=False, timeout=WAIT) as http,
    ):
        server.put_configmap(NS, "a")
        params = {
            "watch": "true",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": "1",
            "resourceVersion": str(server.resource_version),
        }
        async with http.stream("GET", f"/api/v1/namespaces/{NS}/configmaps", params=params) as response:
            kinds = [json.loads(line)["type"] async for line in response.aiter_lines() if line]
    # the stream ended on its own at timeoutSeconds, after at least one bookmark
    assert kinds and set(kinds) == {"BOOKMARK"}


async def test_send_initial_events_ends_with_an_annotated_bookmark(
    client: AsyncClient, http: httpx.AsyncClient
) -> None:
    await client.create(config_map("a"))
    params = {
        "watch": "true",
        "sendInitialEvents": "true",
        "allowWatchBookmarks": "true",
        "resourceVersionMatch": "NotOlderThan",
        "timeoutSeconds": "5",
    }
    async with http.stream("GET", f"/api/v1/namespaces/{NS}/configmaps", params=params) as response:
        lines = response.aiter_lines()
        added = json.loads(await anext(lines))
        bookmark = json.loads(await anext(lines))
    assert added["type"] == "ADDED" and added["object"]["metadata"]["name"] == "a"
    assert bookmark["type"] == "BOOKMARK"
    assert bookmark["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_watch_on_a_future_resource_version_answers_504_error_event() -> None:
    async with (
        KubernetesApiTestServer(token=None, too_large_resource_version_wait=0.05) as server,
        httpx.AsyncClient(base_url=server.url, trust_env=False, timeout=WAIT) as http,
    ):
        params = {"watch": "true", "resourceVersion": "999"}
        async with http.stream("GET", f"/api/v1/namespaces/{NS}/configmaps", params=params) as response:
            lines = [json.loads(line) async for line in response.aiter_lines() if line]
    assert [line["type"] for line in lines] == ["ERROR"]
    assert lines[0]["object"]["code"] == 504
    assert lines[0]["object"]["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"


# ---------------------------------------------------------------------------------------------- faults


async def test_injected_500s_reach_lightkube_as_api_errors_then_requests_succeed(
    server: KubernetesApiTestServer, client: AsyncClient
) -> None:
    await client.create(config_map("a"))
    server.faults.fail_next(2)
    for _ in range(2):
        with pytest.raises(ApiError) as caught:
            await client.get(ConfigMap, "a")
        assert caught.value.status.code == 500
        assert caught.value.status.reason == "InternalError"
    assert meta(await client.get(ConfigMap, "a")).name == "a"
    assert server.faults.injected_failures == 2


async def test_injected_failure_matches_method_and_path(
    server: KubernetesApiTestServer, client: AsyncClient
) -> None:
    await client.create(config_map("a"))
    await client.create(config_map("b"))
    server.faults.fail_next(1, code=503, method="PUT", path=r"/configmaps/b$")
    await client.get(ConfigMap, "b")
    await client.replace(config_map("a", {"k": "v"}))
    with pytest.raises(ApiError) as caught:
        await client.replace(config_map("b", {"k": "v"}))
    assert caught.value.status.code == 503
    assert caught.value.status.reason == "ServiceUnavailable"
    await client.replace(config_map("b", {"k": "v"}))


async def test_injected_failure_on_watch_requests(
    server: KubernetesApiTestServer, client: AsyncClient
) -> None:
    server.faults.fail_next(1, code=429, watch=True, retry_after_seconds=1)
    async with watching(client, namespace=NS) as stream:
        # lightkube does not turn a failed watch request into ApiError: it raises httpx2's HTTPStatusError
        # (ApiError's base class) with the Status body in the response
        with pytest.raises(httpx2.HTTPStatusError) as caught:
            await next_event(stream)
    assert caught.value.response.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "1"


async def test_reset_watch_stream_ends_lightkube_iteration_with_a_protocol_error(
    server: KubernetesApiTestServer, client: AsyncClient
) -> None:
    await client.create(config_map("a"))
    async with watching(client, namespace=NS) as stream:
        assert await events(stream, 1) == [("ADDED", "a", None)]
        await server.wait_for_open_watches(1)
        assert server.faults.drop_watches() == 1
        with pytest.raises(httpx2.RemoteProtocolError):
            await next_event(stream)


async def test_reset_watch_with_retry_handler_resumes_without_losing_events(
    server: KubernetesApiTestServer, client: AsyncClient
) -> None:
    await client.create(config_map("a"))
    errors: list[Exception] = []

    def retry(error: Exception, count: int) -> OnErrorResult:
        errors.append(error)
        return OnErrorResult(OnErrorAction.RETRY)

    async with watching(client, namespace=NS, on_error=retry) as stream:
        assert await events(stream, 1) == [("ADDED", "a", None)]
        await server.wait_for_open_watches(1)
        server.faults.drop_watches("reset")
        await client.create(config_map("b"))
        # lightkube re-watches from its last resourceVersion: b arrives once, nothing is replayed
        assert await events(stream, 1) == [("ADDED", "b", None)]
    assert len(errors) == 1 and isinstance(errors[0], httpx2.RemoteProtocolError)


async def test_cleanly_ended_watch_is_resumed_by_lightkube(
    server: KubernetesApiTestServer, client: AsyncClient
) -> None:
    await client.create(config_map("a"))
    async with watching(client, namespace=NS) as stream:
        assert await events(stream, 1) == [("ADDED", "a", None)]
        await server.wait_for_open_watches(1)
        server.faults.drop_watches("end")
        await client.create(config_map("b"))
        assert await events(stream, 1) == [("ADDED", "b", None)]


async def test_expired_watch_raises_410(server: KubernetesApiTestServer, client: AsyncClient) -> None:
    await client.create(config_map("a"))
    async with watching(client, namespace=NS) as stream:
        assert await events(stream, 1) == [("ADDED", "a", None)]
        await server.wait_for_open_watches(1)
        server.faults.drop_watches("expire")
        with pytest.raises(ApiError) as caught:
            await next_event(stream)
    assert caught.value.status.code == 410


async def test_latency_makes_a_short_client_timeout_expire(
    server: KubernetesApiTestServer, kubeconfig: Path
) -> None:
    server.put_configmap(NS, "a")
    impatient = AsyncClient(config=KubeConfig.from_file(kubeconfig), timeout=httpx2.Timeout(0.2))
    try:
        server.faults.set_latency(5.0)
        with pytest.raises(httpx2.ReadTimeout):
            await impatient.get(ConfigMap, "a")
        server.faults.set_latency(0)
        assert meta(await impatient.get(ConfigMap, "a")).name == "a"
    finally:
        await impatient.close()


async def test_pause_holds_requests_until_resume(
    server: KubernetesApiTestServer, client: AsyncClient
) -> None:
    server.put_configmap(NS, "a")
    server.faults.pause(timeout=WAIT)
    pending = asyncio.create_task(client.get(ConfigMap, "a"))
    try:
        async with asyncio.timeout(WAIT):
            while server.faults.paused_requests < 1:
                await asyncio.sleep(0.005)
        assert not pending.done()
        server.faults.resume()
        assert meta(await asyncio.wait_for(pending, WAIT)).name == "a"
    finally:
        pending.cancel()
        with contextlib.suppress(BaseException):
            await pending


async def test_stopping_the_server_ends_watches_and_refuses_reconnects(tmp_path: Path) -> None:
    server = KubernetesApiTestServer()
    await server.start_async()
    client = AsyncClient(config=KubeConfig.from_file(server.write_kubeconfig(tmp_path / "kc", namespace=NS)))
    try:
        server.put_configmap(NS, "a")
        async with watching(client, namespace=NS) as stream:
            assert await events(stream, 1) == [("ADDED", "a", None)]
            await server.wait_for_open_watches(1)
            await server.stop_async()
            with pytest.raises(httpx2.ConnectError):
                await next_event(stream)
        assert server.get_configmap(NS, "a") is not None  # the store outlives the HTTP server
    finally:
        await server.stop_async()
        await client.close()


async def test_remote_fault_injector_over_the_admin_endpoint(
    server: KubernetesApiTestServer, client: AsyncClient
) -> None:
    await client.create(config_map("a"))
    remote = RemoteFaultInjector(server.url)
    await asyncio.to_thread(remote.fail_next, 1, code=503, method="GET")
    with pytest.raises(ApiError) as caught:
        await client.get(ConfigMap, "a")
    assert caught.value.status.code == 503
    snapshot = await asyncio.to_thread(remote.snapshot)
    assert snapshot["injected_failures"] == 1 and snapshot["failures"] == []


# ---------------------------------------------------------------------------------------------- validation and wire


async def test_invalid_name_is_422_invalid(client: AsyncClient) -> None:
    with pytest.raises(ApiError) as caught:
        await client.create(config_map("Not_A_Name"))
    status = caught.value.status
    assert status.code == 422 and status.reason == "Invalid"
    assert str(status.message).startswith('ConfigMap "Not_A_Name" is invalid: metadata.name: Invalid value')
    assert first_cause_field(status) == "metadata.name"
    with pytest.raises(ApiError) as too_long:
        await client.create(config_map("a" * 254))
    assert too_long.value.status.code == 422


async def test_invalid_data_key_and_label_are_422(client: AsyncClient) -> None:
    with pytest.raises(ApiError) as bad_key:
        await client.create(config_map("a", {"not a key": "v"}))
    assert bad_key.value.status.code == 422
    assert first_cause_field(bad_key.value.status) == "data[not a key]"
    with pytest.raises(ApiError) as bad_label:
        await client.create(config_map("a", labels={"app": "no spaces allowed"}))
    assert bad_label.value.status.code == 422


async def test_wrongly_typed_and_malformed_bodies_are_400(http: httpx.AsyncClient) -> None:
    url = f"/api/v1/namespaces/{NS}/configmaps"
    # A real apiserver rejects a non-string data value while decoding (400), before validation (422).
    typed = await http.post(url, json={"metadata": {"name": "a"}, "data": {"n": 1}})
    assert typed.status_code == 400
    assert typed.json()["reason"] == "BadRequest"
    assert "cannot unmarshal number into Go struct field" in typed.json()["message"]
    malformed = await http.post(url, content=b"{not json", headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400
    assert malformed.json()["kind"] == "Status"


async def test_unknown_paths_methods_and_missing_token(
    server: KubernetesApiTestServer, http: httpx.AsyncClient
) -> None:
    for path in ("/api/v1/namespaces/x/secrets", "/apis/apps/v1/namespaces/x/deployments", "/nothing/here"):
        response = await http.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/json"
        assert response.json()["kind"] == "Status"
    assert (await http.post(f"/api/v1/namespaces/{NS}/configmaps/a", json={})).status_code == 405
    async with httpx.AsyncClient(base_url=server.url, trust_env=False) as anonymous:
        response = await anonymous.get(f"/api/v1/namespaces/{NS}/configmaps")
    assert response.status_code == 401 and response.json()["reason"] == "Unauthorized"


async def test_discovery_endpoints(http: httpx.AsyncClient) -> None:
    assert (await http.get("/version")).json()["major"] == "1"
    assert (await http.get("/api")).json()["versions"] == ["v1"]
    groups = (await http.get("/apis")).json()["groups"]
    assert [g["name"] for g in groups] == ["coordination.k8s.io"]
    resources = (await http.get("/api/v1")).json()["resources"]
    assert [r["name"] for r in resources] == ["configmaps"]


async def test_immutable_config_map_refuses_data_changes(client: AsyncClient) -> None:
    await client.create(ConfigMap(metadata=ObjectMeta(name="a"), data={"k": "v"}, immutable=True))
    with pytest.raises(ApiError) as caught:
        await client.patch(ConfigMap, "a", {"data": {"k": "w"}}, patch_type=PatchType.MERGE)
    assert caught.value.status.code == 422
    labelled = await client.patch(
        ConfigMap, "a", {"metadata": {"labels": {"x": "y"}}}, patch_type=PatchType.MERGE
    )
    assert meta(labelled).labels == {"x": "y"}


async def test_leases_share_the_store_and_the_resource_version_counter(
    server: KubernetesApiTestServer, client: AsyncClient
) -> None:
    config = await client.create(config_map("a"))
    lease = await client.create(
        Lease(
            metadata=ObjectMeta(name="leader"), spec=LeaseSpec(holderIdentity="jm-1", leaseDurationSeconds=15)
        )
    )
    assert rv(lease) == rv(config) + 1
    with pytest.raises(ApiError) as caught:
        await client.replace(
            Lease(
                metadata=ObjectMeta(name="leader", resourceVersion=version(config)),
                spec=LeaseSpec(holderIdentity="jm-2"),
            )
        )
    assert caught.value.status.code == 409
    assert message(caught.value).startswith(
        'Operation cannot be fulfilled on leases.coordination.k8s.io "leader"'
    )
    stored = server.get_lease(NS, "leader")
    assert stored is not None and stored["spec"]["holderIdentity"] == "jm-1"
    renewed = await client.patch(
        Lease, "leader", {"spec": {"renewTime": "2024-05-01T10:00:00Z"}}, patch_type=PatchType.MERGE
    )
    assert renewed.spec is not None and renewed.spec.renewTime == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    stored = server.get_lease(NS, "leader")
    assert stored is not None and stored["spec"]["renewTime"] == "2024-05-01T10:00:00.000000Z"


# ---------------------------------------------------------------------------------------------- runners


def test_threaded_server_serves_a_synchronous_client(tmp_path: Path) -> None:
    with KubernetesApiTestServer() as server:
        config = KubeConfig.from_file(server.write_kubeconfig(tmp_path / "kubeconfig", namespace=NS))
        client = Client(config=config)
        try:
            created = client.create(config_map("a", {"k": "v"}))
            stored = server.get_configmap(NS, "a")
            assert stored is not None and stored["data"] == {"k": "v"}
            assert stored["metadata"]["uid"] == meta(created).uid
            server.faults.fail_next(1, code=500)
            with pytest.raises(ApiError):
                client.get(ConfigMap, "a")
            assert meta(client.get(ConfigMap, "a")).uid == meta(created).uid
            assert [r.status for r in server.requests()] == [201, 500, 200]
        finally:
            client.close()
    assert server.get_configmap(NS, "a") is not None


@pytest.mark.slow
def test_cli_process_prints_url_writes_kubeconfig_and_stops_on_sigterm(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig.yaml"
    process = KubernetesApiServerProcess(kubeconfig=kubeconfig, namespace=NS)
    url = process.start()
    try:
        assert url.startswith("http://127.0.0.1:")
        client = Client(config=KubeConfig.from_file(kubeconfig))
        try:
            client.create(config_map("a"))
            process.faults.fail_next(1, code=503)
            with pytest.raises(ApiError) as caught:
                client.get(ConfigMap, "a")
            assert caught.value.status.code == 503
            assert meta(client.get(ConfigMap, "a")).name == "a"
        finally:
            client.close()
    finally:
        code = process.stop()
    assert code == 0


# ---------------------------------------------------------------------------------------------- pure pieces


def test_label_selector_grammar() -> None:
    labels = {"app": "flink", "tier": "2"}
    cases = {
        "": True,
        "app=flink": True,
        "app==flink": True,
        "app!=flink": False,
        "app": True,
        "!app": False,
        "missing!=x": True,
        "app in (flink,other)": True,
        "app notin (flink)": False,
        "tier>1,tier<3": True,
        "app=flink,!missing": True,
    }
    for selector, expected in cases.items():
        assert parse_label_selector(selector).matches(labels) is expected, selector


def test_field_selector_supports_name_and_namespace_only() -> None:
    obj = {"metadata": {"name": "a", "namespace": "ns"}}
    assert parse_field_selector("metadata.name=a,metadata.namespace==ns").matches(obj)
    assert not parse_field_selector("metadata.name!=a").matches(obj)
    with pytest.raises(Exception, match="field label not supported"):
        parse_field_selector("spec.x=1")


def test_merge_and_json_patch() -> None:
    assert merge_patch({"a": {"b": 1, "c": 2}}, {"a": {"b": None, "d": 3}}) == {"a": {"c": 2, "d": 3}}
    doc = {"list": [1, 2], "x": {"y": 1}}
    ops = [
        {"op": "add", "path": "/list/-", "value": 3},
        {"op": "move", "from": "/x/y", "path": "/z"},
        {"op": "copy", "from": "/z", "path": "/w"},
        {"op": "test", "path": "/w", "value": 1},
    ]
    assert json_patch(doc, ops) == {"list": [1, 2, 3], "x": {}, "z": 1, "w": 1}
    assert doc == {"list": [1, 2], "x": {"y": 1}}  # the input is not modified
    with pytest.raises(JsonPatchError):
        json_patch(doc, [{"op": "test", "path": "/list/0", "value": True}])
    with pytest.raises(JsonPatchError):
        json_patch(doc, [{"op": "remove", "path": "/absent"}])


def test_store_history_limit_bounds_resume() -> None:
    store = ObjectStore(history_limit=2)
    for name in ("a", "b", "c"):
        store.create(CONFIGMAPS, NS, {"metadata": {"name": name}})
    assert store.resource_version == 4
    assert store.oldest_resumable_version == 2
    resumed = store.open_watch(CONFIGMAPS, NS, resource_version="2")
    assert [obj["metadata"]["name"] for _, obj in resumed.pending] == ["b", "c"]
    expired = store.open_watch(CONFIGMAPS, NS, resource_version="1")
    assert [kind for kind, _ in expired.pending] == ["ERROR"]
