"""Flink's ``KubernetesStateHandleStoreTest`` cases beyond the contract suite, the stored value format, the
checkpoint ID counter's Kubernetes cases, and standby's fencing of the per-job ConfigMaps."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from standby.backends.kubernetes import (
    FencedConfigMapWriter,
    FencingToken,
    KubernetesCheckpointIDCounter,
    KubernetesClient,
    KubernetesConfigMap,
    KubernetesError,
    KubernetesStateHandleStore,
    LeaderFence,
    RetryPolicy,
)
from standby.backends.kubernetes._state_handle_store import encode_entry
from standby.ha import (
    CorruptHaDataError,
    FencingError,
    JobStatus,
    PossibleInconsistentStateError,
    ResourceVersion,
    StateHandleAlreadyExistError,
    StateHandleNotExistError,
)
from standby.testing import store_contract
from standby.testing.kubernetes_api_server import KubernetesApiTestServer
from standby.testing.store_contract import TestingStorageHelper

from .conftest import NAMESPACE, lock_annotation

LOCK = "c-cluster-config-map"
JOB = "c-0123-config-map"
ME = "me"
TERM = 3
PREFIX = "executionPlan-"
_RETRY = RetryPolicy(max_retries=2, initial_delay=0.001, max_delay=0.005)


class Term:
    """The local leadership of the test's process (what ``LeadershipState.current_term`` answers)."""

    def __init__(self, value: int | None = TERM) -> None:
        self.value = value

    def __call__(self) -> int | None:
        return self.value


def _config_map(server: KubernetesApiTestServer, name: str) -> dict[str, Any]:
    found = server.get_configmap(NAMESPACE, name)
    assert found is not None
    return found


def _data(server: KubernetesApiTestServer, name: str = LOCK) -> dict[str, str]:
    data: dict[str, str] = _config_map(server, name).get("data", {})
    return data


@pytest.fixture
def helper() -> TestingStorageHelper[Any]:
    return TestingStorageHelper()


@pytest.fixture
def term() -> Term:
    return Term()


@pytest.fixture
async def cluster_store(
    k8s_server: KubernetesApiTestServer,
    k8s_client: KubernetesClient,
    helper: TestingStorageHelper[Any],
    term: Term,
) -> KubernetesStateHandleStore[Any]:
    """A store on the cluster ConfigMap whose lock names this process (``ME``) in ``TERM``."""
    k8s_server.put_configmap(NAMESPACE, LOCK, {"other-key": "x"}, annotations=lock_annotation(ME, TERM))
    writer = FencedConfigMapWriter(k8s_client, LOCK, _RETRY, LeaderFence(ME, term))
    return KubernetesStateHandleStore(writer, helper, PREFIX)


def _lose_the_lock(server: KubernetesApiTestServer) -> None:
    current = _config_map(server, LOCK)
    server.put_configmap(
        NAMESPACE, LOCK, current.get("data", {}), annotations=lock_annotation("other", TERM + 1)
    )


# ---------------------------------------------------------------------------------------------- value format


async def test_the_value_is_base64_of_a_small_versioned_json(
    k8s_server: KubernetesApiTestServer, cluster_store: KubernetesStateHandleStore[Any]
) -> None:
    await cluster_store.add_and_lock("job", "plan")
    raw = _data(k8s_server)[PREFIX + "job"]
    body = json.loads(base64.b64decode(raw))
    assert body == {"version": 1, "handle": {"version": 1, "testing": 1}, "markedForDeletion": False}
    assert _data(k8s_server)["other-key"] == "x"


async def test_an_unreadable_value_names_key_and_config_map(
    k8s_server: KubernetesApiTestServer, cluster_store: KubernetesStateHandleStore[Any]
) -> None:
    k8s_server.put_configmap(NAMESPACE, LOCK, {PREFIX + "job": "%%%"}, annotations=lock_annotation(ME, TERM))
    with pytest.raises(CorruptHaDataError, match=f"{PREFIX}job of ConfigMap {LOCK}"):
        await cluster_store.get_and_lock("job")
    assert await cluster_store.get_all_and_lock() == []


# ---------------------------------------------------------------------------------------------- reads


def _reads_of(server: KubernetesApiTestServer, name: str) -> tuple[int, int]:
    """(full GETs, metadata-only GETs) of ConfigMap ``name`` in the server's request log."""
    gets = [r for r in server.requests() if r.method == "GET" and r.path.endswith(f"/configmaps/{name}")]
    metadata_only = [r for r in gets if "as=PartialObjectMetadata" in r.accept]
    return len(gets) - len(metadata_only), len(metadata_only)


