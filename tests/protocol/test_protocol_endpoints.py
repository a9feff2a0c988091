"""Broker and client helpers: headers, the ApiVersions fallback, acks=0, the advertised table."""

from __future__ import annotations

import struct

import pytest
from kafka.protocol.metadata import ApiVersionsRequest as KpApiVersionsRequest
from kafka.protocol.metadata import ApiVersionsResponse as KpApiVersionsResponse

from logq.error_codes import ErrorCode
from logq.errors import LogqError
from logq.protocol import (
    ApiKey,
    FrameBuffer,
    FrameSizeError,
    ProtocolDecodeError,
    ProtocolEncodeError,
    RequestHeader,
    UnsupportedVersionError,
    api_versions_entries,
    api_versions_fallback_response,
    decode_request,
    decode_response,
    decode_response_as,
    encode_request,
    encode_response,
    expects_response,
    parse_request_header,
    unsupported_version_response,
)
from logq.protocol.messages import (
    ApiVersionsRequest,
    ApiVersionsResponse,
    ApiVersionsResponseKey,
    HeartbeatResponse,
    MetadataRequest,
    MetadataResponse,
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)

DEFAULT_TABLE = [
    (0, 0, 8), (1, 4, 11), (2, 1, 7), (3, 0, 8), (8, 2, 7), (9, 1, 5), (10, 0, 2), (11, 0, 5),
    (12, 0, 3), (13, 0, 3), (14, 0, 3), (18, 0, 2), (19, 0, 4), (20, 0, 3), (22, 0, 1),
]  # fmt: skip


def _entries(keys: list[ApiVersionsResponseKey]) -> list[tuple[int, int, int]]:
    return [(k.api_key, k.min_version, k.max_version) for k in keys]


def test_the_default_advertisement_is_the_core_table() -> None:
    assert _entries(api_versions_entries()) == DEFAULT_TABLE
    extra = _entries(api_versions_entries([ApiKey.DESCRIBE_GROUPS, ApiKey.LIST_GROUPS]))
    assert extra == sorted([*DEFAULT_TABLE, (15, 0, 4), (16, 0, 2)])
    # Served by the broker, outside the default table: each range stops before the first flexible version.
    described = _entries(api_versions_entries([ApiKey.DESCRIBE_CONFIGS, ApiKey.DESCRIBE_LOG_DIRS]))
    assert described == sorted([*DEFAULT_TABLE, (32, 0, 3), (35, 0, 1)])
    acls = _entries(api_versions_entries([ApiKey.DESCRIBE_ACLS, ApiKey.CREATE_ACLS, ApiKey.DELETE_ACLS]))
    assert acls == sorted([*DEFAULT_TABLE, (29, 0, 1), (30, 0, 1), (31, 0, 1)])


def test_fallback_reply_bytes_are_exact() -> None:
    expected = struct.pack(">iihihhh", 16, 1234, 35, 1, 18, 0, 2)
    assert api_versions_fallback_response(1234) == expected


# Kafka answers any unsupported ApiVersions version this way (RequestContext.isUnsupportedApiVersionsRequest).
@pytest.mark.parametrize("version", [3, 4, 127, -1])
def test_api_versions_above_v2_gets_fallback_without_parsing_body(version: int) -> None:
    # Flexible header v2 (tag buffer) and a compact body we must not try to parse.
    frame = struct.pack(">hhih", 18, version, 99, 3) + b"cli" + b"\x00" + b"\x05junk\x03\xff"
    with pytest.raises(UnsupportedVersionError) as info:
        decode_request(frame)
    exc = info.value
    assert (exc.api_key, exc.api_version, exc.correlation_id) == (18, version, 99)
    assert unsupported_version_response(exc) == struct.pack(">iihihhh", 16, 99, 35, 1, 18, 0, 2)


def test_kafka_python_v4_probe_reads_the_fallback() -> None:
    probe = KpApiVersionsRequest(client_software_name="kp", client_software_version="3")
    probe.with_header(correlation_id=5, client_id="kp")
    (frame,) = FrameBuffer().feed(bytes(probe.encode(version=4, header=True, framed=True)))
    with pytest.raises(UnsupportedVersionError) as info:
        decode_request(frame)
    reply = unsupported_version_response(info.value)
    assert reply is not None
    decoded = KpApiVersionsResponse.decode(reply, version=4, header=True, framed=True)
    assert decoded.header.correlation_id == 5
    assert decoded.error_code == 35
    assert [(k.api_key, k.min_version, k.max_version) for k in decoded.api_keys] == [(18, 0, 2)]


@pytest.mark.parametrize("version", [1, 2])
def test_client_reads_v0_layout_error_reply(version: int) -> None:
    reply = api_versions_fallback_response(8)
    correlation_id, body = decode_response_as(reply[4:], ApiVersionsResponse, version)
    assert correlation_id == 8
    assert body.error_code == ErrorCode.UNSUPPORTED_VERSION
    assert _entries(body.api_keys) == [(18, 0, 2)]


