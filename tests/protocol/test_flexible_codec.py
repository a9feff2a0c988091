"""Kafka's flexible encoding (KIP-482) byte for byte: compact strings, bytes, records and arrays (nullable
too), unsigned varints, tagged-field sections (known tags decoded, unknown ones skipped, defaults not
sent), request header v2 and response header v1, and ApiVersions' response header v0."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar

import pytest

from logq.protocol import (
    ProtocolDecodeError,
    ProtocolEncodeError,
    RequestHeader,
    decode_request,
    encode_response,
)
from logq.protocol.apis import ApiKey
from logq.protocol.header import response_header_is_flexible
from logq.protocol.messages import (
    ListOffsetsPartition,
    ListOffsetsRequest,
    ListOffsetsResponse,
    ListOffsetsTopic,
)
from logq.protocol.primitives import INLINE_RECORDS_MAX, Buffer, Reader, Writer
from logq.protocol.schema import (
    BYTES,
    INT32,
    RECORDS,
    STRING,
    ArrayOf,
    Struct,
    decode_struct,
    encode_struct,
    wire,
)


@dataclass(slots=True, kw_only=True)
class Item(Struct):
    name: str = wire(STRING)
    note: str | None = wire(STRING, nullable="0+", default=None)
    weight: int = wire(INT32, "1+", tag=0)  # tagged in a nested struct


@dataclass(slots=True, kw_only=True)
class Sample(Struct):
    FLEXIBLE_FROM: ClassVar[int | None] = 1
    id: int = wire(INT32)
    data: bytes | None = wire(BYTES, nullable="0+", default=None)
    items: list[Item] | None = wire(ArrayOf(Item), nullable="0+", default=None)
    records: Buffer | None = wire(RECORDS, nullable="0+", default=None)
    leader: int = wire(INT32, "1+", default=-1, tag=0)
    cluster: str | None = wire(STRING, "1+", nullable="1+", default=None, tag=3)


SAMPLE = Sample(id=7, data=b"ab", items=[Item(name="x", note=None, weight=0)], records=b"REC", cluster="c1")
NON_FLEXIBLE = (
    struct.pack(">i", 7) + struct.pack(">i", 2) + b"ab"  # id, bytes
    + struct.pack(">i", 1) + b"\x00\x01x" + b"\xff\xff"  # items: one, name "x", note null
    + struct.pack(">i", 3) + b"REC"  # records
)  # fmt: skip
FLEXIBLE = (
    struct.pack(">i", 7) + b"\x03ab"  # id, compact bytes (length + 1)
    + b"\x02" + b"\x02x" + b"\x00" + b"\x00"  # items: 1 + 1, name, null note, no tags (weight is 0)
    + b"\x04REC"  # compact records
    + b"\x01" + b"\x03" + b"\x03" + b"\x03c1"  # one tag (leader is its default): 3, 3 bytes, "c1"
)  # fmt: skip


def test_the_same_message_in_both_encodings() -> None:
    assert encode_struct(SAMPLE, 0) == NON_FLEXIBLE
    assert encode_struct(SAMPLE, 1) == FLEXIBLE
    decoded = decode_struct(Sample, FLEXIBLE, 1)
    assert bytes(decoded.records or b"") == b"REC"
    decoded.records = SAMPLE.records
    assert decoded == SAMPLE
    old = decode_struct(Sample, NON_FLEXIBLE, 0)
    assert (old.leader, old.cluster) == (-1, None)  # tagged fields absent: their defaults


def test_tagged_fields_go_out_in_tag_order_and_come_back() -> None:
    value = Sample(id=1, leader=5, cluster=None, items=[Item(name="", weight=300)])
    encoded = encode_struct(value, 1)
    assert encoded.endswith(b"\x01" + b"\x00\x04" + struct.pack(">i", 5))  # cluster None is its default
    assert b"\x01\x00\x04" + struct.pack(">i", 300) in encoded  # the item's weight
    assert decode_struct(Sample, encoded, 1) == value
    both = encode_struct(Sample(id=1, leader=5, cluster="z"), 1)
    assert both.endswith(b"\x02" + b"\x00\x04" + struct.pack(">i", 5) + b"\x03\x02\x02z")


def test_unknown_tags_are_skipped_at_every_level() -> None:
    unknown = b"\x09\x03xyz"  # tag 9, 3 bytes
    item = b"\x02x" + b"\x00" + b"\x01" + unknown  # an item with only an unknown tag
    frame = (
        struct.pack(">i", 7) + b"\x00" + b"\x02" + item + b"\x00"
        + b"\x03" + b"\x00\x04" + struct.pack(">i", 4) + unknown + b"\x7f\x00"  # known, unknown, empty
    )  # fmt: skip
    decoded = decode_struct(Sample, frame, 1)
    assert (decoded.data, decoded.records, decoded.leader) == (None, None, 4)
    assert decoded.items == [Item(name="x", note=None, weight=0)]


def test_nulls_and_empties_in_compact_form() -> None:
    empty = Sample(id=0, data=b"", items=[], records=None)
    assert encode_struct(empty, 1) == b"\x00\x00\x00\x00" + b"\x01" + b"\x01" + b"\x00" + b"\x00"
    null = Sample(id=0)
    assert encode_struct(null, 1) == b"\x00\x00\x00\x00" + b"\x00" + b"\x00" + b"\x00" + b"\x00"
    assert decode_struct(Sample, encode_struct(empty, 1), 1) == empty
    assert decode_struct(Sample, encode_struct(null, 1), 1) == null


def test_large_compact_records_are_their_own_chunk() -> None:
    blob = b"r" * (INLINE_RECORDS_MAX + 1)
    writer = Writer()
    writer.write_compact_records(blob)
    chunks = writer.chunks()
    assert chunks[-1] is blob
    assert Reader(b"".join(chunks)).read_compact_records() == blob


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"\x00"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (300, b"\xac\x02"),
        (2**32 - 1, b"\xff\xff\xff\xff\x0f"),
    ],
)
def test_unsigned_varints(value: int, encoded: bytes) -> None:
    writer = Writer()
    writer.write_uvarint(value)
    assert writer.getvalue() == encoded
    assert Reader(encoded).read_uvarint() == value


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (struct.pack(">i", 1) + b"\x05ab", "compact bytes of 4 bytes but only 2 left"),
        (struct.pack(">i", 1) + b"\x00\x05", "array count 4 cannot fit"),
        (struct.pack(">i", 1) + b"\x00\x02\x00\x00\x00\x00", "non-nullable compact string is null"),
        (struct.pack(">i", 1) + b"\x00\x00\x00\x01\x00\x05ab", "need 5 bytes"),  # a tag longer than the frame
    ],
)
def test_bad_flexible_input_is_a_decode_error(data: bytes, why: str) -> None:
    with pytest.raises(ProtocolDecodeError, match=why):
        decode_struct(Sample, data, 1)


@pytest.mark.parametrize(
    ("data", "why"), [(b"\x80" * 5 + b"\x01", "longer than 5 bytes"), (b"\x80", "need 1")]
)
def test_bad_varints_are_decode_errors(data: bytes, why: str) -> None:
    with pytest.raises(ProtocolDecodeError, match=why):
        Reader(data).read_uvarint()


def test_out_of_range_varints_are_refused_on_encode() -> None:
    for bad in (-1, 2**32):
        with pytest.raises(ProtocolEncodeError):
            Writer().write_uvarint(bad)


def test_request_header_v2_tags_are_skipped_and_client_id_keeps_its_int16_length() -> None:
    body = ListOffsetsRequest(
        isolation_level=1,
        topics=[
            ListOffsetsTopic(name="t", partitions=[ListOffsetsPartition(partition_index=0, timestamp=-3)])
        ],
    )
    header = struct.pack(">hhi", ApiKey.LIST_OFFSETS, 7, 42) + b"\x00\x02id" + b"\x01\x05\x02hi"  # one tag
    request = decode_request(header + encode_struct(body, 7))
    assert (request.header.correlation_id, request.header.client_id) == (42, "id")
    assert request.body == body


def test_response_header_v1_for_flexible_versions_but_never_for_api_versions() -> None:
    answer = encode_response(RequestHeader(ApiKey.LIST_OFFSETS, 6, 9), ListOffsetsResponse())
    assert answer[4:] == struct.pack(">i", 9) + b"\x00" + encode_struct(ListOffsetsResponse(), 6)
    classic = encode_response(RequestHeader(ApiKey.LIST_OFFSETS, 5, 9), ListOffsetsResponse())
    assert classic[4:] == struct.pack(">i", 9) + encode_struct(ListOffsetsResponse(), 5)
    assert response_header_is_flexible(ApiKey.LIST_OFFSETS, 6)
    assert not response_header_is_flexible(ApiKey.LIST_OFFSETS, 5)
    for version in range(5):  # ApiVersions: header v0 whatever the version (v3+ is flexible in Kafka)
        assert not response_header_is_flexible(ApiKey.API_VERSIONS, version)


def test_a_tagged_field_in_a_non_flexible_version_is_a_declaration_error() -> None:
    @dataclass(slots=True, kw_only=True)
    class Wrong(Struct):
        FLEXIBLE_FROM: ClassVar[int | None] = 2
        leader: int = wire(INT32, "1+", tag=0)

    with pytest.raises(TypeError, match="tagged field in non-flexible v1"):
        decode_struct(Wrong, b"\x00\x00\x00\x01", 1)