async def test_recovering_every_entry_transfers_the_config_map_once(
    k8s_server: KubernetesApiTestServer,
    k8s_client: KubernetesClient,
    helper: TestingStorageHelper[Any],
    cluster_store: KubernetesStateHandleStore[Any],
    term: Term,
) -> None:
    """All plans live in the cluster ConfigMap; reading each with a full GET made a recovery of N plans move
    the whole ConfigMap N times (O(N²) bytes). Unchanged, it is validated by a metadata-only GET instead."""
    names = [f"job-{i:02d}" for i in range(30)]
    for name in names:
        await cluster_store.add_and_lock(name, name)
    recovering = KubernetesStateHandleStore(
        FencedConfigMapWriter(k8s_client, LOCK, _RETRY, LeaderFence(ME, term)), helper, PREFIX
    )
    k8s_server.clear_requests()
    assert await recovering.get_all_handles() == names
    for name in names:
        assert await recovering.exists(name) != ResourceVersion.not_existing()
        handle = await recovering.get_and_lock(name)
        assert await handle.retrieve_state() == name
    full, metadata_only = _reads_of(k8s_server, LOCK)
    assert full == 1, f"{full} full GETs of {LOCK} to read {len(names)} entries"
    assert metadata_only == 2 * len(names)


async def test_reads_see_every_change_made_elsewhere(
    k8s_server: KubernetesApiTestServer,
    k8s_client: KubernetesClient,
    helper: TestingStorageHelper[Any],
    cluster_store: KubernetesStateHandleStore[Any],
    term: Term,
) -> None:
    await cluster_store.add_and_lock("kept", "kept")
    await cluster_store.add_and_lock("removed", "removed")
    other = KubernetesStateHandleStore(
        FencedConfigMapWriter(k8s_client, LOCK, _RETRY, LeaderFence(ME, term)), helper, PREFIX
    )
    assert sorted(await cluster_store.get_all_handles()) == ["kept", "removed"]
    # another store instance (same leader) removes and adds entries: this one's copy is stale now
    assert await other.release_and_try_remove("removed")
    await other.add_and_lock("added", "added")
    with pytest.raises(StateHandleNotExistError):
        await cluster_store.get_and_lock("removed")
    assert await (await cluster_store.get_and_lock("added")).retrieve_state() == "added"
    assert sorted(await cluster_store.get_all_handles()) == ["added", "kept"]
    # a change outside the backend (kubectl edit), then the ConfigMap deleted
    k8s_server.put_configmap(NAMESPACE, LOCK, {"other-key": "y"}, annotations=lock_annotation(ME, TERM))
    assert await cluster_store.exists("kept") == ResourceVersion.not_existing()
    k8s_server.delete_configmap(NAMESPACE, LOCK)
    with pytest.raises(KubernetesError, match="does not exist"):
        await cluster_store.exists("kept")
    assert await cluster_store.get_all_and_lock() == []


# ---------------------------------------------------------------------------------------------- Flink's cases


async def test_add_with_possibly_inconsistent_state_keeps_the_payload(
    k8s_server: KubernetesApiTestServer,
    cluster_store: KubernetesStateHandleStore[Any],
    helper: TestingStorageHelper[Any],
) -> None:
    k8s_server.faults.fail_next(10, code=500, method="PUT")
    with pytest.raises(PossibleInconsistentStateError):
        await cluster_store.add_and_lock("job", "plan")
    assert helper.live_states == ["plan"]


async def test_add_of_the_same_contents_is_idempotent(
    k8s_server: KubernetesApiTestServer,
    cluster_store: KubernetesStateHandleStore[Any],
    helper: TestingStorageHelper[Any],
) -> None:
    """testAddAndLockShouldNotThrowAlreadyExistExceptionWithSameContents: an earlier attempt was applied but
    reported as failed; the retry finds its own entry."""
    next_pointer = json.dumps({"version": 1, "testing": 1}).encode()  # the helper's first handle
    k8s_server.put_configmap(
        NAMESPACE, LOCK, {PREFIX + "job": encode_entry(next_pointer)}, annotations=lock_annotation(ME, TERM)
    )
    handle = await cluster_store.add_and_lock("job", "plan")
    assert await handle.retrieve_state() == "plan"
    assert helper.live_states == ["plan"]


