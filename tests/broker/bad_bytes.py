"""Hand-built bytes for the bad-input tests: raw frames, request headers and broken record batches.

Everything here is built by hand (not by ``logq.protocol``), because the point is to send what the codec
would refuse to encode.
"""

from __future__ import annotations

import struct
import zlib

from crc32c import crc32c

from logq import batch as rb

_SIZE = struct.Struct(">i")
_PREFIX = struct.Struct(">hhi")  # api_key, api_version, correlation_id (request header v1)
_CRC = struct.Struct(">I")
_ATTRIBUTES = struct.Struct(">h")


def frame(payload: bytes) -> bytes:
    """``payload`` with a correct int32 size prefix."""
    return _SIZE.pack(len(payload)) + payload


def size_prefix(size: int) -> bytes:
    return _SIZE.pack(size)


def header_v1(api_key: int, api_version: int, correlation_id: int, client_id: bytes | None = b"bad") -> bytes:
    """Request header v1: int16 api_key, int16 api_version, int32 correlation_id, int16-length client_id."""
    head = _PREFIX.pack(api_key, api_version, correlation_id)
    if client_id is None:
        return head + struct.pack(">h", -1)
    return head + struct.pack(">h", len(client_id)) + client_id


def raw_request(
    api_key: int, api_version: int, correlation_id: int, body: bytes = b"", client_id: bytes | None = b"bad"
) -> bytes:
    """A complete frame with any api_key/version, including ones the codec does not know."""
    return frame(header_v1(api_key, api_version, correlation_id, client_id) + body)


def api_versions_v3(correlation_id: int) -> bytes:
    """ApiVersions v3 as librdkafka sends it: header v2 (a tag buffer after client_id) and a flexible body
    (compact strings client_software_name and _version, then a tag buffer)."""
    name, version = b"librdkafka", b"2.16.0"
    body = bytes([len(name) + 1]) + name + bytes([len(version) + 1]) + version + b"\x00"
    return frame(header_v1(18, 3, correlation_id, b"rdkafka") + b"\x00" + body)


def fallback_reply(correlation_id: int) -> bytes:
    """The frame (without its size prefix) Kafka sends to an ApiVersions request above v2: v0 layout,
    error 35, a one-entry array (18, 0, 2), no throttle field, response header v0."""
    return struct.pack(">ihihhh", correlation_id, 35, 1, 18, 0, 2)


def replace_once(data: bytes, old: bytes, new: bytes) -> bytes:
    """Swap one occurrence of ``old`` for ``new`` (same length, so the frame's size prefix stays right)."""
    assert len(old) == len(new)
    assert data.count(old) == 1, f"{old!r} occurs {data.count(old)} times"
    return data.replace(old, new)


def with_crc(batch: bytes | bytearray) -> bytes:
    """``batch`` with its CRC-32C recomputed over bytes [21, end), as a producer would have written it."""
    out = bytearray(batch)
    _CRC.pack_into(out, 17, crc32c(bytes(out[rb.CRC_START :])))
    return bytes(out)


def with_attributes(batch: bytes, attributes: int) -> bytes:
    """``batch`` with other attribute bits and a valid CRC."""
    out = bytearray(batch)
    _ATTRIBUTES.pack_into(out, 21, attributes)
    return with_crc(out)


def with_bad_crc(batch: bytes) -> bytes:
    out = bytearray(batch)
    _CRC.pack_into(out, 17, _CRC.unpack_from(out, 17)[0] ^ 0x5A5A5A5A)
    return bytes(out)


def with_last_offset_delta(batch: bytes, delta: int) -> bytes:
    """A batch whose lastOffsetDelta disagrees with recordsCount, with a valid CRC."""
    out = bytearray(batch)
    struct.pack_into(">i", out, 23, delta)
    return with_crc(out)


def legacy_message_set(value: bytes, key: bytes | None = None) -> bytes:
    """A magic-1 MessageSet with one message (offset, size, crc32, magic 1, attributes, timestamp, key,
    value): what a pre-0.11 producer sends."""
    key_part = struct.pack(">i", -1) if key is None else struct.pack(">i", len(key)) + key
    after_crc = struct.pack(">bbq", 1, 0, 1_000) + key_part + struct.pack(">i", len(value)) + value
    message = struct.pack(">I", zlib.crc32(after_crc)) + after_crc
    return struct.pack(">qi", 0, len(message)) + message
