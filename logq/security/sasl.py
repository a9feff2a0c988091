"""The server side of one connection's SASL authentication, sans-I/O: a state machine over mechanism
names and tokens. The broker's connection feeds it what arrives (``handshake``, then ``step`` for each
token) and sends what it returns; how tokens travel (SaslAuthenticate or raw frames) is the caller's.

States: HANDSHAKE (nothing chosen yet) -> AUTHENTICATE (a mechanism chosen) -> COMPLETE (``user`` is the
authenticated name) or FAILED. Every failure raises ``SaslAuthenticationError`` (or
``UnsupportedMechanismError``) and leaves the machine FAILED: one connection, one attempt.

Mechanisms: PLAIN (RFC 4616) and SCRAM-SHA-256/512 (``scram.py``). PLAIN checks the password against
the same SCRAM credentials (one PBKDF2 run); for an unknown user it runs one against a fake credential
too, so that both fail after the same work. Wrong password and unknown user fail with the same message.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import Final

from logq.security import scram

PLAIN: Final = "PLAIN"
MECHANISMS: Final = (PLAIN, *scram.MECHANISMS)

CredentialLookup = Callable[[str, str], scram.ScramCredential | None]
"""(user, SCRAM mechanism) -> the stored credential, or None."""


class SaslState(enum.Enum):
    HANDSHAKE = "handshake"
    AUTHENTICATE = "authenticate"
    COMPLETE = "complete"
    FAILED = "failed"


class SaslAuthenticationError(Exception):
    """Authentication failed; the message is what the client is told (SASL_AUTHENTICATION_FAILED)."""


class UnsupportedMechanismError(Exception):
    """The client asked for a mechanism that is not enabled (UNSUPPORTED_SASL_MECHANISM)."""


class IllegalSaslStateError(Exception):
    """A SASL message out of order (ILLEGAL_SASL_STATE)."""


def invalid_credentials(mechanism: str) -> str:
    """Kafka's words, the same whether the user exists or not."""
    return (
        "Authentication failed during authentication due to invalid credentials with SASL mechanism "
        + mechanism
    )


def parse_mechanisms(text: str) -> tuple[str, ...]:
    """``"SCRAM-SHA-256, PLAIN"`` -> the names; ValueError for an unknown or repeated one, or none."""
    names = tuple(part.strip().upper() for part in text.split(",") if part.strip())
    unknown = [n for n in names if n not in MECHANISMS]
    if unknown:
        raise ValueError(f"unknown SASL mechanism(s) {', '.join(unknown)}; logq has {', '.join(MECHANISMS)}")
    if not names or len(set(names)) != len(names):
        raise ValueError(f"expected a list of distinct SASL mechanisms, got {text!r}")
    return names


class SaslServer:
    def __init__(self, enabled: Sequence[str], lookup: CredentialLookup, server_secret: bytes) -> None:
        self.enabled = tuple(enabled)
        self._lookup = lookup
        self._secret = server_secret
        self.state = SaslState.HANDSHAKE
        self.mechanism: str | None = None
        self.user: str | None = None  # the authenticated user, once COMPLETE
        self.attempted_user: str | None = None  # the name the client gave (for the log), if any
        self._scram: scram.ScramServer | None = None

    def handshake(self, mechanism: str) -> None:
        if self.state is not SaslState.HANDSHAKE:
            raise IllegalSaslStateError(f"SaslHandshake in state {self.state.value}")
        if mechanism not in self.enabled:
            self.state = SaslState.FAILED
            raise UnsupportedMechanismError(
                f"unsupported SASL mechanism {mechanism!r}; enabled: {', '.join(self.enabled)}"
            )
        self.mechanism = mechanism
        self.state = SaslState.AUTHENTICATE
        if mechanism in scram.MECHANISMS:
            self._scram = scram.ScramServer(
                mechanism, lambda user: self._lookup(user, mechanism), self._secret
            )

    def step(self, token: bytes) -> bytes:
        """The answer to one client token; the machine is COMPLETE after the last one."""
        if self.state is not SaslState.AUTHENTICATE or self.mechanism is None:
            raise IllegalSaslStateError(f"an authentication token in state {self.state.value}")
        try:
            if self._scram is None:
                return self._plain(token)
            if self._scram.client_first is None:
                return self._scram_first(token)
            answer = self._scram.final(token)
            self._complete(self._scram.user)
            return answer
        except scram.ScramError as exc:
            self.state = SaslState.FAILED
            text = str(exc)
            message = invalid_credentials(self.mechanism) if text == "invalid credentials" else text
            raise SaslAuthenticationError(message) from None
        except SaslAuthenticationError:
            self.state = SaslState.FAILED
            raise

    def _scram_first(self, token: bytes) -> bytes:
        assert self._scram is not None
        answer = self._scram.first(token)
        first = self._scram.client_first
        self.attempted_user = first.user if first is not None else None
        return answer

    def _plain(self, token: bytes) -> bytes:
        assert self.mechanism == PLAIN
        parts = token.split(b"\0")
        if len(parts) != 3:
            raise SaslAuthenticationError("Authentication failed: malformed PLAIN message")
        try:
            authzid, user, password = (part.decode("utf-8") for part in parts)
        except UnicodeDecodeError:
            raise SaslAuthenticationError("Authentication failed: PLAIN message is not UTF-8") from None
        if not user or not password:
            raise SaslAuthenticationError("Authentication failed: PLAIN needs a user name and a password")
        self.attempted_user = user
        if authzid and authzid != user:
            raise SaslAuthenticationError("Authentication failed: the authorization id must be the user name")
        credential = self._lookup(user, "SCRAM-SHA-256") or self._lookup(user, "SCRAM-SHA-512")
        known = credential is not None
        if credential is None:  # the same work as for a known user, then the same failure
            credential = scram.fake_credential("SCRAM-SHA-256", user, self._secret)
        if not (scram.password_matches(credential, password) and known):
            raise SaslAuthenticationError(invalid_credentials(PLAIN))
        self._complete(user)
        return b""

    def _complete(self, user: str | None) -> None:
        assert user is not None
        self.user = user
        self.state = SaslState.COMPLETE
