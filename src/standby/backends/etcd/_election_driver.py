"""Leader election on etcd, after Go's ``clientv3/concurrency`` election.

Each contending process grants a lease and creates its election key ``<root>/<cluster-id>/leader/latch/<lease-id hex>``
on that lease (txn: ``create_revision == 0``). The key with the lowest create revision leads; every other process
watches the deletion of its predecessor (the key with the next lower create revision, Go's ``waitDeletes``) and
re-checks when it is gone. The lease is kept alive by its own task; when it is lost (etcd reports it expired, or no
keep-alive succeeded within the TTL) leadership is revoked and the process re-joins with a new lease. A graceful
close revokes the lease, which deletes the key and hands leadership over at once (Flink: closing the LeaderLatch).

Each leadership period gets a fresh session id (Flink: ``UUID.randomUUID()`` in ``isLeader()``). Leader information
``.../leader/<component>/connection_info`` is written only by the leader, fenced by its election key, and attached
to its lease so it vanishes with the leader. A watch on ``.../leader/`` reports external changes (self-healing).
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from standby.ha import (
    FencingError,
    LeaderElectionDriver,
    LeaderElectionDriverFactory,
    LeaderElectionDriverListener,
    LeaderInformation,
    LeaderInformationRegister,
)

from ._client import (
    Compare,
    Delete,
    EtcdClient,
    EtcdClientClosedError,
    EtcdCompactedError,
    EtcdError,
    EtcdSettings,
    EtcdWatch,
    Get,
    Put,
)
from ._fencing import FencingToken, LeadershipFence, fenced_txn
from ._lease import EtcdLease, owner_description
from ._paths import EtcdPaths
from ._retrieval_driver import decode_leader_information, encode_leader_information
from ._tasks import Backoff, cancel_and_wait

_log = logging.getLogger(__name__)


class _OwnKeyGoneError(Exception):
    """Our election key vanished (deleted externally, or its lease expired)."""


async def _first_delete(watch: EtcdWatch) -> bool:
    """True at the first DELETE event; False if the stream ended without one."""
    async for event in watch.events():
        if event.kind == "DELETE":
            return True
    return False


class EtcdLeaderElectionDriver(LeaderElectionDriver):
    """One per JobManager process; all components share its leadership (FLIP-285)."""

    def __init__(
        self,
        client: EtcdClient,
        settings: EtcdSettings,
        paths: EtcdPaths,
        listener: LeaderElectionDriverListener,
        fence: LeadershipFence,
    ) -> None:
        self._client = client
        self._settings = settings
        self._paths = paths
        self._listener = listener
        self._fence = fence
        self.instance_id = uuid.uuid4().hex
        self._running = True
        self._leader: FencingToken | None = None
        self._lease: EtcdLease | None = None
        self._tasks: list[asyncio.Task[None]] = []
        #: re-check interval while waiting on a watch (guards against a silently lost watch)
        self._recheck = max(1.0, 2.0 * settings.lease_ttl_seconds)
        #: visible for tests and tools
        self.election_key: bytes | None = None
        self.create_revision: int | None = None
        self.predecessor: bytes | None = None
        self.leadership_periods = 0

    # ----------------------------------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(), name="etcd-leader-election"),
            asyncio.create_task(self._watch_leader_information(), name="etcd-leader-information-watch"),
        ]

    async def close(self) -> None:
        if not self._running:
            return
        self._running = False
        tasks, self._tasks = self._tasks, []
        await cancel_and_wait(*tasks)
        token, self._leader = self._leader, None
        self._fence.revoke(token)
        lease, self._lease = self._lease, None
        if lease is not None:
            # Deletes the election key and the leader information at once: immediate hand-over.
            await lease.revoke()

    @property
    def lease(self) -> EtcdLease | None:
        """The lease of the current election attempt (visible for tests)."""
        return self._lease

    def __repr__(self) -> str:
        return f"EtcdLeaderElectionDriver{{latch='{self._paths.latch_prefix.decode()}', key={self.election_key!r}}}"

    # ----------------------------------------------------------------------------------------- leadership

    def has_leadership(self) -> bool:
        token = self._leader
        return self._running and token is not None and token.lease.is_valid()

    def _become_leader(self, lease: EtcdLease, key: bytes, revision: int) -> None:
        if not lease.is_valid():
            return
        token = FencingToken(key, revision, lease)
        self._leader = token
        self._fence.grant(token, self._on_fenced_out)
        lease.add_loss_callback(self._on_lease_lost)  # not lost yet: runs later, from mark_lost
        self.leadership_periods += 1
        session_id = uuid.uuid4()
        _log.info("This process is the leader now (%s, session %s)", token.describe(), session_id)
        self._listener.on_grant_leadership(session_id)

    def _step_down(self, reason: str) -> None:
        token, self._leader = self._leader, None
        if token is None:
            return
        self._fence.revoke(token)
        _log.info("Leadership of %s revoked: %s", token.describe(), reason)
        if self._running:
            self._listener.on_revoke_leadership()

    def _on_lease_lost(self, lease: EtcdLease) -> None:
        if self._leader is not None and self._leader.lease is lease:
            self._step_down(f"lease {lease.lease_id:x} lost ({lease.loss_reason})")

    def _on_fenced_out(self, token: FencingToken, what: str) -> None:
        # etcd says our key is gone: stop acting as leader now rather than at the next keep-alive.
        token.lease.mark_lost(f"etcd refused a fenced write ({what}): the election key is gone")

    # ----------------------------------------------------------------------------------------- campaign

    async def _run(self) -> None:
        backoff = Backoff()
        while self._running:
            try:
                lease = await EtcdLease.grant(self._client, self._settings)
            except EtcdClientClosedError:
                return
            except EtcdError as e:
                _log.warning("Cannot join the leader election (retrying): %s", e)
                await backoff.wait()
                continue
            self._lease = lease
            try:
                await self._campaign(lease, backoff)
            finally:
                self._step_down("the election attempt ended")
            if self._running:
                self._lease = None
                await lease.revoke()

    async def _campaign(self, lease: EtcdLease, backoff: Backoff) -> None:
        key = self._paths.election_key(lease.lease_id)
        self.election_key, self.create_revision, self.predecessor = key, None, None
        revision: int | None = None
        while self._running and lease.is_valid():
            try:
                if revision is None:
                    revision = await self._create_key(lease, key)
                    self.create_revision = revision
                await self._wait_for_predecessors(lease, key, revision)
                if not lease.is_valid():
                    return
                self._become_leader(lease, key, revision)
                backoff.reset()
                await self._hold(lease, key, revision)
                return
            except _OwnKeyGoneError as e:
                lease.mark_lost(str(e))
                return
            except EtcdClientClosedError:
                self._running = False
                return
            except EtcdError as e:
                _log.warning("Leader election on etcd interrupted (retrying): %s", e)
                await backoff.wait()

    async def _create_key(self, lease: EtcdLease, key: bytes) -> int:
        result = await self._client.txn(
            [Compare.create_revision(key, "==", 0)],
            [Put(key, owner_description(self.instance_id), lease.lease_id), Get(key)],
            [Get(key)],
            what=f"creation of election key {key.decode()}",
        )
        kvs = result.get_result(1 if result.succeeded else 0)
        if not kvs:
            raise _OwnKeyGoneError(f"election key {key.decode()} vanished right after its creation")
        return kvs[0].create_revision

    async def _wait_for_predecessors(self, lease: EtcdLease, key: bytes, revision: int) -> None:
        """Go's ``waitDeletes``: until no key of the latch has a lower create revision than ours."""
        while lease.is_valid() and self._running:
            listing = await self._client.get_prefix(self._paths.latch_prefix, keys_only=True)
            mine = next((kv for kv in listing.kvs if kv.key == key), None)
            if mine is None or mine.create_revision != revision:
                raise _OwnKeyGoneError(f"election key {key.decode()} was deleted")
            predecessors = [kv for kv in listing.kvs if kv.create_revision < revision]
            if not predecessors:
                self.predecessor = None
                return
            predecessor = max(predecessors, key=lambda kv: kv.create_revision)
            self.predecessor = predecessor.key
            _log.debug("Waiting for the deletion of %s", predecessor.key)
            await self._wait_delete_or_loss(lease, predecessor.key, listing.revision + 1)

    async def _wait_delete_or_loss(self, lease: EtcdLease, key: bytes, start_revision: int) -> bool:
        """True if ``key`` was deleted; returns on lease loss or after the re-check interval too."""
        watch = await self._client.watch(key, start_revision=start_revision, only="DELETE")
        deleted = asyncio.create_task(_first_delete(watch))
        lost = asyncio.create_task(lease.lost.wait())
        try:
            done, _ = await asyncio.wait(
                {deleted, lost}, timeout=self._recheck, return_when="FIRST_COMPLETED"
            )
            return deleted in done and deleted.result()
        finally:
            await cancel_and_wait(deleted, lost)
            await watch.cancel()

    async def _hold(self, lease: EtcdLease, key: bytes, revision: int) -> None:
        """While leader: until the lease is lost or our key is deleted (then the lease counts as lost)."""
        backoff = Backoff()
        while not lease.lost.is_set() and self._running:
            try:
                kv, read_revision = await self._client.get(key)
                if kv is None or kv.create_revision != revision:
                    lease.mark_lost(f"election key {key.decode()} was deleted")
                    return
                if await self._wait_delete_or_loss(lease, key, read_revision + 1):
                    lease.mark_lost(f"election key {key.decode()} was deleted")
                    return
                backoff.reset()
            except EtcdClientClosedError:
                return
            except EtcdError as e:
                _log.debug("Watch on the own election key interrupted (retrying): %s", e)
                await backoff.wait()

    # ----------------------------------------------------------------------------------------- information

    async def publish_leader_information(self, component_id: str, info: LeaderInformation) -> None:
        token = self._fence.current()
        if not self.has_leadership() or token is None:
            _log.debug("Not publishing leader information of %s: not the leader", component_id)
            return
        key = self._paths.connection_info(component_id)
        what = f"publish the leader information of {component_id}"
        try:
            if info.is_empty():
                await fenced_txn(self._client, self._fence, what, [], [Delete(key)])
            else:
                value = encode_leader_information(info)
                await fenced_txn(self._client, self._fence, what, [], [Put(key, value, token.lease.lease_id)])
        except FencingError as e:
            _log.info("Leader information of %s not written: %s", component_id, e)
        except Exception as e:
            self._listener.on_error(e)

    async def delete_leader_information(self, component_id: str) -> None:
        if not self.has_leadership():
            return
        try:
            await fenced_txn(
                self._client,
                self._fence,
                f"delete the leader information of {component_id}",
                [],
                [Delete(self._paths.connection_info(component_id))],
            )
        except FencingError as e:
            _log.info("Leader information of %s not deleted: %s", component_id, e)
        except Exception as e:
            self._listener.on_error(e)

    async def _watch_leader_information(self) -> None:
        """Report changes of stored leader information while leader, so the service can re-publish."""
        backoff = Backoff()
        prefix = self._paths.leader_prefix
        while self._running:
            try:
                listing = await self._client.get_prefix(prefix)
                if self.has_leadership():
                    entries = {}
                    for kv in listing.kvs:
                        component = self._paths.component_of_connection_info(kv.key)
                        if component is not None:
                            entries[component] = decode_leader_information(kv.value, kv.key.decode())
                    self._listener.on_all_leader_information_change(LeaderInformationRegister(entries))
                watch = await self._client.watch(prefix, prefix=True, start_revision=listing.revision + 1)
                try:
                    backoff.reset()
                    async for event in watch.events():
                        component = self._paths.component_of_connection_info(event.kv.key)
                        if component is None or not self.has_leadership():
                            continue
                        info = (
                            decode_leader_information(event.kv.value, event.kv.key.decode())
                            if event.kind == "PUT"
                            else LeaderInformation.empty()
                        )
                        self._listener.on_leader_information_change(component, info)
                finally:
                    await watch.cancel()
                if self._running:
                    await backoff.wait()
            except EtcdClientClosedError:
                return
            except EtcdCompactedError as e:
                _log.info("Leader information watch missed events (%s); reading it again", e)
            except EtcdError as e:
                _log.debug("Leader information watch interrupted (retrying): %s", e)
                await backoff.wait()


class EtcdLeaderElectionDriverFactory(LeaderElectionDriverFactory):
    """Creates the process's election driver (the DefaultLeaderElectionService keeps at most one at a time)."""

    def __init__(
        self, client: EtcdClient, settings: EtcdSettings, paths: EtcdPaths, fence: LeadershipFence
    ) -> None:
        self._client = client
        self._settings = settings
        self._paths = paths
        self._fence = fence
        #: the driver created last (visible for tests and tools)
        self.current: EtcdLeaderElectionDriver | None = None

    async def create(self, listener: LeaderElectionDriverListener) -> EtcdLeaderElectionDriver:
        driver = EtcdLeaderElectionDriver(self._client, self._settings, self._paths, listener, self._fence)
        driver.start()
        self.current = driver
        return driver
