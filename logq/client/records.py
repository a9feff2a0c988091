"""Records on the client: a batch builder for producers and a fast decoder for consumers.

Both are the client's hot paths, so they avoid per-record Python objects and calls where they can: the
builder appends each record's bytes to one bytearray with precomputed varints; the decoder walks a
fetched buffer once, inlining the one-byte varint case, and builds each record as a tuple subclass
(``tuple.__new__`` runs in C).
"""

from __future__ import annotations

import gc
import struct
from collections.abc import Iterable, Mapping
from operator import itemgetter
from typing import NamedTuple

from logq import batch as rb
from logq import codec
from logq.batch import read_varint

Headers = Mapping[str, bytes | None] | Iterable[tuple[str, bytes | None]]


def _zigzag_varint(value: int) -> bytes:
    v = (value << 1) ^ (value >> 63)
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


_SMALL = 1 << 14
_VARINT = [_zigzag_varint(i) for i in range(_SMALL)]  # 0..16383: one lookup instead of a loop
_NULL = _zigzag_varint(-1)
_NO_HEADERS = b"\x00"
_AFTER_CRC = struct.Struct(">hiqqqhii")
_BEFORE_CRC = struct.Struct(">qiibI")


def varint(value: int) -> bytes:
    return _VARINT[value] if 0 <= value < _SMALL else _zigzag_varint(value)


def encode_headers(headers: Headers | None) -> bytes:
    if not headers:
        return _NO_HEADERS
    items = headers.items() if isinstance(headers, Mapping) else headers
    out = bytearray()
    count = 0
    for name, value in items:
        raw = name.encode()
        out += varint(len(raw)) + raw
        out += _NULL if value is None else varint(len(value)) + value
        count += 1
    return varint(count) + bytes(out)


class BatchBuilder:
    """Records of one partition, encoded as they arrive; ``build`` wraps them in a RecordBatch v2."""

    __slots__ = ("base_timestamp", "count", "max_timestamp", "records", "size_limit")

    def __init__(self, base_timestamp: int, size_limit: int) -> None:
        self.base_timestamp = base_timestamp
        self.max_timestamp = base_timestamp
        self.size_limit = size_limit
        self.records = bytearray()
        self.count = 0

    def append(self, key: bytes | None, value: bytes | None, headers: bytes, timestamp: int) -> int | None:
        """Encode one record (``headers`` from ``encode_headers``); its offset delta, or None when the
        batch is full (a first record always fits, however large)."""
        count = self.count
        delta = timestamp - self.base_timestamp
        body = (
            b"\x00"
            + (_VARINT[delta] if 0 <= delta < _SMALL else _zigzag_varint(delta))
            + (_VARINT[count] if count < _SMALL else _zigzag_varint(count))
            + (_NULL if key is None else varint(len(key)) + key)
            + (_NULL if value is None else varint(len(value)) + value)
            + headers
        )
        records = self.records
        if count and len(records) + len(body) + 5 > self.size_limit:
            return None
        size = len(body)
        records += _VARINT[size] if size < _SMALL else _zigzag_varint(size)
        records += body
        self.count = count + 1
        self.max_timestamp = max(self.max_timestamp, timestamp)
        return count

    @property
    def size(self) -> int:
        return rb.HEADER_SIZE + len(self.records)

    def build(
        self,
        codec_id: int = rb.CODEC_NONE,
        producer_id: int = rb.NO_PRODUCER_ID,
        producer_epoch: int = -1,
        base_sequence: int = rb.NO_SEQUENCE,
    ) -> bytes:
        section = codec.compress(codec_id, bytes(self.records)) if codec_id else bytes(self.records)
        count = self.count
        body = (
            _AFTER_CRC.pack(
                codec_id,
                count - 1,
                self.base_timestamp,
                self.max_timestamp,
                producer_id,
                producer_epoch,
                base_sequence,
                count,
            )
            + section
        )
        return _BEFORE_CRC.pack(0, len(body) + 9, -1, rb.MAGIC, rb.checksum(body)) + body


