"""Reader/Writer primitives and encode-side validation."""

from __future__ import annotations

import struct

import pytest

from logq.protocol import (
    ProtocolDecodeError,
    ProtocolEncodeError,
    RequestHeader,
    encode_response_chunks,
    encode_struct,
)
from logq.protocol.messages import (
    FetchableTopicResponse,
    FetchPartitionData,
    FetchResponse,
    MetadataRequest,
)
from logq.protocol.primitives import INLINE_RECORDS_MAX, Reader, Writer
from logq.protocol.schema import parse_versions


def test_reads_each_type() -> None:
    data = struct.pack(">bhiqI", -1, -2, -3, -4, 2**32 - 1) + b"\x02" + b"\x00\x02hi" + b"\xff\xff"
    r = Reader(data)
    assert (r.read_int8(), r.read_int16(), r.read_int32(), r.read_int64(), r.read_uint32()) == (
        -1, -2, -3, -4, 2**32 - 1,
    )  # fmt: skip
    assert r.read_bool() is True
    assert r.read_string() == "hi"
    assert r.read_nullable_string() is None
    assert r.remaining == 0


@pytest.mark.parametrize(
    ("data", "method"),
    [
        (b"", "read_int8"),
        (b"\x00", "read_int16"),
        (b"\x00\x00\x00", "read_int32"),
        (b"\x00" * 7, "read_int64"),
        (b"\x00\x05abc", "read_string"),
        (b"\xff\xff", "read_string"),
        (b"\xff\xfe", "read_nullable_string"),
        (b"\x00\x02\xc3\x28", "read_string"),  # invalid UTF-8
        (b"\x00\x01\xff", "read_nullable_string"),
        (b"\xff\xff\xff\xff", "read_bytes"),
        (b"\xff\xff\xff\xfe", "read_nullable_bytes"),
        (b"\x00\x00\x00\x09abc", "read_nullable_bytes"),
        (b"\xff\xff\xff\xfe", "read_records"),
        (b"\x7f\xff\xff\xff", "read_records"),
    ],
)
def test_malformed_input_raises_typed_error(data: bytes, method: str) -> None:
    with pytest.raises(ProtocolDecodeError):
        getattr(Reader(data), method)()


def test_array_count_must_fit_remaining_bytes() -> None:
    r = Reader(struct.pack(">i", 2**31 - 1) + b"\x00" * 16)
    with pytest.raises(ProtocolDecodeError, match="cannot fit"):
        r.read_count(4, nullable=False)
    assert Reader(struct.pack(">i", 4) + b"\x00" * 16).read_count(4, nullable=False) == 4
    assert Reader(struct.pack(">i", -1)).read_count(4, nullable=True) == -1
    for count, nullable in ((-1, False), (-2, True)):
        with pytest.raises(ProtocolDecodeError):
            Reader(struct.pack(">i", count)).read_count(4, nullable=nullable)


def test_records_are_zero_copy_views() -> None:
    data = b"\x00\x00\x00\x03abc"
    records = Reader(data).read_records()
    assert isinstance(records, memoryview)
    assert records.obj is data
    assert bytes(records) == b"abc"


def test_versions_strings() -> None:
    assert parse_versions("3+") == (3, 0x7FFF)
    assert parse_versions("2-4") == (2, 4)
    assert parse_versions("8") == (8, 8)


def test_writer_rejects_overlong_string() -> None:
    with pytest.raises(ProtocolEncodeError):
        Writer().write_string("x" * 0x8000)


@pytest.mark.parametrize(
    "message",
    [
        FetchResponse(throttle_time_ms=2**31),  # int32 overflow
        FetchResponse(responses=[FetchableTopicResponse(topic=None)]),  # type: ignore[arg-type]
        MetadataRequest(topics=None),  # null topics are only allowed from v1
    ],
)
def test_bad_values_raise_encode_error(message: FetchResponse | MetadataRequest) -> None:
    with pytest.raises(ProtocolEncodeError):
        encode_struct(message, 0 if isinstance(message, MetadataRequest) else 11)


def test_fetch_records_are_passed_through_as_chunks() -> None:
    big = memoryview(b"B" * (INLINE_RECORDS_MAX + 1))
    small = b"s" * 10
    body = FetchResponse(
        responses=[
            FetchableTopicResponse(
                topic="t",
                partitions=[
                    FetchPartitionData(partition_index=0, records=big),
                    FetchPartitionData(partition_index=1, records=small),
                    FetchPartitionData(partition_index=2, records=big),
                ],
            )
        ]
    )
    chunks = encode_response_chunks(RequestHeader(1, 11, 9), body)
    assert [c is big for c in chunks] == [False, True, False, True]
    assert struct.unpack_from(">i", chunks[0])[0] == sum(len(c) for c in chunks) - 4
