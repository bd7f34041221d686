"""ZooKeeperStateHandleStore on a real ZooKeeper and real payload files (Flink's ZooKeeperStateHandleStoreTest)."""

from __future__ import annotations

from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.security import ACL, Id, Permissions

from standby.backends.zookeeper import (
    ZooKeeperClient,
    ZooKeeperLeaderElectionDriverFactory,
    ZooKeeperStateHandleStore,
)
from standby.ha import (
    CorruptHaDataError,
    FencingError,
    FileStateHandle,
    FileSystemStateStorageHelper,
    PossibleInconsistentStateError,
    ResourceVersion,
    StateHandleAlreadyExistError,
    StateHandleNotExistError,
    StateHandleStoreError,
)
from standby.testing.servers import TcpProxy, ZooKeeperServer

from .zk_support import ClientFactory, ProxyFactory, RecordingDriverListener, make_settings

pytestmark = pytest.mark.zookeeper


def text_helper(directory: Path) -> FileSystemStateStorageHelper[str]:
    return FileSystemStateStorageHelper(
        str(directory), "testState", str.encode, lambda data, _loc: data.decode()
    )


def payload_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("testState*"))


class Env:
    """A client, a store root and a payload directory for one test."""

    def __init__(self, client: ZooKeeperClient, payloads: Path) -> None:
        self.client = client
        self.payloads = payloads
        self.root = client.path("store")

    def store(
        self, fencing: ZooKeeperLeaderElectionDriverFactory | None = None
    ) -> ZooKeeperStateHandleStore[str]:
        return ZooKeeperStateHandleStore(self.client, self.root, text_helper(self.payloads), fencing)


@pytest.fixture
async def env(zookeeper_server: ZooKeeperServer, zk_clients: ClientFactory, tmp_path: Path) -> Env:
    client = await zk_clients(make_settings(zookeeper_server.connect_string))
    return Env(client, tmp_path)


async def test_add_and_lock(env: Env) -> None:
    store = env.store()
    handle = await store.add_and_lock("0000000000000000001", "state-1")
    path = f"{env.root}/0000000000000000001"
    stat = await env.client.exists(path)
    assert stat is not None
    assert stat.ephemeralOwner == 0  # persistent
    locks = await env.client.get_children(f"{path}/locks")
    assert locks == [store.lock_node]
    lock_stat = await env.client.exists(f"{path}/locks/{store.lock_node}")
    assert lock_stat is not None
    assert lock_stat.ephemeralOwner == env.client.session_id
    data, _ = await env.client.get(path)
    assert await text_helper(env.payloads).deserialize_handle(data).retrieve_state() == "state-1"
    assert await handle.retrieve_state() == "state-1"
    assert len(payload_files(env.payloads)) == 1


async def test_add_already_existing_discards_the_new_payload(env: Env) -> None:
    store = env.store()
    await store.add_and_lock("a", "first")
    with pytest.raises(StateHandleAlreadyExistError, match="/store/a"):
        await store.add_and_lock("a", "second")
    assert len(payload_files(env.payloads)) == 1
    assert await (await store.get_and_lock("a")).retrieve_state() == "first"


async def test_add_failing_before_commit_discards_the_payload(
    env: Env, zookeeper_server: ZooKeeperServer
) -> None:
    # The root belongs to someone else and only lets us read: the multi-op fails with NoAuth (a safe error).
    other = KazooClient(hosts=zookeeper_server.connect_string, auth_data=[("digest", "other:secret")])
    other.start(timeout=10)
    try:
        read_only = [ACL(Permissions.READ, Id("world", "anyone")), ACL(Permissions.ALL, Id("auth", ""))]
        other.create(env.root, b"", acl=read_only, makepath=True)
    finally:
        other.stop()
        other.close()
    with pytest.raises(StateHandleStoreError, match="NoAuthError"):
        await env.store().add_and_lock("a", "state")
    assert payload_files(env.payloads) == []


async def test_add_with_unknown_outcome_keeps_the_payload(
    zookeeper_server: ZooKeeperServer, tcp_proxy: ProxyFactory, zk_clients: ClientFactory, tmp_path: Path
) -> None:
    proxy = tcp_proxy(zookeeper_server.host, zookeeper_server.port)
    client = await zk_clients(make_settings(proxy.endpoint, session_timeout=10.0, connection_timeout=0.5))

    class CutAfterStore(FileSystemStateStorageHelper[str]):
        """Writes the payload, then cuts the connection: the multi-op cannot reach the server."""

        def __init__(self, directory: Path, link: TcpProxy) -> None:
            super().__init__(str(directory), "testState", str.encode, lambda data, _loc: data.decode())
            self.link = link

        async def store(self, state: str) -> FileStateHandle[str]:
            handle = await super().store(state)
            self.link.drop()
            return handle

    store = ZooKeeperStateHandleStore(client, client.path("store"), CutAfterStore(tmp_path, proxy))
    with pytest.raises(PossibleInconsistentStateError, match="is kept"):
        await store.add_and_lock("a", "state")
    assert len(payload_files(tmp_path)) == 1  # may be referenced: never discarded
    proxy.resume()
    assert await store.exists("a") == ResourceVersion.not_existing()


