"""Leader retrieval on etcd: read the component's ``connection_info`` key, then watch it.

After a broken watch (connection lost) the leader is reported unknown — ZooKeeper's default
``ON_SUSPENDED_CONNECTION`` policy — and the key is read again once etcd answers; after a compacted revision the
key is simply re-read and watched from the current revision. Unreadable values count as "no leader" (Kubernetes'
``parseLeaderInformationSafely``); the leader rewrites them (self-healing).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid

from standby.ha import (
    FatalErrorHandler,
    LeaderInformation,
    LeaderRetrievalDriver,
    LeaderRetrievalDriverFactory,
    LeaderRetrievalEventHandler,
)

from ._client import EtcdClient, EtcdClientClosedError, EtcdCompactedError, EtcdError, KeyValue
from ._tasks import Backoff, cancel_and_wait

_log = logging.getLogger(__name__)

_FORMAT_VERSION = 1


def encode_leader_information(info: LeaderInformation) -> bytes:
    """``{"version": 1, "sessionId": ..., "address": ...}``."""
    return json.dumps(
        {"version": _FORMAT_VERSION, "sessionId": str(info.session_id), "address": info.address},
        sort_keys=True,
    ).encode()


def decode_leader_information(data: bytes | None, source: str = "<bytes>") -> LeaderInformation:
    """The stored leader information; empty for missing or unreadable data (logged)."""
    if not data:
        return LeaderInformation.empty()
    try:
        body = json.loads(data)
        return LeaderInformation.known(uuid.UUID(str(body["sessionId"])), str(body["address"]))
    except (ValueError, KeyError, TypeError) as e:
        _log.warning("Ignoring unreadable leader information in %s (%r): %s", source, data[:200], e)
        return LeaderInformation.empty()


class EtcdLeaderRetrievalDriver(LeaderRetrievalDriver):
    """Watches ``<root>/<cluster-id>/leader/<component>/connection_info`` and reports every change."""

    def __init__(
        self,
        client: EtcdClient,
        key: bytes,
        handler: LeaderRetrievalEventHandler,
        fatal_error_handler: FatalErrorHandler,
    ) -> None:
        self._client = client
        self._key = key
        self._handler = handler
        self._fatal_error_handler = fatal_error_handler
        self._running = True
        self._task: asyncio.Task[None] | None = None
        #: read/watch (re)starts so far, visible for tests
        self.restarts = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"etcd-leader-retrieval {self._key.decode()}")

    def _notify(self, kv: KeyValue | None) -> None:
        if self._running:
            self._handler.notify_leader_address(
                decode_leader_information(
                    kv.value if kv is not None else None, self._key.decode(errors="replace")
                )
            )

    async def _run(self) -> None:
        backoff = Backoff()
        known = False
        while self._running:
            try:
                kv, revision = await self._client.get(self._key)
                self.restarts += 1
                self._notify(kv)
                known = True
                watch = await self._client.watch(self._key, start_revision=revision + 1)
                try:
                    backoff.reset()
                    async for event in watch.events():
                        self._notify(event.kv if event.kind == "PUT" else None)
                finally:
                    await watch.cancel()
                if self._running:
                    await backoff.wait()  # the stream was shut down under us: read again
            except EtcdClientClosedError:
                return
            except EtcdCompactedError as e:
                _log.info("Leader retrieval of %s missed events (%s); reading it again", self._key, e)
            except EtcdError as e:
                if known:
                    # ZooKeeper's ON_SUSPENDED_CONNECTION: the leader is unknown while etcd is unreachable.
                    _log.warning(
                        "Lost the etcd watch on %s: %s; leader unknown until it is back", self._key, e
                    )
                    known = False
                    self._notify(None)
                else:
                    _log.debug("etcd still unreachable for %s: %s", self._key, e)
                await backoff.wait()
            except Exception as e:
                if self._running:
                    self._fatal_error_handler.on_fatal_error(e)
                return

    async def close(self) -> None:
        self._running = False
        task, self._task = self._task, None
        await cancel_and_wait(task)


class EtcdLeaderRetrievalDriverFactory(LeaderRetrievalDriverFactory):
    def __init__(self, client: EtcdClient, key: bytes) -> None:
        self._client = client
        self._key = key

    async def create(
        self, handler: LeaderRetrievalEventHandler, fatal_error_handler: FatalErrorHandler
    ) -> EtcdLeaderRetrievalDriver:
        driver = EtcdLeaderRetrievalDriver(self._client, self._key, handler, fatal_error_handler)
        driver.start()
        return driver
