"""CheckpointIDCounter on etcd: one key ``jobs/<jobId>/checkpoint_id_counter`` holding the next id (decimal).

Flink's ``ZooKeeperCheckpointIDCounter`` is a Curator ``SharedCount`` (CAS on the znode version, seed 1); here the
CAS is a txn comparing the key's create revision (absent: 0) or mod revision, fenced by the leader's election key.
An absent key means 1 (Flink: ``INITIAL_CHECKPOINT_ID``).
"""

from __future__ import annotations

import logging

from standby.ha import (
    INITIAL_CHECKPOINT_ID,
    CheckpointIDCounter,
    CheckpointStoreError,
    CorruptHaDataError,
    JobStatus,
)

from ._client import Compare, Delete, EtcdClient, KeyValue, Put
from ._fencing import LeadershipFence, fenced_txn

_log = logging.getLogger(__name__)

_MAX_ATTEMPTS = 64


class EtcdCheckpointIDCounter(CheckpointIDCounter):
    def __init__(self, client: EtcdClient, key: bytes, fence: LeadershipFence | None) -> None:
        self._client = client
        self._key = key
        self._fence = fence
        self._running = False

    def __repr__(self) -> str:
        return f"EtcdCheckpointIDCounter({self._key.decode()})"

    def _value(self, kv: KeyValue | None) -> int:
        if kv is None:
            return INITIAL_CHECKPOINT_ID
        try:
            return int(kv.value.decode("ascii"))
        except (UnicodeDecodeError, ValueError) as e:
            raise CorruptHaDataError(
                f"The checkpoint id counter in etcd key {self._key.decode()} holds {kv.value[:40]!r}, not a number; "
                "set it with set_count() or delete the key"
            ) from e

    async def start(self) -> None:
        self._running = True

    async def shutdown(self, status: JobStatus) -> None:
        if not self._running:
            return
        self._running = False
        if status.is_globally_terminal_state():
            _log.info("Removing %s (job %s)", self._key.decode(), status.value)
            await fenced_txn(
                self._client, self._fence, f"delete {self._key.decode()}", [], [Delete(self._key)]
            )

    async def get_and_increment(self) -> int:
        what = f"increment {self._key.decode()}"
        if self._fence is not None:
            self._fence.require(what)  # fail fast, without a round trip, when not the leader
        for _ in range(_MAX_ATTEMPTS):
            kv, _revision = await self._client.get(self._key)
            current = self._value(kv)
            compare = (
                Compare.create_revision(self._key, "==", 0)
                if kv is None
                else Compare.mod_revision(self._key, "==", kv.mod_revision)
            )
            result = await fenced_txn(
                self._client,
                self._fence,
                what,
                [compare],
                [Put(self._key, str(current + 1).encode())],
            )
            if result.succeeded:
                return current
        raise CheckpointStoreError(
            f"Could not increment the checkpoint id counter {self._key.decode()}: it changed concurrently "
            f"{_MAX_ATTEMPTS} times in a row (is another JobManager running this job?)"
        )

    async def get(self) -> int:
        kv, _revision = await self._client.get(self._key)
        return self._value(kv)

    async def set_count(self, new_id: int) -> None:
        await fenced_txn(
            self._client, self._fence, f"set {self._key.decode()}", [], [Put(self._key, str(new_id).encode())]
        )
