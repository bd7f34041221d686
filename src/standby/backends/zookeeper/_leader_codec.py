"""Leader information on the wire: Flink's Java-serialization bytes, so Flink's tools can read ours and vice versa.

Flink's ``ZooKeeperUtils.writeLeaderInformationToZooKeeper`` writes, through one ``ObjectOutputStream``,
``writeUTF(address)`` followed by ``writeObject(sessionUUID)``. The bytes are::

    AC ED 00 05                                   stream magic and version
    77 <len:1> | 7A <len:4>                       block data (at most 1024 bytes per block), holding
        <utflen:2> <address in modified UTF-8>    the writeUTF of the address
    73 72 00 0E "java.util.UUID"                  new object, new class descriptor
        BC 99 03 F7 98 6D 85 2F 02 00 02          serialVersionUID, SC_SERIALIZABLE, two fields
        4A 00 0C "leastSigBits" 4A 00 0B "mostSigBits" 78 70
    <least significant 8 bytes> <most significant 8 bytes>   big-endian field values

Empty leader information is stored as empty node data (Flink stores ``null``).
"""

from __future__ import annotations

import struct
from uuid import UUID

from standby.ha import CorruptHaDataError, LeaderInformation

__all__ = ["decode_leader_information", "encode_leader_information"]

_STREAM_HEADER = b"\xac\xed\x00\x05"
_TC_BLOCKDATA = 0x77
_TC_BLOCKDATALONG = 0x7A
# ObjectOutputStream's BlockDataOutputStream flushes its buffer in blocks of at most this many bytes.
_MAX_BLOCK_SIZE = 1024
_UUID_OBJECT = (
    b"\x73\x72\x00\x0ejava.util.UUID"
    b"\xbc\x99\x03\xf7\x98\x6d\x85\x2f\x02\x00\x02"
    b"\x4a\x00\x0cleastSigBits"
    b"\x4a\x00\x0bmostSigBits"
    b"\x78\x70"
)
_MAX_UTF_LENGTH = 0xFFFF


def _modified_utf8(text: str) -> bytes:
    """Java's modified UTF-8 (``DataOutput.writeUTF``): UTF-16 code units, NUL as C0 80, no 4-byte forms."""
    units = text.encode("utf-16-be", "surrogatepass")
    out = bytearray()
    for i in range(0, len(units), 2):
        c = (units[i] << 8) | units[i + 1]
        if 0x0001 <= c <= 0x007F:
            out.append(c)
        elif c <= 0x07FF:  # includes NUL
            out += bytes((0xC0 | (c >> 6), 0x80 | (c & 0x3F)))
        else:
            out += bytes((0xE0 | (c >> 12), 0x80 | ((c >> 6) & 0x3F), 0x80 | (c & 0x3F)))
    return bytes(out)


def _decode_modified_utf8(data: bytes) -> str:
    units = bytearray()
    i = 0
    n = len(data)
    while i < n:
        b = data[i]
        if b < 0x80:
            c, i = b, i + 1
        elif (b & 0xE0) == 0xC0 and i + 1 < n and (data[i + 1] & 0xC0) == 0x80:
            c, i = ((b & 0x1F) << 6) | (data[i + 1] & 0x3F), i + 2
        elif (
            (b & 0xF0) == 0xE0 and i + 2 < n and (data[i + 1] & 0xC0) == 0x80 and (data[i + 2] & 0xC0) == 0x80
        ):
            c, i = ((b & 0x0F) << 12) | ((data[i + 1] & 0x3F) << 6) | (data[i + 2] & 0x3F), i + 3
        else:
            raise ValueError(f"malformed modified UTF-8 at byte {i}")
        units += c.to_bytes(2, "big")
    return bytes(units).decode("utf-16-be", "surrogatepass")


def _block_header(length: int) -> bytes:
    if length <= 0xFF:
        return bytes((_TC_BLOCKDATA, length))
    return bytes((_TC_BLOCKDATALONG,)) + struct.pack(">i", length)


def encode_leader_information(info: LeaderInformation) -> bytes:
    """Flink's bytes for ``info``; ``b""`` for empty leader information."""
    if info.is_empty():
        return b""
    assert info.address is not None
    assert info.session_id is not None
    encoded = _modified_utf8(info.address)
    if len(encoded) > _MAX_UTF_LENGTH:
        raise ValueError(
            f"Leader address is too long for Java's writeUTF ({len(encoded)} bytes, at most {_MAX_UTF_LENGTH})"
        )
    payload = struct.pack(">H", len(encoded)) + encoded
    out = bytearray(_STREAM_HEADER)
    for start in range(0, len(payload), _MAX_BLOCK_SIZE):
        block = payload[start : start + _MAX_BLOCK_SIZE]
        out += _block_header(len(block)) + block
    value = info.session_id.int
    out += _UUID_OBJECT
    out += struct.pack(">QQ", value & 0xFFFF_FFFF_FFFF_FFFF, value >> 64)
    return bytes(out)


def decode_leader_information(data: bytes | None, source: str = "<bytes>") -> LeaderInformation:
    """Inverse of :func:`encode_leader_information`; ``None`` or ``b""`` is empty leader information.

    Raises ``CorruptHaDataError`` naming ``source`` for bytes that are not Flink's layout.
    """
    if not data:
        return LeaderInformation.empty()
    try:
        return _decode(bytes(data))
    except (ValueError, struct.error, IndexError) as e:
        raise CorruptHaDataError(
            f"Cannot read the leader information in {source}: {e}. The node is rewritten by the leader; "
            "if it persists, delete the node."
        ) from e


def _decode(data: bytes) -> LeaderInformation:
    if not data.startswith(_STREAM_HEADER):
        raise ValueError("not a Java serialization stream (bad magic)")
    pos = len(_STREAM_HEADER)
    block = bytearray()
    while pos < len(data) and data[pos] in (_TC_BLOCKDATA, _TC_BLOCKDATALONG):
        if data[pos] == _TC_BLOCKDATA:
            length = data[pos + 1]
            pos += 2
        else:
            (length,) = struct.unpack_from(">i", data, pos + 1)
            pos += 5
            if length < 0:
                raise ValueError("negative block length")
        if pos + length > len(data):
            raise ValueError("truncated block data")
        block += data[pos : pos + length]
        pos += length
    if len(block) < 2:
        raise ValueError("missing the address (writeUTF) block")
    (utf_length,) = struct.unpack_from(">H", block, 0)
    if utf_length != len(block) - 2:
        raise ValueError(
            f"address length {utf_length} does not match the block data ({len(block) - 2} bytes)"
        )
    address = _decode_modified_utf8(bytes(block[2:]))
    if data[pos : pos + len(_UUID_OBJECT)] != _UUID_OBJECT:
        raise ValueError("the session id is not a serialized java.util.UUID")
    pos += len(_UUID_OBJECT)
    if len(data) - pos != 16:
        raise ValueError(f"expected 16 bytes of UUID fields, found {len(data) - pos}")
    least, most = struct.unpack_from(">QQ", data, pos)
    return LeaderInformation.known(UUID(int=(most << 64) | least), address)
