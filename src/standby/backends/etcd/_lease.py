"""etcd leases kept alive by their own task (Go's ``concurrency.Session``), and the per-process lock lease.

A lease is *lost* when etcd says it expired or does not exist, or when no keep-alive succeeded for a whole TTL: the
local deadline is the send time of the last successful keep-alive plus the TTL etcd reported, which is never later
than the expiry etcd computes (it restarts the TTL when it receives the request). So a process that was paused
or cut off considers its lease lost no later than etcd does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable

from ._client import EtcdClient, EtcdClientClosedError, EtcdError, EtcdSettings
from ._tasks import cancel_and_wait

_log = logging.getLogger(__name__)

#: delay before retrying a failed keep-alive (Go's clientv3 retries after 500 ms; our TTLs can be 1 s)
_KEEP_ALIVE_RETRY = 0.25
_REVOKE_TIMEOUT = 1.0


def owner_description(instance_id: str) -> bytes:
    """Small JSON naming the process that owns a key (shown by ``standby ha inspect``)."""
    return json.dumps({"instance": instance_id, "host": socket.gethostname(), "pid": os.getpid()}).encode()


class EtcdLease:
    """A granted lease with its keep-alive task. ``lost`` is set once; a lost lease is never revived."""

    def __init__(
        self, client: EtcdClient, lease_id: int, ttl: int, granted_at: float, interval: float
    ) -> None:
        self._client = client
        self.lease_id = lease_id
        self.ttl = ttl
        self._interval = interval
        self._deadline = granted_at + ttl
        self.lost = asyncio.Event()
        self.loss_reason: str | None = None
        #: successful keep-alives so far (tests wait on it instead of sleeping)
        self.keep_alive_count = 0
        self.keep_alive_event = asyncio.Event()
        self._on_lost: list[Callable[[EtcdLease], None]] = []
        self._task: asyncio.Task[None] | None = None

    @staticmethod
    async def grant(client: EtcdClient, settings: EtcdSettings) -> EtcdLease:
        """Grant a lease of ``settings.lease_ttl`` and start keeping it alive."""
        granted_at = time.monotonic()
        lease_id, ttl = await client.grant_lease(settings.lease_ttl_seconds)
        if ttl <= 0:
            raise EtcdError(f"etcd at {client.description} granted lease {lease_id:x} with TTL {ttl}")
        # etcd may grant more than asked (its minimum TTL grows with the raft election timeout): the default
        # interval follows the granted TTL
        explicit = settings.keep_alive_interval
        interval = explicit if explicit is not None and explicit < ttl else ttl / 3
        lease = EtcdLease(client, lease_id, ttl, granted_at, interval)
        lease._task = asyncio.create_task(lease._keep_alive(), name=f"etcd-lease-{lease_id:x}-keep-alive")
        return lease

    @property
    def deadline(self) -> float:
        """Monotonic time by which etcd may expire the lease unless a keep-alive succeeds."""
        return self._deadline

    def is_valid(self) -> bool:
        """Not lost and still inside its TTL locally (answered without a round trip)."""
        return not self.lost.is_set() and time.monotonic() < self._deadline

    def add_loss_callback(self, callback: Callable[[EtcdLease], None]) -> None:
        """Run ``callback(lease)`` (sync, on the loop) when the lease is lost; at once if it already is."""
        if self.lost.is_set():
            callback(self)
        else:
            self._on_lost.append(callback)

    def mark_lost(self, reason: str) -> None:
        if self.lost.is_set():
            return
        self.loss_reason = reason
        self.lost.set()
        _log.info("etcd lease %x lost: %s", self.lease_id, reason)
        callbacks, self._on_lost = self._on_lost, []
        for callback in callbacks:
            try:
                callback(self)
            except Exception:
                _log.exception("Lease-loss callback of lease %x failed", self.lease_id)

    async def _keep_alive(self) -> None:
        next_at = time.monotonic() + self._interval
        while not self.lost.is_set():
            now = time.monotonic()
            if now >= self._deadline:
                self.mark_lost(f"no keep-alive succeeded within its TTL of {self.ttl} s")
                return
            wake = min(next_at, self._deadline)
            if wake > now:
                # a timer until the next keep-alive or the deadline, whichever is first
                await asyncio.sleep(wake - now)
                continue
            sent = time.monotonic()
            try:
                remaining = await self._client.keep_alive_once(
                    self.lease_id,
                    timeout=max(0.05, min(self._client.settings.connection_timeout, self._deadline - sent)),
                )
            except EtcdClientClosedError:
                return  # the services closed; etcd expires the lease after its TTL
            except EtcdError as e:
                _log.warning("Keep-alive of etcd lease %x failed (retrying): %s", self.lease_id, e)
                next_at = time.monotonic() + min(self._interval, _KEEP_ALIVE_RETRY)
                continue
            if remaining <= 0:
                self.mark_lost("etcd reports it expired or does not exist")
                return
            self._deadline = sent + remaining
            self.keep_alive_count += 1
            self.keep_alive_event.set()
            self.keep_alive_event = asyncio.Event()
            next_at = sent + self._interval

    async def wait_keep_alives(self, count: int, timeout: float) -> None:
        """Wait until ``count`` more keep-alives succeeded (for tests and tools)."""
        target = self.keep_alive_count + count

        async def wait() -> None:
            while self.keep_alive_count < target:
                if self.lost.is_set():
                    raise EtcdError(f"lease {self.lease_id:x} was lost: {self.loss_reason}")
                event = self.keep_alive_event
                lost = asyncio.ensure_future(self.lost.wait())
                try:
                    await asyncio.wait(
                        {asyncio.ensure_future(event.wait()), lost}, return_when="FIRST_COMPLETED"
                    )
                finally:
                    lost.cancel()

        async with asyncio.timeout(timeout):
            await wait()

    async def stop(self) -> None:
        """Stop keeping the lease alive (etcd expires it after its TTL)."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def revoke(self) -> None:
        """Stop and revoke: etcd deletes every key attached at once. Best effort, bounded."""
        await self.stop()
        self.mark_lost("revoked")
        try:
            await self._client.revoke_lease(
                self.lease_id, timeout=min(_REVOKE_TIMEOUT, self._client.settings.connection_timeout)
            )
        except EtcdError as e:
            _log.info(
                "Could not revoke etcd lease %x (it expires after %s s): %s", self.lease_id, self.ttl, e
            )


