"""The one place the broker changes a producer's batch: a queue's ``compression.type`` (a codec name) and
``message.timestamp.type=LogAppendTime``, applied by the leader before it appends, as Kafka's LogValidator
does. Everywhere else batches stay opaque bytes.

- **Recompression**: a batch in another codec is decompressed and compressed again with the queue's
  (``uncompressed`` stores the records section as is); one already in that codec is kept. The header's
  producer id, epoch, base sequence, transactional and control bits, timestamps and record count are kept,
  so the idempotent producer's deduplication sees the same batch; only the codec bits, the length and the
  CRC change. The records are not re-encoded: they are the same bytes, in another codec.
- **LogAppendTime**: attribute bit 3 set and the max timestamp replaced by the broker's time; the base
  timestamp and the records are untouched (a consumer reads the max timestamp as every record's time).
  Header-only work: one copy and a CRC.

Followers append the leader's bytes (``Partition.append_as_follower``), so this runs once per batch and
replicas stay byte-identical; the group coordinator's own writes do not come here.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from logq import batch as rb
from logq import codec
from logq.config import LogConfig
from logq.error_codes import ErrorCode
from logq.errors import LogqError

# Batches above this size are rewritten in a worker thread, so a large gzip batch does not stall the
# event loop (compressing 1 MiB costs tens of milliseconds); small ones are cheaper inline than a thread hop.
THREAD_THRESHOLD_BYTES = 64 * 1024
# The most a batch's records may decompress to when the broker must recompress them: far above any real
# batch (1 MiB compressed rarely holds more than 50 MiB), low enough that a compression bomb cannot
# exhaust the broker's memory.
MAX_DECOMPRESSED_BYTES = 256 * 1024 * 1024

_ATTRIBUTES_AT = 21
_MAX_TIMESTAMP_AT = 35
_CRC_AT = 17
_LENGTH_AT = 8
_ATTRIBUTES = struct.Struct(">h")
_TIMESTAMP = struct.Struct(">q")
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")


@dataclass(frozen=True, slots=True)
class RewritePlan:
    """What the leader does to every producer batch of one queue."""

    target_codec: int | None  # None: keep the producer's codec (compression.type=producer)
    log_append_time: bool  # message.timestamp.type=LogAppendTime

    def recompresses(self, batch: memoryview) -> bool:
        """Whether ``batch`` (at least a header long) needs the codec work, not only the header's."""
        return (
            self.target_codec is not None and batch[_ATTRIBUTES_AT + 1] & rb.CODEC_MASK != self.target_codec
        )


def plan_for(config: LogConfig) -> RewritePlan | None:
    """The plan of a queue's settings; None for Kafka's defaults (producer, CreateTime): stored as sent."""
    target = codec.COMPRESSION_TYPE_CODECS.get(config.compression_type)
    append_time = config.message_timestamp_type == "LogAppendTime"
    if target is None and not append_time:
        return None
    return RewritePlan(target, append_time)


def rewrite(plan: RewritePlan, batch: memoryview, now_ms: int) -> bytes | memoryview:
    """``batch`` (one RecordBatch v2 from a producer) as the queue stores it. The CRC is checked first, so
    a damaged batch is refused (CORRUPT_MESSAGE) rather than given a fresh CRC; so are records that do not
    decompress. Records that decompress to more than MAX_DECOMPRESSED_BYTES: MESSAGE_TOO_LARGE."""
    try:
        header = rb.validate(batch)
    except rb.BatchError as exc:
        raise LogqError(str(exc), code=ErrorCode.CORRUPT_MESSAGE) from None
    target = plan.target_codec
    if target is not None and header.codec != target:
        out = _recompressed(header, batch, target)
    elif plan.log_append_time:
        out = bytearray(batch)
    else:
        return batch  # already in the queue's codec, and CreateTime: stored as sent
    if plan.log_append_time:
        (attributes,) = _ATTRIBUTES.unpack_from(out, _ATTRIBUTES_AT)  # the codec bits may be new
        _ATTRIBUTES.pack_into(out, _ATTRIBUTES_AT, attributes | rb.ATTR_LOG_APPEND_TIME)
        _TIMESTAMP.pack_into(out, _MAX_TIMESTAMP_AT, now_ms)
    _U32.pack_into(out, _CRC_AT, rb.checksum(memoryview(out)[rb.CRC_START :]))
    return bytes(out)


def _recompressed(header: rb.BatchHeader, batch: memoryview, target: int) -> bytearray:
    """A copy of the batch with its records section in ``target``; the CRC is left for the caller."""
    try:
        records = codec.decompress_at_most(header.codec, batch[rb.HEADER_SIZE :], MAX_DECOMPRESSED_BYTES)
        section = codec.compress(target, records)
    except codec.CorruptCompressedDataError as exc:
        raise LogqError(str(exc), code=ErrorCode.CORRUPT_MESSAGE) from None
    except codec.DecompressedTooLargeError as exc:
        raise LogqError(f"{exc}: too large to recompress", code=ErrorCode.MESSAGE_TOO_LARGE) from None
    out = bytearray(rb.HEADER_SIZE + len(section))
    out[: rb.HEADER_SIZE] = batch[: rb.HEADER_SIZE]
    out[rb.HEADER_SIZE :] = section
    _I32.pack_into(out, _LENGTH_AT, len(out) - rb.LOG_OVERHEAD)
    attributes = (header.attributes & ~rb.CODEC_MASK) | target
    _ATTRIBUTES.pack_into(out, _ATTRIBUTES_AT, attributes)
    return out
