"""Records on the client: a batch builder for producers and a fast decoder for consumers.

Both are the client's hot paths, and each comes twice, with the same behaviour (the same bytes out of the
builder; the same records, or the same error, out of the decoder):

- compiled: ``logq/client/_records.c``, built by ``pip install`` wherever there is a C compiler (setup.py);
- pure Python (below): the fallback when the extension is missing, or forced with ``LOGQ_PURE_PYTHON=1``.
  It avoids per-record Python objects and calls where it can: the builder appends each record's bytes to
  one bytearray with precomputed varints; the decoder walks a section once, inlining the one-byte varint
  case, and builds each record as a tuple subclass (``tuple.__new__`` runs in C).

``CODEC`` is the one in use (``CODEC.name``: "c" or "python"); ``new_batch_builder`` and
``decode_fetched`` are its. The batch header, compression and the CRC-32C are shared Python code: they
run once per batch.
"""

from __future__ import annotations

import gc
import os
import struct
from collections.abc import Callable, Iterable, Mapping
from operator import itemgetter
from types import ModuleType
from typing import NamedTuple

from logq import batch as rb
from logq import codec
from logq.batch import read_varint

PURE_PYTHON_ENV = "LOGQ_PURE_PYTHON"  # set to 1: use the pure-Python codec even where the C one is built

Headers = Mapping[str, bytes | None] | Iterable[tuple[str, bytes | None]]
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1


def _zigzag_varint(value: int) -> bytes:
    if not _INT64_MIN <= value <= _INT64_MAX:  # as the C codec: the format's varlongs are 64-bit
        raise OverflowError(f"{value} does not fit a 64-bit varint")
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
    """Records of one partition, encoded as they arrive; ``build`` wraps them in a RecordBatch v2.

    Made by ``new_batch_builder(base_timestamp, size_limit)``: a ``PythonBatchBuilder`` or a
    ``CompiledBatchBuilder``, which encode the same bytes. ``append`` returns the record's offset delta, or
    None when the batch is full (a first record always fits, however large); a timestamp whose distance
    from the first one does not fit 64 bits raises OverflowError."""

    __slots__ = ()

    base_timestamp: int
    max_timestamp: int
    count: int
    size_limit: int

    def append(self, key: bytes | None, value: bytes | None, headers: bytes, timestamp: int) -> int | None:
        """Encode one record (``headers`` from ``encode_headers``)."""
        raise NotImplementedError

    @property
    def size(self) -> int:
        """The batch's size so far: its header and the records."""
        raise NotImplementedError

    def section(self) -> bytes:
        """The records section so far, uncompressed."""
        raise NotImplementedError

    def build(
        self,
        codec_id: int = rb.CODEC_NONE,
        producer_id: int = rb.NO_PRODUCER_ID,
        producer_epoch: int = -1,
        base_sequence: int = rb.NO_SEQUENCE,
    ) -> bytes:
        section = self.section()
        if codec_id:
            section = codec.compress(codec_id, section)
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


class PythonBatchBuilder(BatchBuilder):
    """The pure-Python builder: one bytearray, varints from a table. (The producer's ``send`` inlines
    ``append`` for the common case when this is the codec in use.)"""

    __slots__ = ("base_timestamp", "count", "max_timestamp", "records", "size_limit")

    def __init__(self, base_timestamp: int, size_limit: int) -> None:
        if not _INT64_MIN <= base_timestamp <= _INT64_MAX:
            raise OverflowError(f"timestamp {base_timestamp} does not fit 64 bits")
        self.base_timestamp = base_timestamp
        self.max_timestamp = base_timestamp
        self.size_limit = size_limit
        self.records = bytearray()
        self.count = 0

    def append(self, key: bytes | None, value: bytes | None, headers: bytes, timestamp: int) -> int | None:
        if not _INT64_MIN <= timestamp <= _INT64_MAX:  # as the C codec (and the batch header's int64)
            raise OverflowError(f"timestamp {timestamp} does not fit 64 bits")
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

    def section(self) -> bytes:
        return bytes(self.records)


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

