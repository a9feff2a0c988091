"""The client's record codec: BatchBuilder and decode_fetched agree with logq.batch's reference decoder
for every shape of record, and damaged input is refused. Each test runs with the pure-Python codec and,
where it is built, the compiled one (tests/client/test_records_compiled.py compares the two directly)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logq import batch as rb
from logq import codec
from logq.client.records import COMPILED_CODEC, PYTHON_CODEC, RecordCodec, encode_headers

CODECS = [PYTHON_CODEC] + ([COMPILED_CODEC] if COMPILED_CODEC is not None else [])


@pytest.fixture(scope="module", params=CODECS, ids=lambda c: c.name)
def codec_impl(request: pytest.FixtureRequest) -> RecordCodec:
    impl: RecordCodec = request.param
    return impl


records_strategy = st.lists(
    st.tuples(
        st.none() | st.binary(max_size=300),
        st.none() | st.binary(max_size=20_000),
        st.lists(st.tuples(st.text(max_size=10), st.none() | st.binary(max_size=50)), max_size=3),
        st.integers(min_value=-100_000, max_value=100_000),
    ),
    min_size=1,
    max_size=150,
)


def at_offset(batch: bytes, base_offset: int) -> bytes:
    patched = bytearray(batch)
    struct.pack_into(">q", patched, 0, base_offset)
    return bytes(patched)


@settings(max_examples=60, deadline=None)
@given(records_strategy, st.sampled_from([rb.CODEC_NONE, rb.CODEC_GZIP, rb.CODEC_ZSTD]))
def test_built_batches_decode_like_the_reference(
    codec_impl: RecordCodec, records: list[tuple[object, ...]], codec_id: int
) -> None:
    base_ts = 1_700_000_000_000
    builder = codec_impl.new_builder(base_ts, 1 << 30)
    for key, value, headers, ts_delta in records:
        assert builder.append(key, value, encode_headers(headers), base_ts + ts_delta) is not None
    batch = at_offset(builder.build(codec_id, 7, 0, 0), 1000)
    header = rb.validate(batch)
    fetched = codec_impl.decode_fetched(batch, "q", 3, 1000)
    section = batch[rb.HEADER_SIZE :]
    expected = rb.decode_records(codec.decompress(codec_id, section), header)
    assert [(r.offset, r.timestamp, r.key, r.value, r.headers) for r in fetched.records] == [
        (e.offset, e.timestamp, e.key, e.value, e.headers) for e in expected
    ]
    assert all(r.queue == "q" and r.partition == 3 for r in fetched.records)
    assert fetched.next_offset == 1000 + len(records)


def three_batches(codec_impl: RecordCodec) -> bytes:
    out = b""
    for n in range(3):
        builder = codec_impl.new_builder(1000, 1 << 20)
        for i in range(5):
            builder.append(None, b"v%d-%d" % (n, i), b"\x00", 1000 + i)
        out += at_offset(builder.build(), n * 5)
    return out


def test_position_partial_tail_and_control_batches(codec_impl: RecordCodec) -> None:
    data = three_batches(codec_impl)
    fetched = codec_impl.decode_fetched(data, "q", 0, 7)  # starts inside the second batch
    assert [r.offset for r in fetched.records] == list(range(7, 15))
    cut = codec_impl.decode_fetched(data[:-10], "q", 0, 0)  # the broker cut the last batch at max bytes
    assert [r.offset for r in cut.records] == list(range(10))
    assert cut.next_offset == 10
    control = bytearray(data[: len(data) // 3])
    struct.pack_into(">h", control, rb.CRC_START, rb.ATTR_CONTROL)
    struct.pack_into(">I", control, 17, rb.checksum(bytes(control[rb.CRC_START :])))
    skipped = codec_impl.decode_fetched(bytes(control), "q", 0, 0)
    assert skipped.records == []
    assert skipped.next_offset == 5


def test_log_append_time_gives_every_record_the_batch_time(codec_impl: RecordCodec) -> None:
    builder = codec_impl.new_builder(1000, 1 << 20)
    for i in range(3):
        builder.append(None, b"x", b"\x00", 1000 + i)
    batch = bytearray(builder.build())
    struct.pack_into(">h", batch, rb.CRC_START, rb.ATTR_LOG_APPEND_TIME)
    struct.pack_into(">q", batch, 35, 5555)  # maxTimestamp: the broker's append time
    struct.pack_into(">I", batch, 17, rb.checksum(bytes(batch[rb.CRC_START :])))
    assert [r.timestamp for r in codec_impl.decode_fetched(bytes(batch), "q", 0, 0).records] == [5555] * 3


def test_damaged_batches_are_refused(codec_impl: RecordCodec) -> None:
    data = bytearray(three_batches(codec_impl))
    data[rb.HEADER_SIZE + 3] ^= 0xFF  # a record byte of the first batch
    with pytest.raises(rb.BatchError, match="CRC-32C"):
        codec_impl.decode_fetched(bytes(data), "q", 0, 0)
    builder = codec_impl.new_builder(1000, 1 << 20)
    builder.append(None, b"value", b"\x00", 1000)
    batch = bytearray(builder.build())
    struct.pack_into(">i", batch, 57, 2)  # recordsCount says 2, there is 1
    struct.pack_into(">I", batch, 17, rb.checksum(bytes(batch[rb.CRC_START :])))
    with pytest.raises(rb.BatchError, match="truncated"):
        codec_impl.decode_fetched(bytes(batch), "q", 0, 0)
