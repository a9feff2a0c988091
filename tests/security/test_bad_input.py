"""Bad input on secured listeners: each is refused cleanly (an error code or a closed connection, never a
hang) and the broker keeps serving other clients. Real sockets on 127.0.0.1, bounded in time."""

from __future__ import annotations

import socket
import ssl
import struct
import time

import pytest

from logq.error_codes import ErrorCode
from logq.protocol import encode_request
from logq.protocol import messages as m
from logq.security.scram import ScramClient
from tests.security.conftest import AUTH_TIMEOUT_MS, FAILED_LOGIN_DELAY_MS, SecureBroker
from tests.security.helpers import scram_login
from tests.wire_client import WireClient

CLOSE_WITHIN_S = AUTH_TIMEOUT_MS / 1000 + 5


def serves_another(broker: SecureBroker) -> None:
    """A well-behaved client still logs in and gets metadata."""
    with WireClient(broker.address("SASL")) as client:
        assert scram_login(client).error_code == 0
        assert client.call(m.MetadataRequest(topics=[]), 1).brokers


def test_requests_before_authentication_close_the_connection_unanswered(secure_broker: SecureBroker) -> None:
    with WireClient(secure_broker.address("SASL")) as client:
        assert client.call(m.ApiVersionsRequest(), 2).error_code == 0  # allowed before the handshake
        client.send(m.MetadataRequest(topics=None), 1)
        assert client.is_closed_by_peer(CLOSE_WITHIN_S)
    with WireClient(secure_broker.address("SASL")) as client:
        assert client.call(m.SaslHandshakeRequest(mechanism="SCRAM-SHA-256"), 1).error_code == 0
        client.send(m.MetadataRequest(topics=None), 1)  # after the handshake, before the login
        assert client.is_closed_by_peer(CLOSE_WITHIN_S)
    serves_another(secure_broker)


def test_an_unknown_mechanism_is_refused_with_the_enabled_list(secure_broker: SecureBroker) -> None:
    with WireClient(secure_broker.address("SASL")) as client:
        answer = client.call(m.SaslHandshakeRequest(mechanism="GSSAPI"), 1)
        assert answer.error_code == ErrorCode.UNSUPPORTED_SASL_MECHANISM
        assert answer.mechanisms == ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
        assert client.is_closed_by_peer(CLOSE_WITHIN_S)
    serves_another(secure_broker)


@pytest.mark.parametrize(
    "token",
    [b"", b"garbage", b"n,,n=alice", b"y,,n=alice,r=x", b"n,,n=alice,r=x,tokenauth=true", b"\xff" * 64],
)
def test_a_garbage_scram_message_is_refused(secure_broker: SecureBroker, token: bytes) -> None:
    with WireClient(secure_broker.address("SASL")) as client:
        assert client.call(m.SaslHandshakeRequest(mechanism="SCRAM-SHA-256"), 1).error_code == 0
        answer = client.call(m.SaslAuthenticateRequest(auth_bytes=token), 1)
        assert answer.error_code == ErrorCode.SASL_AUTHENTICATION_FAILED
        assert answer.error_message
        assert client.is_closed_by_peer(CLOSE_WITHIN_S)
    serves_another(secure_broker)


def test_a_replayed_client_final_is_refused(secure_broker: SecureBroker) -> None:
    """A client-final captured from one login does not log in on another connection: the server nonce
    differs, and the nonce check refuses it."""
    scram = ScramClient("SCRAM-SHA-256", "alice", "alice-secret")
    with WireClient(secure_broker.address("SASL")) as client:
        client.call(m.SaslHandshakeRequest(mechanism="SCRAM-SHA-256"), 1)
        first = client.call(m.SaslAuthenticateRequest(auth_bytes=scram.first()), 1)
        captured = scram.final(first.auth_bytes)
        assert client.call(m.SaslAuthenticateRequest(auth_bytes=captured), 1).error_code == 0
    with WireClient(secure_broker.address("SASL")) as client:
        client.call(m.SaslHandshakeRequest(mechanism="SCRAM-SHA-256"), 1)
        assert client.call(m.SaslAuthenticateRequest(auth_bytes=scram.first()), 1).error_code == 0
        answer = client.call(m.SaslAuthenticateRequest(auth_bytes=captured), 1)
        assert answer.error_code == ErrorCode.SASL_AUTHENTICATION_FAILED
        assert client.is_closed_by_peer(CLOSE_WITHIN_S)
    serves_another(secure_broker)


def test_an_oversized_sasl_token_closes_before_anything_is_allocated(secure_broker: SecureBroker) -> None:
    with WireClient(secure_broker.address("SASL")) as client:
        client.call(m.SaslHandshakeRequest(mechanism="PLAIN"), 1)
        client.send_raw(struct.pack(">i", 524_288 + 1))  # sasl.server.max.receive.size + 1
        assert client.is_closed_by_peer(CLOSE_WITHIN_S)
    assert "length prefix 524289 (limit 524288)" in secure_broker.process.log_text
    serves_another(secure_broker)