# (records section, records count, base offset, base timestamp, timestamp scale, queue, partition,
# from offset, out): one batch's records at or past from_offset appended to out. The timestamp of a record
# is base timestamp + its delta x scale (0 for log-append time: every record gets the batch's).
DecodeRecords = Callable[[bytes, int, int, int, int, str, int, int, list[ConsumerRecord]], None]


class FetchedBatches(NamedTuple):
    records: list[ConsumerRecord]
    next_offset: int  # the offset after the last whole batch seen (the fetch position to continue from)


def _walk_batches(
    data: bytes | memoryview, queue: str, partition: int, from_offset: int, decode_records: DecodeRecords
) -> FetchedBatches:
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
            if header.attributes & rb.ATTR_LOG_APPEND_TIME:
                base_ts, ts_scale = header.max_timestamp, 0  # every record gets the broker's append time
            else:
                base_ts, ts_scale = header.base_timestamp, 1
            decode_records(
                section, header.records_count, header.base_offset, base_ts, ts_scale, queue, partition,
                from_offset, out,
            )  # fmt: skip
        next_offset = max(next_offset, last + 1)
        pos += size
    return FetchedBatches(out, next_offset)


def python_decode_records(  # noqa: PLR0917 (positional, as the C function it stands in for)
    buf: bytes,
    records_count: int,
    base_offset: int,
    base_ts: int,
    ts_scale: int,
    queue: str,
    partition: int,
    from_offset: int,
    out: list[ConsumerRecord],
) -> None:
    """The pure-Python ``DecodeRecords``."""
    append = out.append
    first = len(out)
    end = len(buf)
    pos = 0
    try:
        for _ in range(records_count):
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
            if record_end > end:
                raise rb.BatchError("a records section is truncated")
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
            # A field past the end came out of its slice short: the record's end, checked above to be
            # within the section, then differs from pos (unless a later read failed first).
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
        if size < 0:  # as Kafka: a header's name is never null
            raise rb.BatchError("a header's name has a negative length")
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


class RecordCodec(NamedTuple):
    """One implementation of the record codec."""

    name: str  # "c" or "python"
    new_builder: Callable[[int, int], BatchBuilder]  # (base timestamp, size limit)
    decode_records: DecodeRecords

    def decode_fetched(
        self, data: bytes | memoryview, queue: str, partition: int, from_offset: int
    ) -> FetchedBatches:
        """Every record at or past ``from_offset`` in the whole batches of ``data`` (a Fetch answer's
        records); a partial batch at the end (the broker cuts at max bytes) is left for the next fetch.
        Control batches are skipped; compressed batches are decompressed. BatchError for damaged data."""
        # The records are tuples (tracked by the cyclic GC) and nothing here makes a cycle: pausing the
        # collector spares it re-scanning the growing list every 700 records (~30% of the decoding time).
        paused = gc.isenabled()
        if paused:
            gc.disable()
        try:
            return _walk_batches(data, queue, partition, from_offset, self.decode_records)
        finally:
            if paused:
                gc.enable()


PYTHON_CODEC = RecordCodec("python", PythonBatchBuilder, python_decode_records)
COMPILED_CODEC: RecordCodec | None = None  # None: the extension was not built (no C compiler at install)
_compiled: ModuleType | None = None

try:
    from logq.client import _records
except ImportError:
    pass
else:
    _compiled = _records
    _records.setup(ConsumerRecord, rb.BatchError)

    class CompiledBatchBuilder(_records.RecordsBuffer, BatchBuilder):
        """The compiled builder: ``append``, ``size`` and ``section`` in C, ``build`` shared."""

        __slots__ = ()

    COMPILED_CODEC = RecordCodec("c", CompiledBatchBuilder, _records.decode_records)

CODEC = PYTHON_CODEC if COMPILED_CODEC is None or os.environ.get(PURE_PYTHON_ENV) == "1" else COMPILED_CODEC
# The extension with CODEC, for the producer's other per-record helpers (now_ms, FutureFields); None with
# the pure-Python codec.
COMPILED_MODULE = _compiled if CODEC is COMPILED_CODEC else None
new_batch_builder = CODEC.new_builder
decode_fetched = CODEC.decode_fetched
