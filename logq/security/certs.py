"""Certificates with the ``cryptography`` package (the only module that imports it): reading a
certificate's subject (a peer's, or the broker's own), and a development set-up on one machine (``logq
security dev-certs DIR``).

The development set-up: an EC P-256 certificate authority, a broker certificate for ``localhost`` and
``127.0.0.1`` (serverAuth, and clientAuth for its connections to other brokers), and client
certificates whose CN is the user (clientAuth), each key in a PKCS#8 PEM file of mode 0600. It is meant
for trying TLS out, never for production: the CA key sits next to the certificates.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from logq.permissions import write_private

VALID_DAYS = 825  # the longest validity browsers and most TLS stacks accept for a leaf certificate
CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
BROKER_CERT_FILE = "broker.pem"
BROKER_KEY_FILE = "broker-key.pem"


def peer_subject(der: bytes) -> str:
    """A DER certificate's subject in RFC 4514 form, as Kafka prints it: ``CN=alice,O=logq``."""
    return x509.load_der_x509_certificate(der).subject.rfc4514_string()


def certificate_subject(path: Path) -> str:
    """The subject of the first certificate in a PEM file, as ``peer_subject`` gives it (what another
    broker sees of this one's certificate); ValueError (one line) for a file that does not hold one."""
    try:
        return x509.load_pem_x509_certificate(path.read_bytes()).subject.rfc4514_string()
    except OSError as exc:
        raise ValueError(f"cannot read certificate {path}: {exc.strerror}") from None
    except ValueError:
        raise ValueError(f"{path} holds no PEM certificate") from None


@dataclass(frozen=True, slots=True)
class DevCertificates:
    directory: Path
    ca: Path
    broker_cert: Path
    broker_key: Path
    clients: dict[str, tuple[Path, Path]]  # user -> (certificate, key)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "logq development"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


_CA_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


class _Authority:
    def __init__(self, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
        self.key = key
        self.cert = cert

    @classmethod
    def create(cls, name: str) -> _Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = _name(name)
        cert = (
            _builder(subject, subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_CA_USAGE, critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    def issue(
        self,
        common_name: str,
        usages: list[x509.ObjectIdentifier],
        names: list[x509.GeneralName] | None = None,
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            _builder(_name(common_name), self.cert.subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
        )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return key, builder.sign(self.key, hashes.SHA256())


def write_dev_certificates(
    directory: Path,
    clients: list[str],
    *,
    hosts: list[str] | None = None,
    ca_name: str = "logq development CA",
) -> DevCertificates:
    """Write a CA, a broker certificate for ``hosts`` (default localhost and 127.0.0.1) and one client
    certificate per user into ``directory`` (created 0700). Existing files are replaced."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    authority = _Authority.create(ca_name)
    names: list[x509.GeneralName] = []
    for host in hosts or ["localhost", "127.0.0.1"]:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    # A broker is a TLS client too, of the other brokers (an SSL inter-broker listener): both usages.
    broker_key, broker_cert = authority.issue(
        "logq broker", [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH], names
    )
    write_private(directory / CA_KEY_FILE, _key_pem(authority.key))
    write_private(directory / CA_FILE, _cert_pem(authority.cert))
    write_private(directory / BROKER_KEY_FILE, _key_pem(broker_key))
    write_private(directory / BROKER_CERT_FILE, _cert_pem(broker_cert))
    issued = {}
    for user in clients:
        key, cert = authority.issue(user, [ExtendedKeyUsageOID.CLIENT_AUTH])
        cert_path, key_path = directory / f"{user}.pem", directory / f"{user}-key.pem"
        write_private(key_path, _key_pem(key))
        write_private(cert_path, _cert_pem(cert))
        issued[user] = (cert_path, key_path)
    return DevCertificates(
        directory, directory / CA_FILE, directory / BROKER_CERT_FILE, directory / BROKER_KEY_FILE, issued
    )
