"""FileSystemStateStorageHelper: writes HA payloads to the HA storage dir and hands out pointers to them.

Port of Flink's ``FileSystemStateStorageHelper`` (§1.12): each payload goes to a new file
``<root>/<prefix><12 random chars>`` that is never overwritten (exclusive create, up to 10 attempts with fresh
names); what the coordination store keeps is a small versioned JSON pointer ``{"version":1,"path":...,"size":...}``
instead of Flink's Java-serialized handle. Paths are fsspec URLs or plain local paths.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable
from typing import Any, TypeVar

from fsspec import AbstractFileSystem
from fsspec.core import url_to_fs

from ._config_access import ha_storage_path as ha_storage_path
from ._errors import CorruptHaDataError, StateHandleStoreError
from ._state_handle_store import RetrievableStateHandle, RetrievableStateStorageHelper

T = TypeVar("T")

_log = logging.getLogger(__name__)

#: Flink's ``FileUtils`` alphabet for random file names ('0' appears twice, as in Flink).
RANDOM_FILENAME_ALPHABET = "01234567890abcdef"
RANDOM_FILENAME_LENGTH = 12
#: Flink's ``FileSystemStateStorageHelper`` tries this many fresh names before giving up.
MAX_STORE_ATTEMPTS = 10
POINTER_FORMAT_VERSION = 1

#: Payload file name prefixes used by Flink.
EXECUTION_PLAN_PREFIX = "submittedExecutionPlan"
COMPLETED_CHECKPOINT_PREFIX = "completedCheckpoint"

_random = random.SystemRandom()


def random_filename(prefix: str) -> str:
    """Flink's ``FileUtils.getRandomFilename``: ``prefix`` + 12 characters of ``RANDOM_FILENAME_ALPHABET``."""
    return prefix + "".join(_random.choice(RANDOM_FILENAME_ALPHABET) for _ in range(RANDOM_FILENAME_LENGTH))


def filesystem_for(url: str) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem of ``url`` (a URL or a plain local path) and the path within it."""
    fs, path = url_to_fs(url)
    return fs, str(path)


def delete_payload_files(root: str) -> int:
    """Delete every execution plan and completed checkpoint payload file directly under ``root``; the count.

    For ``cleanup_all_data`` once the coordination store's pointers are gone: every payload is unreferenced then,
    including those of writes cancelled in flight or with an unknown outcome (found by the chaos suite).
    """
    fs, path = filesystem_for(root)
    try:
        entries = fs.ls(path, detail=False)
    except FileNotFoundError:
        return 0
    deleted = 0
    for entry in entries:
        name = str(entry).rstrip("/").rsplit("/", 1)[-1]
        if name.startswith((EXECUTION_PLAN_PREFIX, COMPLETED_CHECKPOINT_PREFIX)):
            try:
                fs.rm(entry)
                deleted += 1
            except FileNotFoundError:
                pass
    return deleted


class FileStateHandle(RetrievableStateHandle[T]):
    """A payload file on the HA storage dir (Flink's ``RetrievableStreamStateHandle``)."""

    def __init__(
        self, fs: AbstractFileSystem, path: str, size: int, decode: Callable[[bytes, str], T]
    ) -> None:
        self._fs = fs
        self._path = path
        self._size = size
        self._decode = decode

    @property
    def path(self) -> str:
        return self._path

    @property
    def state_size(self) -> int:
        return self._size

    @property
    def location(self) -> str:
        return str(self._fs.unstrip_protocol(self._path))

    async def retrieve_state(self) -> T:
        location = self.location
        try:
            data: bytes = await asyncio.to_thread(self._fs.cat_file, self._path)
        except FileNotFoundError:
            raise CorruptHaDataError(
                f"The HA payload file {location} does not exist; the pointer to it is dangling. "
                "Remove the entry or restore the file."
            ) from None
        except OSError as e:
            raise CorruptHaDataError(f"Cannot read the HA payload file {location}: {e}") from e
        try:
            return self._decode(data, location)
        except CorruptHaDataError:
            raise
        except Exception as e:
            raise CorruptHaDataError(f"Cannot decode the HA payload file {location}: {e}") from e

    async def discard_state(self) -> None:
        def remove() -> None:
            try:
                self._fs.rm_file(self._path)
            except FileNotFoundError:
                pass

        await asyncio.to_thread(remove)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FileStateHandle) and other.location == self.location

    def __hash__(self) -> int:
        return hash(self.location)

    def __repr__(self) -> str:
        return f"FileStateHandle({self.location!r}, size={self._size})"


