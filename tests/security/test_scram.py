"""SCRAM (RFC 5802 / RFC 7677) and the SASL state machine, sans-I/O, with the standard library's
primitives: known answers, Kafka's quirks, and every refusal a client can provoke."""

from __future__ import annotations

import base64

import pytest

from logq.security import sasl, scram

SECRET = b"s" * 32


def test_rfc7677_known_answer() -> None:
    # RFC 7677 section 3: user "user", password "pencil".
    client = scram.ScramClient("SCRAM-SHA-256", "user", "pencil", nonce="rOprNGfwEbeRWgbNEkqO")
    assert client.first() == b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    final = client.final(
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    )
    assert final == (
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    )
    client.verify(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
    with pytest.raises(scram.ScramError, match="signature is wrong"):
        client.verify(b"v=" + base64.b64encode(b"x" * 32))


def test_credentials_keep_no_password_and_round_trip_in_kafkas_form() -> None:
    credential = scram.make_credential("SCRAM-SHA-512", "secret-pw", 4096)
    text = scram.format_credential(credential)
    assert "secret-pw" not in text
    assert text.startswith("salt=")
    assert text.endswith(",iterations=4096")
    assert scram.parse_credential("SCRAM-SHA-512", text) == credential
    assert scram.password_matches(credential, "secret-pw")
    assert not scram.password_matches(credential, "secret-px")
    with pytest.raises(ValueError, match="iterations"):
        scram.make_credential("SCRAM-SHA-256", "pw", 1000)
    with pytest.raises(ValueError, match="not a SCRAM-SHA-256 credential"):
        scram.parse_credential("SCRAM-SHA-256", "salt=%%%")


def server(users: dict[str, str], mechanisms: tuple[str, ...] = sasl.MECHANISMS) -> sasl.SaslServer:
    store = {
        (user, mechanism): scram.make_credential(mechanism, password)
        for user, password in users.items()
        for mechanism in scram.MECHANISMS
    }
    return sasl.SaslServer(mechanisms, lambda user, mechanism: store.get((user, mechanism)), SECRET)


def login(mechanism: str, user: str, password: str, users: dict[str, str] | None = None) -> sasl.SaslServer:
    srv = server(users if users is not None else {"alice": "alice-pw"})
    srv.handshake(mechanism)
    if mechanism == "PLAIN":
        assert srv.step(f"\0{user}\0{password}".encode()) == b""
        return srv
    client = scram.ScramClient(mechanism, user, password)
    client.verify(srv.step(client.final(srv.step(client.first()))))
    return srv


@pytest.mark.parametrize("mechanism", sasl.MECHANISMS)
def test_a_user_logs_in_with_each_mechanism(mechanism: str) -> None:
    srv = login(mechanism, "alice", "alice-pw")
    assert (srv.state, srv.user) == (sasl.SaslState.COMPLETE, "alice")


@pytest.mark.parametrize("mechanism", sasl.MECHANISMS)
def test_wrong_password_and_unknown_user_fail_alike(mechanism: str) -> None:
    messages = []
    for user, password in (("alice", "wrong"), ("mallory", "alice-pw")):
        with pytest.raises(sasl.SaslAuthenticationError) as failure:
            login(mechanism, user, password)
        messages.append(str(failure.value))
    assert messages[0] == messages[1] == sasl.invalid_credentials(mechanism)
    assert "mallory" not in messages[1]


def test_an_unknown_user_gets_a_stable_salt_of_the_usual_size() -> None:
    """The server-first message must not show whether the user exists: a fake salt, always the same."""
    firsts = []
    for user in ("mallory", "mallory", "alice"):
        srv = server({"alice": "pw"})
        srv.handshake("SCRAM-SHA-256")
        firsts.append(
            dict(p.split("=", 1) for p in srv.step(f"n,,n={user},r=abc".encode()).decode().split(","))
        )
    assert firsts[0]["s"] == firsts[1]["s"] != firsts[2]["s"]
    assert len(base64.b64decode(firsts[0]["s"])) == len(base64.b64decode(firsts[2]["s"]))
    assert firsts[0]["i"] == firsts[2]["i"] == "4096"


def scram_exchange(client_final: object = None) -> tuple[sasl.SaslServer, scram.ScramClient, bytes]:
    srv = server({"alice": "alice-pw"})
    srv.handshake("SCRAM-SHA-256")
    client = scram.ScramClient("SCRAM-SHA-256", "alice", "alice-pw", nonce="cnonce")
    server_first = srv.step(client.first())
    return srv, client, server_first


def test_librdkafkas_doubled_nonce_is_accepted_and_nothing_else() -> None:
    srv, client, server_first = scram_exchange()
    final = client.final(server_first).decode()
    combined = final.split(",")[1][2:]
    doubled = final.replace(f"r={combined}", f"r=cnonce{combined}")
    # The proof covers the nonce, so a doubled-nonce client computes it over what it sent: rebuild it.
    fixed = _reproof("alice-pw", "cnonce", server_first, doubled)
    assert srv.step(fixed).startswith(b"v=")

    for forged in ("other-nonce", combined + "x", "cnonce"):
        srv, client, server_first = scram_exchange()
        final = client.final(server_first).decode()
        combined = final.split(",")[1][2:]
        replayed = _reproof("alice-pw", "cnonce", server_first, final.replace(f"r={combined}", f"r={forged}"))
        with pytest.raises(sasl.SaslAuthenticationError, match="nonce"):
            srv.step(replayed)
        assert srv.state is sasl.SaslState.FAILED


def _reproof(password: str, cnonce: str, server_first: bytes, final: str) -> bytes:
    """A client-final whose proof is right for its (possibly altered) nonce: only the nonce check can
    refuse it."""
    import hashlib
    import hmac

    fields = dict(p.split("=", 1) for p in server_first.decode().split(","))
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(fields["s"]), int(fields["i"]))
    without_proof = final.rsplit(",p=", 1)[0]
    auth = f"n=alice,r={cnonce},{server_first.decode()},{without_proof}".encode()
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    signature = hmac.new(hashlib.sha256(client_key).digest(), auth, "sha256").digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()