@pytest.mark.parametrize(
    ("api_key", "version"), [(0, 9), (1, 3), (1, 12), (3, 9), (32, 4), (35, 2), (99, 0), (-1, 0)]
)
def test_unsupported_requests_close_the_connection(api_key: int, version: int) -> None:
    frame = struct.pack(">hhih", api_key, version, 3, -1)
    with pytest.raises(UnsupportedVersionError) as info:
        parse_request_header(frame)
    assert unsupported_version_response(info.value) is None


def test_header_parsing() -> None:
    header, body = parse_request_header(struct.pack(">hhih", 3, 1, 17, -1) + b"rest")
    assert header == RequestHeader(3, 1, 17, None)
    assert bytes(body) == b"rest"
    with pytest.raises(ProtocolDecodeError):
        parse_request_header(b"\x00\x03\x00\x01\x00\x00\x00")
    with pytest.raises(ProtocolDecodeError) as info:
        parse_request_header(struct.pack(">hhih", 3, 1, 17, 10) + b"short")
    assert (info.value.api_key, info.value.correlation_id) == (3, 17)


def test_codec_errors_are_logq_errors_with_their_codes() -> None:
    """Each codec error carries the Kafka code of what went wrong, as every other logq error does."""
    with pytest.raises(LogqError) as unsupported:
        parse_request_header(struct.pack(">hhih", 99, 0, 3, -1))
    with pytest.raises(LogqError) as truncated:
        decode_request(struct.pack(">hhih", 3, 8, 17, 10) + b"short")
    with pytest.raises(LogqError) as too_long:
        encode_request(MetadataRequest(topics=None), 8, 1, "x" * 40_000)
    with pytest.raises(LogqError) as oversized:
        FrameBuffer(max_frame_bytes=100).feed(struct.pack(">i", 101))
    assert isinstance(unsupported.value, UnsupportedVersionError)
    assert unsupported.value.code == ErrorCode.UNSUPPORTED_VERSION
    assert isinstance(truncated.value, ProtocolDecodeError)
    assert isinstance(too_long.value, ProtocolEncodeError)
    assert isinstance(oversized.value, FrameSizeError)
    for error in (truncated.value, too_long.value, oversized.value):
        assert error.code == ErrorCode.INVALID_REQUEST
    assert not any(e.value.retriable for e in (unsupported, truncated, too_long, oversized))


def _produce(acks: int) -> ProduceRequest:
    data = PartitionProduceData(index=0, records=b"batch")
    return ProduceRequest(
        acks=acks, timeout_ms=1000, topic_data=[TopicProduceData(name="t", partition_data=[data])]
    )


@pytest.mark.parametrize(("acks", "expected"), [(0, False), (1, True), (-1, True)])
def test_acks_zero_expects_no_response(acks: int, expected: bool) -> None:
    wire = encode_request(_produce(acks), 8, 1)
    assert decode_request(wire[4:]).expects_response is expected
    assert expects_response(_produce(acks)) is expected
    assert expects_response(MetadataRequest()) is True


def test_produce_records_are_views_into_the_frame() -> None:
    wire = encode_request(_produce(1), 3, 1, "c")
    (frame,) = FrameBuffer().feed(wire)
    records = decode_request(frame).body
    assert isinstance(records, ProduceRequest)
    view = records.topic_data[0].partition_data[0].records
    assert isinstance(view, memoryview)
    assert view.obj is wire
    assert bytes(view) == b"batch"


def test_truncated_body_error_carries_the_header() -> None:
    wire = encode_request(_produce(1), 7, 4242, "c")
    with pytest.raises(ProtocolDecodeError) as info:
        decode_request(wire[4:-3])
    assert (info.value.api_key, info.value.api_version, info.value.correlation_id) == (0, 7, 4242)


def test_response_must_match_the_request() -> None:
    with pytest.raises(ProtocolEncodeError):
        encode_response(RequestHeader(3, 1, 1), HeartbeatResponse())
    with pytest.raises(ProtocolEncodeError):
        encode_response(RequestHeader(3, 9, 1), MetadataResponse())
    with pytest.raises(ProtocolEncodeError):
        encode_request(ApiVersionsRequest(), 3, 1)


def test_api_versions_response_uses_header_v0() -> None:
    body = ApiVersionsResponse(api_keys=api_versions_entries())
    wire = encode_response(RequestHeader(18, 2, 77), body)
    assert struct.unpack_from(">ii", wire) == (len(wire) - 4, 77)
    assert decode_response(wire[4:], 18, 2) == (77, body)


def test_truncated_response_header() -> None:
    with pytest.raises(ProtocolDecodeError):
        decode_response(b"\x00\x01", 12, 0)
    with pytest.raises(ProtocolDecodeError):
        decode_response(b"\x00\x00\x00\x01", 99, 0)