async def test_add_fails_when_the_config_map_does_not_exist_and_discards_the_payload(
    k8s_server: KubernetesApiTestServer,
    cluster_store: KubernetesStateHandleStore[Any],
    helper: TestingStorageHelper[Any],
) -> None:
    k8s_server.delete_configmap(NAMESPACE, LOCK)
    with pytest.raises(KubernetesError):
        await cluster_store.add_and_lock("job", "plan")
    assert helper.live_states == []


async def test_add_without_leadership_is_refused_and_discards_the_payload(
    k8s_server: KubernetesApiTestServer,
    cluster_store: KubernetesStateHandleStore[Any],
    helper: TestingStorageHelper[Any],
) -> None:
    _lose_the_lock(k8s_server)
    with pytest.raises(FencingError, match="names other"):
        await cluster_store.add_and_lock("job", "plan")
    assert helper.live_states == []
    assert PREFIX + "job" not in _data(k8s_server)


async def test_add_when_locally_not_leader_is_refused(
    cluster_store: KubernetesStateHandleStore[Any], helper: TestingStorageHelper[Any], term: Term
) -> None:
    # the lock still names us, but our local state stepped down (renew deadline passed): no writes
    term.value = None
    with pytest.raises(FencingError, match="does not lead"):
        await cluster_store.add_and_lock("job", "plan")
    assert helper.live_states == []


async def test_replace_without_leadership_is_refused_and_discards_the_new_payload(
    k8s_server: KubernetesApiTestServer,
    cluster_store: KubernetesStateHandleStore[Any],
    helper: TestingStorageHelper[Any],
) -> None:
    await cluster_store.add_and_lock("job", "old")
    version = await cluster_store.exists("job")
    _lose_the_lock(k8s_server)
    with pytest.raises(FencingError):
        await cluster_store.replace("job", version, "new")
    assert helper.live_states == ["old"]
    assert await (await cluster_store.get_and_lock("job")).retrieve_state() == "old"


async def test_replace_failed_discards_the_new_payload(
    k8s_server: KubernetesApiTestServer,
    cluster_store: KubernetesStateHandleStore[Any],
    helper: TestingStorageHelper[Any],
) -> None:
    await cluster_store.add_and_lock("job", "old")
    k8s_server.faults.fail_next(1, code=422, method="PUT")
    with pytest.raises(KubernetesError):
        await cluster_store.replace("job", ResourceVersion(0), "new")
    assert helper.live_states == ["old"]


async def test_replace_with_possibly_inconsistent_state_discards_nothing(
    k8s_server: KubernetesApiTestServer,
    cluster_store: KubernetesStateHandleStore[Any],
    helper: TestingStorageHelper[Any],
) -> None:
    await cluster_store.add_and_lock("job", "old")
    k8s_server.faults.fail_next(10, code=500, method="PUT")
    with pytest.raises(PossibleInconsistentStateError):
        await cluster_store.replace("job", ResourceVersion(0), "new")
    assert helper.live_states == ["old", "new"]


async def test_replace_of_an_entry_marked_for_deletion(
    cluster_store: KubernetesStateHandleStore[Any], helper: TestingStorageHelper[Any]
) -> None:
    await cluster_store.add_and_lock("job", "old")
    helper.fail_discard = True
    with pytest.raises(store_contract.TestingDiscardError):
        await cluster_store.release_and_try_remove("job")
    # testReplaceWithDeletingKeyWithFailingDiscard: not found, the old payload is kept (its discard failed)
    with pytest.raises(StateHandleNotExistError) as caught:
        await cluster_store.replace("job", ResourceVersion(0), "new")
    assert any("failed too" in note for note in getattr(caught.value, "__notes__", []))
    assert "old" in helper.live_states  # (the testing helper failed to discard "new" as well)
    # testReplaceWithDeletingKey: not found, the removal is finished, both payloads discarded
    helper.fail_discard = False
    with pytest.raises(StateHandleNotExistError):
        await cluster_store.replace("job", ResourceVersion(0), "newer")
    assert "old" not in helper.live_states
    assert "newer" not in helper.live_states
    assert await cluster_store.get_all_handles() == []


