"""Sans-I/O codec for the subset of the Kafka wire protocol that logq speaks.

This package does no I/O: no sockets, no asyncio, no threads, no files. Callers feed it bytes and
get back frames, typed messages and bytes (or lists of chunks) to write. Both encodings are supported:
the classic one (int16-length strings, int32-count arrays) and, from a message's ``FLEXIBLE_FROM``
version, the flexible one (compact types, tagged fields, request header v2, response header v1); see
``apis.API_SPECS`` for the api_key/version table and docs/protocol.md ("APIs and versions",
"Framing, headers and flexible versions", "ApiVersions negotiation").

Message classes live in :mod:`logq.protocol.messages`. Broker side::

    buffer = FrameBuffer()                       # FrameSizeError: close the connection
    for frame in buffer.feed(received):
        try:
            request = decode_request(frame)
        except UnsupportedVersionError as exc:   # ApiVersions v3+ gets the v0 fallback; others close
            reply = unsupported_version_response(exc)
            ...
        match request.body:                      # ProtocolDecodeError above: close the connection
            case MetadataRequest():
                body = MetadataResponse(brokers=[...], topics=[...])
        if request.expects_response:             # False for acks=0 Produce
            transport.writelines(encode_response_chunks(request.header, body))

Client side: :func:`encode_request` builds a complete request; :func:`decode_response` parses the reply
frame for the (api_key, version) that was sent.

Modules: ``primitives`` (Reader/Writer), ``schema`` (field tables and the generic codec), ``messages``
(one dataclass per message and nested struct), ``apis`` (the version table), ``header``, ``frames``,
``server``, ``client``, ``errors``.
"""

from logq.protocol import messages
from logq.protocol.apis import (
    ADVERTISED_API_KEYS,
    API_SPECS,
    ApiKey,
    ApiSpec,
    RequestBody,
    ResponseBody,
    api_versions_entries,
    expects_response,
)
from logq.protocol.client import decode_response, decode_response_as, encode_request, encode_request_chunks
from logq.protocol.errors import (
    FrameSizeError,
    ProtocolDecodeError,
    ProtocolEncodeError,
    ProtocolError,
    UnsupportedVersionError,
)
from logq.protocol.frames import DEFAULT_MAX_FRAME_BYTES, FrameBuffer, FrameReceiver
from logq.protocol.header import RequestHeader, parse_request_header
from logq.protocol.primitives import INLINE_RECORDS_MAX, Buffer, Chunk
from logq.protocol.schema import Struct, decode_struct, encode_struct
from logq.protocol.server import (
    Request,
    api_versions_fallback_response,
    decode_request,
    encode_response,
    encode_response_chunks,
    unsupported_version_response,
)

__all__ = [
    "ADVERTISED_API_KEYS",
    "API_SPECS",
    "DEFAULT_MAX_FRAME_BYTES",
    "INLINE_RECORDS_MAX",
    "ApiKey",
    "ApiSpec",
    "Buffer",
    "Chunk",
    "FrameBuffer",
    "FrameReceiver",
    "FrameSizeError",
    "ProtocolDecodeError",
    "ProtocolEncodeError",
    "ProtocolError",
    "Request",
    "RequestBody",
    "RequestHeader",
    "ResponseBody",
    "Struct",
    "UnsupportedVersionError",
    "api_versions_entries",
    "api_versions_fallback_response",
    "decode_request",
    "decode_response",
    "decode_response_as",
    "decode_struct",
    "encode_request",
    "encode_request_chunks",
    "encode_response",
    "encode_response_chunks",
    "encode_struct",
    "expects_response",
    "messages",
    "parse_request_header",
    "unsupported_version_response",
]
