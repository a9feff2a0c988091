"""RecordBatch v2: our encoder and validator, cross-checked against kafka-python's independent code."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from logq import batch as rb
from logq import codec
from logq.error_codes import ErrorCode
from logq.errors import LogqError
from logq.testing import make_batch

records_strategy = st.lists(
    st.builds(
        rb.Record,
        value=st.one_of(st.none(), st.binary(max_size=64)),
        key=st.one_of(st.none(), st.binary(max_size=16)),
        headers=st.lists(
            st.tuples(st.text(max_size=8), st.one_of(st.none(), st.binary(max_size=8))), max_size=3
        ),
        timestamp=st.integers(min_value=0, max_value=2**40),
    ),
    min_size=1,
    max_size=20,
)


@given(records_strategy)
def test_build_validate_decode_round_trip(records: list[rb.Record]) -> None:
    base_ts = min(r.timestamp or 0 for r in records)
    data = rb.build_batch(records, base_timestamp=base_ts)
    header = rb.validate(data)
    assert header.records_count == len(records)
    decoded = rb.decode_records(data[rb.HEADER_SIZE :], header)
    assert [(d.key, d.value, list(d.headers), d.timestamp) for d in decoded] == [
        (r.key, r.value, list(r.headers), r.timestamp) for r in records
    ]
    # kafka-python reads the same bytes the same way
    theirs = DefaultRecordBatch(data)
    assert theirs.validate_crc()
    assert [(r.key, r.value, r.timestamp) for r in theirs] == [(r.key, r.value, r.timestamp) for r in records]


@pytest.mark.parametrize("compression", [rb.CODEC_NONE, rb.CODEC_GZIP, rb.CODEC_ZSTD])
def test_kafka_python_batches_validate_and_decode(compression: int) -> None:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=compression,
        is_transactional=False,
        producer_id=7,
        producer_epoch=1,
        base_sequence=5,
        batch_size=1 << 20,
    )
    for i in range(50):
        builder.append(i, timestamp=1000 + i, key=b"k%d" % i, value=b"v" * i, headers=[("h", b"%d" % i)])
    data = bytes(builder.build())
    header = rb.validate(data)
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (7, 1, 5)
    assert header.codec == compression
    assert header.last_sequence == 54
    records = rb.decode_records(codec.decompress(header.codec, data[rb.HEADER_SIZE :]), header)
    assert [r.value for r in records] == [b"v" * i for i in range(50)]
    assert records[3].headers == (("h", b"3"),)


def test_every_single_bit_flip_after_the_crc_field_is_detected() -> None:
    data = bytearray(make_batch(2, value_size=8))
    for pos in range(rb.CRC_START, len(data)):
        flipped = bytearray(data)
        flipped[pos] ^= 0x10
        with pytest.raises(rb.BatchError):
            rb.validate(flipped)


def test_base_offset_and_leader_epoch_are_outside_the_crc() -> None:
    data = make_batch(3)
    header = rb.validate(data)
    patched = rb.patch_prefix(header, 12345, 7) + data[16:]
    again = rb.validate(patched)
    assert (again.base_offset, again.partition_leader_epoch, again.last_offset) == (12345, 7, 12347)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b[:-1], "batchLength"),
        (lambda b: b + b"\0", "batchLength"),
        (lambda b: b[:16] + b"\x01" + b[17:], "magic"),
        (lambda b: b[:30], "header"),
        (lambda b: b[:10], "header"),
    ],
)
def test_malformed_batches_are_rejected_with_a_reason(mutate: object, message: str) -> None:
    data = make_batch(3)
    with pytest.raises(rb.BatchError, match=message):
        rb.validate(mutate(data))  # type: ignore[operator]


def test_last_offset_delta_must_match_the_count() -> None:
    data = bytearray(make_batch(3))
    struct.pack_into(">i", data, 23, 5)
    struct.pack_into(">I", data, 17, rb.crc32c(bytes(data[21:])))
    with pytest.raises(rb.BatchError, match="lastOffsetDelta"):
        rb.validate(data)


def test_a_bad_batch_is_a_logq_error_with_corrupt_message() -> None:
    data = bytearray(make_batch(2))
    data[-1] ^= 0x01
    with pytest.raises(LogqError) as info:
        rb.validate(data)
    assert isinstance(info.value, rb.BatchError)
    assert isinstance(info.value, ValueError)  # as before, for callers that catch ValueError
    assert info.value.code == ErrorCode.CORRUPT_MESSAGE
    assert info.value.retriable  # as Kafka's CorruptRecordException
