"""Request headers v1 and v2 and response headers v0 and v1: the flexible versions' (v2, v1) add a
tagged-field section, except that ApiVersions always answers with header v0.

A "frame" here is what :class:`~logq.protocol.frames.FrameBuffer` yields: the bytes after the int32 size
prefix. Encoders elsewhere return complete wire bytes, size prefix included.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from logq.protocol.apis import API_SPECS, ApiKey
from logq.protocol.errors import ProtocolDecodeError, UnsupportedVersionError
from logq.protocol.primitives import Buffer, Reader, Writer, as_byte_view

# api_key int16, api_version int16, correlation_id int32: readable before anything else, so an unknown
# version is refused without parsing the body (docs/protocol.md, "ApiVersions negotiation").
_PREFIX: Final = struct.Struct(">hhi")
REQUEST_HEADER_PREFIX_SIZE: Final = _PREFIX.size


@dataclass(frozen=True, slots=True)
class RequestHeader:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None = None


def parse_request_header(frame: Buffer) -> tuple[RequestHeader, memoryview]:
    """Split a request frame into its header and a zero-copy view of the body.

    Raises :class:`UnsupportedVersionError` for an unknown api_key or version, after reading only the
    8-byte prefix, and :class:`ProtocolDecodeError` for a truncated header or a bad client_id.
    """
    view = as_byte_view(frame)
    if view.nbytes < REQUEST_HEADER_PREFIX_SIZE:
        raise ProtocolDecodeError(f"request frame of {view.nbytes} bytes is shorter than its header")
    api_key, api_version, correlation_id = _PREFIX.unpack_from(view, 0)
    spec = API_SPECS.get(api_key)
    if spec is None or not spec.supports(api_version):
        raise UnsupportedVersionError(api_key, api_version, correlation_id)
    reader = Reader(view[REQUEST_HEADER_PREFIX_SIZE:])
    try:
        client_id = reader.read_nullable_string()  # a classic string even in header v2
        if spec.flexible(api_version):
            reader.skip_tagged_fields()
    except ProtocolDecodeError as exc:
        raise ProtocolDecodeError(
            f"bad client_id: {exc}", api_key=api_key, api_version=api_version, correlation_id=correlation_id
        ) from exc
    return RequestHeader(api_key, api_version, correlation_id, client_id), reader.rest()


def write_request_header(writer: Writer, header: RequestHeader) -> None:
    writer.write_int16(header.api_key)
    writer.write_int16(header.api_version)
    writer.write_int32(header.correlation_id)
    writer.write_nullable_string(header.client_id)
    if API_SPECS[header.api_key].flexible(header.api_version):
        writer.write_empty_tagged_fields()


def response_header_is_flexible(api_key: int, api_version: int) -> bool:
    """Response header v1 (with tags) for flexible versions; ApiVersions always uses v0 (docs/protocol.md)."""
    spec = API_SPECS.get(api_key)
    return spec is not None and api_key != ApiKey.API_VERSIONS and spec.flexible(api_version)


def write_response_header(writer: Writer, correlation_id: int, *, flexible: bool = False) -> None:
    writer.write_int32(correlation_id)
    if flexible:
        writer.write_empty_tagged_fields()