async def test_replace(env: Env) -> None:
    store = env.store()
    await store.add_and_lock("a", "v0")
    version = await store.exists("a")
    assert version == ResourceVersion(0)
    await store.replace("a", version, "v1")
    assert await store.exists("a") == ResourceVersion(1)
    assert await (await store.get_and_lock("a")).retrieve_state() == "v1"
    assert len(payload_files(env.payloads)) == 1  # the old payload was discarded


async def test_replace_non_existing(env: Env) -> None:
    with pytest.raises(StateHandleNotExistError, match="/store/missing"):
        await env.store().replace("missing", ResourceVersion(0), "x")
    assert payload_files(env.payloads) == []


async def test_replace_with_a_stale_version_keeps_the_old_state(env: Env) -> None:
    store = env.store()
    await store.add_and_lock("a", "v0")
    await store.replace("a", ResourceVersion(0), "v1")
    with pytest.raises(StateHandleStoreError, match="BadVersionError"):
        await store.replace("a", ResourceVersion(0), "v2")
    assert await (await store.get_and_lock("a")).retrieve_state() == "v1"
    assert len(payload_files(env.payloads)) == 1  # the new payload was discarded


async def test_replace_needs_a_lock(env: Env) -> None:
    store = env.store()
    await store.add_and_lock("a", "v0")
    other = env.store()
    with pytest.raises(StateHandleStoreError, match="holding a lock"):
        await other.replace("a", ResourceVersion(0), "v1")


async def test_get_and_exists(env: Env) -> None:
    store = env.store()
    assert await store.exists("a") == ResourceVersion.not_existing()
    await store.add_and_lock("a", "state")
    assert (await store.exists("a")).is_existing()
    other = env.store()
    handle = await other.get_and_lock("a")
    assert await handle.retrieve_state() == "state"
    assert sorted(await env.client.get_children(f"{env.root}/a/locks")) == sorted(
        [store.lock_node, other.lock_node]
    )


async def test_get_non_existing(env: Env) -> None:
    with pytest.raises(StateHandleNotExistError):
        await env.store().get_and_lock("missing")


async def test_get_all_sorted_by_name_and_locked(env: Env) -> None:
    writer = env.store()
    for name in ("0000000000000000003", "0000000000000000001", "0000000000000000002"):
        await writer.add_and_lock(name, f"state-{name[-1]}")
    reader = env.store()
    entries = await reader.get_all_and_lock()
    assert [name for _, name in entries] == [
        "0000000000000000001",
        "0000000000000000002",
        "0000000000000000003",
    ]
    assert [await h.retrieve_state() for h, _ in entries] == ["state-1", "state-2", "state-3"]
    for _, name in entries:
        assert reader.lock_node in await env.client.get_children(f"{env.root}/{name}/locks")
    assert await reader.get_all_handles() == [name for _, name in entries]


async def test_corrupted_pointer_is_skipped_by_get_all(env: Env) -> None:
    store = env.store()
    await store.add_and_lock("good", "state")
    await env.client.create(f"{env.root}/bad", b"{not json")
    await env.client.create(f"{env.root}/bad/locks")
    reader = env.store()
    entries = await reader.get_all_and_lock()
    assert [name for _, name in entries] == ["good"]
    # the lock taken for the unreadable entry was released again
    assert await env.client.get_children(f"{env.root}/bad/locks") == []
    with pytest.raises(CorruptHaDataError, match="/store/bad"):
        await reader.get_and_lock("bad")


async def test_release_and_try_remove(env: Env) -> None:
    store = env.store()
    await store.add_and_lock("a", "state")
    assert await store.release_and_try_remove("a")
    assert await env.client.exists(f"{env.root}/a") is None
    assert payload_files(env.payloads) == []
    assert await store.release_and_try_remove("a")  # idempotent


async def test_release_and_try_remove_all(env: Env) -> None:
    store = env.store()
    for name in ("a", "b", "c"):
        await store.add_and_lock(name, name)
    for name in await store.get_all_handles():
        assert await store.release_and_try_remove(name)
    assert await store.get_all_handles() == []
    assert payload_files(env.payloads) == []