class EtcdLockLease:
    """The lease of one process that carries its state-handle locks, so they vanish with the process (the
    counterpart of the ZooKeeper session that owns Flink's ephemeral lock nodes). Granted on first use and
    granted anew after a loss; locks held under a lost lease are gone, as after a ZooKeeper session expiry."""

    def __init__(self, client: EtcdClient, settings: EtcdSettings) -> None:
        self._client = client
        self._settings = settings
        self._lease: EtcdLease | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        self.instance_id = uuid.uuid4().hex

    @property
    def current(self) -> EtcdLease | None:
        return self._lease

    async def lease_id(self) -> int:
        async with self._lock:
            if self._closed:
                raise EtcdError("The etcd lock lease is closed (the HA services were closed)")
            lease = self._lease
            if lease is None or not lease.is_valid():
                if lease is not None:
                    _log.warning(
                        "The etcd lock lease %x was lost (%s); the locks held under it are gone. Granting a new one.",
                        lease.lease_id,
                        lease.loss_reason or "expired",
                    )
                    await lease.stop()
                lease = self._lease = await EtcdLease.grant(self._client, self._settings)
            return lease.lease_id

    def invalidate(self, lease_id: int, reason: str) -> None:
        """etcd rejected ``lease_id`` (e.g. "requested lease not found"): use a new lease next time."""
        if self._lease is not None and self._lease.lease_id == lease_id:
            self._lease.mark_lost(reason)

    async def close(self) -> None:
        async with self._lock:
            self._closed = True
            lease, self._lease = self._lease, None
        if lease is not None:
            await lease.revoke()
