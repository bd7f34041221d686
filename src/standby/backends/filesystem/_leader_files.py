"""The leader files of the filesystem backend: ``leader/latch.lock``, ``leader/epoch``, ``leader/<component>/connection_info``.

``connection_info`` is JSON: ``{"version":1,"sessionId":...,"address":...,"epoch":<n>,"writer":{pid,...}}``;
``epoch`` is ``{"version":1,"epoch":<n>}``, incremented by every new leader while it holds the lock.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from standby.ha import CorruptHaDataError, LeaderInformation

from ._files import ProcessIdentity, is_alive, json_bytes, read_or_none

LATCH_FILE = "latch.lock"
EPOCH_FILE = "epoch"
CONNECTION_INFO_FILE = "connection_info"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class StoredLeaderInformation:
    """What a ``connection_info`` file says: the information, the writer's fencing epoch and identity."""

    info: LeaderInformation
    epoch: int
    writer: ProcessIdentity | None


def encode_leader_information(
    info: LeaderInformation, epoch: int, writer: ProcessIdentity, writer_id: str
) -> bytes:
    body: dict[str, Any] = {
        "version": FORMAT_VERSION,
        "sessionId": str(info.session_id) if info.session_id is not None else None,
        "address": info.address,
        "epoch": epoch,
        "writer": {**writer.to_json(), "instance": writer_id},
    }
    return json_bytes(body)


def decode_leader_information(raw: bytes, source: Path) -> StoredLeaderInformation:
    if not raw.strip():
        return StoredLeaderInformation(LeaderInformation.empty(), -1, None)
    try:
        body = json.loads(raw)
        if not isinstance(body, dict) or body.get("version") != FORMAT_VERSION:
            raise ValueError("unknown format")
        session = body.get("sessionId")
        address = body.get("address")
        info = (
            LeaderInformation.empty()
            if session is None and address is None
            else LeaderInformation.known(uuid.UUID(str(session)), str(address))
        )
        return StoredLeaderInformation(
            info, int(body.get("epoch", -1)), ProcessIdentity.from_json(body.get("writer"))
        )
    except (ValueError, TypeError, UnicodeDecodeError) as e:
        raise CorruptHaDataError(f"Cannot read the leader information file {source}: {e}") from e


def read_epoch(leader_dir: Path) -> int:
    """The current fencing epoch (0 before the first leader)."""
    raw = read_or_none(leader_dir / EPOCH_FILE)
    if raw is None:
        return 0
    try:
        return int(json.loads(raw)["epoch"])
    except (ValueError, KeyError, TypeError):
        return 0


def encode_epoch(epoch: int) -> bytes:
    return json_bytes({"version": FORMAT_VERSION, "epoch": epoch})


def effective_leader_information(stored: StoredLeaderInformation, current_epoch: int) -> LeaderInformation:
    """The information a retriever should believe: empty if its writer died or a newer leader was elected.

    Stands in for ZooKeeper's ephemeral ``connection_info`` nodes, which vanish with their writer's session.
    """
    if stored.info.is_empty():
        return stored.info
    if stored.epoch < current_epoch:
        return LeaderInformation.empty()
    if stored.writer is not None and is_alive(stored.writer) is False:
        return LeaderInformation.empty()
    return stored.info


def _leader_information_files(leader_dir: Path) -> list[Path]:
    try:
        return [p / CONNECTION_INFO_FILE for p in leader_dir.iterdir() if p.is_dir()]
    except FileNotFoundError:
        return []


def highest_leader_information_epoch(leader_dir: Path) -> int:
    """The highest epoch any ``connection_info`` file was written under (0 if none)."""
    highest = 0
    for path in _leader_information_files(leader_dir):
        raw = read_or_none(path)
        if raw is not None:
            with contextlib.suppress(CorruptHaDataError):
                highest = max(highest, decode_leader_information(raw, path).epoch)
    return highest


def remove_stale_leader_information(leader_dir: Path, epoch: int) -> list[str]:
    """Delete the ``connection_info`` files written under an older epoch; returns their component ids."""
    removed: list[str] = []
    for path in _leader_information_files(leader_dir):
        component_dir = path.parent
        raw = read_or_none(path)
        if raw is None:
            continue
        try:
            stale = decode_leader_information(raw, path).epoch < epoch
        except CorruptHaDataError:
            stale = True
        if stale:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            with contextlib.suppress(OSError):
                component_dir.rmdir()
            removed.append(component_dir.name)
    return removed