def with_sequence(batch: bytes, producer_id: int, producer_epoch: int, base_sequence: int) -> bytes:
    """A copy of a built batch with new producer fields (and the CRC that covers them)."""
    tail = bytearray(batch[rb.CRC_START :])
    struct.pack_into(">qhi", tail, 22, producer_id, producer_epoch, base_sequence)
    head = bytearray(batch[: rb.CRC_START])
    struct.pack_into(">I", head, 17, rb.checksum(tail))
    return bytes(head + tail)


class RecordMetadata(NamedTuple):
    """Where a produced record was stored."""

    queue: str
    partition: int
    offset: int
    timestamp: int


class ConsumerRecord(
    tuple[str, int, int, int, bytes | None, bytes | None, tuple[tuple[str, bytes | None], ...]]
):
    """One consumed record: queue, partition, offset, timestamp (ms), key, value, headers.

    A tuple subclass built with ``tuple.__new__`` (in C): no per-record ``__init__`` call.
    """

    __slots__ = ()

    queue = property(itemgetter(0), doc="the queue the record came from")
    partition = property(itemgetter(1))
    offset = property(itemgetter(2))
    timestamp = property(itemgetter(3), doc="milliseconds since the epoch (producer or log-append time)")
    key = property(itemgetter(4))
    value = property(itemgetter(5))
    headers = property(itemgetter(6), doc="a tuple of (name, value) pairs, in the order sent")

    def __repr__(self) -> str:
        return (
            f"ConsumerRecord(queue={self[0]!r}, partition={self[1]}, offset={self[2]}, "
            f"timestamp={self[3]}, key={self[4]!r}, value={self[5]!r}, headers={self[6]!r})"
        )


_new = tuple.__new__


class FetchedBatches(NamedTuple):
    records: list[ConsumerRecord]
    next_offset: int  # the offset after the last whole batch seen (the fetch position to continue from)


def decode_fetched(data: bytes | memoryview, queue: str, partition: int, from_offset: int) -> FetchedBatches:
    """Every record at or past ``from_offset`` in the whole batches of ``data`` (a Fetch answer's
    records); a partial batch at the end (the broker cuts at max bytes) is left for the next fetch.
    Control batches are skipped; compressed batches are decompressed."""
    # The records are tuples (tracked by the cyclic GC) and nothing here makes a cycle: pausing the
    # collector spares it re-scanning the growing list every 700 records (~30% of the decoding time).
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        return _decode_fetched(data, queue, partition, from_offset)
    finally:
        if paused:
            gc.enable()


def _decode_fetched(data: bytes | memoryview, queue: str, partition: int, from_offset: int) -> FetchedBatches:
    out: list[ConsumerRecord] = []
    buf = bytes(data)
    view = memoryview(buf)
    pos = 0
    end = len(buf)
    next_offset = from_offset
    while end - pos >= rb.HEADER_SIZE:
        header = rb.parse_header(buf, pos)
        size = header.size
        if pos + size > end:
            break
        if header.magic != rb.MAGIC:
            raise rb.BatchError(f"magic {header.magic} is not supported")
        last = header.base_offset + header.last_offset_delta
        if last >= next_offset and not header.attributes & rb.ATTR_CONTROL:
            # As Kafka's check.crcs: a batch damaged on the way or on a broker's disk is never handed out.
            if rb.checksum(view[pos + rb.CRC_START : pos + size]) != header.crc:
                raise rb.BatchError(f"batch at offset {header.base_offset} fails its CRC-32C check")
            section = buf[pos + rb.HEADER_SIZE : pos + size]
            if header.attributes & rb.CODEC_MASK:
                section = codec.decompress(header.attributes & rb.CODEC_MASK, section)
            _decode_records(section, header, (queue, partition, from_offset), out)
        next_offset = max(next_offset, last + 1)
        pos += size
    return FetchedBatches(out, next_offset)


