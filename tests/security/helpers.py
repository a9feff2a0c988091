"""A SCRAM login over a raw WireClient, for tests that then send exact requests."""

from __future__ import annotations

from logq.protocol import messages as m
from logq.security.scram import ScramClient
from tests.wire_client import WireClient


def scram_login(
    client: WireClient, user: str = "alice", password: str = "alice-secret"
) -> m.SaslAuthenticateResponse:
    """A v1 SCRAM-SHA-256 login; the last answer."""
    assert client.call(m.SaslHandshakeRequest(mechanism="SCRAM-SHA-256"), 1).error_code == 0
    scram = ScramClient("SCRAM-SHA-256", user, password)
    first = client.call(m.SaslAuthenticateRequest(auth_bytes=scram.first()), 1)
    assert first.error_code == 0
    final: m.SaslAuthenticateResponse = client.call(
        m.SaslAuthenticateRequest(auth_bytes=scram.final(first.auth_bytes)), 1
    )
    if final.error_code == 0:
        scram.verify(final.auth_bytes)
    return final