async def test_concurrent_lock_prevents_removal(env: Env) -> None:
    """FLINK-6612: an entry locked by another instance is not removed."""
    owner = env.store()
    await owner.add_and_lock("a", "state")
    other = env.store()
    await other.get_and_lock("a")
    assert not await owner.release_and_try_remove("a")
    assert (await owner.exists("a")).is_existing()
    assert len(payload_files(env.payloads)) == 1
    await other.release("a")
    assert await owner.release_and_try_remove("a")
    assert payload_files(env.payloads) == []


async def test_marked_for_deletion_counts_as_absent_and_can_be_added_again(env: Env) -> None:
    store = env.store()
    await store.add_and_lock("a", "old")
    # an interrupted removal: the locks node is gone, the node and its payload are left
    await store.release("a")
    await env.client.delete(f"{env.root}/a/locks")
    assert await store.exists("a") == ResourceVersion.not_existing()
    assert await store.get_all_handles() == []
    with pytest.raises(StateHandleNotExistError):
        await store.get_and_lock("a")
    await store.add_and_lock("a", "new")
    assert await (await store.get_and_lock("a")).retrieve_state() == "new"
    assert len(payload_files(env.payloads)) == 1  # the old payload went with the marked entry


async def test_release_and_release_all(env: Env) -> None:
    store = env.store()
    await store.add_and_lock("a", "a")
    await store.add_and_lock("b", "b")
    await store.release("a")
    assert await env.client.get_children(f"{env.root}/a/locks") == []
    await store.release_all()
    assert await env.client.get_children(f"{env.root}/b/locks") == []
    await store.release("missing")  # no error


async def test_clear_entries(env: Env) -> None:
    store = env.store()
    await store.add_and_lock("a", "a")
    await store.add_and_lock("b", "b")
    await store.clear_entries()
    assert await env.client.exists(env.root) is None
    assert await store.get_all_and_lock() == []


async def test_locks_vanish_with_the_session(env: Env, zk_clients: ClientFactory) -> None:
    other_client = await zk_clients(env.client.settings)
    owner = env.store()
    await owner.add_and_lock("a", "state")
    other = ZooKeeperStateHandleStore(other_client, env.root, text_helper(env.payloads))
    await other.get_and_lock("a")
    assert not await owner.release_and_try_remove("a")
    await other_client.close()  # the other JobManager is gone: its ephemeral lock too
    assert await owner.release_and_try_remove("a")


# ------------------------------------------------------------------------------------------------ fencing


async def test_fenced_store_writes_only_while_leader(env: Env) -> None:
    fencing = ZooKeeperLeaderElectionDriverFactory(env.client)
    store = env.store(fencing)
    with pytest.raises(FencingError, match="not the leader"):
        await store.add_and_lock("a", "state")
    assert payload_files(env.payloads) == []  # refused before anything was written

    listener = RecordingDriverListener()
    driver = await fencing.create(listener)
    await listener.next("grant")
    await store.add_and_lock("a", "state")
    await store.replace("a", await store.exists("a"), "state-2")

    await driver.close()  # leadership handed over
    with pytest.raises(FencingError):
        await store.add_and_lock("b", "state")
    with pytest.raises(FencingError):
        await store.replace("a", await store.exists("a"), "state-3")
    with pytest.raises(FencingError):
        await store.release_and_try_remove("a")
    assert await (await store.get_and_lock("a")).retrieve_state() == "state-2"
    assert len(payload_files(env.payloads)) == 1


async def test_deposed_leader_cannot_write(env: Env, zk_clients: ClientFactory) -> None:
    """The latch node is gone but the old leader has not noticed: the check in the multi-op refuses the write."""
    fencing = ZooKeeperLeaderElectionDriverFactory(env.client)
    listener = RecordingDriverListener()
    driver = await fencing.create(listener)
    await listener.next("grant")
    token = fencing.fencing_token()

    class Unaware(ZooKeeperLeaderElectionDriverFactory):
        def fencing_token(self) -> tuple[str, int]:
            return token

    store = env.store(Unaware(env.client))
    await store.add_and_lock("a", "state")
    other = await zk_clients(env.client.settings)
    await other.delete(token[0])
    with pytest.raises(FencingError, match="no longer the leader"):
        await store.add_and_lock("b", "other state")
    assert await store.exists("b") == ResourceVersion.not_existing()
    assert len(payload_files(env.payloads)) == 1
    await driver.close()