def _decode_records(
    buf: bytes, header: rb.BatchHeader, where: tuple[str, int, int], out: list[ConsumerRecord]
) -> None:
    queue, partition, from_offset = where
    base_offset = header.base_offset
    if header.attributes & rb.ATTR_LOG_APPEND_TIME:
        base_ts, ts_scale = header.max_timestamp, 0  # every record gets the broker's append time
    else:
        base_ts, ts_scale = header.base_timestamp, 1
    append = out.append
    first = len(out)
    pos = 0
    try:
        for _ in range(header.records_count):
            # Every varint below takes the inline path when it is one byte (the common case).
            b = buf[pos]
            if b < 0x80:
                length = (b >> 1) ^ -(b & 1)
                pos += 1
            elif buf[pos + 1] < 0x80:  # two bytes: records of 64 B to 8 KiB
                raw = (b & 0x7F) | (buf[pos + 1] << 7)
                length = (raw >> 1) ^ -(raw & 1)
                pos += 2
            else:
                length, pos = read_varint(buf, pos)
            record_end = pos + length
            pos += 1  # record attributes: unused
            b = buf[pos]
            if b < 0x80:
                ts_delta = (b >> 1) ^ -(b & 1)
                pos += 1
            elif buf[pos + 1] < 0x80:
                raw = (b & 0x7F) | (buf[pos + 1] << 7)
                ts_delta = (raw >> 1) ^ -(raw & 1)
                pos += 2
            else:
                ts_delta, pos = read_varint(buf, pos)
            b = buf[pos]
            if b < 0x80:
                offset_delta = (b >> 1) ^ -(b & 1)
                pos += 1
            elif buf[pos + 1] < 0x80:
                raw = (b & 0x7F) | (buf[pos + 1] << 7)
                offset_delta = (raw >> 1) ^ -(raw & 1)
                pos += 2
            else:
                offset_delta, pos = read_varint(buf, pos)
            b = buf[pos]
            if b == 1:  # zigzag -1: no key
                key = None
                pos += 1
            else:
                if b < 0x80:
                    size = (b >> 1) ^ -(b & 1)
                    pos += 1
                else:
                    size, pos = read_varint(buf, pos)
                if size < 0:
                    key = None
                else:
                    key = buf[pos : pos + size]
                    pos += size
            b = buf[pos]
            if b < 0x80:
                size = (b >> 1) ^ -(b & 1)
                pos += 1
            elif buf[pos + 1] < 0x80:
                raw = (b & 0x7F) | (buf[pos + 1] << 7)
                size = (raw >> 1) ^ -(raw & 1)
                pos += 2
            else:
                size, pos = read_varint(buf, pos)
            if size < 0:
                value = None
            else:
                value = buf[pos : pos + size]
                pos += size
            if buf[pos] == 0:  # no headers
                headers: tuple[tuple[str, bytes | None], ...] = ()
                pos += 1
            else:
                headers, pos = _decode_headers(buf, pos)
            if pos != record_end:
                raise rb.BatchError("a record's length does not match its fields")
            append(
                _new(
                    ConsumerRecord,
                    (
                        queue,
                        partition,
                        base_offset + offset_delta,
                        base_ts + ts_delta * ts_scale,
                        key,
                        value,
                        headers,
                    ),
                )
            )
    except IndexError:
        raise rb.BatchError("a records section is truncated") from None
    if base_offset < from_offset:  # only the first batch of a fetch can start before the position
        out[first:] = [r for r in out[first:] if r[2] >= from_offset]


def _decode_headers(buf: bytes, pos: int) -> tuple[tuple[tuple[str, bytes | None], ...], int]:
    count, pos = read_varint(buf, pos)
    headers = []
    for _ in range(count):
        size, pos = read_varint(buf, pos)
        name = buf[pos : pos + size].decode("utf-8", "replace")
        pos += size
        size, pos = read_varint(buf, pos)
        if size < 0:
            value = None
        else:
            value = buf[pos : pos + size]
            pos += size
        headers.append((name, value))
    return tuple(headers), pos