class FileSystemStateStorageHelper(RetrievableStateStorageHelper[T]):
    """Stores payloads as ``<root>/<prefix><random>`` files; ``root`` is an fsspec URL or a local path.

    ``encode`` turns a state into bytes; ``decode(data, location)`` turns bytes back and raises
    ``CorruptHaDataError`` naming ``location`` for data it cannot read. ``random_name`` (a seam for tests) makes
    the file name from the prefix.
    """

    def __init__(
        self,
        root: str,
        prefix: str,
        encode: Callable[[T], bytes],
        decode: Callable[[bytes, str], T],
        *,
        random_name: Callable[[str], str] = random_filename,
    ) -> None:
        if not prefix or "/" in prefix:
            raise ValueError(f"Invalid payload file prefix {prefix!r}")
        self._root_url = root
        self._fs, self._root = filesystem_for(root)
        self._prefix = prefix
        self._encode = encode
        self._decode = decode
        self._random_name = random_name

    @property
    def root(self) -> str:
        return str(self._fs.unstrip_protocol(self._root))

    async def store(self, state: T) -> FileStateHandle[T]:
        data = self._encode(state)
        path = await asyncio.to_thread(self._write_new_file, data)
        return FileStateHandle(self._fs, path, len(data), self._decode)

    def _write_new_file(self, data: bytes) -> str:
        self._fs.makedirs(self._root, exist_ok=True)
        last_error: Exception | None = None
        for _ in range(MAX_STORE_ATTEMPTS):
            path = f"{self._root.rstrip('/')}/{self._random_name(self._prefix)}"
            try:
                with self._fs.open(path, "xb") as out:
                    out.write(data)
                return path
            except FileExistsError as e:
                last_error = e
                continue
            except OSError as e:
                # a partly written file must not be left behind under a name nobody points to
                try:
                    self._fs.rm_file(path)
                except OSError:
                    pass
                last_error = e
                _log.warning("Could not write HA payload file %s: %s; retrying with a new name", path, e)
        raise StateHandleStoreError(
            f"Could not write a payload file with prefix '{self._prefix}' under {self.root} "
            f"after {MAX_STORE_ATTEMPTS} attempts: {last_error}. Check that the HA storage dir is writable."
        ) from last_error

    def serialize_handle(self, handle: RetrievableStateHandle[T]) -> bytes:
        body: dict[str, Any] = {
            "version": POINTER_FORMAT_VERSION,
            "path": handle.location,
            "size": handle.state_size,
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    def deserialize_handle(self, data: bytes) -> FileStateHandle[T]:
        try:
            body = json.loads(data)
            if not isinstance(body, dict):
                raise ValueError("not a JSON object")
            if body.get("version") != POINTER_FORMAT_VERSION:
                raise ValueError(f"unsupported pointer format version {body.get('version')!r}")
            location = body["path"]
            size = body["size"]
            if not isinstance(location, str) or not location or not isinstance(size, int):
                raise ValueError("'path' must be a non-empty string and 'size' an integer")
        except (ValueError, KeyError, UnicodeDecodeError) as e:
            preview = data[:80]
            raise CorruptHaDataError(f"Cannot read the state handle pointer {preview!r}: {e}") from e
        fs, path = filesystem_for(location)
        return FileStateHandle(fs, path, size, self._decode)

    def __repr__(self) -> str:
        return f"FileSystemStateStorageHelper(root={self.root!r}, prefix={self._prefix!r})"