async def test_exists_of_an_entry_marked_for_deletion_does_not_remove_it(
    k8s_server: KubernetesApiTestServer,
    cluster_store: KubernetesStateHandleStore[Any],
    helper: TestingStorageHelper[Any],
) -> None:
    await cluster_store.add_and_lock("job", "state")
    helper.fail_discard = True
    with pytest.raises(store_contract.TestingDiscardError):
        await cluster_store.release_and_try_remove("job")
    assert await cluster_store.exists("job") == ResourceVersion.not_existing()
    assert PREFIX + "job" in _data(k8s_server)


async def test_remove_without_leadership_returns_false_and_keeps_everything(
    k8s_server: KubernetesApiTestServer,
    cluster_store: KubernetesStateHandleStore[Any],
    helper: TestingStorageHelper[Any],
) -> None:
    await cluster_store.add_and_lock("job", "state")
    _lose_the_lock(k8s_server)
    assert await cluster_store.release_and_try_remove("job") is False
    assert helper.live_states == ["state"]
    assert PREFIX + "job" in _data(k8s_server)


async def test_clear_entries_removes_only_the_prefixed_keys(
    k8s_server: KubernetesApiTestServer,
    cluster_store: KubernetesStateHandleStore[Any],
    helper: TestingStorageHelper[Any],
) -> None:
    await cluster_store.add_and_lock("a", "state-a")
    await cluster_store.add_and_lock("b", "state-b")
    await cluster_store.clear_entries()
    assert _data(k8s_server) == {"other-key": "x"}
    assert helper.live_states == ["state-a", "state-b"]


async def test_existing_entry_is_not_overwritten(
    cluster_store: KubernetesStateHandleStore[Any], helper: TestingStorageHelper[Any]
) -> None:
    await cluster_store.add_and_lock("job", "first")
    with pytest.raises(StateHandleAlreadyExistError, match=f"{PREFIX}job already exists in ConfigMap {LOCK}"):
        await cluster_store.add_and_lock("job", "second")
    assert helper.live_states == ["first"]


async def test_reads_of_a_missing_config_map(
    k8s_server: KubernetesApiTestServer, cluster_store: KubernetesStateHandleStore[Any]
) -> None:
    k8s_server.delete_configmap(NAMESPACE, LOCK)
    assert await cluster_store.get_all_and_lock() == []
    with pytest.raises(KubernetesError, match="does not exist"):
        await cluster_store.get_all_handles()
    with pytest.raises(KubernetesError, match="does not exist"):
        await cluster_store.exists("job")
    assert await cluster_store.release_and_try_remove("job") is True


# ---------------------------------------------------------------------------------------------- per-job fencing


def _job_writer(client: KubernetesClient, term: Term, identity: str = ME) -> FencedConfigMapWriter:
    return FencedConfigMapWriter(client, JOB, _RETRY, LeaderFence(identity, term), lock_config_map=LOCK)


async def test_job_config_map_writes_carry_the_fencing_epoch(
    k8s_server: KubernetesApiTestServer,
    k8s_client: KubernetesClient,
    helper: TestingStorageHelper[Any],
    term: Term,
) -> None:
    k8s_server.put_configmap(NAMESPACE, LOCK, {}, annotations=lock_annotation(ME, TERM))
    writer = _job_writer(k8s_client, term)
    await writer.ensure_exists(KubernetesConfigMap(JOB, labels={"app": "c"}))
    store = KubernetesStateHandleStore(writer, helper, "checkpointID-")
    await store.add_and_lock("0000000000000000001", "cp-1")
    annotations = _config_map(k8s_server, JOB)["metadata"]["annotations"]
    assert FencingToken.from_annotation(annotations["standby.io/fencing-epoch"]) == FencingToken(TERM, ME)


async def test_a_deposed_leader_cannot_write_the_job_config_map(
    k8s_server: KubernetesApiTestServer,
    k8s_client: KubernetesClient,
    helper: TestingStorageHelper[Any],
    term: Term,
) -> None:
    k8s_server.put_configmap(NAMESPACE, LOCK, {}, annotations=lock_annotation(ME, TERM))
    k8s_server.put_configmap(NAMESPACE, JOB, {})
    old_store = KubernetesStateHandleStore(_job_writer(k8s_client, term), helper, "checkpointID-")
    old_counter = KubernetesCheckpointIDCounter(_job_writer(k8s_client, term))
    await old_counter.start()
    assert await old_counter.get_and_increment() == 1
    await old_store.add_and_lock("0000000000000000001", "cp-1")

    # a new leader takes over and claims the job ConfigMap before recovering it
    k8s_server.put_configmap(NAMESPACE, LOCK, {}, annotations=lock_annotation("new-leader", TERM + 1))
    new_writer = _job_writer(k8s_client, Term(TERM + 1), "new-leader")
    await new_writer.claim()

    with pytest.raises(FencingError):
        await old_store.add_and_lock("0000000000000000002", "cp-2")
    with pytest.raises(FencingError):
        await old_counter.get_and_increment()
    assert await old_store.release_and_try_remove("0000000000000000001") is False
    assert helper.live_states == ["cp-1"]
    assert _data(k8s_server, JOB)["counter"] == "2"


