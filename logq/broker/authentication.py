"""SASL on a connection of a SASL listener, as Kafka's SaslServerAuthenticator: what is answered
before the client has authenticated, and how the tokens travel. The mechanisms themselves are the
sans-I/O ``logq.security.sasl.SaslServer``; this module feeds it and turns its answers into frames.

Before the handshake only ApiVersions and SaslHandshake are answered; anything else closes the
connection without an answer (librdkafka then says the listener may need SASL). An unknown mechanism
gets UNSUPPORTED_SASL_MECHANISM with the enabled list, then the connection closes. After a v1 handshake
the tokens come in SaslAuthenticate requests (another request: ILLEGAL_SASL_STATE, then close); after
a v0 handshake they are raw size-prefixed frames without a header, and each answer is one too, empty
ones included. A failed login is answered SASL_AUTHENTICATION_FAILED (a raw-mode one just closes) only
after the address's delay (``logq.security.throttle``), then the connection closes: one attempt per
connection. Wrong password and unknown user look the same, in words and in timing.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from logq.broker.metrics import BrokerMetrics
from logq.error_codes import ErrorCode
from logq.protocol import (
    ApiKey,
    ProtocolDecodeError,
    RequestHeader,
    UnsupportedVersionError,
    decode_request,
    encode_response_chunks,
    parse_request_header,
)
from logq.protocol import messages as m
from logq.protocol.primitives import Chunk
from logq.security.principal import user_principal
from logq.security.sasl import (
    CredentialLookup,
    IllegalSaslStateError,
    SaslAuthenticationError,
    SaslServer,
    SaslState,
    UnsupportedMechanismError,
)
from logq.security.throttle import FailedLoginThrottle

log = logging.getLogger(__name__)

Serve = Callable[[memoryview], Awaitable[list[Chunk] | None]]


@dataclass(frozen=True)
class AuthenticationSettings:
    mechanisms: tuple[str, ...]
    lookup: CredentialLookup
    secret: Callable[[], bytes]
    throttle: FailedLoginThrottle
    max_receive_bytes: int  # sasl.server.max.receive.size: the frame limit until authenticated


class AuthenticationEndedError(Exception):
    """Send ``reply`` (if any), then close: the login failed or the client broke the protocol."""

    def __init__(self, detail: str, reply: list[Chunk] | None = None) -> None:
        super().__init__(detail)
        self.reply = reply


class SaslGate:
    """One connection's authentication; ``authenticated`` once it succeeded (then every frame goes to
    the handlers as usual)."""

    def __init__(
        self, settings: AuthenticationSettings, listener: str, peer: str, metrics: BrokerMetrics
    ) -> None:
        self._settings = settings
        self._listener = listener
        self._peer = peer
        self._metrics = metrics
        self._sasl = SaslServer(settings.mechanisms, settings.lookup, settings.secret())
        self._raw = False  # tokens as raw frames (after a v0 handshake)
        self.principal: str | None = None

    @property
    def authenticated(self) -> bool:
        return self._sasl.state is SaslState.COMPLETE

    async def handle(self, frame: memoryview, serve: Serve) -> list[Chunk] | None:
        """The answer to one frame received before authentication ended; AuthenticationEndedError
        when the connection must close."""
        if self._raw:
            return await self._raw_token(bytes(frame))
        try:
            header, _ = parse_request_header(frame)
        except UnsupportedVersionError as exc:
            if exc.api_key == ApiKey.API_VERSIONS and self._sasl.state is SaslState.HANDSHAKE:
                return await serve(frame)  # the v0 fallback answer (an ApiVersions probe)
            raise AuthenticationEndedError(
                f"api_key {exc.api_key} v{exc.api_version} before authentication"
            ) from None
        except ProtocolDecodeError as exc:
            raise AuthenticationEndedError(f"malformed request before authentication: {exc}") from None
        state = self._sasl.state
        if state is SaslState.HANDSHAKE and header.api_key == ApiKey.API_VERSIONS:
            return await serve(frame)
        if state is SaslState.HANDSHAKE and header.api_key == ApiKey.SASL_HANDSHAKE:
            return await self._handshake(header, self._decode(frame, m.SaslHandshakeRequest))
        if state is SaslState.AUTHENTICATE and header.api_key == ApiKey.SASL_AUTHENTICATE:
            return await self._authenticate(header, self._decode(frame, m.SaslAuthenticateRequest))
        if header.api_key == ApiKey.SASL_HANDSHAKE:  # a second handshake
            reply = _answer(header, m.SaslHandshakeResponse(error_code=ErrorCode.ILLEGAL_SASL_STATE))
            raise AuthenticationEndedError("SaslHandshake sent twice", reply)
        raise AuthenticationEndedError(f"api_key {header.api_key} before authentication")

    @staticmethod
    def _decode(frame: memoryview, kind: type[m.SaslHandshakeRequest | m.SaslAuthenticateRequest]) -> object:
        try:
            body = decode_request(frame).body
        except (ProtocolDecodeError, UnsupportedVersionError) as exc:
            raise AuthenticationEndedError(f"malformed {kind.__name__}: {exc}") from None
        return body

    async def _handshake(self, header: RequestHeader, req: object) -> list[Chunk]:
        assert isinstance(req, m.SaslHandshakeRequest)
        mechanisms = list(self._settings.mechanisms)
        delay = self._settings.throttle.before_attempt(self._peer)
        if delay:
            await asyncio.sleep(delay)  # recent failures from this address slow its next attempt
        try:
            self._sasl.handshake(req.mechanism)
        except (UnsupportedMechanismError, IllegalSaslStateError) as exc:
            body = m.SaslHandshakeResponse(
                error_code=ErrorCode.UNSUPPORTED_SASL_MECHANISM, mechanisms=mechanisms
            )
            self._count("unknown", "unsupported-mechanism")  # never a client's string as a label
            raise AuthenticationEndedError(str(exc), _answer(header, body)) from None
        self._raw = header.api_version == 0
        return _answer(header, m.SaslHandshakeResponse(error_code=ErrorCode.NONE, mechanisms=mechanisms))

    async def _authenticate(self, header: RequestHeader, req: object) -> list[Chunk]:
        assert isinstance(req, m.SaslAuthenticateRequest)
        try:
            token = await self._step(req.auth_bytes)
        except SaslAuthenticationError as exc:
            await asyncio.sleep(self._failed())
            body = m.SaslAuthenticateResponse(
                error_code=ErrorCode.SASL_AUTHENTICATION_FAILED, error_message=str(exc)
            )
            raise AuthenticationEndedError(f"authentication failed: {exc}", _answer(header, body)) from None
        return _answer(
            header,
            m.SaslAuthenticateResponse(error_code=ErrorCode.NONE, auth_bytes=token, session_lifetime_ms=0),
        )

    async def _raw_token(self, token: bytes) -> list[Chunk]:
        try:
            answer = await self._step(token)
        except SaslAuthenticationError as exc:
            await asyncio.sleep(self._failed())
            raise AuthenticationEndedError(f"authentication failed: {exc}") from None
        if self.authenticated:
            self._raw = False
        return [struct.pack(">i", len(answer)), answer]

    async def _step(self, token: bytes) -> bytes:
        # PBKDF2 (PLAIN) takes milliseconds: off the event loop.
        answer = await asyncio.to_thread(self._sasl.step, token)
        if self.authenticated:
            assert self._sasl.user is not None
            self.principal = user_principal(self._sasl.user)
            self._settings.throttle.succeeded(self._peer)
            self._count(self._sasl.mechanism or "", "success")
            log.info(
                "authenticated %s from %s with %s on listener %s",
                self.principal, self._peer, self._sasl.mechanism, self._listener,
            )  # fmt: skip
        return answer

    def _failed(self) -> float:
        """Count and log a failed login (never the password); the delay before answering it."""
        mechanism = self._sasl.mechanism or ""
        self._count(mechanism, "failure")
        delay = self._settings.throttle.failed(self._peer)
        log.info(
            "authentication failed for user %r from %s with %s on listener %s (answered after %.0f ms)",
            self._sasl.attempted_user, self._peer, mechanism, self._listener, delay * 1000,
        )  # fmt: skip
        return delay

    def _count(self, mechanism: str, outcome: str) -> None:
        self._metrics.authentications.labels(self._listener, mechanism, outcome).inc()


def _answer(header: RequestHeader, body: m.SaslHandshakeResponse | m.SaslAuthenticateResponse) -> list[Chunk]:
    return encode_response_chunks(header, body)
