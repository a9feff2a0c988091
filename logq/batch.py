"""Kafka RecordBatch v2 (magic 2): the one format logq keeps on the wire and on disk.

Layout of the 61-byte header (big-endian; see docs/architecture.md):

    @0  baseOffset i64           patched by the log on append (outside the CRC)
    @8  batchLength i32          bytes after this field: total size = 12 + batchLength
    @12 partitionLeaderEpoch i32 patched by the log on append (outside the CRC)
    @16 magic i8 = 2
    @17 crc u32                  CRC-32C of bytes [21, end)
    @21 attributes i16           bits 0-2 codec, 3 log-append-time, 4 transactional, 5 control
    @23 lastOffsetDelta i32      recordsCount - 1
    @27 baseTimestamp i64
    @35 maxTimestamp i64
    @43 producerId i64           -1 = not idempotent
    @51 producerEpoch i16
    @53 baseSequence i32
    @57 recordsCount i32
    @61 records (one compressed block when codec != 0)

The broker only ever reads the header: batches stay opaque bytes. The record encoder below is for
clients, tests and benchmarks.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from crc32c import crc32c

from logq.error_codes import ErrorCode
from logq.errors import LogqError

HEADER_SIZE = 61
LOG_OVERHEAD = 12  # baseOffset + batchLength: the bytes not counted in batchLength
MAGIC = 2
CRC_START = 21

CODEC_NONE = 0
CODEC_GZIP = 1
CODEC_SNAPPY = 2
CODEC_LZ4 = 3
CODEC_ZSTD = 4
CODEC_MASK = 0x07
ATTR_LOG_APPEND_TIME = 0x08
ATTR_TRANSACTIONAL = 0x10
ATTR_CONTROL = 0x20

NO_PRODUCER_ID = -1
NO_SEQUENCE = -1

_HEADER = struct.Struct(">qiibIhiqqqhii")
_PREFIX = struct.Struct(">qi")  # baseOffset, batchLength
_PATCH = struct.Struct(">qii")  # baseOffset, batchLength, partitionLeaderEpoch
_LAST_DELTA = struct.Struct(">i")


class BatchError(LogqError, ValueError):
    """The bytes are not one valid RecordBatch v2 (the reason is in the message): CORRUPT_MESSAGE."""

    code = ErrorCode.CORRUPT_MESSAGE


class BatchHeader(NamedTuple):
    """The decoded 61-byte header (a tuple: building one is cheap, and this runs once per batch)."""

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def size(self) -> int:
        return LOG_OVERHEAD + self.batch_length

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def codec(self) -> int:
        return self.attributes & CODEC_MASK

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & ATTR_CONTROL)

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & ATTR_TRANSACTIONAL)

    @property
    def last_sequence(self) -> int:
        """The sequence of the last record; sequences wrap at INT32_MAX as in Kafka."""
        return (self.base_sequence + self.last_offset_delta) % (1 << 31)


def parse_header(buf: bytes | bytearray | memoryview, pos: int = 0) -> BatchHeader:
    """Decode the 61-byte header at ``pos``; raises BatchError when fewer bytes remain."""
    if len(buf) - pos < HEADER_SIZE:
        raise BatchError(f"batch header needs {HEADER_SIZE} bytes, {len(buf) - pos} available")
    return BatchHeader._make(_HEADER.unpack_from(buf, pos))


def validate(buf: bytes | bytearray | memoryview, *, stored: bool = False) -> BatchHeader:
    """Check that ``buf`` is exactly one well-formed magic-2 batch with a correct CRC-32C.

    Checks, in order: header length, batchLength matches the buffer, magic, codec, CRC over
    [21, end), lastOffsetDelta = recordsCount - 1. (Runs once per produced batch: locals, no properties.)
    ``stored``: a batch as the log keeps it, which the log cleaner may have thinned (fewer records than
    lastOffsetDelta + 1, which it keeps so that the producer's sequences survive; none at all for a
    producer's emptied last batch), as Kafka's cleaner does.
    """
    size = len(buf)
    if size < HEADER_SIZE:
        raise BatchError(f"batch header needs {HEADER_SIZE} bytes, {size} available")
    fields = _HEADER.unpack_from(buf)
    _, length, _, magic, crc, attributes, last_delta, _, _, _, _, _, count = fields
    if length + LOG_OVERHEAD != size:
        raise BatchError(
            f"batchLength {length} does not match the {size} bytes received "
            f"(expected batchLength {size - LOG_OVERHEAD})"
        )
    if magic != MAGIC:
        raise BatchError(f"magic {magic} is not supported (only magic 2)")
    if attributes & CODEC_MASK > CODEC_ZSTD:
        raise BatchError(f"unknown compression codec {attributes & CODEC_MASK}")
    actual = crc32c(memoryview(buf)[CRC_START:])
    if actual != crc:
        raise BatchError(f"CRC-32C mismatch: header says {crc:#010x}, bytes give {actual:#010x}")
    if stored:
        if count < 0 or last_delta < 0 or count > last_delta + 1:
            raise BatchError(f"recordsCount {count} does not fit lastOffsetDelta {last_delta}")
    elif count < 1 or last_delta != count - 1:
        raise BatchError(f"lastOffsetDelta {last_delta} does not match recordsCount {count}")
    return BatchHeader._make(fields)


def checksum(data: bytes | bytearray | memoryview) -> int:
    """CRC-32C, as a batch's crc field holds it over bytes [21, end)."""
    value: int = crc32c(data)
    return value


def patch_prefix(header: BatchHeader, base_offset: int, leader_epoch: int) -> bytes:
    """The first 16 bytes of a stored batch: the new baseOffset and leader epoch, both outside the CRC."""
    return _PATCH.pack(base_offset, header.batch_length, leader_epoch)


def read_prefix(buf: bytes | bytearray | memoryview, pos: int = 0) -> tuple[int, int]:
    """(baseOffset, total size) of the batch at ``pos``; the caller checks there are 12 bytes."""
    base, length = _PREFIX.unpack_from(buf, pos)
    return base, LOG_OVERHEAD + length


def read_last_offset_delta(buf: bytes | bytearray | memoryview, pos: int = 0) -> int:
    value: int = _LAST_DELTA.unpack_from(buf, pos + 23)[0]
    return value


# --- record encoding (clients, tests, benchmarks; never the broker's hot path) ---------------------


def _varint(value: int, out: bytearray) -> None:
    """Append a zigzag varint (Kafka's signed varint/varlong)."""
    v = (value << 1) ^ (value >> 63)
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


@dataclass(frozen=True, slots=True)
class Record:
    value: bytes | None
    key: bytes | None = None
    headers: Sequence[tuple[str, bytes | None]] = ()
    timestamp: int | None = None


def encode_records(records: Iterable[Record], base_timestamp: int) -> tuple[bytes, int, int]:
    """Encode records into the uncompressed records section: (bytes, count, max timestamp)."""
    out = bytearray()
    body = bytearray()
    count = 0
    max_ts = base_timestamp
    for delta, rec in enumerate(records):
        ts = base_timestamp if rec.timestamp is None else rec.timestamp
        max_ts = max(max_ts, ts)
        body.clear()
        body.append(0)  # record attributes
        _varint(ts - base_timestamp, body)
        _varint(delta, body)
        if rec.key is None:
            _varint(-1, body)
        else:
            _varint(len(rec.key), body)
            body += rec.key
        if rec.value is None:
            _varint(-1, body)
        else:
            _varint(len(rec.value), body)
            body += rec.value
        _varint(len(rec.headers), body)
        for hkey, hval in rec.headers:
            raw = hkey.encode()
            _varint(len(raw), body)
            body += raw
            if hval is None:
                _varint(-1, body)
            else:
                _varint(len(hval), body)
                body += hval
        _varint(len(body), out)
        out += body
        count += 1
    return bytes(out), count, max_ts


def build_batch(
    records: Sequence[Record],
    *,
    base_timestamp: int = 0,
    producer_id: int = NO_PRODUCER_ID,
    producer_epoch: int = -1,
    base_sequence: int = NO_SEQUENCE,
    attributes: int = CODEC_NONE,
    compressed_records: bytes | None = None,
) -> bytes:
    """Build one RecordBatch v2 with baseOffset 0, as a producer sends it.

    ``compressed_records`` replaces the encoded records section (its codec goes in ``attributes``).
    """
    raw, count, max_ts = encode_records(records, base_timestamp)
    if count == 0:
        raise BatchError("a batch needs at least one record")
    section = raw if compressed_records is None else compressed_records
    after_crc = struct.pack(
        ">hiqqqhii",
        attributes,
        count - 1,
        base_timestamp,
        max_ts,
        producer_id,
        producer_epoch,
        base_sequence,
        count,
    )
    body = after_crc + section
    crc = crc32c(body)
    length = len(body) + 9  # partitionLeaderEpoch (4) + magic (1) + crc (4)
    return struct.pack(">qiibI", 0, length, -1, MAGIC, crc) + body


# --- record decoding (clients, tests, ListOffsets by timestamp) -------------------------------------


@dataclass(frozen=True, slots=True)
class DecodedRecord:
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = 0
    raw = 0
    while True:
        byte = buf[pos]
        pos += 1
        raw |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (raw >> 1) ^ -(raw & 1), pos
        shift += 7
        if shift > 63:
            raise BatchError("varint is too long")


def _read_bytes(buf: bytes, pos: int) -> tuple[bytes | None, int]:
    length, pos = read_varint(buf, pos)
    if length < 0:
        return None, pos
    end = pos + length
    if end > len(buf):
        raise BatchError("record field overruns the batch")
    return buf[pos:end], end


def decode_records(records: bytes, header: BatchHeader) -> list[DecodedRecord]:
    """Decode an uncompressed records section (``decompress`` it first for codec != 0)."""
    out: list[DecodedRecord] = []
    pos = 0
    log_append_time = bool(header.attributes & ATTR_LOG_APPEND_TIME)
    try:
        for _ in range(header.records_count):
            length, pos = read_varint(records, pos)
            end = pos + length
            pos += 1  # record attributes (unused)
            ts_delta, pos = read_varint(records, pos)
            offset_delta, pos = read_varint(records, pos)
            key, pos = _read_bytes(records, pos)
            value, pos = _read_bytes(records, pos)
            count, pos = read_varint(records, pos)
            headers = []
            for _ in range(count):
                hkey, pos = _read_bytes(records, pos)
                hval, pos = _read_bytes(records, pos)
                headers.append(((hkey or b"").decode("utf-8", "replace"), hval))
            if pos != end:
                raise BatchError("record length does not match its fields")
            ts = header.max_timestamp if log_append_time else header.base_timestamp + ts_delta
            out.append(DecodedRecord(header.base_offset + offset_delta, ts, key, value, tuple(headers)))
    except IndexError:
        raise BatchError("records section is truncated") from None
    return out