@pytest.mark.parametrize(
    ("first", "reason"),
    [
        (b"n,,n=alice,r=x,tokenauth=true", "delegation tokens"),
        (b"y,,n=alice,r=x", "channel binding"),
        (b"p=tls-unique,,n=alice,r=x", "channel binding"),
        (b"n,a=bob,n=alice,r=x", "authorization id"),
        (b"n,,n=al=ice,r=x", "user name"),
        (b"n,,n=alice", "malformed"),
        (b"n,,r=x,n=alice", "malformed"),
        (b"\xff\xfe", "malformed"),
        (b"", "malformed"),
        (b"n,,n=alice,r=x,m=mandatory", "malformed"),
    ],
)
def test_garbage_client_first_fails_cleanly(first: bytes, reason: str) -> None:
    srv = server({"alice": "alice-pw"})
    srv.handshake("SCRAM-SHA-256")
    with pytest.raises(sasl.SaslAuthenticationError, match=reason):
        srv.step(first)
    assert srv.state is sasl.SaslState.FAILED
    with pytest.raises(sasl.IllegalSaslStateError):
        srv.step(b"n,,n=alice,r=x")


@pytest.mark.parametrize(
    "final",
    [b"garbage", b"c=biws,r=x", b"c=eSws,r=NONCE,p=AAAA", b"c=biws,r=NONCE,p=!!!", b"c=biws,r=NONCE,p=AAAA"],
)
def test_garbage_client_final_fails_cleanly(final: bytes) -> None:
    srv, _client, server_first = scram_exchange()
    nonce = server_first.decode().split(",")[0][2:]
    with pytest.raises(sasl.SaslAuthenticationError):
        srv.step(final.replace(b"NONCE", nonce.encode()))
    assert srv.state is sasl.SaslState.FAILED


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (b"alice\0alice-pw", "malformed"),
        (b"\0\0alice-pw", "user name and a password"),
        (b"\0alice\0", "user name and a password"),
        (b"bob\0alice\0alice-pw", "authorization id"),
        (b"\0alice\0\xff", "UTF-8"),
    ],
)
def test_garbage_plain_fails_cleanly(token: bytes, reason: str) -> None:
    srv = server({"alice": "alice-pw"})
    srv.handshake("PLAIN")
    with pytest.raises(sasl.SaslAuthenticationError, match=reason):
        srv.step(token)


def test_plain_with_the_authorization_id_of_the_user_logs_in() -> None:
    srv = server({"alice": "alice-pw"})
    srv.handshake("PLAIN")
    srv.step(b"alice\0alice-pw".replace(b"alice\0", b"alice\0alice\0", 1))
    assert srv.user == "alice"


def test_mechanisms_not_enabled_are_refused() -> None:
    srv = server({"alice": "pw"}, mechanisms=("SCRAM-SHA-512",))
    with pytest.raises(sasl.UnsupportedMechanismError, match="SCRAM-SHA-512"):
        srv.handshake("PLAIN")
    assert srv.state is sasl.SaslState.FAILED
    with pytest.raises(ValueError, match="unknown SASL mechanism"):
        sasl.parse_mechanisms("GSSAPI")
    assert sasl.parse_mechanisms(" plain, SCRAM-SHA-256 ") == ("PLAIN", "SCRAM-SHA-256")
