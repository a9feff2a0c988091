"""Broker side: decode request frames, encode response frames, and the ApiVersions fallback reply
(docs/protocol.md, "ApiVersions negotiation")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from logq.error_codes import ErrorCode
from logq.protocol.apis import (
    API_SPECS,
    ApiKey,
    RequestBody,
    ResponseBody,
    expects_response,
    spec_for_response,
)
from logq.protocol.errors import ProtocolDecodeError, ProtocolEncodeError, UnsupportedVersionError
from logq.protocol.header import (
    RequestHeader,
    parse_request_header,
    response_header_is_flexible,
    write_response_header,
)
from logq.protocol.messages import ApiVersionsResponse, ApiVersionsResponseKey
from logq.protocol.primitives import Buffer, Chunk, Writer
from logq.protocol.schema import decode_struct, write_struct


@dataclass(frozen=True, slots=True)
class Request:
    header: RequestHeader
    body: RequestBody

    @property
    def expects_response(self) -> bool:
        """False for Produce with acks=0: send nothing back."""
        return expects_response(self.body)


def decode_request(frame: Buffer) -> Request:
    """Decode one request frame (the bytes after the size prefix).

    Raises :class:`UnsupportedVersionError` (answer with :func:`unsupported_version_response` or close)
    or :class:`ProtocolDecodeError` (close, or answer INVALID_REQUEST) and nothing else. Produce
    ``records`` stay zero-copy views into ``frame``.
    """
    header, body_view = parse_request_header(frame)
    request_type = API_SPECS[header.api_key].request_type
    try:
        body = decode_struct(request_type, body_view, header.api_version)
    except ProtocolDecodeError as exc:
        raise ProtocolDecodeError(
            f"malformed {request_type.__name__} v{header.api_version}: {exc}",
            api_key=header.api_key,
            api_version=header.api_version,
            correlation_id=header.correlation_id,
        ) from exc
    return Request(header, cast(RequestBody, body))


def _response_writer(header: RequestHeader, body: ResponseBody) -> Writer:
    spec = spec_for_response(type(body))
    if spec.api_key != header.api_key or not spec.supports(header.api_version):
        raise ProtocolEncodeError(
            f"{type(body).__name__} cannot answer api_key={header.api_key} v{header.api_version}"
        )
    writer = Writer(framed=True)
    flexible = response_header_is_flexible(header.api_key, header.api_version)
    write_response_header(writer, header.correlation_id, flexible=flexible)
    write_struct(writer, body, header.api_version)
    return writer


def encode_response(header: RequestHeader, body: ResponseBody) -> bytes:
    """The complete response (size prefix, header v0, body) at the request's version."""
    return _response_writer(header, body).getvalue()


def encode_response_chunks(header: RequestHeader, body: ResponseBody) -> list[Chunk]:
    """Like :func:`encode_response` but as chunks for ``writelines``: record blobs over
    ``INLINE_RECORDS_MAX`` bytes are passed through as their own chunks, never concatenated."""
    return _response_writer(header, body).chunks()


def api_versions_fallback_response(correlation_id: int) -> bytes:
    """The reply to an ApiVersions request above v2, without parsing its body (as Kafka, KIP-511).

    v0 layout: error 35 (UNSUPPORTED_VERSION), a one-entry array (18, min, max), no throttle field,
    response header v0.
    """
    spec = API_SPECS[ApiKey.API_VERSIONS]
    body = ApiVersionsResponse(
        error_code=ErrorCode.UNSUPPORTED_VERSION,
        api_keys=[
            ApiVersionsResponseKey(
                api_key=ApiKey.API_VERSIONS, min_version=spec.min_version, max_version=spec.max_version
            )
        ],
    )
    writer = Writer(framed=True)
    write_response_header(writer, correlation_id)
    write_struct(writer, body, 0)
    return writer.getvalue()


def unsupported_version_response(exc: UnsupportedVersionError) -> bytes | None:
    """What to send for a request that failed the version check: the ApiVersions fallback reply for
    ApiVersions, else ``None``, meaning close the connection as Kafka does."""
    if exc.api_key == ApiKey.API_VERSIONS:
        return api_versions_fallback_response(exc.correlation_id)
    return None
