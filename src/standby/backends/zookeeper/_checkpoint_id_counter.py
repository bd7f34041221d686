"""ZooKeeperCheckpointIDCounter: checkpoint ids from a versioned compare-and-set on one znode (reference §2.7).

Port of Flink's ``ZooKeeperCheckpointIDCounter`` over Curator's ``SharedCount``: the node
``jobs/<jobId>/checkpoint_id_counter`` holds a 4-byte big-endian signed int; ``get_and_increment`` reads value and
version and writes ``value + 1`` only if the version is unchanged, retrying on a concurrent update. With a fencing
token (beyond Flink) every write is one multi-op that also checks the leader's latch node and its version, pinned
when the call starts (its CAS retries stay in one leadership session).
"""

from __future__ import annotations

import logging
import struct

from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError

from standby.ha import (
    INITIAL_CHECKPOINT_ID,
    CheckpointIDCounter,
    CorruptHaDataError,
    HighAvailabilityError,
    JobStatus,
)

from ._client import ConnectionState, LatchFencing, Op, TransactionError, ZooKeeperClient, pin_fencing

_log = logging.getLogger(__name__)

__all__ = ["CHECKPOINT_ID_COUNTER_NODE", "ZooKeeperCheckpointIDCounter"]

CHECKPOINT_ID_COUNTER_NODE = "checkpoint_id_counter"
_MAX_INT = 2**31 - 1
# Concurrent increments of one counter retry the CAS; this bounds one call (each retry follows a real change).
_MAX_CAS_ATTEMPTS = 10_000


def _encode(value: int) -> bytes:
    return struct.pack(">i", value)


def _decode(data: bytes, path: str) -> int:
    if len(data) != 4:
        raise CorruptHaDataError(
            f"The checkpoint id counter {path} holds {len(data)} bytes, expected a 4-byte big-endian int; "
            "delete the node to restart the ids at the latest checkpoint id + 1"
        )
    value: int = struct.unpack(">i", data)[0]
    return value


class ZooKeeperCheckpointIDCounter(CheckpointIDCounter):
    """Checkpoint ids of one job, shared by all JobManagers through one znode; starts at 1."""

    def __init__(
        self, client: ZooKeeperClient, counter_path: str, fencing: LatchFencing | None = None
    ) -> None:
        self._client = client
        self.path = counter_path
        self._fencing = fencing
        self._started = False

    async def start(self) -> None:
        """Create the node with the seed 1 if it does not exist (Curator's ``SharedCount.start``); idempotent."""
        if self._started:
            return
        await self._ensure_node(self._fencing)
        self._started = True

    async def shutdown(self, status: JobStatus) -> None:
        self._started = False
        if status.is_globally_terminal_state():
            _log.info("Removing the checkpoint id counter %s (job %s)", self.path, status.value)
            try:
                await self._client.fenced_commit(self._fencing, [Op.delete(self.path)])
            except TransactionError as e:
                if not isinstance(e.error, NoNodeError):
                    raise

    async def get_and_increment(self) -> int:
        fencing = pin_fencing(self._fencing)  # FencingError when this process knows it does not lead
        for _ in range(_MAX_CAS_ATTEMPTS):
            self._check_connection_state()
            value, version = await self._read(fencing)
            new_value = value + 1
            if new_value > _MAX_INT:
                raise HighAvailabilityError(
                    "Checkpoint counter overflow. ZooKeeper checkpoint counter only supports checkpoints Ids up to "
                    f"{_MAX_INT} ({self.path})"
                )
            try:
                await self._client.fenced_commit(fencing, [Op.set(self.path, _encode(new_value), version)])
                return value
            except TransactionError as e:
                if isinstance(e.error, BadVersionError | NoNodeError):
                    continue  # someone else incremented (or a retried write of ours landed): read again
                raise
        raise HighAvailabilityError(
            f"Could not increment the checkpoint id counter {self.path}: {_MAX_CAS_ATTEMPTS} concurrent updates "
            "in a row"
        )

    async def get(self) -> int:
        value, _ = await self._read(self._fencing)
        return value

    async def set_count(self, new_id: int) -> None:
        if new_id > _MAX_INT:
            raise ValueError(
                f"ZooKeeper checkpoint counter only supports checkpoints Ids up to {_MAX_INT}, but given value is "
                f"{new_id}"
            )
        fencing = pin_fencing(self._fencing)
        for _ in range(10):
            try:
                await self._client.fenced_commit(fencing, [Op.set(self.path, _encode(new_id))])
                return
            except TransactionError as e:
                if not isinstance(e.error, NoNodeError):
                    raise
            try:
                await self._client.ensure_path(self.path.rsplit("/", 1)[0])
                await self._client.fenced_commit(fencing, [Op.create(self.path, _encode(new_id))])
                return
            except TransactionError as e:
                if not isinstance(e.error, NodeExistsError):
                    raise
        raise HighAvailabilityError(f"Could not set the checkpoint id counter {self.path}: it kept changing")

    # ------------------------------------------------------------------------------------------------ helpers

    async def _read(self, fencing: LatchFencing | None) -> tuple[int, int]:
        for _ in range(10):
            try:
                data, stat = await self._client.get(self.path)
                return _decode(data, self.path), stat.version
            except NoNodeError:
                await self._ensure_node(fencing)
        raise HighAvailabilityError(f"The checkpoint id counter {self.path} keeps disappearing")

    async def _ensure_node(self, fencing: LatchFencing | None) -> None:
        if await self._client.exists(self.path) is not None:
            return
        await self._client.ensure_path(self.path.rsplit("/", 1)[0])
        try:
            await self._client.fenced_commit(fencing, [Op.create(self.path, _encode(INITIAL_CHECKPOINT_ID))])
        except TransactionError as e:
            if not isinstance(e.error, NodeExistsError):
                raise

    def _check_connection_state(self) -> None:
        # Flink: the counter refuses to hand out ids while the connection is not CONNECTED/RECONNECTED.
        state = self._client.connection_state
        if state in (ConnectionState.SUSPENDED, ConnectionState.LOST):
            raise HighAvailabilityError(
                f"Connection state: {state.value}. The checkpoint id counter {self.path} cannot be used until the "
                "connection to ZooKeeper is back."
            )
