"""The records of the internal queue ``__consumer_offsets``: keys and values as bytes (no I/O).

Every integer is big-endian; a string is an i16 byte length and UTF-8 bytes (i32 for metadata).
Every key starts with an i16 *key type*, which says what the record is (Kafka's key versions 1 and 2);
every non-null value starts with an i16 *value version*, so either can grow later.

    offset key   (type 1): group str, queue str, partition i32
    offset value (v0):     offset i64, leader_epoch i32, commit_timestamp_ms i64, metadata str32
    group key    (type 2): group str
    group value  (v0):     empty_since_ms i64 (-1: the group has members), generation i32
    group value  (v1):     v0's fields, then protocol_type str ("consumer"; "" when unknown)

Writers write the newest version; readers read every version (a v0 group value has protocol type "").

A null value is a tombstone: the offset was deleted or expired, or the group was deleted.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NamedTuple

OFFSET_KEY_TYPE = 1
GROUP_KEY_TYPE = 2
VALUE_VERSION = 0  # offset values
GROUP_VALUE_VERSION = 1
MAX_NAME_BYTES = 0x7FFF  # an i16 length, as in Kafka's own key schema

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_OFFSET_FIXED = struct.Struct(">hqiqi")  # version, offset, leader_epoch, commit_ts, metadata length
_GROUP_VALUE = struct.Struct(">hqi")  # version, empty_since_ms, generation (then v1's protocol type)


class OffsetRecordError(ValueError):
    """Bytes that are not a record of this format (unknown key type or value version, truncated)."""


@dataclass(frozen=True, slots=True)
class OffsetAndMetadata:
    """A committed offset as OffsetCommit carries it (offset = the next record the group will read)."""

    offset: int
    leader_epoch: int = -1
    metadata: str = ""
    commit_timestamp_ms: int = -1


@dataclass(frozen=True, slots=True)
class GroupInfo:
    """What the group record keeps: since when the group has had no members (None: it has members), its
    generation, and its protocol type (so that an idle group is listed as what it is after a restart)."""

    empty_since_ms: int | None
    generation: int
    protocol_type: str = ""


@dataclass(frozen=True, slots=True)
class OffsetKey:
    group: str
    queue: str
    partition: int


@dataclass(frozen=True, slots=True)
class GroupKey:
    group: str


RecordKey = OffsetKey | GroupKey


class Change(NamedTuple):
    """One record of the internal queue, decoded: a put, or a tombstone when ``value`` is None.
    An OffsetKey goes with an OffsetAndMetadata, a GroupKey with a GroupInfo."""

    key: RecordKey
    value: OffsetAndMetadata | GroupInfo | None


# --- encoding --------------------------------------------------------------------------------------


def _str16(text: str) -> bytes:
    raw = text.encode()
    if len(raw) > MAX_NAME_BYTES:
        raise OffsetRecordError(f"name of {len(raw)} bytes is longer than {MAX_NAME_BYTES}")
    return _I16.pack(len(raw)) + raw


def encode_offset_key(group: str, queue: str, partition: int) -> bytes:
    return _I16.pack(OFFSET_KEY_TYPE) + _str16(group) + _str16(queue) + _I32.pack(partition)


def encode_group_key(group: str) -> bytes:
    return _I16.pack(GROUP_KEY_TYPE) + _str16(group)


def encode_offset_value(value: OffsetAndMetadata) -> bytes:
    metadata = value.metadata.encode()
    fixed = _OFFSET_FIXED.pack(
        VALUE_VERSION, value.offset, value.leader_epoch, value.commit_timestamp_ms, len(metadata)
    )
    return fixed + metadata


def encode_group_value(info: GroupInfo) -> bytes:
    empty_since = -1 if info.empty_since_ms is None else info.empty_since_ms
    return _GROUP_VALUE.pack(GROUP_VALUE_VERSION, empty_since, info.generation) + _str16(info.protocol_type)


# --- decoding --------------------------------------------------------------------------------------


def _read_str16(buf: bytes, pos: int) -> tuple[str, int]:
    (length,) = _I16.unpack_from(buf, pos)
    end = pos + 2 + length
    if length < 0 or end > len(buf):
        raise OffsetRecordError("string overruns the key")
    return buf[pos + 2 : end].decode(), end


def decode_key(buf: bytes) -> RecordKey:
    try:
        (key_type,) = _I16.unpack_from(buf, 0)
        group, pos = _read_str16(buf, 2)
        if key_type == GROUP_KEY_TYPE and pos == len(buf):
            return GroupKey(group)
        if key_type == OFFSET_KEY_TYPE:
            queue, pos = _read_str16(buf, pos)
            (partition,) = _I32.unpack_from(buf, pos)
            if pos + 4 == len(buf):
                return OffsetKey(group, queue, partition)
    except (struct.error, UnicodeDecodeError) as exc:
        raise OffsetRecordError(f"malformed key: {exc}") from None
    raise OffsetRecordError(f"unknown or malformed key {buf[:16].hex()}")


def decode_offset_value(buf: bytes) -> OffsetAndMetadata:
    try:
        version, offset, epoch, commit_ts, length = _OFFSET_FIXED.unpack_from(buf, 0)
        if version != VALUE_VERSION or _OFFSET_FIXED.size + length != len(buf):
            raise OffsetRecordError(f"offset value version {version} or length {len(buf)} is wrong")
        metadata = buf[_OFFSET_FIXED.size :].decode()
    except (struct.error, UnicodeDecodeError) as exc:
        raise OffsetRecordError(f"malformed offset value: {exc}") from None
    return OffsetAndMetadata(offset, epoch, metadata, commit_ts)


def decode_group_value(buf: bytes) -> GroupInfo:
    try:
        version, empty_since, generation = _GROUP_VALUE.unpack_from(buf, 0)
        protocol_type, end = ("", _GROUP_VALUE.size)
        if version == 1:
            protocol_type, end = _read_str16(buf, _GROUP_VALUE.size)
        elif version != 0:
            raise OffsetRecordError(f"unknown group value version {version}")
    except (struct.error, UnicodeDecodeError) as exc:
        raise OffsetRecordError(f"malformed group value: {exc}") from None
    if end != len(buf):
        raise OffsetRecordError(f"group value of {len(buf)} bytes, version {version} takes {end}")
    return GroupInfo(None if empty_since < 0 else empty_since, generation, protocol_type)


# --- whole records ---------------------------------------------------------------------------------


def encode_change(change: Change) -> tuple[bytes, bytes | None]:
    """(key, value) bytes of a change; value None is a tombstone."""
    key, value = change
    key_bytes = (
        encode_offset_key(key.group, key.queue, key.partition)
        if isinstance(key, OffsetKey)
        else encode_group_key(key.group)
    )
    if value is None:
        return key_bytes, None
    if isinstance(key, OffsetKey) and isinstance(value, OffsetAndMetadata):
        return key_bytes, encode_offset_value(value)
    if isinstance(key, GroupKey) and isinstance(value, GroupInfo):
        return key_bytes, encode_group_value(value)
    raise OffsetRecordError(f"{type(value).__name__} cannot be the value of {type(key).__name__}")


def decode_change(key: bytes | None, value: bytes | None) -> Change:
    if key is None:
        raise OffsetRecordError("a record of the offsets queue has no key")
    decoded = decode_key(key)
    if value is None:
        return Change(decoded, None)
    if isinstance(decoded, OffsetKey):
        return Change(decoded, decode_offset_value(value))
    return Change(decoded, decode_group_value(value))
