"""Encode→decode round trips for every API, every supported version, requests and responses."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logq.protocol import (
    API_SPECS,
    FrameBuffer,
    RequestHeader,
    decode_request,
    decode_response,
    decode_struct,
    encode_request,
    encode_request_chunks,
    encode_response,
    encode_response_chunks,
    encode_struct,
)
from logq.protocol.schema import Struct

from .strategies import examples, message_strategy

CASES = [
    pytest.param(spec.api_key, version, direction, id=f"{spec.api_key.name}-v{version}-{direction}")
    for spec in API_SPECS.values()
    for version in range(spec.min_version, spec.max_version + 1)
    for direction in ("request", "response")
]


def _type(api_key: int, direction: str) -> type[Struct]:
    spec = API_SPECS[api_key]
    return spec.request_type if direction == "request" else spec.response_type


@pytest.mark.parametrize(("api_key", "version", "direction"), CASES)
@examples(12)
@given(data=st.data(), correlation_id=st.integers(-(2**31), 2**31 - 1))
def test_round_trip(api_key: int, version: int, direction: str, data: Any, correlation_id: int) -> None:
    cls = _type(api_key, direction)
    message = data.draw(message_strategy(cls, version))

    body = encode_struct(message, version)
    assert decode_struct(cls, body, version) == message

    if direction == "request":
        client_id = data.draw(st.none() | st.text(max_size=8))
        wire = encode_request(message, version, correlation_id, client_id)
        assert b"".join(encode_request_chunks(message, version, correlation_id, client_id)) == wire
        (frame,) = FrameBuffer().feed(wire)
        request = decode_request(frame)
        assert request.header == RequestHeader(api_key, version, correlation_id, client_id)
        assert request.body == message
    else:
        header = RequestHeader(api_key, version, correlation_id, "c")
        wire = encode_response(header, message)
        assert b"".join(encode_response_chunks(header, message)) == wire
        (frame,) = FrameBuffer().feed(wire)
        assert decode_response(frame, api_key, version) == (correlation_id, message)


@pytest.mark.parametrize(("api_key", "version", "direction"), CASES)
def test_defaults_round_trip(api_key: int, version: int, direction: str) -> None:
    # A message built from defaults only must encode at every version (no None in non-nullable fields).
    cls = _type(api_key, direction)
    assert decode_struct(cls, encode_struct(cls(), version), version) == cls()
