"""The records of a stored batch, as the log cleaner sees them: raw bytes it can keep or drop one by one
without decoding and re-encoding what it keeps, and the rebuilt batch.

Pure functions of bytes (no I/O). A batch whose records cannot be decompressed or decoded (damaged, or
in a codec ``logq/codec.py`` does not know) is ``UndecodableError``: the cleaner keeps it whole.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import NamedTuple

from logq import batch as rb
from logq import codec

_AFTER_CRC = struct.Struct(">hiqqqhii")
_BEFORE_CRC = struct.Struct(">qiibI")


class UndecodableError(Exception):
    """The batch's records cannot be read (an unsupported codec, or damaged)."""


# Attributes bit 6 (KIP-534): the batch's baseTimestamp holds its delete horizon, the time after which
# the cleaner drops its tombstones; set when the cleaner first keeps a tombstone of the batch.
ATTR_DELETE_HORIZON = 0x40


class RawRecord(NamedTuple):
    offset_delta: int
    timestamp_delta: int
    key: bytes | None
    tombstone: bool  # a null value: "delete this key"
    raw: bytes  # the whole record, its length prefix included, as stored
    after_timestamp: int  # where in ``raw`` the fields after the timestamp delta start


def _zigzag(value: int) -> bytes:
    v = (value << 1) ^ (value >> 63)
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def rebase(record: RawRecord, shift: int) -> bytes:
    """The record with its timestamp delta lowered by ``shift`` (the batch's base timestamp rose by it)."""
    body = b"\0" + _zigzag(record.timestamp_delta - shift) + record.raw[record.after_timestamp :]
    return _zigzag(len(body)) + body


def records_section(header: rb.BatchHeader, data: bytes) -> bytes:
    """The uncompressed records section of the stored batch ``data``; UndecodableError if it cannot be had."""
    section = data[rb.HEADER_SIZE :]
    if header.codec == rb.CODEC_NONE:
        return section
    try:
        return codec.decompress(header.codec, section)
    except (codec.UnsupportedCodecError, OSError, ValueError) as exc:
        raise UndecodableError(str(exc)) from exc
    except Exception as exc:  # zlib.error, zstandard.ZstdError: not ValueErrors
        raise UndecodableError(str(exc)) from exc


def iter_records(section: bytes, count: int) -> Iterator[RawRecord]:
    """The records of an uncompressed section; UndecodableError if they do not fit it."""
    read_varint = rb.read_varint
    pos = 0
    try:
        for _ in range(count):
            start = pos
            length, pos = read_varint(section, pos)
            end = pos + length
            p = pos + 1  # record attributes
            timestamp_delta, p = read_varint(section, p)
            after_timestamp = p - start
            delta, p = read_varint(section, p)
            key_length, p = read_varint(section, p)
            key = None if key_length < 0 else section[p : p + key_length]
            p += max(key_length, 0)
            value_length, p = read_varint(section, p)
            if end > len(section) or p > end:
                raise UndecodableError("a record overruns its batch")
            yield RawRecord(
                delta, timestamp_delta, key, value_length < 0, section[start:end], after_timestamp
            )
            pos = end
    except (IndexError, rb.BatchError) as exc:
        raise UndecodableError(str(exc)) from exc


def rebuild(
    header: rb.BatchHeader,
    kept: list[bytes],
    *,
    attributes: int | None = None,
    base_timestamp: int | None = None,
) -> bytes:
    """The batch ``header`` heads, holding only the ``kept`` records (raw, in order).

    Everything the consumers and the producer state read stays: base offset, lastOffsetDelta (so the
    producer's last sequence survives), timestamps, producer id, epoch and base sequence, leader epoch,
    the codec. A batch with no record left (kept for its producer state, as Kafka keeps it) is
    uncompressed: there is nothing to compress."""
    section = b"".join(kept)
    attributes = header.attributes if attributes is None else attributes
    if not kept:
        attributes &= ~rb.CODEC_MASK
    elif attributes & rb.CODEC_MASK != rb.CODEC_NONE:
        section = codec.compress(attributes & rb.CODEC_MASK, section)
    after_crc = _AFTER_CRC.pack(
        attributes,
        header.last_offset_delta,
        header.base_timestamp if base_timestamp is None else base_timestamp,
        header.max_timestamp,
        header.producer_id,
        header.producer_epoch,
        header.base_sequence,
        len(kept),
    )
    crc = rb.checksum(after_crc + section)
    length = len(after_crc) + len(section) + 9  # partitionLeaderEpoch (4) + magic (1) + crc (4)
    prefix = _BEFORE_CRC.pack(header.base_offset, length, header.partition_leader_epoch, rb.MAGIC, crc)
    return prefix + after_crc + section
