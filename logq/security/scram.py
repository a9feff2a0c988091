"""SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) as Kafka does them, sans-I/O.

Pure: no sockets, no asyncio. The primitives are the standard library's (``hashlib.pbkdf2_hmac`` is
RFC 5802's Hi(), ``hmac``, ``secrets``); every secret comparison is ``hmac.compare_digest``.

- ``ScramCredential``: what is stored for a user and mechanism (salt, StoredKey, ServerKey,
  iterations), never the password; ``format_credential``/``parse_credential`` are Kafka's text form
  (``salt=<b64>,stored_key=<b64>,server_key=<b64>,iterations=4096``).
- ``ScramServer``: one server-side exchange (client-first -> server-first, client-final ->
  server-final). Unknown users get a fake salt derived from a server secret and fail at the
  client-final step, like a wrong password, so the exchange does not tell whether a user exists.
- ``ScramClient``: the client side, for logq's own client.

Kafka's quirks kept on purpose (docs/security.md): no SASLprep (UTF-8 as is); channel binding refused;
the ``tokenauth`` extension (delegation tokens) refused, other extensions ignored; the client-final
nonce may be the server's combined nonce or the client nonce followed by it (librdkafka before 2.6.1
sends the latter), anything else fails.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

MECHANISMS: Final = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
MIN_ITERATIONS: Final = 4096  # RFC 7677's minimum, Kafka's default
MAX_ITERATIONS: Final = 16384  # Kafka's upper bound for AlterUserScramCredentials
DEFAULT_ITERATIONS: Final = 4096
SALT_BYTES: Final = 32
GS2_HEADER_NO_BINDING: Final = b"n,,"


class ScramError(Exception):
    """The exchange failed. ``message`` is safe to send to the client: it never says which check failed
    in a way that reveals whether the user exists."""


@dataclass(frozen=True, slots=True)
class ScramCredential:
    mechanism: str
    salt: bytes
    stored_key: bytes
    server_key: bytes
    iterations: int


def _hash_name(mechanism: str) -> str:
    name = MECHANISMS.get(mechanism)
    if name is None:
        raise ValueError(f"unknown SCRAM mechanism {mechanism!r}; expected one of {', '.join(MECHANISMS)}")
    return name


def salted_password(mechanism: str, password: str, salt: bytes, iterations: int) -> bytes:
    """RFC 5802's SaltedPassword = Hi(password, salt, i), i.e. PBKDF2 with the mechanism's hash."""
    return hashlib.pbkdf2_hmac(_hash_name(mechanism), password.encode(), salt, iterations)


def credential_from_salted(mechanism: str, salted: bytes, salt: bytes, iterations: int) -> ScramCredential:
    """The stored form from a SaltedPassword (what AlterUserScramCredentials carries)."""
    name = _hash_name(mechanism)
    client_key = hmac.new(salted, b"Client Key", name).digest()
    return ScramCredential(
        mechanism=mechanism,
        salt=salt,
        stored_key=hashlib.new(name, client_key).digest(),
        server_key=hmac.new(salted, b"Server Key", name).digest(),
        iterations=iterations,
    )


def make_credential(
    mechanism: str, password: str, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None
) -> ScramCredential:
    """A new credential for ``password`` (a fresh random salt unless one is given)."""
    check_iterations(iterations)
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    return credential_from_salted(
        mechanism, salted_password(mechanism, password, salt, iterations), salt, iterations
    )


def check_iterations(iterations: int) -> None:
    if not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
        raise ValueError(f"iterations must be {MIN_ITERATIONS} to {MAX_ITERATIONS}, not {iterations}")


def password_matches(credential: ScramCredential, password: str) -> bool:
    """Whether ``password`` is the one ``credential`` was made from (PLAIN's check: one PBKDF2)."""
    salted = salted_password(credential.mechanism, password, credential.salt, credential.iterations)
    candidate = credential_from_salted(credential.mechanism, salted, credential.salt, credential.iterations)
    return hmac.compare_digest(candidate.stored_key, credential.stored_key)


def format_credential(credential: ScramCredential) -> str:
    """Kafka's stored form (``ScramCredentialUtils.credentialToString``)."""
    b64 = base64.b64encode
    return (
        f"salt={b64(credential.salt).decode()},stored_key={b64(credential.stored_key).decode()},"
        f"server_key={b64(credential.server_key).decode()},iterations={credential.iterations}"
    )


def parse_credential(mechanism: str, text: str) -> ScramCredential:
    """The inverse of ``format_credential``; ValueError if ``text`` is not one."""
    _hash_name(mechanism)
    fields = dict(part.split("=", 1) for part in text.split(",") if "=" in part)
    try:
        return ScramCredential(
            mechanism=mechanism,
            salt=base64.b64decode(fields["salt"], validate=True),
            stored_key=base64.b64decode(fields["stored_key"], validate=True),
            server_key=base64.b64decode(fields["server_key"], validate=True),
            iterations=int(fields["iterations"]),
        )
    except (KeyError, ValueError, binascii.Error) as exc:
        raise ValueError(f"not a {mechanism} credential: {exc}") from None


# --- the messages ------------------------------------------------------------------------------------


def _attributes(text: str) -> list[tuple[str, str]]:
    """``a=1,b=2`` as pairs; ScramError for an item without ``=``."""
    pairs = []
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ScramError("malformed SCRAM message")
        pairs.append((key, value))
    return pairs


def decode_saslname(name: str) -> str:
    """RFC 5802 saslname: ``=2C`` is ``,`` and ``=3D`` is ``=``; any other ``=`` is invalid."""
    out, i = [], 0
    while i < len(name):
        if name[i] == "=":
            code = name[i + 1 : i + 3]
            if code not in ("2C", "3D"):
                raise ScramError("malformed SCRAM user name")
            out.append("," if code == "2C" else "=")
            i += 3
        else:
            out.append(name[i])
            i += 1
    return "".join(out)


def encode_saslname(name: str) -> str:
    return name.replace("=", "=3D").replace(",", "=2C")


@dataclass(frozen=True, slots=True)
class ClientFirst:
    gs2_header: bytes  # "n,," or "n,a=<authzid>," as received
    bare: str  # "n=<user>,r=<nonce>[,ext]"
    user: str
    nonce: str
    extensions: dict[str, str]


def parse_client_first(token: bytes) -> ClientFirst:
    try:
        text = token.decode("utf-8")
    except UnicodeDecodeError:
        raise ScramError("malformed SCRAM message") from None
    flag, sep, rest = text.partition(",")
    authzid_part, sep2, bare = rest.partition(",")
    if not sep or not sep2:
        raise ScramError("malformed SCRAM client-first message")
    if flag != "n":  # "y" or "p=...": channel binding, which Kafka does not do
        raise ScramError("SCRAM channel binding is not supported")
    if authzid_part and not authzid_part.startswith("a="):
        raise ScramError("malformed SCRAM client-first message")
    pairs = _attributes(bare)
    if len(pairs) < 2 or pairs[0][0] != "n" or pairs[1][0] != "r":
        raise ScramError("malformed SCRAM client-first message")
    user = decode_saslname(pairs[0][1])
    nonce = pairs[1][1]
    if not user or not nonce or any(k == "m" for k, _ in pairs):
        raise ScramError("malformed SCRAM client-first message")
    authzid = decode_saslname(authzid_part[2:]) if authzid_part else ""
    if authzid and authzid != user:
        raise ScramError("SCRAM authorization id must be the user name")
    gs2 = f"{flag},{authzid_part},".encode()
    return ClientFirst(gs2, bare, user, nonce, dict(pairs[2:]))


@dataclass(frozen=True, slots=True)
class ClientFinal:
    channel_binding: str  # the base64 of the gs2 header, as sent
    nonce: str
    proof: bytes
    without_proof: str


def parse_client_final(token: bytes) -> ClientFinal:
    try:
        text = token.decode("utf-8")
    except UnicodeDecodeError:
        raise ScramError("malformed SCRAM message") from None
    without_proof, sep, proof_b64 = text.rpartition(",p=")
    if not sep:
        raise ScramError("malformed SCRAM client-final message")
    pairs = _attributes(without_proof)
    if len(pairs) < 2 or pairs[0][0] != "c" or pairs[1][0] != "r":
        raise ScramError("malformed SCRAM client-final message")
    try:
        proof = base64.b64decode(proof_b64, validate=True)
    except binascii.Error:
        raise ScramError("malformed SCRAM client proof") from None
    return ClientFinal(pairs[0][1], pairs[1][1], proof, without_proof)


# --- the server side ---------------------------------------------------------------------------------


def fake_credential(mechanism: str, user: str, server_secret: bytes) -> ScramCredential:
    """A credential nobody can match, with a salt that is the same for the same user every time, so an
    unknown user's exchange looks like a known one's until it fails where a wrong password fails."""
    name = _hash_name(mechanism)
    salt = hmac.new(server_secret, f"{mechanism}\0{user}".encode(), "sha256").digest()[:SALT_BYTES]
    size = hashlib.new(name).digest_size
    return ScramCredential(
        mechanism, salt, secrets.token_bytes(size), secrets.token_bytes(size), DEFAULT_ITERATIONS
    )


class ScramServer:
    """One server-side exchange: ``first(client_first)`` then ``final(client_final)``.

    ``lookup(user)`` returns the user's credential for this mechanism, or None. Every failure raises
    ScramError; the caller answers all of them with the same generic message."""

    def __init__(
        self, mechanism: str, lookup: Callable[[str], ScramCredential | None], server_secret: bytes
    ) -> None:
        self.mechanism = mechanism
        self._hash = _hash_name(mechanism)
        self._lookup = lookup
        self._secret = server_secret
        self._first: ClientFirst | None = None
        self._credential: ScramCredential | None = None
        self._known = False
        self._server_first = ""
        self._nonce = ""
        self.user: str | None = None  # set once the exchange has succeeded

    @property
    def client_first(self) -> ClientFirst | None:
        """The client-first message, once received."""
        return self._first

    def first(self, token: bytes) -> bytes:
        if self._first is not None:
            raise ScramError("SCRAM client-first message received twice")
        first = parse_client_first(token)
        if first.extensions.get("tokenauth", "").lower() == "true":
            raise ScramError("delegation tokens are not supported")
        credential = self._lookup(first.user)
        self._known = credential is not None
        self._credential = credential or fake_credential(self.mechanism, first.user, self._secret)
        self._first = first
        self._nonce = first.nonce + secrets.token_urlsafe(24)
        salt = base64.b64encode(self._credential.salt).decode()
        self._server_first = f"r={self._nonce},s={salt},i={self._credential.iterations}"
        return self._server_first.encode()

    def final(self, token: bytes) -> bytes:
        first, credential = self._first, self._credential
        if first is None or credential is None or self.user is not None:
            raise ScramError("SCRAM client-final message out of order")
        final = parse_client_final(token)
        expected_binding = base64.b64encode(first.gs2_header).decode()
        if not hmac.compare_digest(final.channel_binding.encode(), expected_binding.encode()):
            raise ScramError("SCRAM channel binding does not match")
        # The combined nonce, or (librdkafka < 2.6.1) the client nonce followed by it; nothing else.
        if final.nonce not in (self._nonce, first.nonce + self._nonce):
            raise ScramError("SCRAM nonce does not match")
        auth_message = f"{first.bare},{self._server_first},{final.without_proof}".encode()
        signature = hmac.new(credential.stored_key, auth_message, self._hash).digest()
        if len(final.proof) != len(signature):
            raise ScramError("SCRAM client proof has the wrong size")
        client_key = bytes(a ^ b for a, b in zip(final.proof, signature, strict=True))
        matches = hmac.compare_digest(hashlib.new(self._hash, client_key).digest(), credential.stored_key)
        if not (matches and self._known):
            raise ScramError("invalid credentials")
        self.user = first.user
        server_signature = hmac.new(credential.server_key, auth_message, self._hash).digest()
        return b"v=" + base64.b64encode(server_signature)


# --- the client side ---------------------------------------------------------------------------------


class ScramClient:
    """One client-side exchange: ``first()``, ``final(server_first)``, ``verify(server_final)``."""

    def __init__(self, mechanism: str, user: str, password: str, nonce: str | None = None) -> None:
        self.mechanism = mechanism
        self._hash = _hash_name(mechanism)
        self._password = password
        self._nonce = nonce or secrets.token_urlsafe(24)
        self._bare = f"n={encode_saslname(user)},r={self._nonce}"
        self._server_signature: bytes | None = None

    def first(self) -> bytes:
        return b"n,," + self._bare.encode()

    def final(self, server_first: bytes) -> bytes:
        text = server_first.decode("utf-8", "replace")
        fields = dict(_attributes(text)[:3])
        nonce, salt_b64, iterations = fields.get("r", ""), fields.get("s", ""), fields.get("i", "")
        if not nonce.startswith(self._nonce) or len(nonce) == len(self._nonce) or not iterations.isdigit():
            raise ScramError("the broker's SCRAM server-first message is not valid")
        count = int(iterations)
        if count < MIN_ITERATIONS:
            raise ScramError(f"the broker asks for {count} SCRAM iterations, fewer than {MIN_ITERATIONS}")
        try:
            salt = base64.b64decode(salt_b64, validate=True)
        except binascii.Error:
            raise ScramError("the broker's SCRAM salt is not base64") from None
        salted = salted_password(self.mechanism, self._password, salt, count)
        credential = credential_from_salted(self.mechanism, salted, salt, count)
        without_proof = f"c={base64.b64encode(GS2_HEADER_NO_BINDING).decode()},r={nonce}"
        auth_message = f"{self._bare},{text},{without_proof}".encode()
        client_key = hmac.new(salted, b"Client Key", self._hash).digest()
        signature = hmac.new(credential.stored_key, auth_message, self._hash).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        self._server_signature = hmac.new(credential.server_key, auth_message, self._hash).digest()
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify(self, server_final: bytes) -> None:
        """ScramError unless the broker proved it knows the credential (``v=<signature>``)."""
        expected = self._server_signature
        text = server_final.decode("utf-8", "replace")
        if expected is None or not text.startswith("v="):
            raise ScramError("the broker's SCRAM server-final message is not valid")
        try:
            got = base64.b64decode(text[2:], validate=True)
        except binascii.Error:
            raise ScramError("the broker's SCRAM server signature is not base64") from None
        if not hmac.compare_digest(got, expected):
            raise ScramError("the broker's SCRAM signature is wrong: it does not know this user's credential")
