"""Client side: build request frames and parse response frames for the (api_key, version) sent."""

from __future__ import annotations

from typing import TypeVar, cast

from logq.protocol.apis import API_SPECS, RequestBody, ResponseBody, spec_for_request, spec_for_response
from logq.protocol.errors import ProtocolDecodeError, ProtocolEncodeError
from logq.protocol.header import RequestHeader, response_header_is_flexible, write_request_header
from logq.protocol.messages import ApiVersionsResponse
from logq.protocol.primitives import Buffer, Chunk, Reader, Writer
from logq.protocol.schema import Struct, decode_struct, write_struct

R = TypeVar("R", bound=Struct)


def _request_writer(body: RequestBody, version: int, correlation_id: int, client_id: str | None) -> Writer:
    spec = spec_for_request(type(body))
    if not spec.supports(version):
        raise ProtocolEncodeError(f"{type(body).__name__} v{version} is not supported")
    writer = Writer(framed=True)
    write_request_header(writer, RequestHeader(spec.api_key, version, correlation_id, client_id))
    write_struct(writer, body, version)
    return writer


def encode_request(
    body: RequestBody, version: int, correlation_id: int, client_id: str | None = None
) -> bytes:
    """The complete request: int32 size, request header v1, body encoded at ``version``."""
    return _request_writer(body, version, correlation_id, client_id).getvalue()


def encode_request_chunks(
    body: RequestBody, version: int, correlation_id: int, client_id: str | None = None
) -> list[Chunk]:
    """Like :func:`encode_request`, with large Produce record blobs left as separate chunks."""
    return _request_writer(body, version, correlation_id, client_id).chunks()


def decode_response_as(frame: Buffer, response_type: type[R], version: int) -> tuple[int, R]:
    """Parse a response frame (bytes after the size prefix) into (correlation_id, body).

    An ApiVersions error response that does not parse at the version sent is parsed as v0, because
    brokers answer an ApiVersions request they do not support in the v0 layout (docs/protocol.md,
    "ApiVersions negotiation"; Kafka's ``ApiVersionsResponse.parse`` does the same).
    """
    spec = spec_for_response(response_type)
    if not spec.supports(version):
        raise ProtocolDecodeError(f"{response_type.__name__} v{version} is not supported")
    reader = Reader(frame)
    correlation_id = reader.read_int32()
    if response_header_is_flexible(spec.api_key, version):
        reader.skip_tagged_fields()
    body = reader.rest()
    try:
        return correlation_id, decode_struct(response_type, body, version)
    except ProtocolDecodeError:
        if response_type is not ApiVersionsResponse or version == 0 or Reader(body).read_int16() == 0:
            raise
    return correlation_id, decode_struct(response_type, body, 0)


def decode_response(frame: Buffer, api_key: int, version: int) -> tuple[int, ResponseBody]:
    """Parse a response frame given the api_key and version of the request that was sent."""
    spec = API_SPECS.get(api_key)
    if spec is None:
        raise ProtocolDecodeError(f"unknown api_key {api_key}")
    correlation_id, body = decode_response_as(frame, spec.response_type, version)
    return correlation_id, cast(ResponseBody, body)
