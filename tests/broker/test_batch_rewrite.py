"""The leader's rewrite of a producer batch for a queue's compression.type and message.timestamp.type:
what changes in the header, what is kept, and what is refused (logq/broker/batch_rewrite.py)."""

from __future__ import annotations

from collections.abc import Callable

import cramjam
import pytest
import zstandard

from logq import batch as rb
from logq import codec
from logq.broker.batch_rewrite import MAX_DECOMPRESSED_BYTES, RewritePlan, plan_for, rewrite
from logq.config import LogConfig
from logq.error_codes import ErrorCode
from logq.errors import LogqError
from logq.testing.batches import make_batch

NOW = 1_700_000_000_000
KEPT = ("producer_id", "producer_epoch", "base_sequence", "records_count", "last_offset_delta")


def records_of(data: bytes | memoryview) -> list[rb.DecodedRecord]:
    header = rb.validate(data)
    return rb.decode_records(codec.decompress(header.codec, bytes(data[rb.HEADER_SIZE :])), header)


def idempotent_batch(compression: int) -> bytes:
    return make_batch(
        20, value_size=200, producer_id=7, producer_epoch=3, sequence=40, compression=compression
    )


def test_defaults_ask_for_nothing() -> None:
    assert plan_for(LogConfig()) is None
    assert plan_for(LogConfig(compression_type="zstd")) == RewritePlan(rb.CODEC_ZSTD, False)
    assert plan_for(LogConfig(compression_type="uncompressed")) == RewritePlan(rb.CODEC_NONE, False)
    assert plan_for(LogConfig(message_timestamp_type="LogAppendTime")) == RewritePlan(None, True)


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (rb.CODEC_NONE, rb.CODEC_ZSTD),
        (rb.CODEC_GZIP, rb.CODEC_ZSTD),
        (rb.CODEC_LZ4, rb.CODEC_ZSTD),
        (rb.CODEC_SNAPPY, rb.CODEC_ZSTD),
        (rb.CODEC_ZSTD, rb.CODEC_NONE),
        (rb.CODEC_ZSTD, rb.CODEC_GZIP),
        (rb.CODEC_ZSTD, rb.CODEC_LZ4),
        (rb.CODEC_NONE, rb.CODEC_SNAPPY),
    ],
)
def test_recompression_keeps_everything_but_the_codec(source: int, target: int) -> None:
    sent = idempotent_batch(source)
    stored = rewrite(RewritePlan(target, False), memoryview(sent), NOW)
    before, after = rb.validate(sent), rb.validate(stored)  # validate: the new CRC is right
    assert after.codec == target
    assert after.attributes & ~rb.CODEC_MASK == before.attributes & ~rb.CODEC_MASK
    for name in (*KEPT, "base_timestamp", "max_timestamp"):
        assert getattr(after, name) == getattr(before, name), name
    assert records_of(stored) == records_of(sent)


def test_a_batch_already_in_the_codec_is_stored_as_sent() -> None:
    sent = memoryview(idempotent_batch(rb.CODEC_ZSTD))
    assert rewrite(RewritePlan(rb.CODEC_ZSTD, False), sent, NOW) is sent


def test_log_append_time_sets_the_bit_and_the_max_timestamp_only() -> None:
    sent = idempotent_batch(rb.CODEC_GZIP)
    stored = rewrite(RewritePlan(None, True), memoryview(sent), NOW)
    before, after = rb.validate(sent), rb.validate(stored)
    assert after.attributes == before.attributes | rb.ATTR_LOG_APPEND_TIME
    assert after.max_timestamp == NOW
    assert after.base_timestamp == before.base_timestamp
    for name in KEPT:
        assert getattr(after, name) == getattr(before, name), name
    assert bytes(stored[rb.HEADER_SIZE :]) == sent[rb.HEADER_SIZE :]  # the records are untouched
    assert [r.timestamp for r in records_of(stored)] == [NOW] * 20
    assert [r.value for r in records_of(stored)] == [r.value for r in records_of(sent)]


def test_both_at_once() -> None:
    sent = idempotent_batch(rb.CODEC_NONE)
    stored = rewrite(RewritePlan(rb.CODEC_ZSTD, True), memoryview(sent), NOW)
    after = rb.validate(stored)
    assert (after.codec, after.max_timestamp) == (rb.CODEC_ZSTD, NOW)
    assert after.attributes & rb.ATTR_LOG_APPEND_TIME
    assert [r.value for r in records_of(stored)] == [r.value for r in records_of(sent)]


def test_a_damaged_batch_is_refused_not_given_a_new_crc() -> None:
    sent = bytearray(idempotent_batch(rb.CODEC_NONE))
    sent[-1] ^= 0xFF
    with pytest.raises(LogqError) as caught:
        rewrite(RewritePlan(rb.CODEC_ZSTD, True), memoryview(sent), NOW)
    assert caught.value.code == ErrorCode.CORRUPT_MESSAGE


