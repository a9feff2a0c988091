"""Malformed input only ever raises the typed decode errors (never IndexError, struct.error, ...)."""

from __future__ import annotations

import contextlib
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logq.protocol import (
    API_SPECS,
    ProtocolDecodeError,
    UnsupportedVersionError,
    decode_request,
    decode_response,
    decode_struct,
    encode_struct,
)

from .strategies import examples, message_strategy

CASES = [
    pytest.param(spec.api_key, version, id=f"{spec.api_key.name}-v{version}")
    for spec in API_SPECS.values()
    for version in range(spec.min_version, spec.max_version + 1)
]

# Bytes that turn lengths and counts negative, huge or zero.
_EDGE_BYTES = [0x00, 0x7F, 0x80, 0xFF]


def _request_frame(api_key: int, version: int, body: bytes) -> bytes:
    return struct.pack(">hhih", api_key, version, 7, 1) + b"c" + body


@pytest.mark.parametrize(("api_key", "version"), CASES)
@examples(40)
@given(body=st.binary(max_size=120))
def test_random_request_bodies(api_key: int, version: int, body: bytes) -> None:
    error: ProtocolDecodeError | None = None
    try:
        decode_request(_request_frame(api_key, version, body))
    except ProtocolDecodeError as exc:
        error = exc
    if error is not None:
        assert (error.api_key, error.api_version, error.correlation_id) == (api_key, version, 7)


@pytest.mark.parametrize(("api_key", "version"), CASES)
@examples(15)
@given(frame=st.binary(max_size=60))
def test_random_response_frames(api_key: int, version: int, frame: bytes) -> None:
    with contextlib.suppress(ProtocolDecodeError):
        decode_response(frame, api_key, version)


@pytest.mark.parametrize(("api_key", "version"), CASES)
@examples(15)
@given(data=st.data())
def test_mutated_requests(api_key: int, version: int, data: Any) -> None:
    """Valid encodings with a few bytes overwritten reach deep into the decoder."""
    cls = API_SPECS[api_key].request_type
    body = bytearray(encode_struct(data.draw(message_strategy(cls, version)), version))
    for _ in range(data.draw(st.integers(1, 4)) if body else 0):
        body[data.draw(st.integers(0, len(body) - 1))] = data.draw(st.sampled_from(_EDGE_BYTES))
    with contextlib.suppress(ProtocolDecodeError):
        decode_request(_request_frame(api_key, version, bytes(body)))


@pytest.mark.parametrize(("api_key", "version"), CASES)
@pytest.mark.parametrize("direction", ["request", "response"])
@examples(5)
@given(data=st.data())
def test_every_truncation_raises(api_key: int, version: int, direction: str, data: Any) -> None:
    spec = API_SPECS[api_key]
    cls = spec.request_type if direction == "request" else spec.response_type
    body = encode_struct(data.draw(message_strategy(cls, version)), version)
    # Every cut point of short bodies; for long ones (big record blobs) a spread plus both ends.
    step = max(1, len(body) // 200)
    for end in sorted({*range(0, len(body), step), *range(max(0, len(body) - 16), len(body))}):
        with pytest.raises(ProtocolDecodeError):
            decode_struct(cls, body[:end], version)


@examples(200)
@given(frame=st.binary(max_size=40))
def test_random_frames_into_request_decoder(frame: bytes) -> None:
    with contextlib.suppress(ProtocolDecodeError, UnsupportedVersionError):
        decode_request(frame)


def test_huge_array_count_does_not_allocate() -> None:
    # Metadata v1 topics count = INT32_MAX with 4 bytes behind it: must fail fast, not build a list.
    frame = _request_frame(3, 1, struct.pack(">i", 2**31 - 1) + b"\x00\x01a\x00")
    with pytest.raises(ProtocolDecodeError, match="cannot fit"):
        decode_request(frame)
