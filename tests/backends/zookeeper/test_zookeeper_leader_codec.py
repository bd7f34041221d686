"""Leader information bytes: Flink's Java serialization (writeUTF(address) + writeObject(UUID)), byte for byte.

The golden bytes below were produced by a real JDK 17 (``ObjectOutputStream.writeUTF`` then ``writeObject``),
which is what Flink's ``ZooKeeperUtils.writeLeaderInformationToZooKeeper`` writes.
"""

from __future__ import annotations

import hashlib
import struct
import uuid

import pytest

from standby.backends.zookeeper import decode_leader_information, encode_leader_information
from standby.ha import CorruptHaDataError, LeaderInformation

SESSION = uuid.UUID("123e4567-e89b-12d3-a456-426614174000")
ADDRESS = "pekko://flink@10.0.0.1:6123/user/rpc/dispatcher_1"

# JDK 17: writeUTF(ADDRESS); writeObject(SESSION)
JDK_BYTES = bytes.fromhex(
    "aced0005"
    "7733"  # TC_BLOCKDATA, 0x33 = 51 bytes
    "0031"  # writeUTF length 49
    "70656b6b6f3a2f2f666c696e6b4031302e302e302e313a363132332f757365722f7270632f646973706174636865725f31"
    "7372000e6a6176612e7574696c2e55554944"  # TC_OBJECT TC_CLASSDESC "java.util.UUID"
    "bc9903f7986d852f020002"  # serialVersionUID, SC_SERIALIZABLE, 2 fields
    "4a000c6c656173745369674269747"
    "34a000b6d6f737453696742697473"  # J leastSigBits, J mostSigBits
    "7870"  # TC_ENDBLOCKDATA, TC_NULL super class
    "a456426614174000"  # leastSigBits
    "123e4567e89b12d3"  # mostSigBits
)

# JDK 17: a string of NUL, Latin-1, BMP and a supplementary character, and UUID(-1, 1)
JDK_BYTES_SPECIAL = bytes.fromhex(
    "aced00057710000e68c080c3a9e282aceda0bdedb880"
    "7372000e6a6176612e7574696c2e55554944bc9903f7986d852f0200024a000c6c65617374536967426974734a000b"
    "6d6f73745369674269747378700000000000000001ffffffffffffffff"
)


def _alphabet(n: int) -> str:
    return "".join(chr(ord("a") + i % 26) for i in range(n))


def test_encodes_flinks_bytes() -> None:
    assert encode_leader_information(LeaderInformation.known(SESSION, ADDRESS)) == JDK_BYTES


def test_decodes_flinks_bytes() -> None:
    assert decode_leader_information(JDK_BYTES) == LeaderInformation.known(SESSION, ADDRESS)


def test_modified_utf8_and_uuid_bits() -> None:
    info = LeaderInformation.known(uuid.UUID(int=((2**64 - 1) << 64) | 1), "h\u0000\u00e9\u20ac\U0001f600")
    assert encode_leader_information(info) == JDK_BYTES_SPECIAL
    assert decode_leader_information(JDK_BYTES_SPECIAL) == info


@pytest.mark.parametrize(
    ("length", "jdk_size", "jdk_sha256"),
    [
        # > 255 bytes of block data: a TC_BLOCKDATALONG header (7A + 4-byte length)
        (300, 387, "1f33c3afbc5e1e4f295b99ee90524ab6eead971690087b60ec441192f1b5f9e3"),
        # > 1024 bytes: ObjectOutputStream splits block data into blocks of at most 1024 bytes
        (2500, 2597, "7fc5912cc297e2e44e598e2baf29f96b4e61be699cfb7640a5ddf0b9d309eb06"),
    ],
)
def test_long_addresses_use_jdk_block_layout(length: int, jdk_size: int, jdk_sha256: str) -> None:
    info = LeaderInformation.known(SESSION, _alphabet(length))
    encoded = encode_leader_information(info)
    assert len(encoded) == jdk_size
    assert hashlib.sha256(encoded).hexdigest() == jdk_sha256
    assert encoded[4] == 0x7A
    assert decode_leader_information(encoded) == info


def test_block_headers_of_a_long_address() -> None:
    encoded = encode_leader_information(LeaderInformation.known(SESSION, _alphabet(2500)))
    # 2502 bytes of writeUTF data: blocks of 1024, 1024 and 454 bytes
    assert encoded[4:9] == b"\x7a" + struct.pack(">i", 1024)
    assert encoded[9 + 1024 : 14 + 1024] == b"\x7a" + struct.pack(">i", 1024)
    assert encoded[14 + 2048 : 19 + 2048] == b"\x7a" + struct.pack(">i", 454)


def test_empty_information_is_empty_data() -> None:
    assert encode_leader_information(LeaderInformation.empty()) == b""
    assert decode_leader_information(b"") == LeaderInformation.empty()
    assert decode_leader_information(None) == LeaderInformation.empty()


@pytest.mark.parametrize(
    "data",
    [
        b"garbage",
        JDK_BYTES[:-1],  # truncated UUID
        JDK_BYTES[:20],  # truncated address
        JDK_BYTES.replace(b"java.util.UUID", b"java.util.UUIX"),
        b'{"address": "x"}',
    ],
)
def test_corrupt_bytes_raise_corrupt_ha_data(data: bytes) -> None:
    with pytest.raises(CorruptHaDataError, match="/leader/dispatcher/connection_info"):
        decode_leader_information(data, "/leader/dispatcher/connection_info")


def test_address_too_long_for_write_utf() -> None:
    with pytest.raises(ValueError, match="writeUTF"):
        encode_leader_information(LeaderInformation.known(SESSION, "x" * 70_000))