def test_records_that_do_not_decompress_are_refused() -> None:
    records = [rb.Record(b"v")]
    sent = rb.build_batch(records, attributes=rb.CODEC_GZIP, compressed_records=b"not gzip at all")
    with pytest.raises(LogqError) as caught:
        rewrite(RewritePlan(rb.CODEC_ZSTD, False), memoryview(sent), NOW)
    assert caught.value.code == ErrorCode.CORRUPT_MESSAGE
    assert "gzip" in str(caught.value)


def test_a_broken_lz4_frame_is_refused() -> None:
    records = [rb.Record(b"v")]
    sent = rb.build_batch(records, attributes=rb.CODEC_LZ4, compressed_records=b"\x04\x22\x4d\x18")
    with pytest.raises(LogqError) as caught:
        rewrite(RewritePlan(rb.CODEC_ZSTD, False), memoryview(sent), NOW)
    assert caught.value.code == ErrorCode.CORRUPT_MESSAGE
    assert "lz4" in str(caught.value)
    # Only the timestamp: the lz4 records are not touched, so the batch is taken.
    assert rb.validate(rewrite(RewritePlan(None, True), memoryview(sent), NOW)).codec == rb.CODEC_LZ4


# --- decompressing a producer's records, bounded ------------------------------------------------------


def streaming_zstd(data: bytes) -> bytes:
    """A zstd frame without a content size, as streaming compressors (the Java client's) write it."""
    compressor = zstandard.ZstdCompressor().compressobj()
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("codec_bits", "compress"),
    [
        (rb.CODEC_GZIP, lambda d: codec.compress(rb.CODEC_GZIP, d)),
        (rb.CODEC_ZSTD, lambda d: codec.compress(rb.CODEC_ZSTD, d)),
        (rb.CODEC_ZSTD, streaming_zstd),
        (rb.CODEC_LZ4, lambda d: codec.compress(rb.CODEC_LZ4, d)),
        (rb.CODEC_SNAPPY, lambda d: codec.compress(rb.CODEC_SNAPPY, d)),
    ],
    ids=["gzip", "zstd", "zstd-streaming", "lz4", "snappy-xerial"],
)
def test_decompress_at_most(codec_bits: int, compress: Callable[[bytes], bytes]) -> None:
    raw = b"hello world " * 10_000
    squeezed = compress(raw)
    assert codec.decompress_at_most(codec_bits, squeezed, len(raw)) == raw
    with pytest.raises(codec.DecompressedTooLargeError):
        codec.decompress_at_most(codec_bits, squeezed, len(raw) - 1)
    with pytest.raises(codec.CorruptCompressedDataError, match=r"truncated|does not decompress"):
        codec.decompress_at_most(codec_bits, squeezed[: len(squeezed) // 2], len(raw))
    with pytest.raises(codec.CorruptCompressedDataError):
        codec.decompress_at_most(codec_bits, b"not compressed at all", len(raw))


@pytest.mark.parametrize("compress", [lambda d: codec.compress(rb.CODEC_ZSTD, d), streaming_zstd])
def test_a_compression_bomb_is_refused_not_inflated(compress: Callable[[bytes], bytes]) -> None:
    """A few KiB that decompress to more than MAX_DECOMPRESSED_BYTES: MESSAGE_TOO_LARGE, and the broker
    never holds the whole output (the streaming frame is cut off one step past the limit)."""
    bomb = compress(bytes(MAX_DECOMPRESSED_BYTES + (1 << 20)))
    assert len(bomb) < 64 * 1024
    sent = rb.build_batch([rb.Record(b"v")], attributes=rb.CODEC_ZSTD, compressed_records=bomb)
    with pytest.raises(LogqError) as caught:
        rewrite(RewritePlan(rb.CODEC_GZIP, False), memoryview(sent), NOW)
    assert caught.value.code == ErrorCode.MESSAGE_TOO_LARGE
    assert "too large to recompress" in str(caught.value)


def test_snappy_is_written_in_kafkas_framing_and_raw_snappy_is_read() -> None:
    """Kafka's brokers and Java clients write snappy-java's xerial framing; librdkafka writes raw snappy."""
    raw = bytes(range(256)) * 1000
    written = codec.compress(rb.CODEC_SNAPPY, raw)
    assert written.startswith(b"\x82SNAPPY\x00")
    assert codec.decompress(rb.CODEC_SNAPPY, written) == raw
    assert codec.decompress(rb.CODEC_SNAPPY, bytes(cramjam.snappy.compress_raw(raw))) == raw


def test_lz4_is_written_with_independent_blocks() -> None:
    """Kafka's Java reader decompresses each LZ4 block on its own: the frame must say so (FLG bit 5)."""
    raw = bytes(range(256)) * 1000  # several 64 KiB blocks
    written = codec.compress(rb.CODEC_LZ4, raw)
    assert written[:4] == b"\x04\x22\x4d\x18"
    assert written[4] & 0x20
    assert codec.decompress(rb.CODEC_LZ4, written) == raw
