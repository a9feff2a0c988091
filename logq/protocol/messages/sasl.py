"""SaslHandshake (key 17, v0-1) and SaslAuthenticate (key 36, v0-1).

Field lists follow Apache Kafka's ``SaslHandshakeRequest.json``/``SaslHandshakeResponse.json`` and
``SaslAuthenticateRequest.json``/``SaslAuthenticateResponse.json`` (non-flexible versions only:
SaslAuthenticate v2 is the first flexible one; SaslHandshake never became flexible). After a v0
handshake the tokens travel as raw size-prefixed frames with no header (see docs/security.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from logq.protocol.schema import BYTES, INT16, INT64, STRING, ArrayOf, Struct, wire

__all__ = [
    "SaslAuthenticateRequest",
    "SaslAuthenticateResponse",
    "SaslHandshakeRequest",
    "SaslHandshakeResponse",
]


@dataclass(slots=True, kw_only=True)
class SaslHandshakeRequest(Struct):
    mechanism: str = wire(STRING)


@dataclass(slots=True, kw_only=True)
class SaslHandshakeResponse(Struct):
    error_code: int = wire(INT16)
    mechanisms: list[str] = wire(ArrayOf(STRING))  # the enabled ones, sent with an error too


@dataclass(slots=True, kw_only=True)
class SaslAuthenticateRequest(Struct):
    auth_bytes: bytes = wire(BYTES)


@dataclass(slots=True, kw_only=True)
class SaslAuthenticateResponse(Struct):
    error_code: int = wire(INT16)
    error_message: str | None = wire(STRING, nullable="0+", default=None)
    auth_bytes: bytes = wire(BYTES)
    session_lifetime_ms: int = wire(INT64, "1+")  # 0: no re-authentication required