async def test_an_older_term_never_overwrites_a_newer_one(
    k8s_server: KubernetesApiTestServer, k8s_client: KubernetesClient, helper: TestingStorageHelper[Any]
) -> None:
    """The race window: the old leader's check of the lock passes (here: it reads a lock that still names it),
    but the job ConfigMap already carries a newer term, so the write is refused."""
    k8s_server.put_configmap(NAMESPACE, LOCK, {}, annotations=lock_annotation(ME, TERM))
    k8s_server.put_configmap(
        NAMESPACE,
        JOB,
        {},
        annotations={"standby.io/fencing-epoch": FencingToken(TERM + 5, "newer").to_annotation()},
    )
    store = KubernetesStateHandleStore(_job_writer(k8s_client, Term()), helper, "checkpointID-")
    with pytest.raises(FencingError, match="a newer leader"):
        await store.add_and_lock("0000000000000000001", "cp")
    assert helper.live_states == []


async def test_unfenced_writer_writes_without_a_lock(
    k8s_server: KubernetesApiTestServer, k8s_client: KubernetesClient, helper: TestingStorageHelper[Any]
) -> None:
    """Flink 2.x's checkpoint stores (``withoutLeadershipValidation``): no fence, no epoch annotation."""
    k8s_server.put_configmap(NAMESPACE, JOB, {})
    store = KubernetesStateHandleStore(
        FencedConfigMapWriter(k8s_client, JOB, _RETRY), helper, "checkpointID-"
    )
    await store.add_and_lock("0000000000000000001", "cp")
    assert "annotations" not in _config_map(k8s_server, JOB)["metadata"]


# ---------------------------------------------------------------------------------------------- counter


async def test_counter_of_a_missing_config_map(k8s_client: KubernetesClient, term: Term) -> None:
    counter = KubernetesCheckpointIDCounter(_job_writer(k8s_client, term))
    await counter.start()
    with pytest.raises(KubernetesError, match=f"ConfigMap {JOB} does not exist"):
        await counter.get()


async def test_counter_without_leadership_fails(
    k8s_server: KubernetesApiTestServer, k8s_client: KubernetesClient
) -> None:
    k8s_server.put_configmap(NAMESPACE, LOCK, {}, annotations=lock_annotation("other", TERM))
    k8s_server.put_configmap(NAMESPACE, JOB, {"counter": "5"})
    counter = KubernetesCheckpointIDCounter(_job_writer(k8s_client, Term()))
    await counter.start()
    with pytest.raises(FencingError, match="names other"):
        await counter.get_and_increment()
    with pytest.raises(FencingError):
        await counter.set_count(9)
    assert await counter.get() == 5


async def test_corrupt_counter_names_key_and_config_map(
    k8s_server: KubernetesApiTestServer, k8s_client: KubernetesClient, term: Term
) -> None:
    k8s_server.put_configmap(NAMESPACE, LOCK, {}, annotations=lock_annotation(ME, TERM))
    k8s_server.put_configmap(NAMESPACE, JOB, {"counter": "many"})
    counter = KubernetesCheckpointIDCounter(_job_writer(k8s_client, term))
    await counter.start()
    with pytest.raises(CorruptHaDataError, match=f"'counter' of ConfigMap {JOB}"):
        await counter.get()


async def test_counter_shutdown_removes_only_the_counter_key(
    k8s_server: KubernetesApiTestServer, k8s_client: KubernetesClient, term: Term
) -> None:
    k8s_server.put_configmap(NAMESPACE, LOCK, {}, annotations=lock_annotation(ME, TERM))
    k8s_server.put_configmap(NAMESPACE, JOB, {"counter": "5", "checkpointID-x": "y"})
    counter = KubernetesCheckpointIDCounter(_job_writer(k8s_client, term))
    await counter.start()
    await counter.shutdown(JobStatus.FINISHED)
    assert _data(k8s_server, JOB) == {"checkpointID-x": "y"}