def test_raw_v0_tokens_log_in_and_a_bad_one_just_closes(secure_broker: SecureBroker) -> None:
    """After a v0 handshake the tokens are frames without a header, and so are the answers."""
    with WireClient(secure_broker.address("SASL")) as client:
        assert client.call(m.SaslHandshakeRequest(mechanism="PLAIN"), 0).error_code == 0
        client.send_raw(struct.pack(">i", 19) + b"\0alice\0alice-secret")
        assert client.read_frame() == b""  # PLAIN's empty answer, still size-prefixed
        assert client.call(m.MetadataRequest(topics=[]), 1).brokers
    with WireClient(secure_broker.address("SASL")) as client:
        assert client.call(m.SaslHandshakeRequest(mechanism="PLAIN"), 0).error_code == 0
        client.send_raw(struct.pack(">i", 13) + b"\0alice\0wrong!")
        assert client.is_closed_by_peer(CLOSE_WITHIN_S)
    serves_another(secure_broker)


def test_a_login_that_never_comes_is_cut_off(secure_broker: SecureBroker) -> None:
    with WireClient(secure_broker.address("SASL")) as client:
        started = time.monotonic()
        assert client.is_closed_by_peer(CLOSE_WITHIN_S)
        assert time.monotonic() - started >= AUTH_TIMEOUT_MS / 1000 - 0.5
    serves_another(secure_broker)


def test_a_tls_handshake_that_never_finishes_is_cut_off(secure_broker: SecureBroker) -> None:
    for prefix in (b"", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"):  # nothing; half a ClientHello
        with WireClient(secure_broker.address("TLS")) as client:
            client.send_raw(prefix)
            assert client.is_closed_by_peer(CLOSE_WITHIN_S)
    serves_another(secure_broker)


def tls_talk(context: ssl.SSLContext, port: int) -> bytes | OSError:
    """A TLS connection that sends ApiVersions: the first bytes answered, or the error that ended it."""
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(encode_request(m.ApiVersionsRequest(), 2, 1))
            return tls.recv(4)
    except OSError as exc:  # ssl.SSLError is one
        return exc


def test_plaintext_bytes_to_a_tls_port_and_tls_to_a_plaintext_port(secure_broker: SecureBroker) -> None:
    with WireClient(secure_broker.address("TLS")) as client:
        client.send(m.ApiVersionsRequest(), 2)
        assert client.is_closed_by_peer(CLOSE_WITHIN_S)
    context = ssl.create_default_context(cafile=str(secure_broker.certs.ca))
    for listener in ("SASL", "PLAIN"):  # a ClientHello reads as a huge length prefix: closed at once
        assert isinstance(tls_talk(context, secure_broker.process.ports[listener]), OSError)
    serves_another(secure_broker)


def test_a_client_certificate_from_another_ca_is_refused(secure_broker: SecureBroker) -> None:
    cert, key = secure_broker.other_ca.clients["mallory"]
    context = ssl.create_default_context(cafile=str(secure_broker.certs.ca))
    context.load_cert_chain(cert, key)
    # TLS 1.2 fails the handshake; TLS 1.3 reports the refusal at the first read (an alert or EOF).
    answer = tls_talk(context, secure_broker.process.ports["TLS"])
    assert isinstance(answer, OSError) or answer == b"", answer
    own_cert, own_key = secure_broker.certs.clients["alice"]
    context = ssl.create_default_context(cafile=str(secure_broker.certs.ca))
    context.load_cert_chain(own_cert, own_key)
    answer = tls_talk(context, secure_broker.process.ports["TLS"])  # the broker's own CA: served
    assert isinstance(answer, bytes)
    assert len(answer) == 4
    serves_another(secure_broker)


def test_sasl_apis_on_a_listener_without_sasl_answer_illegal_state(secure_broker: SecureBroker) -> None:
    with WireClient(secure_broker.address("PLAIN")) as client:
        answer = client.call(m.SaslHandshakeRequest(mechanism="PLAIN"), 1)
        assert answer.error_code == ErrorCode.ILLEGAL_SASL_STATE
        answer = client.call(m.SaslAuthenticateRequest(auth_bytes=b"\0alice\0alice-secret"), 1)
        assert answer.error_code == ErrorCode.ILLEGAL_SASL_STATE
        assert client.call(m.MetadataRequest(topics=[]), 1).brokers  # still served


def test_failures_slow_the_next_attempt_from_that_address_only(secure_broker: SecureBroker) -> None:
    delay = FAILED_LOGIN_DELAY_MS / 1000
    with WireClient(secure_broker.address("SASL"), source="127.0.0.3") as client:
        started = time.monotonic()
        assert scram_login(client, password="wrong").error_code == ErrorCode.SASL_AUTHENTICATION_FAILED
        assert time.monotonic() - started >= delay  # the failure is answered after the delay
    with WireClient(secure_broker.address("SASL"), source="127.0.0.3") as client:
        started = time.monotonic()
        assert client.call(m.SaslHandshakeRequest(mechanism="SCRAM-SHA-256"), 1).error_code == 0
        assert time.monotonic() - started >= delay  # the next attempt from there waits too
    with WireClient(secure_broker.address("SASL"), source="127.0.0.4") as client:
        assert scram_login(client).error_code == 0  # another address logs in as usual
