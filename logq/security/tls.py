"""TLS contexts from PEM files, with Python's ``ssl`` module: TLS 1.2 at least, the default (ECDHE +
AEAD) cipher suites, and optional client certificates.

``ssl.client.auth``: ``none`` (no certificate asked for), ``requested`` (asked for; a client without one
is still served, as ANONYMOUS), ``required`` (the handshake fails without one). A certificate must be
signed by the CA file's authority either way.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Final

from logq.errors import ConfigurationError
from logq.permissions import check_private

CLIENT_AUTH: Final = {"none": ssl.CERT_NONE, "requested": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


def server_context(
    certificate: Path, key: Path, ca: Path | None = None, client_auth: str = "none"
) -> ssl.SSLContext:
    """The broker's context; ConfigurationError (a ValueError, one line) for a missing, unreadable or
    mismatched file, and UnsafePermissionsError for a key file others may read."""
    if client_auth not in CLIENT_AUTH:
        raise ConfigurationError(
            f"ssl.client.auth must be one of {', '.join(CLIENT_AUTH)}, not {client_auth!r}"
        )
    if client_auth != "none" and ca is None:
        raise ConfigurationError(f"ssl.client.auth = {client_auth} needs ssl.ca.location (the clients' CA)")
    check_private(key, "TLS key file")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certificate, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            f"cannot use TLS certificate {certificate} with key {key}: {_reason(exc)}"
        ) from None
    context.verify_mode = CLIENT_AUTH[client_auth]
    if ca is not None:
        _load_ca(context, ca)
    return context


def client_context(
    ca: Path | None = None,
    certificate: Path | None = None,
    key: Path | None = None,
    *,
    check_hostname: bool = True,
) -> ssl.SSLContext:
    """A client's context: the broker's certificate verified against ``ca`` (the system's authorities
    when None) and, with ``check_hostname``, against the host connected to; ``certificate`` and ``key``
    for brokers that ask for a client certificate. ValueError (one line) for a bad file."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = check_hostname
    if ca is not None:
        _load_ca(context, ca)
    if (certificate is None) != (key is None):
        raise ConfigurationError("a client certificate needs both its certificate file and its key file")
    if certificate is not None and key is not None:
        try:
            context.load_cert_chain(certificate, key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"cannot use client certificate {certificate} with key {key}: {_reason(exc)}"
            ) from None
    return context


def _load_ca(context: ssl.SSLContext, ca: Path) -> None:
    try:
        context.load_verify_locations(cafile=ca)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(f"cannot read CA file {ca}: {_reason(exc)}") from None


def _reason(exc: OSError | ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    return exc.strerror or str(exc)
