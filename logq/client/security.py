"""How logq's client proves who it is: TLS and SASL settings (shared by the producer, the consumer and
the admin client, declared once here) and the SASL exchange on a new connection.

Kafka's names: ``security_protocol`` PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL; ``sasl_mechanism``
PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 with ``sasl_username``/``sasl_password``; ``ssl_cafile`` (the
broker's CA; the system's when None), ``ssl_certfile``/``ssl_keyfile`` (a client certificate) and
``ssl_check_hostname``. The SASL exchange is SaslHandshake v1 then SaslAuthenticate, so the tokens
travel in requests; SCRAM's last step checks the broker's signature too (it must know the credential).
"""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from logq.client.settings import setting
from logq.error_codes import ErrorCode
from logq.errors import AuthenticationError
from logq.protocol import messages as m
from logq.security import sasl, scram, tls
from logq.security.principal import ANONYMOUS, user_principal

__all__ = ["KAFKA_NAMES", "PROTOCOLS", "SecuritySettings", "authenticate", "security_of"]

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
# Kafka's and librdkafka's names (dots as underscores) that differ from logq's, for ``-X key=value``.
KAFKA_NAMES = {
    "sasl_mechanisms": "sasl_mechanism",
    "sasl_plain_username": "sasl_username",
    "sasl_plain_password": "sasl_password",
    "ssl_ca_location": "ssl_cafile",
    "ssl_certificate_location": "ssl_certfile",
    "ssl_key_location": "ssl_keyfile",
}

Request = Callable[[Any, int], Awaitable[Any]]  # send a body at a version; the decoded answer


@dataclass(frozen=True, kw_only=True)
class SecuritySettings:
    """TLS and SASL. ValueError when a value is out of range or settings conflict."""

    security_protocol: str = setting(
        "PLAINTEXT", "How to talk to brokers: PLAINTEXT, SSL (TLS), SASL_PLAINTEXT or SASL_SSL (both)."
    )
    sasl_mechanism: str = setting(
        "SCRAM-SHA-256", "The SASL mechanism: SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN (send it over SASL_SSL)."
    )
    sasl_username: str | None = setting(None, "The SASL user (SASL_PLAINTEXT, SASL_SSL).")
    sasl_password: str | None = dataclasses.field(
        default=None, repr=False, metadata={"doc": "The SASL user's password (never shown in repr or logs)."}
    )
    ssl_cafile: str | None = setting(
        None, "PEM file of the CA that signed the brokers' certificates; None: the system's CAs."
    )
    ssl_certfile: str | None = setting(None, "PEM client certificate, for brokers that ask for one.")
    ssl_keyfile: str | None = setting(None, "The client certificate's PEM key.")
    ssl_check_hostname: bool = setting(
        True, "Check that the broker's certificate names the host connected to (leave on outside tests)."
    )

    def __post_init__(self) -> None:
        if self.security_protocol not in PROTOCOLS:
            raise ValueError(
                f"security_protocol must be one of {', '.join(PROTOCOLS)}, not {self.security_protocol!r}"
            )
        if self.uses_sasl:
            if self.sasl_mechanism not in sasl.MECHANISMS:
                raise ValueError(
                    f"sasl_mechanism must be one of {', '.join(sasl.MECHANISMS)}, not {self.sasl_mechanism!r}"
                )
            if not self.sasl_username or self.sasl_password is None:
                raise ValueError(
                    f"security_protocol {self.security_protocol} needs sasl_username and sasl_password"
                )
        if not isinstance(self.ssl_check_hostname, bool):
            raise ValueError(f"ssl_check_hostname must be True or False, not {self.ssl_check_hostname!r}")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    def principal(self) -> str:
        """Who the brokers see this client as, in their ACLs' terms: ``User:<sasl_username>`` after a SASL
        login; on SSL with a client certificate, what the brokers' ssl.principal.mapping.rules make of
        its subject (only they know, so it is described); otherwise User:ANONYMOUS."""
        if self.uses_sasl:
            assert self.sasl_username is not None  # checked in __post_init__
            return user_principal(self.sasl_username)
        if self.uses_tls and self.ssl_certfile is not None:
            return f"the principal of client certificate {self.ssl_certfile}"
        return ANONYMOUS

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context (None for plaintext); ValueError (one line) for a bad file."""
        if not self.uses_tls:
            return None
        return tls.client_context(
            _path(self.ssl_cafile),
            _path(self.ssl_certfile),
            _path(self.ssl_keyfile),
            check_hostname=self.ssl_check_hostname,
        )


def security_of(settings: object) -> SecuritySettings:
    """The security part of a producer's or consumer's settings (which inherit SecuritySettings)."""
    names = {f.name for f in dataclasses.fields(SecuritySettings)}
    return SecuritySettings(**{n: getattr(settings, n) for n in names})


def _path(name: str | None) -> Path | None:
    return None if name is None else Path(name)


async def authenticate(settings: SecuritySettings, request: Request, address: str) -> None:
    """Log in on a fresh connection (after ApiVersions); AuthenticationError when the broker refuses."""
    mechanism = settings.sasl_mechanism
    assert settings.sasl_username is not None
    assert settings.sasl_password is not None
    shake: m.SaslHandshakeResponse = await request(m.SaslHandshakeRequest(mechanism=mechanism), 1)
    if shake.error_code == ErrorCode.UNSUPPORTED_SASL_MECHANISM:
        offered = ", ".join(shake.mechanisms) or "none"
        raise AuthenticationError(
            f"{address} does not offer SASL mechanism {mechanism} (it offers: {offered})"
        )
    if shake.error_code != ErrorCode.NONE:
        raise AuthenticationError(f"{address} refused the SASL handshake: {_name(shake.error_code)}")

    async def step(token: bytes) -> bytes:
        answer: m.SaslAuthenticateResponse = await request(m.SaslAuthenticateRequest(auth_bytes=token), 1)
        if answer.error_code != ErrorCode.NONE:
            raise AuthenticationError(f"{address}: {answer.error_message or _name(answer.error_code)}")
        return answer.auth_bytes

    user, password = settings.sasl_username, settings.sasl_password
    if mechanism == sasl.PLAIN:
        await step(f"\0{user}\0{password}".encode())
        return
    client = scram.ScramClient(mechanism, user, password)
    try:
        client.verify(await step(client.final(await step(client.first()))))
    except scram.ScramError as exc:
        raise AuthenticationError(f"{address}: {exc}") from None


def _name(code: int) -> str:
    return ErrorCode(code).name if code in ErrorCode._value2member_map_ else f"error {code}"
